"""TensorRT backend (pycuda): pinned pre-allocated host buffers, its own CUDA stream, ``execute_async_v3``.

:class:`TensorRTEngine` serves one-shot calls (``run``, SER windows). Its
:meth:`~TensorRTEngine.create_stepper` gives each stream a :class:`TensorRTStepper` that keeps
the TSE state on the GPU between hops: every state has two device buffers and each hop swaps
which one is bound to ``state_in.<name>`` and which to ``state_out.<name>`` (ping-pong), so
state never crosses to the host. With ``cuda_graphs=True`` the stepper captures one CUDA graph
per parity (upload audio, enqueue, download output) and replays it each hop; addresses are frozen
inside a graph, hence two graphs (REFERENCE.md "CUDA graphs"; NVIDIA TensorRT developer guide,
"CUDA Graphs": run ``execute_async_v3`` once before capturing).

API used (TensorRT Python API, IExecutionContext / ICudaEngine; pycuda.driver): the name-based
tensor calls through :mod:`emotrt.runtime.backends.trt_inference`, ``pagelocked_empty``,
``mem_alloc``, ``Stream``, ``memcpy_htod_async``/``memcpy_dtoh_async``, ``Stream.begin_capture``/
``end_capture`` and ``Graph.instantiate().launch`` (pycuda test_graph.py).
"""
from __future__ import annotations

import logging
import os
from typing import Any, Dict, List, Optional

import numpy as np

from emotrt.runtime import trt_version
from emotrt.runtime.backends import trt_inference
from emotrt.runtime.backends.base import Engine, TensorSpec
from emotrt.runtime.backends.stepper import require_contract
from emotrt.runtime.contract import ModelContract
from emotrt.runtime.errors import BackendError

log = logging.getLogger(__name__)


class _Buffer:
    """A pinned host array and a device allocation of the same size."""

    def __init__(self, cuda: Any, shape: Any, dtype: np.dtype) -> None:
        self.host = cuda.pagelocked_empty(tuple(shape), dtype)
        self.device = cuda.mem_alloc(max(self.host.nbytes, 1))

    @property
    def address(self) -> int:
        return int(self.device)

    def free(self) -> None:
        self.device.free()


class _Gpu:
    """The CUDA context shared by every engine of a process (the device's primary context)."""

    def __init__(self, device: int = 0) -> None:
        self.cuda = trt_inference.import_pycuda()
        self.context = self.cuda.Device(device).retain_primary_context()

    def __enter__(self) -> Any:
        self.context.push()
        return self.cuda

    def __exit__(self, *exc: object) -> None:
        self.cuda.Context.pop()


