"""The accuracy report: one row per model x precision, as JSON and a Markdown table.

Latency is ONNX Runtime on this CPU, all variants of a model loaded together and run in
turns on the same feed in one run (fastest call of each), reported relative to FP32. On CPU the TensorRT-style
Q/DQ graph is not expected to be faster (REFERENCE.md): its speed is TensorRT's business on
the device; here the report proves accuracy, size and a graph TensorRT accepts.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from emotrt.calibration.data import Feed
from emotrt.runtime.backends import load_engine

COLUMNS = (
    ("model", "model"), ("precision", "precision"), ("size_kb", "size KB"), ("size_ratio", "size/FP32"),
    ("sisdr_vs_fp32", "SI-SDR vs FP32 dB"), ("sisdri", "SI-SDRi dB"), ("ua", "UA"), ("ccc", "CCC"),
    ("agreement", "argmax = FP32"), ("cosine", "cosine"), ("latency_ratio", "ORT latency/FP32"),
)


@dataclass(frozen=True)
class ReportRow:
    """One model at one precision."""

    model: str
    precision: str
    file: str
    size_bytes: int
    size_ratio: float
    metrics: Dict[str, float]
    latency_ms: Optional[float] = None
    latency_ratio: Optional[float] = None
    note: str = ""


@dataclass(frozen=True)
class Report:
    """All rows plus what produced them (calibration hash, method, budget, timings)."""

    rows: Sequence[ReportRow]
    info: Dict[str, object] = field(default_factory=dict)

    def to_json(self) -> Dict[str, object]:
        return {"info": self.info, "rows": [asdict(r) for r in self.rows]}

    def to_markdown(self) -> str:
        """A Markdown table (empty cells where a metric does not apply)."""
        lines = ["| " + " | ".join(title for _, title in COLUMNS) + " |",
                 "|" + "---|" * len(COLUMNS)]
        for row in self.rows:
            values = dict(asdict(row), **row.metrics, size_kb=row.size_bytes / 1024.0)
            lines.append("| " + " | ".join(_cell(values.get(key)) for key, _ in COLUMNS) + " |")
        notes = ["- {} {}: {}".format(r.model, r.precision, r.note) for r in self.rows if r.note]
        head = ["# emotrt calibration report", ""]
        head += ["- {}: {}".format(k, v) for k, v in self.info.items() if not isinstance(v, (dict, list))]
        return "\n".join(head + [""] + lines + ([""] + notes if notes else [])) + "\n"

    def write(self, folder: Path) -> None:
        """``report.json`` and ``report.md`` in ``folder``."""
        (Path(folder) / "report.json").write_text(json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n")
        (Path(folder) / "report.md").write_text(self.to_markdown())


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "{:.3f}".format(value)
    return str(value)


def measure_latency(paths: Mapping[str, Path], feed: Feed, repeats: int = 30, warmup: int = 3) -> Dict[str, float]:
    """Fastest ms per call of each graph, run in turns on one feed with one thread each.

    The minimum, as ``timeit`` advises: on a shared machine the slower calls measure the
    neighbours, not the graph.
    """
    engines = {name: load_engine(path, threads=1) for name, path in paths.items()}
    times: Dict[str, List[float]] = {name: [] for name in engines}
    try:
        for _ in range(warmup):
            for engine in engines.values():
                engine.run(feed)
        for _ in range(repeats):
            for name, engine in engines.items():
                start = time.perf_counter()
                engine.run(feed)
                times[name].append((time.perf_counter() - start) * 1000.0)
    finally:
        for engine in engines.values():
            engine.close()
    return {name: float(np.min(values)) for name, values in times.items()}
