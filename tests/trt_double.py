"""TEST DOUBLE of the ``tensorrt`` Python module and the ``pycuda.driver`` subset emotrt uses.

It records every call and checks it against the documented call sequence of each
TensorRT major version; it builds nothing real and computes with ONNX Runtime.
TensorRT cannot be installed on the CI machines, so this is the ONLY TensorRT double
allowed (builder and runtime tests both use it). It NEVER stands in for the
on-device self-test: `emotrt selftest BUNDLE` and the `tensorrt`/`gpu`/`jetson`
tests on a Jetson are the real check.

Builder (NVIDIA TensorRT developer guide, "The Python API": Logger -> Builder ->
create_network -> OnnxParser.parse -> create_builder_config -> set_memory_pool_limit
-> optimisation profile -> build_serialized_network). Per major version it exposes
only the API that version documents, so a call to a removed API fails with
AttributeError just as on a device:

- 8.5 / 8.6: BuilderFlag.FP16/INT8, calibrators, EXPLICIT_BATCH required for ONNX,
  no STRONGLY_TYPED, no IProgressMonitor; ``builder_optimization_level`` from 8.6.
- 10.x: STRONGLY_TYPED, IProgressMonitor, precision flags and calibrators still there.
- 11.x: no FP16/INT8 flags, no ``int8_calibrator``, no calibrator classes, no
  EXPLICIT_BATCH, no ``ILayer.precision``/``set_output_type``; every network is strongly
  typed (TensorRT 10.x -> 11.x migration guide).

Every public name it offers exists in NVIDIA's real bindings of that version
(devices/trt_api/*.json, read from the published wheels; tests/devices/test_trt_api.py):
its own bookkeeping is private (``_name``), and the interface classes Python code
subclasses (ILogger, IProgressMonitor, the calibrators) declare the real methods and fail
when one is called without being overridden.

``build_serialized_network`` checks the recorded calls against that sequence and the
rules the real builder enforces (no precision flags on strongly typed networks, a
calibration cache whose header matches this version, layer precisions only with
OBEY_PRECISION_CONSTRAINTS, every input in the profile).

Runtime (developer guide, "Performing Inference in Python"; "Migrating Python Code
from TensorRT 8.x to 10.x"): Runtime(logger) -> deserialize_cuda_engine ->
create_execution_context -> set_input_shape / set_tensor_address -> execute_async_v3.
Every supported version (8.5+) gets only this name-based tensor API; the
binding-index API (removed in 10.0) is absent. ``execute_async_v3`` fails, as the
real one does, when an I/O tensor has no address or a dynamic input no shape. A
"plan" file holds ONNX bytes that ``execute_async_v3`` runs with ONNX Runtime on the
tensors found at the bound addresses.

pycuda (pycuda.driver docs and its test_graph.py): "device memory" is a dict of
numpy byte arrays keyed by integer addresses. Stream capture records operations and
graph launch replays them with the addresses frozen at capture time, like CUDA
graphs; as the developer guide's "CUDA Graphs" section requires, a context must run
``execute_async_v3`` once outside capture before it is captured, and (CUDA
programming guide, stream capture) a capturing stream cannot be synchronised.
"""
from __future__ import annotations

import enum
import itertools
import json
import sys
import time
import types
from typing import Any, Dict, List, Optional, Set, Tuple

import numpy as np
import onnx
import onnxruntime as ort

DOCUMENTED_SEQUENCE = ("Builder", "create_network", "OnnxParser", "parse_from_file", "create_builder_config",
                       "set_memory_pool_limit", "create_optimization_profile", "add_optimization_profile",
                       "build_serialized_network")


class DoubleError(AssertionError):
    """A call the real TensorRT (or CUDA) would reject, or a documented order that was not followed."""


# ----------------------------------------------------------------------------- pycuda.driver


