"""Device probe and engine fingerprints (DESIGN.md §2.4), torch-free and Python 3.8-valid.

The probe reads what a TensorRT plan depends on from the machine it runs on:
the L4T release (first line of ``/etc/nv_tegra_release``), the board
(``/proc/device-tree/model``), the TensorRT and CUDA versions and the GPU's
compute capability (through ``ctypes`` on libnvinfer / libcudart / libcuda, so
no Python binding is needed), and the Python version.

An :class:`EngineFingerprint` adds what the build chose (ONNX hash, precision
recipe, shapes, DLA core, optimisation level, flags). A plan is loaded only when
every field matches; otherwise :func:`check_match` names the first differing
field and the command that rebuilds.
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import os
import platform
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from emotrt.runtime.errors import BundleError, FingerprintMismatchError
from emotrt.runtime.trt_version import decode_version_code, installed_version, normalise_version

log = logging.getLogger(__name__)

#: the engine-fingerprint fields of docs/contracts.md, in comparison order
ENGINE_FIELDS = (
    "tensorrt",
    "compute_capability",
    "l4t",
    "cuda",
    "onnx_sha256",
    "precision_recipe",
    "shapes",
    "dla_core",
    "opt_level",
    "flags",
)
#: the fields the probe supplies (the device half of an engine fingerprint, plus the board)
DEVICE_FIELDS = ("tensorrt", "compute_capability", "l4t", "cuda", "board")

_L4T_LINE = re.compile(r"R(\d+)\s*\(release\),\s*REVISION:\s*(\d+)(?:\.(\d+))?")
# CUDA driver API attribute ids (cuda.h, CUdevice_attribute):
# CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75, ..._MINOR = 76.
_CC_MAJOR, _CC_MINOR = 75, 76


@dataclass(frozen=True)
class DeviceFingerprint:
    """What this machine offers a TensorRT plan; ``None`` marks a part that is absent."""

    tensorrt: Optional[str] = None
    compute_capability: Optional[str] = None
    l4t: Optional[str] = None
    cuda: Optional[str] = None
    board: Optional[str] = None
    python: str = field(default_factory=platform.python_version)

    @property
    def is_jetson(self) -> bool:
        return self.l4t is not None

    @property
    def can_build(self) -> bool:
        """True when TensorRT and a GPU are both present."""
        return self.tensorrt is not None and self.compute_capability is not None

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def missing(self) -> List[str]:
        """Names of the device fields the probe could not find."""
        return [name for name in DEVICE_FIELDS if getattr(self, name) is None]


@dataclass(frozen=True)
class EngineFingerprint:
    """Everything one plan depends on (docs/contracts.md); ``fingerprint_id`` names its folder."""

    tensorrt: str
    compute_capability: str
    l4t: Optional[str]
    cuda: Optional[str]
    onnx_sha256: str
    precision_recipe: str
    shapes: Dict[str, Tuple[int, ...]]
    dla_core: Optional[int] = None
    opt_level: int = 3
    flags: Tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problems = []
        if not self.tensorrt:
            problems.append("tensorrt is empty")
        if not re.match(r"^\d+\.\d+$", str(self.compute_capability or "")):
            problems.append("compute_capability={!r} is not like '8.7'".format(self.compute_capability))
        if not re.match(r"^[0-9a-f]{64}$", str(self.onnx_sha256 or "")):
            problems.append("onnx_sha256 is not a sha256 hex digest")
        if self.dla_core is not None and self.dla_core < 0:
            problems.append("dla_core={} must be >= 0".format(self.dla_core))
        if problems:
            raise BundleError("invalid engine fingerprint: " + "; ".join(problems))
        # normalised, hashable, order-independent forms
        object.__setattr__(self, "tensorrt", normalise_version(self.tensorrt))
        object.__setattr__(self, "cuda", normalise_version(self.cuda, 2))
        object.__setattr__(self, "l4t", normalise_version(self.l4t))
        object.__setattr__(self, "shapes", {k: tuple(int(d) for d in v) for k, v in sorted(self.shapes.items())})
        object.__setattr__(self, "flags", tuple(sorted(self.flags)))

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON-able dict (shapes as lists)."""
        data = asdict(self)
        data["shapes"] = {k: list(v) for k, v in self.shapes.items()}
        data["flags"] = list(self.flags)
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "EngineFingerprint":
        """Parse a manifest entry; unknown or missing fields are a :class:`BundleError`."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        required = [f.name for f in fields(cls) if f.name not in ("dla_core", "opt_level", "flags")]
        missing = [n for n in required if n not in data]
        if unknown or missing:
            raise BundleError(
                "engine fingerprint has unknown fields {} / lacks {}".format(unknown or "none", missing or "none"),
                hint="rebuild the bundle with this emotrt: emotrt build",
            )
        values = dict(data)
        values["shapes"] = {k: tuple(v) for k, v in values["shapes"].items()}
        values["flags"] = tuple(values.get("flags", ()))
        return cls(**values)

    @property
    def fingerprint_id(self) -> str:
        """First 16 hex digits of the sha256 of the canonical JSON."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def trt_major(self) -> int:
        return int(self.tensorrt.split(".")[0])


