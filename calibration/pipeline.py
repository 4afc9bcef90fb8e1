"""One calibration run: per model, ranges -> FP16 plan -> INT8 sensitivity -> caches -> report.

Everything is written into a temporary folder next to ``out`` and renamed into place at the
end, so a failed run leaves no partial artefacts. Outputs per model ``<m>``:
``<m>.int8.onnx`` (the mixed Q/DQ plan TensorRT builds), ``<m>.fp16.onnx`` (for ORT
evaluation), ``<m>.trt-<code>.calib.cache`` per target TensorRT version plus
``<m>.calib.cache`` (the first target's), ``<m>.precision.json``; then ``report.json`` and
``report.md`` over all models.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import onnx

from emotrt.calibration.cache import DEFAULT_ALGORITHM, DEFAULT_TARGETS, CalibrationCache, version_code
from emotrt.calibration.data import CalibrationSet
from emotrt.calibration.accuracy import EvalItem, Outputs, run_items, score, shorten
from emotrt.calibration.fp16 import Fp16Plan, convert_fp16, plan_fp16
from emotrt.calibration.plan import precision_plan
from emotrt.calibration.qdq import QuantConfig, Ranges, collect_ranges, quantisable_nodes, quantise, tensorrt_problems
from emotrt.calibration.report import Report, ReportRow, measure_latency
from emotrt.calibration.sizes import float_summary
from emotrt.calibration.sensitivity import Budget, MixedPlan, choose_mixed, node_blocks, rank_blocks
from emotrt.runtime.contract import ModelContract
from emotrt.runtime.atomic import staged_dir
from emotrt.runtime.errors import ConfigError, TensorRTLintError

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


@dataclass(frozen=True)
class CalibrateConfig:
    """Options of one run; TensorRT versions are validated here, once."""

    quant: QuantConfig = field(default_factory=QuantConfig)
    budget: Budget = field(default_factory=Budget)
    trt_versions: Tuple[str, ...] = DEFAULT_TARGETS
    cache_algorithm: str = DEFAULT_ALGORITHM
    leave_one_out: bool = True
    latency_repeats: int = 30
    rank_items: int = 4  # an SER ranks on every item: one window each, and UA over 4 items ranks nothing
    rank_seconds: float = 1.0

    def __post_init__(self) -> None:
        if not self.trt_versions:
            raise ConfigError("trt_versions is empty: name at least one target TensorRT version", hint="--trt 10.3.0")
        for version in self.trt_versions:
            version_code(version)


@dataclass(frozen=True)
class ModelJob:
    """One FP32 graph with its calibration feeds and held-out evaluation items."""

    name: str
    path: Path
    contract: ModelContract
    calib: CalibrationSet
    items: Tuple[EvalItem, ...]


def calibrate(
    jobs: Sequence[ModelJob], out: Path, config: CalibrateConfig = CalibrateConfig(), force: bool = False,
    progress: Optional[Progress] = None,
) -> Report:
    """Calibrate every job into ``out`` (atomically) and return the report."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise ConfigError("output folder {} exists and is not empty".format(out), hint="choose another -o or pass --force")
    say = progress or log.info
    started, cpu = time.perf_counter(), time.process_time()
    with staged_dir(out, "partial") as work:
        rows: List[ReportRow] = []
        seconds = {}
        for job in jobs:
            t0 = time.perf_counter()
            rows.extend(_calibrate_one(job, work, config, say))
            seconds[job.name] = round(time.perf_counter() - t0, 2)
        info = {
            "method": config.quant.method,
            "budget": config.budget.limits(),
            "trt_versions": list(config.trt_versions),
            "calibration_sets": {job.name: job.calib.sha256 for job in jobs},
            "calibration_feeds": {job.name: len(job.calib.feeds) for job in jobs},
            "eval_items": {job.name: len(job.items) for job in jobs},
            "seconds_per_model": seconds,
            "seconds_total": round(time.perf_counter() - started, 2),
            "cpu_seconds_total": round(time.process_time() - cpu, 2),
        }
        report = Report(rows, info)
        report.write(work)
    return report


