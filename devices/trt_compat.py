"""THE one module that knows how the TensorRT builder API of 8.5/8.6, 10.x and 11.x differs (DESIGN.md §1).

Everything else asks :func:`features` or calls the helpers here; nothing else
branches on the TensorRT version. Versions themselves (parsing, the 8.5 floor, cache
version codes, the import) come from :mod:`emotrt.runtime.trt_version`. The helpers take the ``tensorrt`` module as an
argument so the builder never imports it at module level (and tests can pass the
recording test double in ``tests/trt_double.py``).

Sources (NVIDIA documentation):
- TensorRT 10.x -> 11.x migration (Python API reference and trtexec pages,
  docs.nvidia.com/deeplearning/tensorrt/11.4.1/api/migration/): BuilderFlag.FP16/INT8,
  OBEY_PRECISION_CONSTRAINTS, ``IBuilderConfig.int8_calibrator`` and the calibrator
  classes are removed; every network is strongly typed; trtexec loses
  ``--fp16/--int8/--calib`` and ``--stronglyTyped`` is always on.
- TensorRT 8.x -> 10.x migration (trtexec appendix): implicit batch is gone, so the
  EXPLICIT_BATCH creation flag is only needed (and only meaningful) before 10;
  ``--workspace`` became ``--memPoolSize=workspace:<MiB>``.
- Deprecated API list (TensorRT 10.x C++ API docs): IInt8*Calibrator deprecated in
  10.1, superseded by explicit quantization (Q/DQ).
- Python API ``tensorrt.IProgressMonitor`` (phase_start / step_complete /
  phase_finish; ``IBuilderConfig.progress_monitor``) exists from TensorRT 10.0;
  ``builder_optimization_level`` from 8.6; ``NetworkDefinitionCreationFlag.STRONGLY_TYPED``
  from 9.x (so on Jetson: 10.x and later).
- INT8 calibration cache header ``TRT-<code>-<Algo>`` (REFERENCE.md): see ``trt_version.version_code``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from emotrt.runtime import trt_version
from emotrt.runtime.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrtFeatures:
    """What one TensorRT version offers the builder and trtexec."""

    version: str
    major: int
    minor: int
    precision_flags: bool  # BuilderFlag.FP16/INT8, trtexec --fp16/--int8
    calibrator: bool  # IBuilderConfig.int8_calibrator + calibration cache, trtexec --calib
    strongly_typed: bool  # NetworkDefinitionCreationFlag.STRONGLY_TYPED, trtexec --stronglyTyped
    strongly_typed_always: bool  # 11: every network is strongly typed, the flag is implied
    explicit_batch_flag: bool  # < 10: ONNX networks need EXPLICIT_BATCH
    progress_monitor: bool  # IProgressMonitor
    opt_level: bool  # IBuilderConfig.builder_optimization_level, trtexec --builderOptimizationLevel
    qdq_preferred: bool  # explicit quantization preferred over the (deprecated) calibrator
    build_only_flag: str  # trtexec flag that builds without running inference

    @property
    def calib_cache_code(self) -> int:
        """The version code written in a calibration cache header for this TensorRT."""
        return trt_version.version_code(self.version)


def features(version: str) -> TrtFeatures:
    """The feature set of TensorRT ``version`` (8.5 or newer)."""
    norm = trt_version.normalise_version(version)
    if norm is None:
        raise ConfigError("no TensorRT version given")
    major, minor, _ = trt_version.parse_version(norm)
    if not trt_version.is_supported(norm):
        raise ConfigError(
            "TensorRT {} is older than {}.{}, the oldest emotrt supports (JetPack 5)".format(norm, *trt_version.MIN_VERSION),
            hint="flash JetPack 5.1 or newer",
        )
    at_least = lambda a, b: (major, minor) >= (a, b)  # noqa: E731
    return TrtFeatures(
        version=norm,
        major=major,
        minor=minor,
        precision_flags=trt_version.has_calibrator(norm),  # both went in 11
        calibrator=trt_version.has_calibrator(norm),
        strongly_typed=major >= 10,
        strongly_typed_always=major >= 11,
        explicit_batch_flag=major < 10,
        progress_monitor=major >= 10,
        opt_level=at_least(8, 6),
        qdq_preferred=at_least(10, 1),
        # 8.6 renamed trtexec --buildOnly to --skipInference (from memory of the 8.6 release notes;
        # not confirmed against NVIDIA's pages available here: check `trtexec --help` on JetPack 5)
        build_only_flag="--skipInference" if at_least(8, 6) else "--buildOnly",
    )


@dataclass(frozen=True)
class BuildRecipe:
    """How one precision is built on one TensorRT version."""

    precision: str  # fp32 | fp16 | int8
    onnx_variant: str  # which bundle ONNX to parse: fp32 | fp16 | int8
    strongly_typed: bool
    flags: Tuple[str, ...]  # builder precision flags: "fp16", "int8"
    calib_cache: bool  # feed the calibration cache through a calibrator

    @property
    def name(self) -> str:
        parts = [self.precision, "onnx=" + self.onnx_variant]
        parts += ["strongly-typed"] if self.strongly_typed else []
        parts += ["flag=" + f for f in self.flags] + (["calib-cache"] if self.calib_cache else [])
        return ",".join(parts)


def choose_recipe(version: str, precision: str, available: Sequence[str], has_cache: bool) -> BuildRecipe:
    """Pick the build path for ``precision`` from the bundle's artefacts (``available`` ONNX variants).

    INT8: Q/DQ graph on 10.1+ (and the only path on 11), calibration cache + INT8
    flag on 8.5-10.0 when the cache exists, else Q/DQ + INT8 flag. Weakly typed INT8
    builds also set FP16 so the layers left out of INT8 (the precision plan's blocks,
    anything TensorRT cannot run in INT8) fall back to FP16 rather than FP32, as
    trtexec ``--int8 --fp16`` does (TensorRT Developer Guide, "Reduced Precision":
    precision flags only permit, so enable every precision you accept). FP16: the FP16
    graph strongly typed on 10+, the FP16 flag on the FP32 graph before that (and
    on 10.x when no FP16 graph exists). 11 without the needed graph is an error.
    """
    f = features(version)
    if precision == "fp32":
        return BuildRecipe("fp32", "fp32", f.strongly_typed_always, (), False)
    if precision == "int8":
        if "int8" in available and (f.qdq_preferred or not (f.calibrator and has_cache)):
            if f.strongly_typed:
                return BuildRecipe("int8", "int8", True, (), False)
            return BuildRecipe("int8", "int8", False, ("int8", "fp16"), False)
        if f.calibrator and has_cache:
            return BuildRecipe("int8", "fp32", False, ("int8", "fp16"), True)
        raise ConfigError(
            "INT8 on TensorRT {} needs a Q/DQ graph{}; the bundle has neither".format(
                f.version, "" if not f.calibrator else " or a calibration cache"
            ),
            hint="run `emotrt calibrate` and rebuild the bundle with --calibration",
        )
    if precision == "fp16":
        if "fp16" in available and f.strongly_typed:
            return BuildRecipe("fp16", "fp16", True, (), False)
        if f.precision_flags:
            return BuildRecipe("fp16", "fp32", False, ("fp16",), False)
        raise ConfigError(
            "FP16 on TensorRT {} needs an FP16 graph (strong typing; BuilderFlag.FP16 is gone)".format(f.version),
            hint="run `emotrt calibrate` (it writes <model>.fp16.onnx) and rebuild the bundle with --calibration",
        )
    raise ConfigError("unknown precision {!r}; expected fp32, fp16 or int8".format(precision))


# ----------------------------------------------------------------------------- TensorRT API calls


def create_network(trt: Any, builder: Any, f: TrtFeatures, strongly_typed: bool) -> Any:
    """A network definition with the creation flags this version needs."""
    flags = 0
    if f.explicit_batch_flag:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if strongly_typed and f.strongly_typed and not f.strongly_typed_always:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return builder.create_network(flags)


def set_precision(trt: Any, config: Any, f: TrtFeatures, recipe: BuildRecipe) -> None:
    """Builder precision flags (only before 11; strongly typed networks take none)."""
    if not f.precision_flags:  # 11.x: BuilderFlag has no FP16/INT8 (tests/devices/test_trt_api.py reads this guard)
        if recipe.flags:
            raise ConfigError("TensorRT {} has no builder precision flags; recipe {} needs them".format(
                f.version, recipe.name))
        return
    for flag in recipe.flags:
        config.set_flag(getattr(trt.BuilderFlag, flag.upper()))


def rewrite_cache_header(cache: bytes, f: TrtFeatures) -> bytes:
    """Put this TensorRT's version code in a calibration cache header (the scale lines are unchanged)."""
    lines = cache.decode("ascii").splitlines()
    header = trt_version.parse_cache_header(lines[0]) if lines else None
    if header is None:
        raise ConfigError(
            "calibration cache header {!r} is not TRT-<version>-<Algorithm>".format(lines[0] if lines else ""),
            hint="regenerate it with `emotrt calibrate`",
        )
    lines[0] = trt_version.cache_header(f.calib_cache_code, header[1])
    return ("\n".join(lines) + "\n").encode("ascii")


