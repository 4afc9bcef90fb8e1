"""Power, clocks and process figures sampled during a profile.

:class:`ResourceSampler` runs ``tegrastats --interval MS`` (parsed by
:func:`emotrt.devices.tegrastats.parse_line`) and, on its own thread, samples this process's CPU %
and RSS (psutil when installed, else ``os.times`` and ``/proc/self/statm``). Where tegrastats is
missing it says so in :attr:`ResourceSampler.note` and the profile carries CPU figures only.
:func:`power_mode` records ``nvpmodel -q`` and ``jetson_clocks --show`` (REFERENCE.md: read the
mode, never hard-code its id).
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
import time
from typing import Any, Dict, List, Optional

from emotrt.devices.tegrastats import parse_line

log = logging.getLogger(__name__)

NO_TEGRASTATS = ("tegrastats not found on PATH (not a Jetson, or L4T's tools are missing): "
                 "no power or clock figures; CPU % and RSS from psutil instead")


def _run_tool(argv: List[str], timeout: float = 5.0) -> Optional[str]:
    if shutil.which(argv[0]) is None:
        return None
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                              universal_newlines=True)
    except (OSError, subprocess.SubprocessError) as exc:
        return "failed: {}".format(exc)
    return proc.stdout.strip()


def power_mode() -> Dict[str, Optional[str]]:
    """``nvpmodel -q`` and ``jetson_clocks --show`` output, None where the tool is absent."""
    return {"nvpmodel": _run_tool(["nvpmodel", "-q"]), "jetson_clocks": _run_tool(["jetson_clocks", "--show"])}


class _ProcessCpu:
    """This process's CPU % since the previous call and its RSS in MB."""

    def __init__(self) -> None:
        try:
            import psutil

            self._proc: Any = psutil.Process()
            self._proc.cpu_percent(None)
            self.source = "psutil"
        except ImportError:
            self._proc = None
            self.source = "os.times"
        self._last = (time.monotonic(), self._cpu_seconds())

    def _cpu_seconds(self) -> float:
        t = os.times()
        return t.user + t.system

    def sample(self) -> Dict[str, Optional[float]]:
        if self._proc is not None:
            return {"cpu_percent": float(self._proc.cpu_percent(None)),
                    "rss_mb": self._proc.memory_info().rss / 2 ** 20}
        now, cpu = time.monotonic(), self._cpu_seconds()
        wall = max(now - self._last[0], 1e-9)
        percent = 100.0 * (cpu - self._last[1]) / wall
        self._last = (now, cpu)
        rss = None
        try:
            with open("/proc/self/statm") as f:
                rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
        except (OSError, ValueError, IndexError):
            pass
        return {"cpu_percent": percent, "rss_mb": rss}


class ResourceSampler:
    """Sample tegrastats and process CPU/RSS from :meth:`start` to :meth:`stop`; ``samples`` holds dicts with ``t_s``."""

    def __init__(self, interval_s: float = 0.2, tegrastats: str = "tegrastats") -> None:
        self.interval_s = interval_s
        self.tegrastats = shutil.which(tegrastats)
        self.note = None if self.tegrastats else NO_TEGRASTATS
        self.samples: List[Dict[str, Any]] = []
        self.power: List[Dict[str, Any]] = []
        self._stop = threading.Event()
        self._threads: List[threading.Thread] = []
        self._proc: Optional[subprocess.Popen] = None
        self._t0 = 0.0
        self._cpu = _ProcessCpu()

    @property
    def source(self) -> str:
        return "tegrastats" if self.tegrastats else self._cpu.source

    def start(self) -> "ResourceSampler":
        self._t0 = time.monotonic()
        self._threads.append(threading.Thread(target=self._poll, name="emotrt-profile-cpu", daemon=True))
        if self.tegrastats:
            ms = str(max(10, int(self.interval_s * 1000)))
            try:
                self._proc = subprocess.Popen([self.tegrastats, "--interval", ms], stdout=subprocess.PIPE,
                                              stderr=subprocess.DEVNULL, universal_newlines=True, bufsize=1)
            except OSError as exc:
                self.note = "tegrastats could not start ({}): CPU figures only".format(exc)
                self.tegrastats = None
            else:
                self._threads.append(threading.Thread(target=self._read, name="emotrt-tegrastats", daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.samples.append(dict(self._cpu.sample(), t_s=time.monotonic() - self._t0))

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            sample = parse_line(line)
            if sample.total_power_mw is None and sample.ram_used_mb is None:
                continue
            self.power.append({"t_s": time.monotonic() - self._t0, "total_mw": sample.total_power_mw,
                               "rails_mw": sample.rails_mw, "gpu_percent": sample.gpu_percent,
                               "cpu_percent": sample.cpu_percent, "ram_used_mb": sample.ram_used_mb,
                               "temperatures_c": sample.temperatures_c})

    def stop(self) -> None:
        self._stop.set()
        self.samples.append(dict(self._cpu.sample(), t_s=time.monotonic() - self._t0))  # short runs get one too
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> "ResourceSampler":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def summary(self, audio_seconds: float, inferences: int, wall_seconds: float) -> Dict[str, Any]:
        """Average power, energy per audio second and per inference (tegrastats), CPU % and RSS."""
        cpu = [s["cpu_percent"] for s in self.samples if s.get("cpu_percent") is not None]
        rss = [s["rss_mb"] for s in self.samples if s.get("rss_mb") is not None]
        out: Dict[str, Any] = {
            "source": self.source, "note": self.note, "interval_s": self.interval_s,
            "process_cpu_percent_mean": sum(cpu) / len(cpu) if cpu else None,
            "process_cpu_percent_max": max(cpu) if cpu else None,
            "rss_mb_max": max(rss) if rss else None,
            "cpu_samples": self.samples,
            "power_samples": self.power,
            "average_power_mw": None, "energy_mj_per_audio_s": None, "energy_mj_per_inference": None,
        }
        watts = [p["total_mw"] for p in self.power if p.get("total_mw") is not None]
        if watts:
            average = sum(watts) / len(watts)
            energy_mj = average * wall_seconds  # mW x s = mJ
            out["average_power_mw"] = average
            out["energy_mj_per_audio_s"] = energy_mj / audio_seconds if audio_seconds else None
            out["energy_mj_per_inference"] = energy_mj / inferences if inferences else None
        return out