def _calibrate_one(job: ModelJob, work: Path, config: CalibrateConfig, say: Progress) -> List[ReportRow]:
    name, contract = job.name, job.contract
    say("{}: collecting {} ranges over {} feeds".format(name, config.quant.method, len(job.calib.feeds)))
    ranges = collect_ranges(job.path, job.calib, config.quant)
    model = onnx.load(str(job.path), load_external_data=False)
    fp16 = plan_fp16(model, ranges.amax())
    fp16_path = convert_fp16(job.path, work / (name + ".fp16.onnx"), fp16)

    fp32_out = run_items(job.path, contract, job.items)
    reference = score(contract, job.items, fp32_out, fp32_out)
    nodes = quantisable_nodes(model, config.quant)
    blocks = node_blocks(nodes)
    with tempfile.TemporaryDirectory(prefix="emotrt-variants-") as scratch:
        say("{}: sensitivity over {} blocks".format(name, len(blocks)))
        mixed = _choose_mixed(job, ranges, blocks, fp32_out, reference, Path(scratch), config, fp16.fp32_nodes)
        int8_path = quantise(job.path, work / (name + ".int8.onnx"), ranges, config.quant, mixed.int8_nodes,
                             fp32_nodes=fp16.fp32_nodes)
        written = onnx.load(str(int8_path))
        problems = tensorrt_problems(written)
        if problems:
            raise TensorRTLintError("{}: Q/DQ graph TensorRT would reject: {}".format(name, "; ".join(problems)),
                                    hint="try another `emotrt calibrate --method` (minmax, entropy, percentile), "
                                         "or report this message: the quantiser wrote a pattern TensorRT rejects")
        paths = {
            "fp32": job.path, "fp16": fp16_path, "mixed": int8_path,
            "int8": quantise(job.path, Path(scratch) / "int8_all.onnx", ranges, config.quant, nodes,
                             fp32_nodes=fp16.fp32_nodes),
            "int8-cpu": quantise(job.path, Path(scratch) / "cpu.onnx", ranges, config.quant, nodes, cpu=True),
        }
        metrics = {"fp32": reference, "mixed": mixed.metrics}
        for key in ("fp16", "int8", "int8-cpu"):
            metrics[key] = score(contract, job.items, fp32_out, run_items(paths[key], contract, job.items))
        latency = measure_latency(paths, job.calib.feeds[0], repeats=config.latency_repeats)
        sizes = {k: os.path.getsize(str(p)) for k, p in paths.items()}

    caches = _write_caches(name, ranges.amax(), work, config)
    _write_plan(job, work, config, mixed, blocks, fp16, caches)
    notes = {
        "mixed": "{} of {} blocks INT8; kept out: {}; largest FP32 initializers: {}; FP16: {}".format(
            len(mixed.int8_blocks), len(blocks), ", ".join(mixed.kept_blocks) or "none",
            float_summary(written) or "none", float_summary(written, dtype="float16") or "none"),
        "fp16": "flagged > 6e4: {}".format(", ".join(t for t, _ in fp16.flagged)) if fp16.flagged else "",
        "int8": "every block INT8 (not written; the mixed plan is {}.int8.onnx)".format(name),
        "int8-cpu": "ONNX Runtime QOperator u8/s8 for CPU-only targets; not a TensorRT graph, not written",
    }
    return [
        ReportRow(name, precision, Path(paths[precision]).name if precision in ("fp32", "fp16", "mixed") else "",
                  sizes[precision], sizes[precision] / sizes["fp32"], metrics[precision],
                  latency[precision], latency[precision] / latency["fp32"], notes.get(precision, ""))
        for precision in ("fp32", "fp16", "int8", "mixed", "int8-cpu")
    ]


def _choose_mixed(job: ModelJob, ranges: Ranges, blocks: Mapping[str, Sequence[str]], fp32_out: Outputs,
                  reference: Dict[str, float], scratch: Path, config: CalibrateConfig,
                  fp32_nodes: Sequence[str]) -> MixedPlan:
    """Leave-one-out ranks blocks on a short subset (an SER on every item); the budget is checked on
    every held-out item (on the graphs as written: float weights outside the plan's ``fp32_nodes`` stored FP16)."""
    counter = [0]

    def evaluator(items: Sequence[EvalItem], fp32: Outputs) -> Callable[[Sequence[str]], Dict[str, float]]:
        def evaluate(chosen: Sequence[str]) -> Dict[str, float]:
            counter[0] += 1
            path = quantise(job.path, scratch / "v{}.onnx".format(counter[0]), ranges, config.quant, chosen,
                            fp32_nodes=fp32_nodes)
            return score(job.contract, items, fp32, run_items(path, job.contract, items))
        return evaluate

    ranking = None
    if config.leave_one_out and blocks:
        ranked = job.items if job.contract.model == "ser" else job.items[: config.rank_items]
        quick = shorten(ranked, job.contract, config.rank_seconds)
        quick_fp32 = run_items(job.path, job.contract, quick)
        quick_reference = score(job.contract, quick, quick_fp32, quick_fp32)
        ranking = rank_blocks(evaluator(quick, quick_fp32), blocks, quick_reference, config.budget)
    return choose_mixed(evaluator(job.items, fp32_out), blocks, reference, config.budget, ranking)


def _write_plan(job: ModelJob, work: Path, config: CalibrateConfig, mixed: MixedPlan,
                blocks: Mapping[str, Sequence[str]], fp16: Fp16Plan, caches: Dict[str, str]) -> None:
    recipe = {
        "method": asdict(config.quant), "budget": config.budget.limits(), "calibration_set": job.calib.sha256,
        "cache_algorithm": config.cache_algorithm,
        "float_weights": "fp16 + Cast outside the fp32 nodes (Conv kernels and Q/DQ scales fp32)",
    }
    plan = precision_plan(
        job.name, job.path, recipe,
        int8={"onnx": job.name + ".int8.onnx", "blocks": list(mixed.int8_blocks), "nodes": list(mixed.int8_nodes)},
        fp16={"onnx": job.name + ".fp16.onnx", "blocks": list(mixed.kept_blocks),
              "nodes": [n for b in mixed.kept_blocks for n in blocks[b]]},
        fp32=fp16.to_json(), caches=caches,
        sensitivity=[{"block": r.block, "cost_all_but": r.cost_all_but, "cost_alone": r.cost_alone,
                      "all_but": r.all_but, "alone": r.alone} for r in mixed.ranking],
    )
    (work / (job.name + ".precision.json")).write_text(_json(plan.to_json()))


def _write_caches(name: str, amax: Dict[str, float], work: Path, config: CalibrateConfig) -> Dict[str, str]:
    files = {}
    for i, version in enumerate(config.trt_versions):
        cache = CalibrationCache.from_amax(amax, version, config.cache_algorithm)
        path = cache.write(work / "{}.trt-{}.calib.cache".format(name, cache.version_code))
        files[version] = path.name
        if i == 0:
            cache.write(work / (name + ".calib.cache"))
    return files


def _json(data: object) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"
