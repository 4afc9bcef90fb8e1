"""TEST DOUBLE of the ``tensorrt`` Python module: records calls, checks them, builds nothing real.

TensorRT cannot be installed on the CI machines, so the builder is exercised
against this recording double. It is the only TensorRT double allowed, it is
labelled as such everywhere it is used, and it does NOT replace the on-device
self-test (`emotrt selftest BUNDLE` on a Jetson).

Per major version it exposes only the API that version documents, so a call to a
removed API fails with AttributeError just as on a device:

- 8.5 / 8.6: BuilderFlag.FP16/INT8, calibrators, EXPLICIT_BATCH required for ONNX,
  no STRONGLY_TYPED, no IProgressMonitor; ``builder_optimization_level`` from 8.6.
- 10.x: STRONGLY_TYPED, IProgressMonitor, precision flags and calibrators still there.
- 11.x: no FP16/INT8 flags, no ``int8_calibrator``, no calibrator classes; every
  network is strongly typed.

``build_serialized_network`` checks the recorded calls against the documented
Python build sequence (Logger -> Builder -> create_network -> OnnxParser ->
parse -> create_builder_config -> ... -> build_serialized_network) and the rules
the real builder enforces (no precision flags on strongly typed networks, a
calibration cache whose header matches this version, every input in the profile).
"""
from __future__ import annotations

import enum
import types
from typing import Any, Dict, List, Tuple

import onnx

DOCUMENTED_SEQUENCE = ("Builder", "create_network", "OnnxParser", "parse_from_file", "create_builder_config",
                       "set_memory_pool_limit", "create_optimization_profile", "add_optimization_profile",
                       "build_serialized_network")


class DoubleError(AssertionError):
    """A call the real TensorRT would reject (or a documented order that was not followed)."""


