"""Per-layer times, in a run of their own so they do not disturb the latency figures.

- ONNX Runtime: session profiling (``SessionOptions.enable_profiling``); the trace's ``Node``
  events (``<node>_kernel_time``, ``dur`` in microseconds, ``args.op_name``) summed per node.
- TensorRT: an ``IProfiler`` subclass set as ``context.profiler``; TensorRT calls
  ``report_layer_time(layer_name, ms)`` once per layer for each ``execute_async_v3``
  (TensorRT API reference, ``IProfiler``: "called once per layer for each invocation of
  executeV2()/enqueueV2()/enqueueV3()"; the Python class must call ``IProfiler.__init__``).
  Names are layer names when the plan was built with ``ProfilingVerbosity.DETAILED``, which
  ``emotrt build`` sets; with NONE they are layer indices. The engine's structure comes from
  ``engine.create_engine_inspector().get_engine_information(LayerInformationFormat.JSON)``
  (TensorRT developer guide, "Engine Inspector"). Both calls exist unchanged from TensorRT 8.5
  to 11, so no version branch is needed (the module comes from ``emotrt.runtime.trt_version``).
"""
from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from emotrt.runtime.backends.stepper import state_arrays

log = logging.getLogger(__name__)


def feeds(pipeline: Any, speaker: str, environment: str, seed: int = 0) -> Dict[str, Dict[str, np.ndarray]]:
    """One call's inputs for tse_step (initial state, a hop of noise) and ser (a window, the environment token)."""
    rng = np.random.default_rng(seed)
    layout = pipeline.layout
    tse = state_arrays(pipeline.tse.contract)
    tse["audio"] = (0.1 * rng.normal(size=(1, layout.chunk))).astype(np.float32)
    tse["spk_emb"] = pipeline.speaker_embedding(speaker)[None, :]
    ser = {"audio": (0.1 * rng.normal(size=(1, layout.window))).astype(np.float32),
           "env_token": pipeline.environment_token(environment)[None, :]}
    return {"tse_step": tse, "ser": ser}


def top_rows(totals: Dict[str, float], ops: Dict[str, str], runs: int, top: int) -> Dict[str, Any]:
    """The ``top`` layers by total time, with mean per run and share of the model's time."""
    grand = sum(totals.values()) or 1.0
    ordered = sorted(totals.items(), key=lambda item: -item[1])
    rows = [{"name": name, "op": ops.get(name, ""), "total_ms": ms, "mean_ms": ms / runs, "percent": 100.0 * ms / grand}
            for name, ms in ordered[:top]]
    return {"runs": runs, "layers": len(totals), "model_mean_ms": grand / runs, "top": rows}


def onnxruntime_layers(model: Path, feed: Dict[str, np.ndarray], runs: int, top: int, scratch: Path) -> Dict[str, Any]:
    """Run ``model`` ``runs`` times with ONNX Runtime profiling on; per-node totals from the trace."""
    from emotrt.runtime.backends import load_engine

    engine = load_engine(model, threads=1, profile_prefix=str(scratch / ("ort-" + model.stem)))
    try:
        names = [o.name for o in engine.outputs]
        for _ in range(runs + 1):
            engine.session.run(names, feed)
        trace = Path(engine.session.end_profiling())
    finally:
        engine.close()
    totals: Dict[str, float] = defaultdict(float)
    ops: Dict[str, str] = {}
    counts: Dict[str, int] = defaultdict(int)
    for event in json.loads(trace.read_text()):
        name = event.get("name", "")
        if event.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        node = name[:-len("_kernel_time")]
        counts[node] += 1
        if counts[node] == 1:  # the first run of each node warms caches: skip it
            continue
        totals[node] += event.get("dur", 0) / 1000.0
        ops[node] = event.get("args", {}).get("op_name", "")
    out = top_rows(dict(totals), ops, runs, top)
    out["source"] = "onnxruntime-profiling"
    return out


def tensorrt_layers(engine: Any, feed: Dict[str, np.ndarray], runs: int, top: int) -> Dict[str, Any]:
    """Time every layer of a loaded TensorRT engine with an ``IProfiler``; plus the engine inspector's JSON."""
    from emotrt.runtime import trt_version

    trt = trt_version.import_tensorrt()

    class LayerTimes(trt.IProfiler):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.IProfiler.__init__(self)
            self.totals: Dict[str, float] = defaultdict(float)
            self.count = 0

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            if self.count:  # the first execution warms up: skip it
                self.totals[layer_name] += ms

    profiler = LayerTimes()
    engine.context.profiler = profiler
    try:
        for i in range(runs + 1):
            profiler.count = i
            engine._run(feed)
    finally:
        engine.context.profiler = None
    out = top_rows(dict(profiler.totals), {}, runs, top)
    out["source"] = "tensorrt-iprofiler"
    try:
        info = engine.engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON)
        out["engine_information"] = json.loads(info)
    except (AttributeError, ValueError, RuntimeError) as exc:  # a plan built without detailed verbosity
        out["engine_information"] = None
        log.warning("%s: no engine information (%s)", engine.name, exc)
    return out


def layer_times(engines: Dict[str, Any], backend: str, bundle: Any, precision: str, pipeline: Any, speaker: str,
                environment: str, runs: int = 30, top: int = 10, scratch: Optional[Path] = None) -> Dict[str, Any]:
    """Top-``top`` layers of tse_step and ser at ``precision`` on ``backend`` (separate from the latency run)."""
    inputs = feeds(pipeline, speaker, environment)
    out: Dict[str, Any] = {}
    for name in ("tse_step", "ser"):
        if backend == "tensorrt":
            out[name] = tensorrt_layers(engines[name], inputs[name], runs, top)
        else:
            assert scratch is not None
            out[name] = onnxruntime_layers(bundle.model_path(name, precision), inputs[name], runs, top, scratch)
    return out


def layer_rows(layers: Optional[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Flatten ``{precision: {model: {...top}}}`` into table rows."""
    rows = []
    for precision, models in (layers or {}).items():
        for model, info in models.items():
            for rank, row in enumerate(info.get("top", []), 1):
                rows.append(dict(row, precision=precision, model=model, rank=rank))
    return rows