def differences(expected: Any, found: Any, names: Sequence[str]) -> List[Tuple[str, Any, Any]]:
    """(field, expected, found) for every field in ``names`` whose values differ."""
    out = []
    for name in names:
        a, b = _comparable(name, getattr(expected, name)), _comparable(name, getattr(found, name))
        if a != b:
            out.append((name, getattr(expected, name), getattr(found, name)))
    return out


def _comparable(name: str, value: Any) -> Any:
    if name == "tensorrt":
        return normalise_version(value)
    if name == "cuda":
        return normalise_version(value, 2)
    if name == "l4t":
        return normalise_version(value)
    return value


def check_match(
    engine: EngineFingerprint,
    other: Any,
    rebuild: str,
    names: Sequence[str] = ("tensorrt", "compute_capability", "l4t", "cuda"),
) -> None:
    """Raise :class:`FingerprintMismatchError` naming the first differing field and the rebuild command.

    ``other`` is a :class:`DeviceFingerprint` (device half only, the default
    ``names``) or another :class:`EngineFingerprint` (pass ``ENGINE_FIELDS``).
    """
    diffs = differences(engine, other, names)
    if diffs:
        name, want, got = diffs[0]
        more = "" if len(diffs) == 1 else " (and {})".format(", ".join(d[0] for d in diffs[1:]))
        raise FingerprintMismatchError(
            "engine fingerprint mismatch: {} is {!r} in the plan but {!r} here{}; "
            "the plan will not be loaded".format(name, want, got, more),
            hint=rebuild,
        )


# ---------------------------------------------------------------------------- probe


def _read_text(path: str) -> Optional[str]:
    try:
        with open(path, "rb") as f:
            return f.read().replace(b"\x00", b"").decode("utf-8", "replace").strip()
    except OSError:
        return None


def read_l4t(root: str = "/") -> Optional[str]:
    """L4T release ``"36.4.0"`` from the first line of ``/etc/nv_tegra_release``, None off-Jetson."""
    text = _read_text(os.path.join(root, "etc/nv_tegra_release"))
    if not text:
        return None
    match = _L4T_LINE.search(text.splitlines()[0])
    if not match:
        log.warning("unrecognised /etc/nv_tegra_release first line: %r", text.splitlines()[0])
        return None
    return "{}.{}.{}".format(match.group(1), match.group(2), match.group(3) or "0")


def read_board(root: str = "/") -> Optional[str]:
    """Board name from ``/proc/device-tree/model`` (NUL-terminated), None when absent."""
    return _read_text(os.path.join(root, "proc/device-tree/model")) or None


Loader = Callable[[Sequence[str]], Optional[Any]]


def load_library(names: Sequence[str]) -> Optional[Any]:
    """The first of ``names`` that ``ctypes`` can open, else None."""
    for name in names:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


def probe_tensorrt(loader: Loader = load_library) -> Optional[str]:
    """TensorRT version from libnvinfer's ``getInferLibVersion()``, then the Python package."""
    lib = loader(("libnvinfer.so.11", "libnvinfer.so.10", "libnvinfer.so.8", "libnvinfer.so"))
    if lib is not None:
        try:
            lib.getInferLibVersion.restype = ctypes.c_int32
            return decode_version_code(int(lib.getInferLibVersion()))
        except AttributeError:
            log.debug("libnvinfer without getInferLibVersion")
    return installed_version()


def probe_cuda(loader: Loader = load_library) -> Optional[str]:
    """CUDA runtime version ``"12.6"`` from ``cudaRuntimeGetVersion`` (1000*major + 10*minor)."""
    lib = loader(("libcudart.so", "libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0"))
    if lib is None:
        return None
    value = ctypes.c_int(0)
    if lib.cudaRuntimeGetVersion(ctypes.byref(value)) != 0 or value.value <= 0:
        return None
    major, rest = divmod(value.value, 1000)
    return "{}.{}".format(major, rest // 10)


def probe_compute_capability(loader: Loader = load_library) -> Optional[str]:
    """``"8.7"`` for device 0 via the CUDA driver API (cuInit, cuDeviceGet, cuDeviceGetAttribute)."""
    lib = loader(("libcuda.so.1", "libcuda.so"))
    if lib is None or lib.cuInit(0) != 0:
        return None
    device = ctypes.c_int(0)
    major, minor = ctypes.c_int(0), ctypes.c_int(0)
    if lib.cuDeviceGet(ctypes.byref(device), 0) != 0:
        return None
    if lib.cuDeviceGetAttribute(ctypes.byref(major), _CC_MAJOR, device) != 0:
        return None
    if lib.cuDeviceGetAttribute(ctypes.byref(minor), _CC_MINOR, device) != 0:
        return None
    return "{}.{}".format(major.value, minor.value)


def probe_device(root: str = "/", loader: Loader = load_library) -> DeviceFingerprint:
    """Probe this machine; absent parts are None, nothing raises."""
    found = DeviceFingerprint(
        tensorrt=probe_tensorrt(loader),
        compute_capability=probe_compute_capability(loader),
        l4t=read_l4t(root),
        cuda=probe_cuda(loader),
        board=read_board(root),
    )
    log.info("device fingerprint: %s", found)
    return found