def attach_calibration_cache(trt: Any, config: Any, f: TrtFeatures, cache: bytes) -> Any:
    """Feed a calibration cache to the builder through a calibrator that never sees data.

    The calibrator class follows the algorithm named in the cache header. Returns
    the calibrator: the caller keeps it alive until the build ends.
    """
    if not f.calibrator:
        raise ConfigError("TensorRT {} has no calibrators; use the Q/DQ graph".format(f.version))
    cache = rewrite_cache_header(cache, f)
    algo = cache.split(b"\n", 1)[0].decode().rsplit("-", 1)[1]
    base = getattr(trt, trt_version.CACHE_CALIBRATORS[algo])

    class CacheOnlyCalibrator(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names: Sequence[str]) -> None:
            return None

        def read_calibration_cache(self) -> bytes:
            return cache

        def write_calibration_cache(self, data: bytes) -> None:
            return None

    calibrator = CacheOnlyCalibrator()
    config.int8_calibrator = calibrator
    return calibrator


def pin_layer_precision(trt: Any, network: Any, config: Any, f: TrtFeatures, names: Sequence[str],
                        dtype: str) -> List[str]:
    """Constrain the layers of the named ONNX nodes to ``dtype`` ("float32" | "float16") in a weakly typed build.

    Returns the layers pinned. Layer precisions bind only with ``OBEY_PRECISION_CONSTRAINTS``
    (8.2-10.x; TensorRT developer guide, "Reduced Precision": layer-level control of
    precision). Strongly typed networks (10.x opt-in, 11 always) take their types from
    the graph instead, so this is never called for them. The ONNX parser names a layer
    after its node (a suffix may follow for nodes that become several layers).
    """
    if not f.precision_flags:
        raise ConfigError("TensorRT {} has no precision constraints; layer types come from the graph".format(f.version))
    if dtype not in ("float32", "float16"):
        raise ConfigError("layer precision {!r}; expected float32 or float16".format(dtype))
    wanted = set(names)
    target = getattr(trt, dtype)
    pinned = []
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if layer.name in wanted or any(layer.name.startswith(n + "_") for n in wanted):
            layer.precision = target
            for j in range(layer.num_outputs):
                layer.set_output_type(j, target)
            pinned.append(layer.name)
    if pinned:
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    return pinned


