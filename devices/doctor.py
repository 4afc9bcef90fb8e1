"""``emotrt doctor``: what this machine has for each role, with the command that fixes what is missing.

Torch-free and import-light: versions come from package metadata, and only the
packages the device itself uses (onnxruntime, tensorrt, pycuda, sounddevice) are
imported, each inside its own check.
"""
from __future__ import annotations

import ctypes
import importlib
import os
import platform
import shutil
import sys
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

from emotrt.runtime import trt_version
from emotrt.runtime.errors import DependencyError

ROLES = ("workstation", "device")
OK, WARN, MISSING = "ok", "warn", "missing"


@dataclass(frozen=True)
class Check:
    """One line of the report: ``required`` roles make ``--strict`` fail when the verdict is not ok."""

    name: str
    verdict: str
    detail: str
    fix: str = ""
    required: Tuple[str, ...] = ()


def _dist_version(name: str) -> Optional[str]:
    try:
        from importlib.metadata import version
    except ImportError:  # pragma: no cover - Python < 3.8 is unsupported anyway
        return None
    try:
        return version(name)
    except Exception:
        return None


def _package(name: str, dist: str, fix: str, required: Tuple[str, ...]) -> Check:
    found = _dist_version(dist)
    if found:
        return Check(name, OK, found, required=required)
    return Check(name, MISSING, "not installed", fix, required)


def check_python() -> Check:
    version = platform.python_version()
    if sys.version_info < (3, 8):
        return Check("python", MISSING, version + " (emotrt needs 3.8+)", "use JetPack 5+ or Python 3.8+", ROLES)
    if sys.version_info < (3, 10):
        return Check("python", WARN, version + " (device side only; the workstation needs 3.10+)",
                     "use Python 3.10+ for training and export")
    return Check("python", OK, version, required=ROLES)


def check_onnxruntime() -> Check:
    try:
        ort = importlib.import_module("onnxruntime")
    except ImportError as exc:
        return Check("onnxruntime", MISSING, str(exc), "pip install 'emotrt[device]'", ROLES)
    providers = ", ".join(p.replace("ExecutionProvider", "") for p in ort.get_available_providers())
    return Check("onnxruntime", OK, "{} (providers: {})".format(ort.__version__, providers), required=ROLES)


def check_tensorrt() -> Check:
    """TensorRT as the runtime sees it: importable and at least the floor (``trt_version.import_tensorrt``)."""
    try:
        trt = trt_version.import_tensorrt()
    except DependencyError as exc:
        return Check("tensorrt", MISSING, "{}; the ONNX Runtime backend is used".format(exc.message), exc.hint)
    return Check("tensorrt", OK, trt.__version__)


def check_pycuda() -> Check:
    try:
        pycuda = importlib.import_module("pycuda")
    except Exception as exc:
        return Check("pycuda", MISSING, "not importable ({})".format(exc),
                     "on a Jetson: pip install pycuda (needs CUDA's nvcc and libcuda to build)")
    return Check("pycuda", OK, getattr(pycuda, "VERSION_TEXT", "installed"))


def check_cuda_device() -> Check:
    for lib in ("libcuda.so.1", "libcuda.so"):
        try:
            cuda = ctypes.CDLL(lib)
            break
        except OSError:
            cuda = None
    if cuda is None:
        return Check("cuda device", WARN, "no CUDA driver (libcuda not found): no GPU here, inference runs on the CPU")
    count = ctypes.c_int(0)
    status = cuda.cuInit(0)
    if status == 0:
        status = cuda.cuDeviceGetCount(ctypes.byref(count))
    if status != 0 or count.value == 0:
        return Check("cuda device", WARN, "CUDA driver present but no usable GPU (CUresult {})".format(status))
    return Check("cuda device", OK, "{} device(s)".format(count.value))


def check_jetson(root: str = "/") -> Check:
    from emotrt.devices.profiles import match_device
    from emotrt.runtime.fingerprint import probe_device

    device = probe_device(root=root)
    if not device.is_jetson:
        return Check("jetson", WARN, "not a Jetson (no /etc/nv_tegra_release): workstation mode")
    profiles = ", ".join(p.id for p in match_device(device)) or "no matching profile (see `emotrt devices`)"
    return Check("jetson", OK, "{} (L4T {}, TensorRT {}, GPU sm {}, CUDA {}) -> {}".format(
        device.board or "unknown board", device.l4t, device.tensorrt or "none", device.compute_capability or "none",
        device.cuda or "none", profiles))


def check_audio_inputs() -> Check:
    try:
        sd = importlib.import_module("sounddevice")
    except OSError as exc:
        return Check("audio inputs", MISSING, "PortAudio library not found ({})".format(exc),
                     "sudo apt-get install libportaudio2")
    except ImportError:
        return Check("audio inputs", MISSING, "sounddevice not installed", "pip install 'emotrt[audio]'")
    try:
        inputs = [d["name"] for d in sd.query_devices() if d["max_input_channels"] > 0]
    except Exception as exc:
        return Check("audio inputs", WARN, "cannot query devices ({})".format(exc))
    if not inputs:
        return Check("audio inputs", WARN, "no input device (file and stdin input still work)",
                     "plug in a microphone; `emotrt audio-devices` lists what PortAudio sees")
    return Check("audio inputs", OK, "{}: {}".format(len(inputs), ", ".join(inputs[:4])))


def check_espeak() -> Check:
    path = shutil.which("espeak-ng")
    if path:
        return Check("espeak-ng", OK, path, required=("workstation",))
    return Check("espeak-ng", MISSING, "not on PATH (needed by `emotrt data synth`)",
                 "sudo apt-get install espeak-ng sox", ("workstation",))


def check_disk(path: str = ".") -> Check:
    free = shutil.disk_usage(path).free / 2 ** 30
    if free < 2:
        return Check("free disk", WARN, "{:.1f} GiB free at {}".format(free, os.path.abspath(path)),
                     "free space: engines, corpora and venvs need several GiB")
    return Check("free disk", OK, "{:.1f} GiB free".format(free))


def _workstation_packages() -> List[Check]:
    fix = "make setup  (or: pip install 'emotrt[workstation]')"
    req = ("workstation",)
    return [_package("torch", "torch", fix, req), _package("onnx", "onnx", fix, req)]


CHECKS: List[Callable[[], object]] = [
    check_python,
    lambda: Check("emotrt", OK, _dist_version("emotrt") or "source tree", required=ROLES),
    _workstation_packages,
    check_onnxruntime,
    check_tensorrt,
    check_pycuda,
    check_cuda_device,
    check_jetson,
    check_audio_inputs,
    check_espeak,
    check_disk,
]


def run_checks() -> List[Check]:
    """Every check, in report order."""
    out: List[Check] = []
    for check in CHECKS:
        result = check()
        out.extend(result if isinstance(result, list) else [result])
    return out


def failures(checks: List[Check], role: str) -> List[Check]:
    """The checks required for ``role`` that are not ok."""
    return [c for c in checks if role in c.required and c.verdict != OK]
