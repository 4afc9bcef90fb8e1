"""TEST DOUBLE of the ``tensorrt`` inference API and ``pycuda.driver`` (no GPU or TensorRT here).

The builder's double is tests/devices/trt_double.py; this one covers what the runtime calls at
inference time, which that one does not. It exposes only the name-based tensor API (TensorRT
8.5+; the binding-index API is absent, so a call to it fails as on TensorRT 10), and it does NOT
replace running `emotrt selftest BUNDLE` and the `tensorrt`/`gpu` tests on a Jetson.

"Device memory" is a dict of numpy byte arrays keyed by integer addresses; a "plan" file holds
ONNX bytes and ``execute_async_v3`` runs them with ONNX Runtime on the tensors found at the
bound addresses. Stream capture records operations and graph launch replays them, with the
addresses frozen at capture time, like CUDA graphs. Every call is appended to ``calls``.
"""
from __future__ import annotations

import itertools
import types
from typing import Any, Dict, List, Tuple

import numpy as np
import onnxruntime as ort


class FakeCuda:
    """The ``pycuda.driver`` subset the backend uses."""

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
                self.capturing = None
                cuda.streams[self.handle] = self

            def synchronize(self) -> None:
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


def make_modules(calls: List[Tuple]) -> Tuple[Any, Any]:
    """(tensorrt module, pycuda.driver module) sharing one fake device."""
    cuda = FakeCuda(calls)
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.3.0"
    trt.TensorIOMode = types.SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT")
    trt.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level: None})
    trt.nptype = lambda dtype: np.float32

    class Engine:
        def __init__(self, plan: bytes) -> None:
            self.session = ort.InferenceSession(plan, providers=["CPUExecutionProvider"])
            self.tensors = [(a.name, "INPUT", a.shape) for a in self.session.get_inputs()]
            self.tensors += [(a.name, "OUTPUT", a.shape) for a in self.session.get_outputs()]
            self.num_io_tensors = len(self.tensors)

        def get_tensor_name(self, i: int) -> str:
            return self.tensors[i][0]

        def _find(self, name: str) -> Tuple:
            return next(t for t in self.tensors if t[0] == name)

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
            self.engine, self.addresses, self.shapes = engine, {}, {}

        def set_tensor_address(self, name: str, address: int) -> None:
            calls.append(("set_tensor_address", name, address))
            self.addresses[name] = address

        def set_input_shape(self, name: str, shape: Tuple[int, ...]) -> None:
            self.shapes[name] = tuple(shape)

        def get_tensor_shape(self, name: str) -> Tuple[int, ...]:
            return self.outputs_shapes[name]

        def execute_async_v3(self, handle: int) -> bool:
            calls.append(("execute_async_v3", handle, dict(self.addresses)))
            frozen = dict(self.addresses)
            cuda.submit(cuda.streams[handle], ("run", lambda: self._compute(frozen)))
            return True

        def _compute(self, addresses: Dict[str, int]) -> None:
            feed = {}
            for name, mode, _ in self.engine.tensors:
                if mode == "INPUT":
                    feed[name] = cuda.read(addresses[name], self.shapes.get(name) or self.engine.get_tensor_shape(name))
            names = [t[0] for t in self.engine.tensors if t[1] == "OUTPUT"]
            outs = self.engine.session.run(names, feed)
            self.outputs_shapes = {n: o.shape for n, o in zip(names, outs)}
            for name, value in zip(names, outs):
                cuda.write(addresses[name], value)

    trt.Runtime = lambda logger: types.SimpleNamespace(deserialize_cuda_engine=lambda plan: Engine(plan))
    driver = types.ModuleType("pycuda.driver")
    for name in ("init", "Device", "pagelocked_empty", "mem_alloc", "memcpy_htod_async", "memcpy_dtoh_async"):
        setattr(driver, name, getattr(cuda, name))
    driver.Error, driver.Stream, driver.Context = FakeCuda.Error, cuda.Stream, cuda.Context
    driver.fake = cuda
    return trt, driver