class FakeCuda:
    """The ``pycuda.driver`` subset the backend uses, on one fake device."""

    class Error(Exception):
        pass

    def __init__(self, calls: List[Tuple]) -> None:
        self.calls = calls
        self.memory: Dict[int, np.ndarray] = {}
        self._addresses = itertools.count(0x1000, 0x1000)
        self._handles = itertools.count(1)
        self.streams: Dict[int, "FakeCuda.Stream"] = {}
        cuda = self

        class Allocation:
            def __init__(self, nbytes: int) -> None:
                self.address = next(cuda._addresses)
                cuda.memory[self.address] = np.zeros(nbytes, dtype=np.uint8)

            def __int__(self) -> int:
                return self.address

            def free(self) -> None:
                cuda.calls.append(("free", self.address))
                del cuda.memory[self.address]

        class Stream:
            def __init__(self) -> None:
                self.handle = next(cuda._handles)
                self.capturing: Optional[List[Tuple]] = None
                cuda.streams[self.handle] = self

            def synchronize(self) -> None:
                if self.capturing is not None:
                    raise DoubleError("stream {} synchronised during capture (CUDA forbids it)".format(self.handle))
                cuda.calls.append(("synchronize", self.handle))

            def begin_capture(self) -> None:
                self.capturing = []

            def end_capture(self) -> Any:
                ops, self.capturing = self.capturing, None
                return types.SimpleNamespace(instantiate=lambda: types.SimpleNamespace(
                    launch=lambda stream: cuda._replay(ops, stream)))

        class Context:
            @staticmethod
            def pop() -> None:
                pass

        self.Allocation, self.Stream, self.Context = Allocation, Stream, Context

    def init(self) -> None:
        pass

    def Device(self, index: int) -> Any:
        return types.SimpleNamespace(retain_primary_context=lambda: types.SimpleNamespace(push=lambda: None))

    def pagelocked_empty(self, shape: Any, dtype: Any) -> np.ndarray:
        self.calls.append(("pagelocked_empty", tuple(shape)))
        return np.zeros(shape, dtype=dtype)

    def mem_alloc(self, nbytes: int) -> Any:
        self.calls.append(("mem_alloc", nbytes))
        return self.Allocation(nbytes)

    def submit(self, stream: Any, op: Tuple) -> None:
        if stream.capturing is not None:
            stream.capturing.append(op)
        else:
            self._do(op)

    def memcpy_htod_async(self, device: Any, host: np.ndarray, stream: Any) -> None:
        self.calls.append(("htod", int(device), stream.handle))
        self.submit(stream, ("htod", int(device), host))

    def memcpy_dtoh_async(self, host: np.ndarray, device: Any, stream: Any) -> None:
        self.calls.append(("dtoh", int(device), stream.handle))
        self.submit(stream, ("dtoh", int(device), host))

    def _replay(self, ops: List[Tuple], stream: Any) -> None:
        self.calls.append(("graph_launch", stream.handle))
        for op in ops:
            self._do(op)

    def _do(self, op: Tuple) -> None:
        kind = op[0]
        if kind == "htod":
            raw = np.ascontiguousarray(op[2]).view(np.uint8).reshape(-1)
            self.memory[op[1]][: raw.size] = raw
        elif kind == "dtoh":
            host = op[2]
            host.reshape(-1).view(np.uint8)[:] = self.memory[op[1]][: host.nbytes]
        else:
            op[1]()

    def read(self, address: int, shape: Tuple[int, ...]) -> np.ndarray:
        n = int(np.prod(shape))
        return self.memory[address][: 4 * n].view(np.float32).reshape(shape).copy()

    def write(self, address: int, array: np.ndarray) -> None:
        raw = np.ascontiguousarray(array, dtype=np.float32).view(np.uint8).reshape(-1)
        self.memory[address][: raw.size] = raw


def pycuda_driver(cuda: FakeCuda) -> types.ModuleType:
    """A ``pycuda.driver`` module backed by ``cuda`` (``driver.fake`` is the device)."""
    driver = types.ModuleType("pycuda.driver")
    for name in ("init", "Device", "pagelocked_empty", "mem_alloc", "memcpy_htod_async", "memcpy_dtoh_async"):
        setattr(driver, name, getattr(cuda, name))
    driver.Error, driver.Stream, driver.Context = FakeCuda.Error, cuda.Stream, cuda.Context
    driver.fake = cuda
    return driver


