"""Everything that knows a TensorRT version: parsing, the 8.5 floor, cache version codes, the import.

The bottom layer (runtime may import no other stage), so the runtime's TensorRT backend, the
device probe, ``emotrt doctor``, the engine build (``emotrt.devices.trt_compat``, which keeps
the build-side API differences) and the calibration caches all ask here.

- The floor: 8.5 is the first release with the name-based tensor API (``execute_async_v3``) the
  runtime uses, and the TensorRT of JetPack 5.1, the oldest JetPack emotrt supports.
- Version codes: libnvinfer's ``getInferLibVersion()`` and the INT8 calibration cache header
  (``TRT-<code>-<Algorithm>``, REFERENCE.md) both encode a version as major*1000+minor*100+patch
  up to 9 and major*10000+minor*100+patch from 10.
- Implicit INT8 (calibration caches) exists up to 10.x; TensorRT 11 reads Q/DQ graphs only.

    import_tensorrt()                 # the module, or DependencyError saying how to get a usable one
    check_supported("8.4.3")          # DependencyError: too old
    version_code("10.3.0"), decode_version_code(100300)   # 100300, '10.3.0'
"""
from __future__ import annotations

import re
from typing import Any, Optional, Tuple

from emotrt.runtime.errors import DependencyError

MIN_VERSION = (8, 5)
#: the first major without implicit INT8 (no calibrators, no caches)
NO_CALIBRATOR_MAJOR = 11
#: calibration cache header algorithms, and the TensorRT calibrator class that reads each
CACHE_CALIBRATORS = {
    "EntropyCalibration2": "IInt8EntropyCalibrator2",
    "EntropyCalibration": "IInt8EntropyCalibrator",
    "MinMaxCalibration": "IInt8MinMaxCalibrator",
    "LegacyCalibration": "IInt8LegacyCalibrator",
}
_CACHE_HEADER = re.compile(r"^TRT-(\d+)-(\w+)$")
IMPORT_HINT = ("on a Jetson: sudo apt install python3-libnvinfer and create the venv with --system-site-packages "
               "(TensorRT is never a pip requirement), or pass --backend onnxruntime")
FLOOR_HINT = "flash JetPack 5.1 or newer (TensorRT {}.{}+), or pass --backend onnxruntime".format(*MIN_VERSION)


def normalise_version(version: Optional[str], parts: int = 3) -> Optional[str]:
    """``"10.3.0.30"`` -> ``"10.3.0"``; ``"12.6"`` -> ``"12.6.0"`` (None stays None). Also used for CUDA and L4T."""
    if not version:
        return None
    numbers = re.findall(r"\d+", str(version))[:parts]
    numbers += ["0"] * (parts - len(numbers))
    return ".".join(str(int(n)) for n in numbers)


def parse_version(version: str) -> Tuple[int, int, int]:
    """``"10.3.0.30"`` -> (10, 3, 0); ValueError when it holds no number."""
    norm = normalise_version(version)
    if norm is None or not re.search(r"\d", str(version)):
        raise ValueError("{!r} is not a TensorRT version".format(version))
    major, minor, patch = (int(x) for x in norm.split("."))
    return major, minor, patch


def is_supported(version: str) -> bool:
    """Whether emotrt runs and builds on TensorRT ``version`` (8.5 or newer)."""
    return parse_version(version)[:2] >= MIN_VERSION


def check_supported(version: str) -> str:
    """The normalised ``version``, or :class:`DependencyError` when it is older than the floor."""
    if not is_supported(version):
        raise DependencyError(
            "TensorRT {} is too old: emotrt needs {}.{}+ (execute_async_v3)".format(version, *MIN_VERSION),
            hint=FLOOR_HINT,
        )
    return normalise_version(version) or version


def has_calibrator(version: str) -> bool:
    """Whether TensorRT ``version`` has implicit INT8 (calibrators and calibration caches)."""
    return parse_version(version)[0] < NO_CALIBRATOR_MAJOR


def version_code(version: str) -> int:
    """The number in a calibration cache header and ``getInferLibVersion()``: 8.5.2 -> 8502, 10.3.0 -> 100300."""
    major, minor, patch = parse_version(version)
    return major * (10000 if major >= 10 else 1000) + minor * 100 + patch


def decode_version_code(code: int) -> str:
    """Inverse of :func:`version_code`: 8502 -> '8.5.2', 100300 -> '10.3.0'."""
    major, rest = divmod(int(code), 10000 if code >= 100000 else 1000)
    minor, patch = divmod(rest, 100)
    return "{}.{}.{}".format(major, minor, patch)


def cache_header(code: int, algorithm: str) -> str:
    """The first line of a calibration cache."""
    return "TRT-{}-{}".format(code, algorithm)


def parse_cache_header(line: str) -> Optional[Tuple[int, str]]:
    """(version code, algorithm) of a calibration cache's first line, None when it is not one."""
    match = _CACHE_HEADER.match(line.strip())
    if not match or match.group(2) not in CACHE_CALIBRATORS:
        return None
    return int(match.group(1)), match.group(2)


def import_tensorrt() -> Any:
    """The ``tensorrt`` module, checked to be 8.5 or newer; else :class:`DependencyError` with the fix."""
    try:
        import tensorrt
    except Exception as exc:  # ImportError, or a broken system package raising anything else
        raise DependencyError("TensorRT's Python package is not importable ({})".format(exc), hint=IMPORT_HINT) from exc
    check_supported(tensorrt.__version__)
    return tensorrt


def installed_version() -> Optional[str]:
    """The importable ``tensorrt`` package's version (normalised), None when it does not import."""
    try:
        import tensorrt
    except Exception:
        return None
    return normalise_version(getattr(tensorrt, "__version__", None))
