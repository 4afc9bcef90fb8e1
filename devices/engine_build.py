"""ONNX -> TensorRT plan with the TensorRT Python API (imported lazily; versions via trt_compat).

One call builds one plan: parse the ONNX chosen by the :class:`BuildRecipe`, one
fixed-shape optimisation profile, workspace from the device profile, a timing
cache, optional DLA with GPU fallback, progress through ``IProgressMonitor``
where the version has it. Beside the plan it writes the build log and the
equivalent trtexec line. The plan is written to a temp file and renamed, so a
failed build leaves no plan behind.

The call order follows NVIDIA's documented Python workflow ("The Python API",
TensorRT developer guide: Logger -> Builder -> create_network -> OnnxParser.parse
-> create_builder_config -> set_memory_pool_limit -> build_serialized_network).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from emotrt.devices import trt_compat
from emotrt.devices.trtexec import TrtexecSpec, trtexec_line
from emotrt.runtime import trt_version
from emotrt.runtime.atomic import atomic_write
from emotrt.runtime.errors import BackendError, ConfigError

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


class EngineBuildError(BackendError):
    """TensorRT could not parse or build a graph."""


@dataclass(frozen=True)
class EngineJob:
    """One plan to build: which ONNX, how, at which fixed input shapes."""

    model: str
    precision: str
    onnx: Path
    recipe: trt_compat.BuildRecipe
    shapes: Dict[str, Tuple[int, ...]]
    dynamic_inputs: Tuple[str, ...] = ()
    calib_cache: Optional[Path] = None
    fp32_layers: Tuple[str, ...] = ()  # precision-plan nodes kept FP32 in weakly typed builds
    kept_layers: Tuple[str, ...] = ()  # precision-plan nodes kept out of INT8 (cache-based INT8 builds only)

    def __post_init__(self) -> None:
        problems = []
        if self.recipe.precision != self.precision:
            problems.append("recipe is for {}, job for {}".format(self.recipe.precision, self.precision))
        if self.recipe.calib_cache and self.calib_cache is None:
            problems.append("recipe needs calib_cache")
        if self.kept_layers and not self.recipe.calib_cache:
            problems.append("kept_layers apply only to calibration-cache INT8 builds (Q/DQ placement encodes them)")
        bad = [n for n, dims in self.shapes.items() if not dims or any(int(d) < 1 for d in dims)]
        if bad:
            problems.append("shapes of {} must be positive and fixed".format(", ".join(bad)))
        if problems:
            raise ConfigError("engine job {}/{}: {}".format(self.model, self.precision, "; ".join(problems)))


@dataclass(frozen=True)
class BuildConfig:
    """Device-wide build settings."""

    tensorrt: str
    workspace_mib: int
    opt_level: int = 3
    dla_core: Optional[int] = None
    gpu_fallback: bool = True

    def __post_init__(self) -> None:
        problems = []
        if self.workspace_mib <= 0:
            problems.append("workspace_mib={} must be positive".format(self.workspace_mib))
        if not 0 <= self.opt_level <= 5:
            problems.append("opt_level={} must be 0..5".format(self.opt_level))
        if self.dla_core is not None and self.dla_core < 0:
            problems.append("dla_core={} must be >= 0".format(self.dla_core))
        if problems:
            raise ConfigError("build config: " + "; ".join(problems))


@dataclass
class BuildReport:
    """What one build wrote and how long it took."""

    plan: Path
    log: Path
    trtexec: str
    seconds: float
    messages: List[str] = field(default_factory=list)


def trtexec_for(job: EngineJob, config: BuildConfig, plan: str, timing_cache: Optional[str], onnx: Optional[str] = None,
                calib_cache: Optional[str] = None) -> str:
    """The trtexec line equivalent to building ``job`` with ``config`` (``onnx``/``calib_cache`` override the job's paths)."""
    spec = TrtexecSpec(
        onnx=onnx or str(job.onnx), plan=plan, recipe=job.recipe, tensorrt=config.tensorrt,
        workspace_mib=config.workspace_mib,
        dynamic_shapes={n: job.shapes[n] for n in job.dynamic_inputs},
        timing_cache=timing_cache,
        calib_cache=calib_cache or (str(job.calib_cache) if job.calib_cache else None),
        dla_core=config.dla_core, gpu_fallback=config.gpu_fallback, opt_level=config.opt_level,
    )
    return trtexec_line(spec)


def _make_logger(trt: Any, lines: List[str]) -> Any:
    class CollectingLogger(trt.ILogger):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: Any, msg: str) -> None:
            lines.append("[{}] {}".format(getattr(severity, "name", severity), msg))

    return CollectingLogger()