def set_optimisation_level(config: Any, f: TrtFeatures, level: int) -> None:
    """``builder_optimization_level`` where it exists (8.6+); 8.5 always uses its default (3)."""
    if f.opt_level:
        config.builder_optimization_level = level
    elif level != 3:
        log.warning("TensorRT %s has no builder optimisation level; building at its default", f.version)


def set_workspace(trt: Any, config: Any, workspace_mib: int) -> None:
    """The workspace pool limit (``set_memory_pool_limit``, every supported version)."""
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mib) << 20)


def set_dla(trt: Any, config: Any, core: int, gpu_fallback: bool) -> None:
    """Run on DLA core ``core``; unsupported layers fall back to the GPU when allowed."""
    config.default_device_type = trt.DeviceType.DLA
    config.DLA_core = int(core)
    if gpu_fallback:
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)


def attach_progress_monitor(trt: Any, config: Any, f: TrtFeatures, report: Callable[[str, int, int], None]) -> Optional[Any]:
    """An ``IProgressMonitor`` forwarding (phase, step, steps) to ``report``; None before 10.0."""
    if not f.progress_monitor:
        return None
    totals: Dict[str, int] = {}

    class Monitor(trt.IProgressMonitor):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)

        def phase_start(self, phase_name: str, parent_phase: Optional[str], num_steps: int) -> None:
            totals[phase_name] = num_steps
            report(phase_name, 0, num_steps)

        def step_complete(self, phase_name: str, step: int) -> bool:
            report(phase_name, step + 1, totals.get(phase_name, 0))
            return True  # False would cancel the build

        def phase_finish(self, phase_name: str) -> None:
            report(phase_name, totals.get(phase_name, 0), totals.get(phase_name, 0))

    monitor = Monitor()
    config.progress_monitor = monitor
    return monitor


def set_timing_cache(config: Any, data: bytes) -> Any:
    """Load (or start, with empty ``data``) the timing cache; mismatching caches are not ignored."""
    cache = config.create_timing_cache(data)
    config.set_timing_cache(cache, False)
    return cache


def set_detailed_profiling(trt: Any, config: Any) -> None:
    """Keep layer names and details in the plan (for IProfiler and the engine inspector)."""
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