# ----------------------------------------------------------------------------- tensorrt


def make_tensorrt(version: str = "10.3.0", calls: Optional[List[Tuple]] = None,
                  cuda: Optional[FakeCuda] = None) -> types.ModuleType:
    """A fresh ``tensorrt`` double for ``version`` (e.g. "8.5.2", "10.3.0", "11.4.1"); ``trt.calls`` records calls."""
    calls = calls if calls is not None else []
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.calls = calls
    trt.built = []
    _add_builder_api(trt, version, calls)
    _add_inference_api(trt, calls, cuda if cuda is not None else FakeCuda(calls))
    return trt


def make_modules(calls: List[Tuple], version: str = "10.3.0") -> Tuple[types.ModuleType, types.ModuleType]:
    """(tensorrt module, pycuda.driver module) sharing one fake device and one call list."""
    cuda = FakeCuda(calls)
    return make_tensorrt(version, calls, cuda), pycuda_driver(cuda)


def install(monkeypatch: Any, calls: Optional[List[Tuple]] = None, version: str = "10.3.0") -> Tuple[Any, Any]:
    """Put the double in ``sys.modules`` as ``tensorrt``, ``pycuda`` and ``pycuda.driver`` for one test."""
    trt, driver = make_modules(calls if calls is not None else [], version)
    pycuda = types.ModuleType("pycuda")
    pycuda.driver = driver
    for name, module in (("tensorrt", trt), ("pycuda", pycuda), ("pycuda.driver", driver)):
        monkeypatch.setitem(sys.modules, name, module)
    return trt, driver