def build_engine(
    job: EngineJob,
    config: BuildConfig,
    plan: Path,
    timing_cache: Optional[Path] = None,
    trt: Any = None,
    progress: Optional[Progress] = None,
) -> BuildReport:
    """Build ``job`` into ``plan`` (``<plan>.build.log`` and ``<plan>.trtexec.txt`` beside it)."""
    trt = trt if trt is not None else trt_version.import_tensorrt()
    f = trt_compat.features(config.tensorrt)
    plan = Path(plan)
    plan.parent.mkdir(parents=True, exist_ok=True)
    log_path = plan.with_suffix(".build.log")
    line = trtexec_for(job, config, str(plan), str(timing_cache) if timing_cache else None)
    plan.with_suffix(".trtexec.txt").write_text(line + "\n")
    lines: List[str] = ["# " + line, "# recipe " + job.recipe.name]
    started = time.monotonic()
    try:
        data = _build(trt, f, job, config, timing_cache, progress, lines)
        atomic_write(plan, bytes(data))
    finally:
        lines.append("# {:.1f} s".format(time.monotonic() - started))
        log_path.write_text("\n".join(lines) + "\n")
    seconds = time.monotonic() - started
    log.info("built %s (%s) in %.1f s", plan, job.recipe.name, seconds)
    return BuildReport(plan, log_path, line, seconds, lines)


def _pin_precision_plan(trt: Any, f: trt_compat.TrtFeatures, job: EngineJob, network: Any, build_config: Any,
                        lines: List[str]) -> None:
    """Pin the plan's kept-out-of-INT8 nodes (FP16 when the build has FP16, else FP32), then its FP32 nodes (these win)."""
    if job.kept_layers:
        dtype = "float16" if "fp16" in job.recipe.flags else "float32"
        pinned = trt_compat.pin_layer_precision(trt, network, build_config, f, job.kept_layers, dtype)
        lines.append("# layers kept out of INT8 by the precision plan, as {}: {}".format(dtype, ", ".join(pinned) or "none matched"))
    if job.fp32_layers:
        pinned = trt_compat.pin_layer_precision(trt, network, build_config, f, job.fp32_layers, "float32")
        lines.append("# FP32 layers from the precision plan: {}".format(", ".join(pinned) or "none matched"))


def _build(trt: Any, f: trt_compat.TrtFeatures, job: EngineJob, config: BuildConfig, timing_cache: Optional[Path],
           progress: Optional[Progress], lines: List[str]) -> Any:
    logger = _make_logger(trt, lines)
    builder = trt.Builder(logger)
    network = trt_compat.create_network(trt, builder, f, job.recipe.strongly_typed)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(job.onnx)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        lines.extend("[parser] " + e for e in errors)
        raise EngineBuildError("TensorRT {} cannot parse {}: {}".format(f.version, job.onnx, "; ".join(errors) or "unknown error"))
    build_config = builder.create_builder_config()
    trt_compat.set_workspace(trt, build_config, config.workspace_mib)
    trt_compat.set_precision(trt, build_config, f, job.recipe)
    if job.recipe.flags:
        _pin_precision_plan(trt, f, job, network, build_config, lines)
    keep_alive = []
    if job.recipe.calib_cache:
        keep_alive.append(trt_compat.attach_calibration_cache(trt, build_config, f, Path(job.calib_cache).read_bytes()))
    trt_compat.set_optimisation_level(build_config, f, config.opt_level)
    trt_compat.set_detailed_profiling(trt, build_config)
    if config.dla_core is not None:
        trt_compat.set_dla(trt, build_config, config.dla_core, config.gpu_fallback)
    if progress is not None:
        keep_alive.append(trt_compat.attach_progress_monitor(trt, build_config, f, progress))
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        name = network.get_input(i).name
        if name not in job.shapes:
            raise EngineBuildError("{} has input {} with no fixed shape in the build job".format(job.onnx, name))
        shape = tuple(int(d) for d in job.shapes[name])
        profile.set_shape(name, shape, shape, shape)
    build_config.add_optimization_profile(profile)
    cache = None
    if timing_cache is not None:
        cache = trt_compat.set_timing_cache(build_config, timing_cache.read_bytes() if timing_cache.is_file() else b"")
    data = builder.build_serialized_network(network, build_config)
    if data is None:
        raise EngineBuildError(
            "TensorRT {} failed to build {} ({}); see the build log".format(f.version, job.onnx, job.recipe.name),
            hint="read {} and retry with --verbose".format("the .build.log beside the plan"),
        )
    if cache is not None:
        atomic_write(timing_cache, bytes(build_config.get_timing_cache().serialize()))
    del keep_alive
    return data
