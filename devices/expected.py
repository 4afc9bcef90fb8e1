"""What FP16 and INT8 cost on each graph: measured at build with ONNX Runtime, held against on the device.

``emotrt build`` runs every reduced-precision variant (``<model>.fp16.onnx``,
``<model>.int8.onnx``) on the bundle's test vectors and writes, per model x
precision x output, the deviation from the FP32 reference into
``testvectors/expected.json`` (hashed in the manifest like every file)::

    {"schema": 1, "backend": "onnxruntime <version>",
     "models": {"tse_step": {"int8": {"audio_out": {"max_abs_error": 1.39, "snr_db": 21.4}}}}}

``snr_db`` is recorded for audio outputs only (``audio_out``, docs/contracts.md).
``emotrt selftest`` then holds a row to these figures (see :func:`limits`): an
INT8 engine on the device may cost what INT8 costs on this graph, not more.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np

from emotrt.runtime.errors import BundleError
from emotrt.runtime.manifest import ModelEntry
from emotrt.runtime.atomic import atomic_write

log = logging.getLogger(__name__)

EXPECTED = "expected.json"
SCHEMA = 1
AUDIO_OUTPUTS = ("audio_out",)
#: an output identical to its reference has infinite SNR; JSON has no infinity, so it is recorded as this
SNR_CAP_DB = 120.0
#: selftest margins: error <= max(base atol, ERROR_FACTOR * measured), SNR >= measured - SNR_MARGIN_DB
ERROR_FACTOR = 3.0
SNR_MARGIN_DB = 6.0
#: ...but never beyond what no build figure can widen: CEILING_FACTOR x the fixed table tolerance
#: (atol + rtol * max|reference|) and an audio SNR of MIN_AUDIO_SNR_DB. A build-time figure measured
#: against a calibration made for another graph is as wrong as the engine, and must not excuse it.
CEILING_FACTOR = 10.0
MIN_AUDIO_SNR_DB = 10.0

Vectors = Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]


@dataclass(frozen=True)
class Deviation:
    """How far one output is from its FP32 reference."""

    max_abs_error: float
    snr_db: Optional[float] = None  # audio outputs only

    def to_dict(self) -> Dict[str, float]:
        data = {"max_abs_error": self.max_abs_error}
        if self.snr_db is not None:
            data["snr_db"] = self.snr_db
        return data


def read_vectors(testvectors_dir: Path, model: str) -> Vectors:
    """(feed, FP32 reference outputs) of ``model`` from ``testvectors/<model>.npz``."""
    path = Path(testvectors_dir) / (model + ".npz")
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


def snr_db(output: np.ndarray, reference: np.ndarray) -> Optional[float]:
    """SNR of ``output`` against ``reference`` in dB (capped at :data:`SNR_CAP_DB`); None for a silent reference."""
    reference = np.asarray(reference, dtype=np.float64)
    signal = float(np.sum(reference ** 2))
    if signal == 0.0:
        return None
    noise = float(np.sum((np.asarray(output, dtype=np.float64) - reference) ** 2))
    if not np.isfinite(noise):
        return -SNR_CAP_DB
    return SNR_CAP_DB if noise == 0.0 else min(SNR_CAP_DB, 10.0 * float(np.log10(signal / noise)))


def deviation(name: str, output: np.ndarray, reference: np.ndarray) -> Deviation:
    """Max abs error of one output (and its SNR when ``name`` is an audio output)."""
    got = np.asarray(output, dtype=np.float64)
    error = float(np.max(np.abs(got - reference))) if reference.size else 0.0
    return Deviation(error, snr_db(got, reference) if name in AUDIO_OUTPUTS else None)


def measure_model(testvectors_dir: Path, model: str, variants: Mapping[str, Path]) -> Dict[str, Dict[str, Dict[str, float]]]:
    """{precision: {output: deviation}} of every FP16/INT8 variant of ``model`` on ONNX Runtime."""
    from emotrt.runtime.backends import load_engine

    feed, reference = read_vectors(testvectors_dir, model)
    measured = {}
    for precision, path in sorted(variants.items()):
        if precision == "fp32":
            continue
        with load_engine(str(path), backend="onnxruntime") as engine:
            outputs = engine.run(feed)
        measured[precision] = {n: deviation(n, outputs[n], ref).to_dict() for n, ref in sorted(reference.items())}
    return measured


def write_expected(root: Path, models: Mapping[str, ModelEntry]) -> Optional[Path]:
    """Measure every model of a bundle section (manifest ``models``) and write ``testvectors/expected.json``.

    Models without test vectors or without FP16/INT8 variants are left out; returns
    None when nothing was measured.
    """
    import onnxruntime

    vectors = Path(root) / "testvectors"
    figures = {}
    for name, entry in sorted(models.items()):
        variants = {p: Path(root) / rel for p, rel in entry.variants.items()}
        if len(variants) < 2 or not (vectors / (name + ".npz")).is_file():
            continue
        figures[name] = measure_model(vectors, name, variants)
        log.info("expected deviations of %s: %s", name, figures[name])
    if not figures:
        return None
    path = vectors / EXPECTED
    data = {"schema": SCHEMA, "backend": "onnxruntime " + onnxruntime.__version__, "models": figures}
    atomic_write(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())
    return path


def read_expected(testvectors_dir: Path) -> Dict[str, Any]:
    """``models`` of ``testvectors/expected.json``; {} for bundles built before it existed."""
    path = Path(testvectors_dir) / EXPECTED
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or not isinstance(data.get("models"), dict):
        raise BundleError(
            "{}: schema {} (this emotrt reads {})".format(path, data.get("schema") if isinstance(data, dict) else None, SCHEMA),
            hint="rebuild the bundle with this emotrt (emotrt build)",
        )
    return data["models"]


def limits(base_atol: float, measured: Mapping[str, float], ceiling: float = float("inf")) -> Tuple[float, Optional[float]]:
    """(max abs error allowed, minimum SNR in dB or None) for one output given its build-time figures.

    The error allowed never exceeds ``ceiling`` (the caller's CEILING_FACTOR x table tolerance)
    nor the SNR floor drops below :data:`MIN_AUDIO_SNR_DB`, whatever the build measured.
    """
    error = min(max(base_atol, ERROR_FACTOR * float(measured["max_abs_error"])), max(base_atol, ceiling))
    snr = measured.get("snr_db")
    return error, None if snr is None else max(float(snr) - SNR_MARGIN_DB, MIN_AUDIO_SNR_DB)