def make_tensorrt(version: str) -> types.ModuleType:
    """A fresh ``tensorrt`` double for ``version`` (e.g. "8.5.2", "10.3.0", "11.4.1")."""
    major, minor = (int(x) for x in version.split(".")[:2])
    calls: List[Tuple[str, Any]] = []
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.calls = calls
    trt.built = []

    names = ["GPU_FALLBACK", "REFIT", "TF32"] + (["FP16", "INT8", "OBEY_PRECISION_CONSTRAINTS"] if major < 11 else [])
    trt.BuilderFlag = enum.Enum("BuilderFlag", names)
    creation = {"EXPLICIT_BATCH": 0}
    if major >= 10:
        creation["STRONGLY_TYPED"] = 5
    trt.NetworkDefinitionCreationFlag = enum.IntEnum("NetworkDefinitionCreationFlag", creation)
    trt.MemoryPoolType = enum.Enum("MemoryPoolType", ["WORKSPACE", "DLA_MANAGED_SRAM"])
    trt.DeviceType = enum.Enum("DeviceType", ["GPU", "DLA"])
    trt.ProfilingVerbosity = enum.Enum("ProfilingVerbosity", ["LAYER_NAMES_ONLY", "DETAILED", "NONE"])
    trt.float32, trt.float16, trt.int8 = "float32", "float16", "int8"

    class ILogger:
        Severity = enum.Enum("Severity", ["INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"])

        def __init__(self) -> None:
            pass

    trt.ILogger = ILogger

    if major < 11:
        for cls_name in ("IInt8EntropyCalibrator2", "IInt8EntropyCalibrator", "IInt8MinMaxCalibrator", "IInt8LegacyCalibrator"):
            setattr(trt, cls_name, type(cls_name, (), {"__init__": lambda self: None}))
    if major >= 10:
        trt.IProgressMonitor = type("IProgressMonitor", (), {"__init__": lambda self: None})

    class Input:
        def __init__(self, name: str, shape: Tuple[int, ...]) -> None:
            self.name, self.shape = name, shape

    class Layer:
        def __init__(self, name: str, num_outputs: int) -> None:
            self.name, self.num_outputs = name, num_outputs
            self._precision = None
            self.output_types: Dict[int, Any] = {}

        @property
        def precision(self) -> Any:
            return self._precision

        @precision.setter
        def precision(self, value: Any) -> None:
            calls.append(("layer.precision", (self.name, value)))
            self._precision = value

        def set_output_type(self, index: int, dtype: Any) -> None:
            if not 0 <= index < self.num_outputs:
                raise DoubleError("layer {} has no output {}".format(self.name, index))
            self.output_types[index] = dtype

    class Network:
        def __init__(self, flags: int) -> None:
            self.flags = flags
            self.inputs: List[Input] = []
            self.layers: List[Layer] = []
            self.quantized = False

        @property
        def num_layers(self) -> int:
            return len(self.layers)

        def get_layer(self, i: int) -> Layer:
            return self.layers[i]

        @property
        def strongly_typed(self) -> bool:
            return major >= 11 or (major >= 10 and bool(self.flags & (1 << 5)))

        @property
        def num_inputs(self) -> int:
            return len(self.inputs)

        def get_input(self, i: int) -> Input:
            return self.inputs[i]

    class OnnxParser:
        def __init__(self, network: Network, logger: ILogger) -> None:
            calls.append(("OnnxParser", None))
            self.network, self.num_errors = network, 0

        def parse_from_file(self, path: str) -> bool:
            calls.append(("parse_from_file", path))
            if major < 10 and not self.network.flags & 1:
                raise DoubleError("TensorRT {}: the ONNX parser needs an EXPLICIT_BATCH network".format(version))
            model = onnx.load(path)
            init = {i.name for i in model.graph.initializer}
            for value in model.graph.input:
                if value.name not in init:
                    dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim)
                    self.network.inputs.append(Input(value.name, dims))
            self.network.quantized = any(n.op_type == "QuantizeLinear" for n in model.graph.node)
            self.network.layers = [Layer(n.name, len(n.output)) for n in model.graph.node]
            return True

    class Profile:
        def __init__(self) -> None:
            self.shapes: Dict[str, Tuple[Any, ...]] = {}

        def set_shape(self, name: str, lo: Any, opt: Any, hi: Any) -> None:
            calls.append(("set_shape", (name, lo, opt, hi)))
            self.shapes[name] = (lo, opt, hi)

    class TimingCache:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def serialize(self) -> bytes:
            return b"TIMING-" + version.encode() + b"-" + self.data[-8:]

    config_attrs = ("profiling_verbosity", "default_device_type", "DLA_core")

    class Config:
        def __init__(self) -> None:
            initial = dict(flags=set(), profiles=[], pools={}, timing=None, _calibrator=None, _monitor=None,
                           profiling_verbosity=None, default_device_type=None, DLA_core=None, _opt_level=3)
            for name, value in initial.items():
                object.__setattr__(self, name, value)

        def __setattr__(self, name: str, value: Any) -> None:
            if name in config_attrs:
                object.__setattr__(self, name, value)
                calls.append((name, getattr(value, "name", value)))
                return
            prop = getattr(type(self), name, None)
            if not isinstance(prop, property):
                raise AttributeError("'tensorrt.IBuilderConfig' ({}) has no attribute '{}'".format(version, name))
            prop.__set__(self, value)

        def set_flag(self, flag: Any) -> None:
            calls.append(("set_flag", flag.name))
            self.flags.add(flag.name)

        def set_memory_pool_limit(self, pool: Any, size: int) -> None:
            calls.append(("set_memory_pool_limit", (pool.name, size)))
            self.pools[pool.name] = size

        def add_optimization_profile(self, profile: Profile) -> int:
            calls.append(("add_optimization_profile", dict(profile.shapes)))
            self.profiles.append(profile)
            return len(self.profiles) - 1

        def create_timing_cache(self, data: bytes) -> TimingCache:
            calls.append(("create_timing_cache", len(data)))
            return TimingCache(bytes(data))

        def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
            calls.append(("set_timing_cache", ignore_mismatch))
            object.__setattr__(self, "timing", cache)
            return True

        def get_timing_cache(self) -> TimingCache:
            return self.timing

    def recorded(attr: str, call: str, show: Any) -> property:
        """A config attribute that exists only in some versions; setting it is recorded."""
        def get(self: Any) -> Any:
            return getattr(self, attr)

        def put(self: Any, value: Any) -> None:
            calls.append((call, show(value)))
            object.__setattr__(self, attr, value)

        return property(get, put)

    base_class = lambda value: type(value).__mro__[1].__name__  # noqa: E731
    if major < 11:
        Config.int8_calibrator = recorded("_calibrator", "int8_calibrator", base_class)
    if (major, minor) >= (8, 6):
        Config.builder_optimization_level = recorded("_opt_level", "builder_optimization_level", int)
    if major >= 10:
        Config.progress_monitor = recorded("_monitor", "progress_monitor", base_class)

    class Builder:
        def __init__(self, logger: ILogger) -> None:
            if not isinstance(logger, ILogger):
                raise DoubleError("Builder needs a tensorrt.ILogger")
            calls.append(("Builder", None))
            self.logger = logger

        def create_network(self, flags: int = 0) -> Network:
            calls.append(("create_network", flags))
            return Network(flags)

        def create_builder_config(self) -> Config:
            calls.append(("create_builder_config", None))
            return Config()

        def create_optimization_profile(self) -> Profile:
            calls.append(("create_optimization_profile", None))
            return Profile()

        def build_serialized_network(self, network: Network, config: Config) -> bytes:
            calls.append(("build_serialized_network", None))
            _check_sequence(calls, version)
            _check_rules(network, config, version)
            monitor = config._monitor
            if monitor is not None:
                monitor.phase_start("Building engine", None, 2)
                for step in range(2):
                    assert monitor.step_complete("Building engine", step) is True
                monitor.phase_finish("Building engine")
            self.logger.log(ILogger.Severity.INFO, "double: engine built (not a real plan)")
            plan = "DOUBLE-PLAN trt={} flags={} inputs={}".format(version, sorted(config.flags), [i.name for i in network.inputs])
            trt.built.append(plan)
            return plan.encode()

    trt.Builder, trt.OnnxParser = Builder, OnnxParser
    return trt


