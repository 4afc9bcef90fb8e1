"""``emotrt selftest BUNDLE``: every model, every precision, every backend here vs the FP32 references.

The bundle's ``testvectors/<model>.npz`` hold one call's inputs (``input.<name>``)
and the FP32 reference outputs (``output.<name>``) computed at export; export's
``testvectors/index.json`` may record the ``fp32_atol`` the graph met, which
widens every precision's absolute tolerance to at least that. Each
(model, precision, backend) row passes when every output is within
``atol + rtol * max|reference|`` for its precision; a model without test
vectors is a skipped row. ONNX Runtime runs the FP32,
FP16 and INT8 graphs anywhere; TensorRT runs the bundle's plans when this device
has TensorRT and plans whose fingerprint matches it (never any other plan).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from emotrt.runtime.backends import BACKENDS, load_engine
from emotrt.runtime.bundle import Bundle
from emotrt.runtime.errors import BackendError, BundleError, FingerprintMismatchError
from emotrt.runtime.fingerprint import DeviceFingerprint, probe_device


#: (atol, rtol) per precision; rtol scales with the largest reference magnitude
TOLERANCES: Dict[str, Tuple[float, float]] = {"fp32": (1e-4, 1e-4), "fp16": (1e-2, 1e-2), "int8": (6e-2, 6e-2)}


@dataclass(frozen=True)
class SelftestRow:
    """One model at one precision on one backend."""

    model: str
    precision: str
    backend: str
    max_abs_error: Optional[float]
    limit: Optional[float]
    status: str  # pass | fail | skip
    detail: str = ""


@dataclass
class SelftestReport:
    """All rows and the verdict: passed when nothing failed and something ran."""

    rows: List[SelftestRow] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        ran = [r for r in self.rows if r.status != "skip"]
        return bool(ran) and all(r.status == "pass" for r in ran)

    @property
    def verdict(self) -> str:
        counts = {s: sum(r.status == s for r in self.rows) for s in ("pass", "fail", "skip")}
        word = "PASS" if self.passed else "FAIL"
        return "{}: {pass} passed, {fail} failed, {skip} skipped".format(word, **counts)


def load_testvector(bundle: Bundle, model: str) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]:
    """(feed, FP32 reference outputs) of ``model``."""
    path = bundle.testvectors_dir / (model + ".npz")
    if not path.is_file():
        raise BundleError(
            "bundle has no test vectors for {} (expected {})".format(model, path),
            hint="re-export (emotrt export writes testvectors/) and rebuild the bundle",
        )
    with np.load(str(path)) as data:
        feed = {k[len("input."):]: data[k] for k in data.files if k.startswith("input.")}
        ref = {k[len("output."):]: data[k] for k in data.files if k.startswith("output.")}
    if not feed or not ref:
        raise BundleError("{} holds no input.*/output.* arrays".format(path), hint="re-export the model")
    return feed, ref


def tolerance(bundle: Bundle, model: str, precision: str) -> Tuple[float, float]:
    """(atol, rtol) for ``model`` at ``precision``: the table, widened to export's recorded ``fp32_atol``."""
    atol, rtol = TOLERANCES[precision]
    index = bundle.testvectors_dir / "index.json"
    if index.is_file():
        recorded = json.loads(index.read_text()).get(model, {}).get("fp32_atol")
        if isinstance(recorded, (int, float)):
            atol = max(atol, float(recorded))
    return atol, rtol


def compare(outputs: Dict[str, np.ndarray], reference: Dict[str, np.ndarray], atol: float,
            rtol: float) -> Tuple[float, float, List[str]]:
    """(worst error, its limit, problems) of ``outputs`` against ``reference``."""
    worst, worst_limit, problems = 0.0, atol, []
    for name, ref in reference.items():
        if name not in outputs:
            problems.append("missing output " + name)
            continue
        got = np.asarray(outputs[name], dtype=np.float64)
        if got.shape != ref.shape:
            problems.append("{} shape {} != {}".format(name, got.shape, ref.shape))
            continue
        error = float(np.max(np.abs(got - ref))) if ref.size else 0.0
        limit = atol + rtol * float(np.max(np.abs(ref))) if ref.size else atol
        if not np.isfinite(error) or error > limit:
            problems.append("{} max error {:.3g} > {:.3g}".format(name, error, limit))
        if error / limit >= worst / worst_limit:
            worst, worst_limit = error, limit
    return worst, worst_limit, problems


