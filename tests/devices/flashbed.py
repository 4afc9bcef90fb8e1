"""Bundles and devices for the flash tests: tiny bundles with an enrolled speaker, and the device venv.

The device venv: building one per loopback device from scratch would cost minutes, so the first
device of a session is flashed through the real path (a wheel of this emotrt built on the
workstation, ``python -m venv --system-site-packages`` on the device, ``pip install`` from
``--wheelhouse``) and the other devices start with ``ROOT/venv`` linked to that venv, so their
flashes find emotrt at the right version and keep it. The device's "system site-packages" (on a
Jetson: JetPack's numpy, TensorRT, ...) are the workstation venv's, visible through PYTHONPATH,
together with a ``tensorrt`` module that is the project's TensorRT test double (tests/trt_double.py),
so engine builds on the device run the real builder code against it.
"""
from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path
from typing import Dict, Optional

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def make_bundle(out: Path, export_dir: Path, calibration_dir: Optional[Path] = None, speaker: Optional[str] = "alice",
                seed: int = 0, env_dir: Optional[Path] = None) -> Path:
    """A bundle of the tiny graphs with one enrolled speaker (none when ``speaker`` is None)."""
    from emotrt.devices.bundle_writer import collect_models, write_bundle
    from emotrt.runtime.bundle_reader import Bundle
    from emotrt.runtime.tables import VectorTable

    models = collect_models(export_dir, calibration_dir)
    speakers = None
    if speaker is not None:
        speakers = out.parent / (out.name + ".speakers")
        dim = models["tse_step"].contract.spk_dim
        VectorTable(speakers, kind="speaker", dim=dim).add(speaker, np.random.default_rng(seed).normal(size=dim), replace=True)
    write_bundle(out, models, env_dir or export_dir / "env", export_dir / "testvectors", speakers_dir=speakers,
                 targets=["orin-nano-8gb"], force=True)
    with Bundle.open(out):
        pass
    return out


def make_bundles(work: Path, export_dir: Path, calibration_dir: Path, names=("A", "B", "C", "N")) -> Dict[str, Path]:
    """The bundles the delivery tests switch between: A (base), B (ser changed: graphs + test vector),
    C (environment table changed), N (no speaker: fails its health check)."""
    from emotrt.runtime.tables import VectorTable
    from tests.fixtures.tiny_graphs import write_calibration_dir, write_export_dir

    out = {"A": make_bundle(work / "A", export_dir, calibration_dir)}
    if "B" in names:
        other_exp = write_export_dir(work / "exp1", seed=1)
        other_cal = write_calibration_dir(work / "cal1", seed=1, models=("ser",))
        exp_b = Path(shutil.copytree(str(export_dir), str(work / "expB")))
        cal_b = Path(shutil.copytree(str(calibration_dir), str(work / "calB")))
        shutil.copy(str(other_exp / "ser.onnx"), str(exp_b / "ser.onnx"))
        shutil.copy(str(other_exp / "testvectors" / "ser.npz"), str(exp_b / "testvectors" / "ser.npz"))
        for name in ("ser.int8.onnx", "ser.fp16.onnx", "ser.precision.json"):  # the plan records its source graph
            shutil.copy(str(other_cal / name), str(cal_b / name))
        out["B"] = make_bundle(work / "B", exp_b, cal_b)
    env_c = Path(shutil.copytree(str(export_dir / "env"), str(work / "envC")))
    table = VectorTable(env_c, kind="environment")
    table.add("quiet_office", table.get("busy_cafe") * 0.5, descriptions=["a quiet office"])
    out["C"] = make_bundle(work / "C", export_dir, calibration_dir, env_dir=env_c)
    env_n = Path(shutil.copytree(str(export_dir / "env"), str(work / "envN")))
    VectorTable(env_n, kind="environment").add("library", table.get("busy_cafe") * 0.1, descriptions=["a library"])
    # speakers/ lies outside the manifest (devices enroll their own), so N differs in its table too: its own id
    out["N"] = make_bundle(work / "N", export_dir, calibration_dir, speaker=None, env_dir=env_n)
    return {k: v for k, v in out.items() if k in names}


def trt_shim(base: Path, version: str = "10.3.0") -> Path:
    """A directory whose ``tensorrt`` module is the project's TensorRT double (for PYTHONPATH on the bed)."""
    shim = base / "trt-shim"
    shim.mkdir(parents=True, exist_ok=True)
    (shim / "tensorrt.py").write_text(
        "import sys\nsys.path.insert(0, {!r})\nfrom tests.trt_double import make_tensorrt\n"
        "sys.modules[__name__] = make_tensorrt({!r})\n".format(str(REPO), version))
    return shim


def device_pythonpath(base: Path) -> str:
    """PYTHONPATH of the bed's sshd sessions: the TensorRT double, then the workstation's site-packages."""
    return os.pathsep.join([str(trt_shim(base)), sysconfig.get_paths()["purelib"]])


def system_python() -> str:
    """The interpreter the workstation venv was made from: the bed's "device system Python"."""
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


def link_venv(root: Path, venv: Path) -> None:
    """Give a device the session's venv (the fast path; see the module docstring)."""
    (root / "venvs").mkdir(parents=True, exist_ok=True)
    link = root / "venvs" / venv.name
    if not link.exists():
        os.symlink(str(venv), str(link))
    tmp = root / "venv.new"
    if os.path.lexists(str(tmp)):
        tmp.unlink()
    os.symlink(os.path.join("venvs", venv.name), str(tmp))
    os.replace(str(tmp), str(root / "venv"))


def copy_bundle(src: Path, dst: Path) -> Path:
    return Path(shutil.copytree(str(src), str(dst)))
