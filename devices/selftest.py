"""``emotrt selftest BUNDLE``: every model, every precision, every backend here vs the FP32 references.

The bundle's ``testvectors/<model>.npz`` hold one call's inputs (``input.<name>``)
and the FP32 reference outputs (``output.<name>``) computed at export; export's
``testvectors/index.json`` may record the ``fp32_atol`` the graph met, which
widens every precision's absolute tolerance to at least that. FP32 rows pass
when every output is within ``atol + rtol * max|reference|`` (1e-4 level).
FP16/INT8 rows are held to what that precision cost on this graph when the
bundle was built (``testvectors/expected.json``, :mod:`emotrt.devices.expected`):
each output's max error must be within ``max(atol, 3 x measured)`` and an audio
output's SNR against the reference at least ``measured - 6 dB``. Bundles without
those figures fall back to the fixed ``atol + rtol * max|reference|`` table. A
model without test vectors is a skipped row. ONNX Runtime runs the FP32,
FP16 and INT8 graphs anywhere; TensorRT runs the bundle's plans when this device
has TensorRT and plans whose fingerprint matches it (never any other plan).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from emotrt.devices.expected import CEILING_FACTOR, deviation, limits, read_expected, read_vectors
from emotrt.runtime.backends import BACKENDS, load_engine
from emotrt.runtime.bundle_reader import Bundle
from emotrt.runtime.errors import BackendError, BundleError, FingerprintMismatchError
from emotrt.runtime.fingerprint import DeviceFingerprint, probe_device
from emotrt.runtime.precision_plan import PrecisionPlan


#: (atol, rtol) per precision; rtol scales with the largest reference magnitude
TOLERANCES: Dict[str, Tuple[float, float]] = {"fp32": (1e-4, 1e-4), "fp16": (1e-2, 1e-2), "int8": (6e-2, 6e-2)}


@dataclass(frozen=True)
class SelftestRow:
    """One model at one precision on one backend; the figures are those of its worst output."""

    model: str
    precision: str
    backend: str
    max_abs_error: Optional[float]
    limit: Optional[float]
    status: str  # pass | fail | skip
    detail: str = ""
    expected: Optional[float] = None  # max abs error measured at build (expected.json)
    snr_db: Optional[float] = None  # audio outputs only
    expected_snr_db: Optional[float] = None


@dataclass(frozen=True)
class OutputCheck:
    """One output against its reference: error, limit, and for audio outputs the SNR and its floor."""

    name: str
    error: float
    limit: float
    expected: Optional[float] = None
    snr_db: Optional[float] = None
    expected_snr_db: Optional[float] = None
    min_snr_db: Optional[float] = None
    problem: str = ""

    @property
    def ratio(self) -> float:
        return self.error / self.limit if self.limit > 0 else float("inf")


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
    return read_vectors(bundle.testvectors_dir, model)


def tolerance(bundle: Bundle, model: str, precision: str) -> Tuple[float, float]:
    """(atol, rtol) for ``model`` at ``precision``: the table, widened to export's recorded ``fp32_atol``."""
    atol, rtol = TOLERANCES[precision]
    index = bundle.testvectors_dir / "index.json"
    if index.is_file():
        recorded = json.loads(index.read_text()).get(model, {}).get("fp32_atol")
        if isinstance(recorded, (int, float)):
            atol = max(atol, float(recorded))
    return atol, rtol


def check_outputs(outputs: Dict[str, np.ndarray], reference: Dict[str, np.ndarray], atol: float, rtol: float,
                  expected: Optional[Mapping[str, Mapping[str, float]]] = None) -> List[OutputCheck]:
    """Every reference output checked; with ``expected`` (build-time figures per output) the limits follow them."""
    checks = []
    for name, ref in reference.items():
        if name not in outputs:
            checks.append(OutputCheck(name, float("inf"), atol, problem="missing output " + name))
            continue
        got = np.asarray(outputs[name], dtype=np.float64)
        if got.shape != ref.shape:
            checks.append(OutputCheck(name, float("inf"), atol,
                                      problem="{} shape {} != {}".format(name, got.shape, ref.shape)))
            continue
        measured = deviation(name, got, ref)
        figures = (expected or {}).get(name)
        table = atol + rtol * (float(np.max(np.abs(ref))) if ref.size else 0.0)
        if figures is None:
            limit, min_snr = table, None
        else:
            limit, min_snr = limits(atol, figures, ceiling=CEILING_FACTOR * table)
        problems = []
        if not np.isfinite(measured.max_abs_error) or measured.max_abs_error > limit:
            problems.append("{} max error {:.3g} > {:.3g}".format(name, measured.max_abs_error, limit))
        if min_snr is not None and (measured.snr_db is None or measured.snr_db < min_snr):
            problems.append("{} SNR {} dB < {:.1f} dB".format(
                name, "-" if measured.snr_db is None else "{:.1f}".format(measured.snr_db), min_snr))
        checks.append(OutputCheck(
            name, measured.max_abs_error, limit, None if figures is None else float(figures["max_abs_error"]),
            measured.snr_db, None if figures is None else figures.get("snr_db"), min_snr, "; ".join(problems)))
    return checks


def _expected(bundle: Bundle, model: str, precision: str) -> Optional[Mapping[str, Mapping[str, float]]]:
    """Build-time figures of ``model`` at ``precision``; None for FP32 (held to the strict rule) or when absent."""
    if precision == "fp32":
        return None
    return read_expected(bundle.testvectors_dir).get(model, {}).get(precision)


def _row(bundle: Bundle, model: str, precision: str, backend: str, path: str, feed: Dict[str, np.ndarray],
         reference: Dict[str, np.ndarray], **options: Any) -> SelftestRow:
    try:
        with load_engine(path, backend=backend, **options) as engine:
            outputs = engine.run(feed)
    except BackendError as exc:
        return SelftestRow(model, precision, backend, None, None, "fail", exc.message)
    atol, rtol = tolerance(bundle, model, precision)
    checks = check_outputs(outputs, reference, atol, rtol, _expected(bundle, model, precision))
    problems = [c.problem for c in checks if c.problem]
    worst = max(checks, key=lambda c: c.ratio)
    audio = next((c for c in checks if c.snr_db is not None or c.min_snr_db is not None), None)
    return SelftestRow(
        model, precision, backend, worst.error if np.isfinite(worst.error) else None, worst.limit,
        "fail" if problems else "pass", "; ".join(problems), worst.expected,
        audio.snr_db if audio else None, audio.expected_snr_db if audio else None,
    )


def calibration_mismatch(bundle: Bundle, model: str) -> Optional[str]:
    """Why ``model``'s FP16/INT8 artefacts are not the calibration of its FP32 graph, or None when they are."""
    entry = bundle.manifest.models[model]
    if not entry.precision_plan:
        return None
    recorded = PrecisionPlan.read(bundle.root / entry.precision_plan).onnx_sha256
    graph = entry.variants["fp32"]
    actual = bundle.manifest.files.get(graph)
    if recorded and actual and recorded != actual:
        return "{} was calibrated from a graph with sha256 {}..., not {} ({}...): rebuild the bundle from a matching " \
               "emotrt calibrate".format(entry.precision_plan, recorded[:12], graph, actual[:12])
    return None


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
        foreign = calibration_mismatch(bundle, model)
        for precision in bundle.precisions(model):
            if foreign is not None and precision != "fp32":
                report.rows.append(SelftestRow(model, precision, "*", None, None, "fail", foreign))
                continue
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
    return _row(bundle, model, precision, "tensorrt", str(bundle.plan_path(entry)), feed, reference,
                contract=bundle.contract(model))