def _add_inference_api(trt: types.ModuleType, calls: List[Tuple], cuda: FakeCuda) -> None:
    trt.TensorIOMode = types.SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT")
    trt.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level: None})
    trt.nptype = lambda dtype: np.float32
    trt.LayerInformationFormat = enum.Enum("LayerInformationFormat", ["ONELINE", "JSON"])

    class IProfiler:
        """Python API reference, IProfiler: a subclass must call ``IProfiler.__init__(self)`` and override
        ``report_layer_time(layer_name, ms)``, called once per layer for each execution. The double reports
        every ONNX node of the "plan" with the run's wall time split evenly: a stand-in, never a TensorRT timing."""

        def __init__(self) -> None:
            self._base_initialised = True

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            raise DoubleError("IProfiler.report_layer_time must be overridden")

    trt.IProfiler = IProfiler

    class EngineInspector:
        def __init__(self, engine: "Engine") -> None:
            self._engine = engine

        def get_engine_information(self, fmt: Any) -> str:
            if fmt not in trt.LayerInformationFormat:
                raise DoubleError("get_engine_information needs a LayerInformationFormat")
            return json.dumps({"Layers": self._engine._layers, "Bindings": [t[0] for t in self._engine._tensors]})

    class Engine:
        def __init__(self, plan: bytes) -> None:
            self._session = ort.InferenceSession(plan, providers=["CPUExecutionProvider"])
            self._tensors = [(a.name, "INPUT", a.shape) for a in self._session.get_inputs()]
            self._tensors += [(a.name, "OUTPUT", a.shape) for a in self._session.get_outputs()]
            self.num_io_tensors = len(self._tensors)
            graph = onnx.load_from_string(plan).graph
            self._layers = [node.name or str(i) for i, node in enumerate(graph.node)]

        def create_engine_inspector(self) -> "EngineInspector":
            calls.append(("create_engine_inspector",))
            return EngineInspector(self)

        def get_tensor_name(self, i: int) -> str:
            return self._tensors[i][0]

        def _find(self, name: str) -> Tuple:
            return next(t for t in self._tensors if t[0] == name)

        def get_tensor_mode(self, name: str) -> str:
            return self._find(name)[1]

        def get_tensor_shape(self, name: str) -> Tuple[int, ...]:
            return tuple(d if isinstance(d, int) else -1 for d in self._find(name)[2])

        def get_tensor_dtype(self, name: str) -> str:
            return "FLOAT"

        def get_tensor_profile_shape(self, name: str, profile: int) -> List[Tuple[int, ...]]:
            shape = self.get_tensor_shape(name)
            return [shape, shape, tuple(d if d > 0 else 16000 for d in shape)]

        def create_execution_context(self) -> "Context":
            calls.append(("create_execution_context",))
            return Context(self)

    class Context:
        def __init__(self, engine: Engine) -> None:
            self.engine, self._addresses, self._shapes = engine, {}, {}
            self._output_shapes: Dict[str, Tuple[int, ...]] = {}
            self._ran_uncaptured = False
            self._profiler: Optional[IProfiler] = None

        @property
        def profiler(self) -> Optional["IProfiler"]:
            return self._profiler

        @profiler.setter
        def profiler(self, value: Optional["IProfiler"]) -> None:
            if value is not None and not (isinstance(value, IProfiler) and getattr(value, "_base_initialised", False)):
                raise DoubleError("context.profiler needs an IProfiler subclass that called IProfiler.__init__")
            calls.append(("set_profiler", value is not None))
            self._profiler = value

        def set_tensor_address(self, name: str, address: int) -> None:
            calls.append(("set_tensor_address", name, address))
            self._addresses[name] = address

        def set_input_shape(self, name: str, shape: Tuple[int, ...]) -> None:
            self._shapes[name] = tuple(shape)

        def get_tensor_shape(self, name: str) -> Tuple[int, ...]:
            return self._output_shapes[name]

        def execute_async_v3(self, handle: int) -> bool:
            calls.append(("execute_async_v3", handle, dict(self._addresses)))
            unbound = [t[0] for t in self.engine._tensors if t[0] not in self._addresses]
            if unbound:
                raise DoubleError("execute_async_v3 with no address for {}".format(unbound))
            unshaped = [t[0] for t in self.engine._tensors if t[1] == "INPUT" and t[0] not in self._shapes
                        and -1 in self.engine.get_tensor_shape(t[0])]
            if unshaped:
                raise DoubleError("execute_async_v3 with dynamic inputs {} and no set_input_shape".format(unshaped))
            stream = cuda.streams[handle]
            if stream.capturing is not None and not self._ran_uncaptured:
                raise DoubleError("captured execute_async_v3 before one run outside capture (developer guide: CUDA Graphs)")
            self._ran_uncaptured = self._ran_uncaptured or stream.capturing is None
            frozen = dict(self._addresses)
            cuda.submit(stream, ("run", lambda: self._compute(frozen)))
            return True

        def _compute(self, addresses: Dict[str, int]) -> None:
            feed = {}
            for name, mode, _ in self.engine._tensors:
                if mode == "INPUT":
                    feed[name] = cuda.read(addresses[name], self._shapes.get(name) or self.engine.get_tensor_shape(name))
            names = [t[0] for t in self.engine._tensors if t[1] == "OUTPUT"]
            started = time.perf_counter()
            outs = self.engine._session.run(names, feed)
            if self._profiler is not None:
                share = 1000.0 * (time.perf_counter() - started) / max(1, len(self.engine._layers))
                for layer in self.engine._layers:
                    self._profiler.report_layer_time(layer, share)
            self._output_shapes = {n: o.shape for n, o in zip(names, outs)}
            for name, value in zip(names, outs):
                cuda.write(addresses[name], value)

    class Runtime:
        def __init__(self, logger: Any) -> None:
            if not isinstance(logger, trt.Logger):
                raise DoubleError("Runtime needs a tensorrt.Logger")
            calls.append(("Runtime",))

        def deserialize_cuda_engine(self, plan: bytes) -> Engine:
            calls.append(("deserialize_cuda_engine",))
            return Engine(plan)

    trt.Runtime = Runtime