def _check_sequence(calls: List[Tuple[str, Any]], version: str) -> None:
    names = [c[0] for c in calls]
    position = -1
    for step in DOCUMENTED_SEQUENCE:
        try:
            position = names.index(step, position + 1)
        except ValueError:
            raise DoubleError("TensorRT {}: documented step {} missing or out of order in {}".format(version, step, names))


def _check_rules(network: Any, config: Any, version: str) -> None:
    major = int(version.split(".")[0])
    precision_flags = config.flags & {"FP16", "INT8"}
    if network.strongly_typed and precision_flags:
        raise DoubleError("TensorRT {}: precision flags {} on a strongly typed network".format(version, sorted(precision_flags)))
    if config._calibrator is not None:
        if "INT8" not in config.flags:
            raise DoubleError("a calibrator without BuilderFlag.INT8 is ignored")
        header = config._calibrator.read_calibration_cache().split(b"\n", 1)[0].decode()
        code = int(header.split("-")[1])
        want = (major * (10000 if major >= 10 else 1000) + int(version.split(".")[1]) * 100 + int(version.split(".")[2]))
        if code != want:
            raise DoubleError("calibration cache header {} does not match TensorRT {} (would recalibrate)".format(header, version))
        if config._calibrator.get_batch(["audio"]) is not None:
            raise DoubleError("a cache-only calibrator must not supply data")
    pinned = [layer.name for layer in network.layers if layer.precision is not None]
    if pinned and "OBEY_PRECISION_CONSTRAINTS" not in config.flags:
        raise DoubleError("layer precisions on {} are ignored without OBEY_PRECISION_CONSTRAINTS".format(pinned))
    if pinned and network.strongly_typed:
        raise DoubleError("layer precisions on a strongly typed network")
    if "INT8" in config.flags and not network.quantized and config._calibrator is None:
        raise DoubleError("INT8 flag with neither Q/DQ nodes nor a calibrator")
    for inp in network.inputs:
        if not any(inp.name in p.shapes for p in config.profiles):
            raise DoubleError("input {} has no optimisation profile".format(inp.name))
    if "WORKSPACE" not in config.pools:
        raise DoubleError("no workspace limit set")
