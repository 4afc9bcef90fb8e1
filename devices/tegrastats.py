"""Parse one line of NVIDIA ``tegrastats`` output into a :class:`TegraSample` (REFERENCE.md "tegrastats").

Every Jetson module and L4T release prints its own variant: an optional timestamp, RAM/SWAP,
per-core CPU load (``off`` for a parked core), EMC/GR3D utilisation with or without frequencies
(per GPC on Orin, frequencies only on Thor), engines (``NVDEC0 off``, ``APE 174``), temperatures
(``-256C`` is an offline sensor) and power rails ``NAME cur/avg[/max]`` with or without ``mW``
(signed: Thor may print negative currents). The parser picks out what it recognises and keeps
every other token in :attr:`TegraSample.unknown`; it never raises.

    >>> s = parse_line("RAM 2100/15823MB GPU 2310/2200 CPU 810/790 SOC 2600/2590")
    >>> s.rails_mw, s.total_power_mw
    ({'GPU': 2310, 'CPU': 810, 'SOC': 2600}, 5720)
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

#: input rails that measure the whole module; otherwise the total is the sum of the rails
INPUT_RAILS = ("VDD_IN", "POM_5V_IN", "VIN")
OFFLINE_TEMPERATURE = -256.0

_NUM = r"-?\d+(?:\.\d+)?"
_TIMESTAMP = re.compile(r"^\s*(\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2})\s*")
_MEMORY = re.compile(r"\b(RAM|SWAP) (\d+)/(\d+)MB(?: \((?:lfb|cached) [^)]*\))?")
_CPU = re.compile(r"\bCPU \[([^\]]*)\]")
_CORE = re.compile(r"^(\d+)%(?:@(\d+))?$")
_CORE_FREQUENCY = re.compile(r"^@(\d+)$")
_UTIL = re.compile(r"\b(EMC_FREQ|GR3D_FREQ|GR3D2_FREQ|VIC_FREQ) (?:(\d+)%)?(?:@\[?([\d,]*)\]?)?(?=\s|$)")
_TEMP = re.compile(r"\b([A-Za-z][\w.-]*)@(" + _NUM + r")C(?:/(" + _NUM + r")C)?(?=\s|$)")
_RAIL = re.compile(r"\b([A-Za-z][\w]*) (-?\d+)(?:mW)?/(-?\d+)(?:mW)?(?:/(-?\d+)(?:mW)?)?(?=\s|$)")
_ENGINE = re.compile(r"\b([A-Z][A-Z0-9_]*) (off|\d+%@\d+|\d+%|\d+|@\d+)(?=\s|$)")


@dataclass
class TegraSample:
    """What one tegrastats line says; fields a line lacks stay None/empty."""

    timestamp: Optional[str] = None
    ram_used_mb: Optional[int] = None
    ram_total_mb: Optional[int] = None
    swap_used_mb: Optional[int] = None
    swap_total_mb: Optional[int] = None
    #: per core: (load %, MHz), None for a core that is off
    cpu: List[Optional[Tuple[Optional[int], Optional[int]]]] = field(default_factory=list)
    #: EMC_FREQ, GR3D_FREQ, ...: {"percent": int|None, "mhz": [int, ...]}
    utilisation: Dict[str, Dict[str, object]] = field(default_factory=dict)
    #: sensor -> degrees C (None for an offline sensor reading -256C)
    temperatures_c: Dict[str, Optional[float]] = field(default_factory=dict)
    rails_mw: Dict[str, int] = field(default_factory=dict)
    rails_avg_mw: Dict[str, int] = field(default_factory=dict)
    rails_max_mw: Dict[str, int] = field(default_factory=dict)
    #: NVDEC0, NVDLA0, APE, ...: the raw value ("off", "174", "12%@1100")
    engines: Dict[str, str] = field(default_factory=dict)
    unknown: List[str] = field(default_factory=list)

    @property
    def total_power_mw(self) -> Optional[int]:
        """The module's input rail (VDD_IN, POM_5V_IN, VIN) where it has one, else the sum of rails; None without rails."""
        for name in INPUT_RAILS:
            if name in self.rails_mw:
                return self.rails_mw[name]
        return sum(self.rails_mw.values()) if self.rails_mw else None

    @property
    def gpu_percent(self) -> Optional[int]:
        value = self.utilisation.get("GR3D_FREQ", {}).get("percent")
        return value if isinstance(value, int) else None

    @property
    def cpu_percent(self) -> Optional[float]:
        """Mean load of the online cores."""
        loads = [c[0] for c in self.cpu if c is not None and c[0] is not None]
        return sum(loads) / len(loads) if loads else None


def _cores(text: str) -> List[Optional[Tuple[Optional[int], Optional[int]]]]:
    cores: List[Optional[Tuple[Optional[int], Optional[int]]]] = []
    for part in text.split(","):
        part = part.strip()
        match = _CORE.match(part)
        if match:
            cores.append((int(match.group(1)), int(match.group(2)) if match.group(2) else None))
        elif _CORE_FREQUENCY.match(part):  # frequency only (str.isdigit would pass "²", which int() refuses)
            cores.append((None, int(part[1:])))
        else:  # "off" or a form this parser does not know
            cores.append(None)
    return cores


def _cut(text: str, match: "re.Match[str]") -> str:
    """Blank a matched span so later patterns do not see it again."""
    return text[:match.start()] + " " * (match.end() - match.start()) + text[match.end():]


def parse_line(text: str) -> TegraSample:
    """One tegrastats line -> :class:`TegraSample`; unknown tokens go to ``unknown``, nothing raises."""
    sample = TegraSample()
    if not isinstance(text, str):
        return sample
    rest = text.replace("\t", " ").strip()
    match = _TIMESTAMP.match(rest)
    if match:
        sample.timestamp = match.group(1)
        rest = _cut(rest, match)
    for match in list(_MEMORY.finditer(rest)):
        used, total = int(match.group(2)), int(match.group(3))
        if match.group(1) == "RAM":
            sample.ram_used_mb, sample.ram_total_mb = used, total
        else:
            sample.swap_used_mb, sample.swap_total_mb = used, total
        rest = _cut(rest, match)
    for match in list(_CPU.finditer(rest)):
        sample.cpu = _cores(match.group(1))
        rest = _cut(rest, match)
    for match in list(_UTIL.finditer(rest)):
        mhz = [int(f) for f in (match.group(3) or "").split(",") if f.isdigit()]
        sample.utilisation[match.group(1)] = {"percent": int(match.group(2)) if match.group(2) else None, "mhz": mhz}
        rest = _cut(rest, match)
    for match in list(_TEMP.finditer(rest)):
        value = float(match.group(2))
        sample.temperatures_c[match.group(1)] = None if value <= OFFLINE_TEMPERATURE else value
        rest = _cut(rest, match)
    for match in list(_RAIL.finditer(rest)):
        name = match.group(1)
        sample.rails_mw[name] = int(match.group(2))
        sample.rails_avg_mw[name] = int(match.group(3))
        if match.group(4) is not None:
            sample.rails_max_mw[name] = int(match.group(4))
        rest = _cut(rest, match)
    for match in list(_ENGINE.finditer(rest)):
        sample.engines[match.group(1)] = match.group(2)
        rest = _cut(rest, match)
    sample.unknown = rest.split()
    return sample