def _add_builder_api(trt: types.ModuleType, version: str, calls: List[Tuple]) -> None:
    major, minor = (int(x) for x in version.split(".")[:2])
    names = ["GPU_FALLBACK", "REFIT", "TF32"] + (["FP16", "INT8", "OBEY_PRECISION_CONSTRAINTS"] if major < 11 else [])
    trt.BuilderFlag = enum.Enum("BuilderFlag", names)
    creation = {"EXPLICIT_BATCH": 0} if major < 11 else {}  # 11.4 bindings: no EXPLICIT_BATCH
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

        def log(self, severity: Any, msg: str) -> None:
            raise DoubleError("ILogger.log must be overridden")

    trt.ILogger = ILogger

    if major < 11:
        for cls_name in ("IInt8EntropyCalibrator2", "IInt8EntropyCalibrator", "IInt8MinMaxCalibrator", "IInt8LegacyCalibrator"):
            setattr(trt, cls_name, _interface(cls_name, ("get_batch_size", "get_batch", "read_calibration_cache",
                                                         "write_calibration_cache")))
    if major >= 10:
        trt.IProgressMonitor = _interface("IProgressMonitor", ("phase_start", "step_complete", "phase_finish"))

    class Input:
        def __init__(self, name: str, shape: Tuple[int, ...]) -> None:
            self.name, self.shape = name, shape

    class Layer:
        def __init__(self, name: str, num_outputs: int) -> None:
            self.name, self.num_outputs = name, num_outputs
            self._precision = None
            self._output_types: Dict[int, Any] = {}

    def get_precision(self: Any) -> Any:
        return self._precision

    def set_precision(self: Any, value: Any) -> None:
        calls.append(("layer.precision", (self.name, value)))
        self._precision = value

    def set_output_type(self: Any, index: int, dtype: Any) -> None:
        if not 0 <= index < self.num_outputs:
            raise DoubleError("layer {} has no output {}".format(self.name, index))
        self._output_types[index] = dtype

    if major < 11:  # 11.4 bindings: ILayer has neither (types come from the graph)
        Layer.precision = property(get_precision, set_precision)
        Layer.set_output_type = set_output_type

    class Network:
        def __init__(self, flags: int) -> None:
            self._flags = flags
            self._inputs: List[Input] = []
            self._layers: List[Layer] = []
            self._quantized = False

        @property
        def num_layers(self) -> int:
            return len(self._layers)

        def get_layer(self, i: int) -> Layer:
            return self._layers[i]

        @property
        def _strongly_typed(self) -> bool:
            return major >= 11 or (major >= 10 and bool(self._flags & (1 << 5)))

        @property
        def num_inputs(self) -> int:
            return len(self._inputs)

        def get_input(self, i: int) -> Input:
            return self._inputs[i]

    class OnnxParser:
        def __init__(self, network: Network, logger: ILogger) -> None:
            calls.append(("OnnxParser", None))
            self._network, self.num_errors = network, 0

        def get_error(self, index: int) -> Any:
            raise IndexError("the double's parser records no errors")

        def parse_from_file(self, path: str) -> bool:
            calls.append(("parse_from_file", path))
            if major < 10 and not self._network._flags & 1:
                raise DoubleError("TensorRT {}: the ONNX parser needs an EXPLICIT_BATCH network".format(version))
            model = onnx.load(path)
            init = {i.name for i in model.graph.initializer}
            for value in model.graph.input:
                if value.name not in init:
                    dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim)
                    self._network._inputs.append(Input(value.name, dims))
            self._network._quantized = any(n.op_type == "QuantizeLinear" for n in model.graph.node)
            self._network._layers = [Layer(n.name, len(n.output)) for n in model.graph.node]
            return True

    class Profile:
        def __init__(self) -> None:
            self._shapes: Dict[str, Tuple[Any, ...]] = {}

        def set_shape(self, name: str, lo: Any, opt: Any, hi: Any) -> None:
            calls.append(("set_shape", (name, lo, opt, hi)))
            self._shapes[name] = (lo, opt, hi)

    class TimingCache:
        def __init__(self, data: bytes) -> None:
            self._data = data

        def serialize(self) -> bytes:
            return b"TIMING-" + version.encode() + b"-" + self._data[-8:]

    config_attrs = ("profiling_verbosity", "default_device_type", "DLA_core")

    class Config:
        def __init__(self) -> None:
            initial = dict(_flags=set(), _profiles=[], _pools={}, _timing=None, _calibrator=None, _monitor=None,
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
            self._flags.add(flag.name)

        def set_memory_pool_limit(self, pool: Any, size: int) -> None:
            calls.append(("set_memory_pool_limit", (pool.name, size)))
            self._pools[pool.name] = size

        def add_optimization_profile(self, profile: Profile) -> int:
            calls.append(("add_optimization_profile", dict(profile._shapes)))
            self._profiles.append(profile)
            return len(self._profiles) - 1

        def create_timing_cache(self, data: bytes) -> TimingCache:
            calls.append(("create_timing_cache", len(data)))
            return TimingCache(bytes(data))

        def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
            calls.append(("set_timing_cache", ignore_mismatch))
            object.__setattr__(self, "_timing", cache)
            return True

        def get_timing_cache(self) -> TimingCache:
            return self._timing

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
            plan = "DOUBLE-PLAN trt={} flags={} inputs={}".format(version, sorted(config._flags), [i.name for i in network._inputs])
            trt.built.append(plan)
            return plan.encode()

    trt.Builder, trt.OnnxParser = Builder, OnnxParser


def _interface(name: str, methods: Tuple[str, ...]) -> type:
    """A TensorRT interface class for Python subclasses: the methods the real one declares, each failing
    when TensorRT would call it without the subclass overriding it."""
    def unimplemented(method: str) -> Any:
        def call(self: Any, *args: Any) -> Any:
            raise DoubleError("{}.{} must be overridden".format(name, method))
        return call

    body: Dict[str, Any] = {"__init__": lambda self: None}
    body.update({method: unimplemented(method) for method in methods})
    return type(name, (), body)


def _check_sequence(calls: List[Tuple], version: str) -> None:
    names = [c[0] for c in calls]
    position = -1
    for step in DOCUMENTED_SEQUENCE:
        try:
            position = names.index(step, position + 1)
        except ValueError:
            raise DoubleError("TensorRT {}: documented step {} missing or out of order in {}".format(version, step, names))


def _check_rules(network: Any, config: Any, version: str) -> None:
    major = int(version.split(".")[0])
    precision_flags: Set[str] = config._flags & {"FP16", "INT8"}
    if network._strongly_typed and precision_flags:
        raise DoubleError("TensorRT {}: precision flags {} on a strongly typed network".format(version, sorted(precision_flags)))
    if config._calibrator is not None:
        if "INT8" not in config._flags:
            raise DoubleError("a calibrator without BuilderFlag.INT8 is ignored")
        header = config._calibrator.read_calibration_cache().split(b"\n", 1)[0].decode()
        code = int(header.split("-")[1])
        want = (major * (10000 if major >= 10 else 1000) + int(version.split(".")[1]) * 100 + int(version.split(".")[2]))
        if code != want:
            raise DoubleError("calibration cache header {} does not match TensorRT {} (would recalibrate)".format(header, version))
        if config._calibrator.get_batch(["audio"]) is not None:
            raise DoubleError("a cache-only calibrator must not supply data")
    pinned = [layer.name for layer in network._layers if layer._precision is not None]
    if pinned and "OBEY_PRECISION_CONSTRAINTS" not in config._flags:
        raise DoubleError("layer precisions on {} are ignored without OBEY_PRECISION_CONSTRAINTS".format(pinned))
    if pinned and network._strongly_typed:
        raise DoubleError("layer precisions on a strongly typed network")
    if "INT8" in config._flags and not network._quantized and config._calibrator is None:
        raise DoubleError("INT8 flag with neither Q/DQ nodes nor a calibrator")
    for inp in network._inputs:
        if not any(inp.name in p._shapes for p in config._profiles):
            raise DoubleError("input {} has no optimisation profile".format(inp.name))
    if "WORKSPACE" not in config._pools:
        raise DoubleError("no workspace limit set")