class TensorRTEngine(Engine):
    """A deserialised plan with one execution context, its own stream and pinned I/O buffers."""

    def __init__(self, path: str, contract: Optional[ModelContract] = None, cuda_graphs: bool = False,
                 device: int = 0) -> None:
        self.trt = trt_version.import_tensorrt()
        self.name = os.path.basename(path)
        self.contract = contract
        self.cuda_graphs = cuda_graphs
        self.gpu = _Gpu(device)
        self._logger = self.trt.Logger(self.trt.Logger.WARNING)
        with open(path, "rb") as f:
            plan = f.read()
        with self.gpu as cuda:
            self.runtime = self.trt.Runtime(self._logger)
            self.engine = self.runtime.deserialize_cuda_engine(plan)
            if self.engine is None:
                raise BackendError(
                    "TensorRT cannot deserialise {} (built by another TensorRT version or for another GPU?)".format(path),
                    hint="rebuild the engines on this device: emotrt build BUNDLE",
                )
            self.io = trt_inference.io_tensors(self.trt, self.engine)
            self.inputs = tuple(TensorSpec(t.name, t.shape, t.dtype) for t in self.io if t.is_input)
            self.outputs = tuple(TensorSpec(t.name, t.shape, t.dtype) for t in self.io if not t.is_input)
            self.stream = cuda.Stream()
            self.context = self.engine.create_execution_context()
            self.buffers = {t.name: _Buffer(cuda, self._alloc_shape(t), t.dtype) for t in self.io}
            for name, buf in self.buffers.items():
                self.context.set_tensor_address(name, buf.address)

    def _alloc_shape(self, tensor: trt_inference.IOTensor) -> Any:
        """Inputs: the profile's max shape. Dynamic outputs start at one element and grow in ``_fit``."""
        if tensor.is_input or all(d >= 0 for d in tensor.shape):
            return tensor.max_shape
        return (1,)

    def _fit(self, cuda: Any, name: str, shape: Any) -> np.ndarray:
        """A host view of ``shape`` on ``name``'s buffer, reallocating (and rebinding) when it is too small."""
        size = int(np.prod(shape))
        buf = self.buffers[name]
        if buf.host.size < size:
            buf.free()
            buf = self.buffers[name] = _Buffer(cuda, (size,), buf.host.dtype)
            self.context.set_tensor_address(name, buf.address)
        return buf.host.reshape(-1)[:size].reshape(shape)

    def _run(self, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        with self.gpu as cuda:
            dynamic = False
            for spec in self.inputs:
                array = np.ascontiguousarray(feed[spec.name], dtype=spec.dtype)
                host = self.buffers[spec.name].host
                if any(d < 0 for d in spec.shape):
                    dynamic = True
                    self.context.set_input_shape(spec.name, array.shape)
                    host = self._fit(cuda, spec.name, array.shape)
                np.copyto(host, array)
                cuda.memcpy_htod_async(self.buffers[spec.name].device, host, self.stream)
            results = {}
            for spec in self.outputs:
                # With every input shape set, the context knows each output's shape (TensorRT 8.5+).
                shape = tuple(self.context.get_tensor_shape(spec.name)) if dynamic else spec.shape
                results[spec.name] = self._fit(cuda, spec.name, shape) if dynamic else self.buffers[spec.name].host
            trt_inference.enqueue(self.context, self.stream.handle)
            for name, host in results.items():
                cuda.memcpy_dtoh_async(host, self.buffers[name].device, self.stream)
            self.stream.synchronize()
            return {name: array.copy() for name, array in results.items()}

    def create_stepper(self) -> "TensorRTStepper":
        """A per-stream stepper with GPU-resident, ping-ponged TSE state."""
        return TensorRTStepper(self, cuda_graphs=self.cuda_graphs)

    def close(self) -> None:
        if getattr(self, "buffers", None) is None:
            return
        with self.gpu:
            for buf in self.buffers.values():
                buf.free()
            self.buffers = None
            self.context = self.engine = self.runtime = None


class TensorRTStepper:
    """Hop-by-hop driver of a streaming plan; state stays on the GPU (two buffers per state)."""

    def __init__(self, engine: TensorRTEngine, cuda_graphs: bool = False) -> None:
        self.engine = engine
        self.contract = require_contract(engine)
        self.cuda_graphs = cuda_graphs
        io = {t.name: t for t in engine.io}
        self._pairs = [(s.input_name, s.output_name, s) for s in self.contract.states]
        missing = [n for pair in self._pairs for n in pair[:2] if n not in io]
        if missing:
            raise BackendError("{}: the plan lacks state tensors {}".format(engine.name, ", ".join(missing)),
                               hint="rebuild the plan from the bundle's tse_step ONNX")
        with engine.gpu as cuda:
            self.stream = cuda.Stream()
            self.context = engine.engine.create_execution_context()
            state_names = {n for pair in self._pairs for n in pair[:2]}
            self.buffers = {t.name: _Buffer(cuda, t.max_shape, t.dtype) for t in engine.io if t.name not in state_names}
            self.state = {s.name: (_Buffer(cuda, s.shape, np.dtype(np.float32)), _Buffer(cuda, s.shape, np.dtype(np.float32)))
                          for _, _, s in self._pairs}
            for name, buf in self.buffers.items():
                self.context.set_tensor_address(name, buf.address)
        self._static = [t.name for t in engine.io if t.is_input and t.name not in state_names and t.name != "audio"]
        self._outputs = [t.name for t in engine.io if not t.is_input and t.name not in state_names]
        self._graphs: List[Any] = []
        self._uploaded: Dict[str, np.ndarray] = {}
        self.parity = 0
        if cuda_graphs:
            with engine.gpu as cuda:
                self._capture(cuda)
        self.reset()

    def reset(self) -> None:
        """Both copies of every state back to the contract's initial value; parity 0."""
        with self.engine.gpu as cuda:
            for _, _, spec in self._pairs:
                for buf in self.state[spec.name]:
                    buf.host.fill(spec.init)
                    cuda.memcpy_htod_async(buf.device, buf.host, self.stream)
            self.stream.synchronize()
        self.parity = 0

    def _bind_state(self, parity: int) -> None:
        for name_in, name_out, spec in self._pairs:
            pair = self.state[spec.name]
            self.context.set_tensor_address(name_in, pair[parity].address)
            self.context.set_tensor_address(name_out, pair[1 - parity].address)

    def _enqueue(self, cuda: Any, parity: int) -> None:
        """Upload the audio hop, run with state bound for ``parity``, download the outputs."""
        self._bind_state(parity)
        audio = self.buffers["audio"]
        cuda.memcpy_htod_async(audio.device, audio.host, self.stream)
        trt_inference.enqueue(self.context, self.stream.handle)
        for name in self._outputs:
            cuda.memcpy_dtoh_async(self.buffers[name].host, self.buffers[name].device, self.stream)

    def _capture(self, cuda: Any) -> None:
        """One graph per parity, each after a warm-up run outside capture; reset() clears what warm-up wrote."""
        try:
            for parity in (0, 1):
                self._enqueue(cuda, parity)
                self.stream.synchronize()
                self.stream.begin_capture()
                self._enqueue(cuda, parity)
                self._graphs.append(self.stream.end_capture().instantiate())
        except cuda.Error as exc:
            log.warning("%s: CUDA graph capture failed (%s); running without graphs", self.engine.name, exc)
            self._graphs = []
        self.cuda_graphs = bool(self._graphs)

    def step(self, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Run one hop. Other inputs (the speaker embedding) are uploaded only when a new array is passed."""
        with self.engine.gpu as cuda:
            for name in self._static:
                array = inputs[name]
                if self._uploaded.get(name) is not array:
                    np.copyto(self.buffers[name].host, array)
                    cuda.memcpy_htod_async(self.buffers[name].device, self.buffers[name].host, self.stream)
                    self._uploaded[name] = array
            np.copyto(self.buffers["audio"].host, inputs["audio"])
            if self._graphs:
                self._graphs[self.parity].launch(self.stream)
            else:
                self._enqueue(cuda, self.parity)
            self.stream.synchronize()
        self.parity = 1 - self.parity
        return {name: self.buffers[name].host.copy() for name in self._outputs}

    def close(self) -> None:
        if self.buffers is None:
            return
        with self.engine.gpu:
            for buf in list(self.buffers.values()) + [b for pair in self.state.values() for b in pair]:
                buf.free()
        self.buffers = None
        self._graphs = []


def load(path: Any, contract: Optional[ModelContract] = None, cuda_graphs: bool = False, device: int = 0,
         **_ignored: Any) -> TensorRTEngine:
    """Open a serialized plan. ``contract`` (from the bundle manifest) names the streaming state."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise BackendError("TensorRT plan not found: " + path, hint="build it on this device: emotrt build BUNDLE")
    return TensorRTEngine(path, contract=contract, cuda_graphs=cuda_graphs, device=device)