def _row(bundle: Bundle, model: str, precision: str, backend: str, path: str, feed: Dict[str, np.ndarray],
         reference: Dict[str, np.ndarray], **options: object) -> SelftestRow:
    try:
        with load_engine(path, backend=backend, **options) as engine:
            outputs = engine.run(feed)
    except BackendError as exc:
        return SelftestRow(model, precision, backend, None, None, "fail", exc.message)
    error, limit, problems = compare(outputs, reference, *tolerance(bundle, model, precision))
    return SelftestRow(model, precision, backend, error, limit, "fail" if problems else "pass", "; ".join(problems))


def tensorrt_unavailable(device: DeviceFingerprint) -> Optional[str]:
    """Why TensorRT plans cannot run here, or None when they can."""
    if "tensorrt" not in BACKENDS:
        return "this emotrt has no TensorRT backend"
    if not device.can_build:
        return "no {} here".format("TensorRT" if device.tensorrt is None else "CUDA GPU")
    return None


def run_selftest(bundle: Bundle, backends: Optional[Sequence[str]] = None,
                 device: Optional[DeviceFingerprint] = None) -> SelftestReport:
    """Run every model and precision of ``bundle`` on ``backends`` (default: ONNX Runtime and TensorRT)."""
    backends = list(backends) if backends else ["onnxruntime", "tensorrt"]
    unknown = [b for b in backends if b not in ("onnxruntime", "tensorrt")]
    if unknown:
        raise BackendError("unknown backend(s) {}; expected onnxruntime, tensorrt".format(", ".join(unknown)))
    device = device if device is not None else probe_device()
    trt_reason = tensorrt_unavailable(device) if "tensorrt" in backends else None
    report = SelftestReport()
    for model in bundle.models:
        try:
            feed, reference = load_testvector(bundle, model)
        except BundleError as exc:
            report.rows.append(SelftestRow(model, "*", "*", None, None, "skip", exc.message))
            continue
        for precision in bundle.precisions(model):
            if "onnxruntime" in backends:
                path = str(bundle.model_path(model, precision))
                report.rows.append(_row(bundle, model, precision, "onnxruntime", path, feed, reference))
            if "tensorrt" in backends and trt_reason is None:
                report.rows.append(tensorrt_row(bundle, model, precision, device, feed, reference))
    if trt_reason is not None:
        report.rows.append(SelftestRow("*", "*", "tensorrt", None, None, "skip", trt_reason))
    return report


def tensorrt_row(bundle: Bundle, model: str, precision: str, device: DeviceFingerprint, feed: Dict[str, np.ndarray],
                 reference: Dict[str, np.ndarray]) -> SelftestRow:
    """One TensorRT row: only a plan whose fingerprint matches ``device`` and whose fixed shapes fit the vector runs."""
    try:
        entry = bundle.engine_for(model, precision, device)
    except FingerprintMismatchError as exc:
        return SelftestRow(model, precision, "tensorrt", None, None, "fail", str(exc))
    except BundleError as exc:
        return SelftestRow(model, precision, "tensorrt", None, None, "skip", str(exc))
    misfits = ["{} {} (plan) vs {} (test vector)".format(n, tuple(dims), feed[n].shape)
               for n, dims in entry.fingerprint.shapes.items() if n in feed and tuple(feed[n].shape) != tuple(dims)]
    if misfits:  # one fixed-shape profile per plan: e.g. enrollment built for --enroll-seconds of audio
        return SelftestRow(model, precision, "tensorrt", None, None, "skip", "fixed shapes differ: " + "; ".join(misfits))
    return _row(bundle, model, precision, "tensorrt", str(bundle.root / entry.plan), feed, reference,
                contract=bundle.contract(model))
