"""ONNX Runtime backend: the CPU reference and the fallback (CUDA/TensorRT providers when present)."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from emotrt.runtime.backends.base import Engine, TensorSpec
from emotrt.runtime.backends.stepper import HostStepper, require_contract, state_arrays
from emotrt.runtime.contract import ModelContract
from emotrt.runtime.errors import BackendError, DependencyError, ModelContractError

_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


def _import_ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise DependencyError(
            "onnxruntime is not installed ({})".format(exc), hint="pip install 'emotrt[device]'"
        ) from exc
    return onnxruntime


def _specs(args: Sequence[Any]) -> tuple:
    return tuple(
        TensorSpec(a.name, tuple(a.shape), np.dtype(_ORT_TYPES.get(a.type, np.float32))) for a in args
    )


class OnnxRuntimeEngine(Engine):
    """One ``InferenceSession`` behind the :class:`Engine` interface."""

    def __init__(self, session: Any, name: str) -> None:
        self.session = session
        self.name = name
        self.inputs = _specs(session.get_inputs())
        self.outputs = _specs(session.get_outputs())
        self._output_names = [o.name for o in self.outputs]
        self.providers = session.get_providers()
        props = session.get_modelmeta().custom_metadata_map
        try:
            self.contract = ModelContract.from_metadata(props, source=name)
        except ModelContractError:
            self.contract = None

    def _run(self, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        values = self.session.run(self._output_names, feed)
        return dict(zip(self._output_names, values))

    def create_stepper(self) -> Any:
        """:class:`BoundStepper` when every input and output has a static shape, else the generic host stepper."""
        require_contract(self)
        if all(all(isinstance(d, int) for d in spec.shape) for spec in self.inputs + self.outputs):
            return BoundStepper(self)
        return HostStepper(self)

    def close(self) -> None:
        self.session = None


class BoundStepper:
    """Hop-by-hop driver on pre-allocated numpy buffers bound once with IOBinding (CPU analogue of the TensorRT stepper).

    Two bindings, one per parity: parity p reads state copy p and writes copy 1-p, so a hop only
    copies the audio in and the outputs out; no feed dict is rebuilt and no state array is
    allocated (``session.run`` would allocate every state output each hop). See
    https://onnxruntime.ai/docs/api/python/api_summary.html#iobinding
    """

    def __init__(self, engine: OnnxRuntimeEngine) -> None:
        self.engine = engine
        self.contract = require_contract(engine)
        state_names = {n for s in self.contract.states for n in (s.input_name, s.output_name)}
        self._state = {s.input_name: (np.zeros(s.shape, np.float32), np.zeros(s.shape, np.float32))
                       for s in self.contract.states}
        self._inputs = {t.name: np.zeros(t.shape, t.dtype) for t in engine.inputs if t.name not in state_names}
        self._outputs = {t.name: np.zeros(t.shape, t.dtype) for t in engine.outputs if t.name not in state_names}
        self._given: Dict[str, np.ndarray] = {}
        self._bindings = [self._bind(parity) for parity in (0, 1)]
        self.parity = 0
        self.reset()

    def _bind(self, parity: int) -> Any:
        binding = self.engine.session.io_binding()
        for name, array in self._inputs.items():
            binding.bind_input(name, "cpu", 0, array.dtype, array.shape, array.ctypes.data)
        for name, array in self._outputs.items():
            binding.bind_output(name, "cpu", 0, array.dtype, array.shape, array.ctypes.data)
        for spec in self.contract.states:
            source, target = self._state[spec.input_name][parity], self._state[spec.input_name][1 - parity]
            binding.bind_input(spec.input_name, "cpu", 0, source.dtype, source.shape, source.ctypes.data)
            binding.bind_output(spec.output_name, "cpu", 0, target.dtype, target.shape, target.ctypes.data)
        return binding

    def reset(self) -> None:
        """Both copies of every state back to the contract's initial value; parity 0."""
        for name, value in state_arrays(self.contract).items():
            for copy in self._state[name]:
                np.copyto(copy, value)
        self.parity = 0

    def step(self, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Run one hop; inputs other than ``audio`` (the speaker embedding) are copied only when a new array is passed."""
        for name, array in inputs.items():
            if name != "audio" and self._given.get(name) is array:
                continue
            target = self._inputs.get(name)
            if target is None or array.shape != target.shape:
                raise BackendError("{}: input {} of shape {} does not fit the bound {}".format(
                    self.engine.name, name, getattr(array, "shape", None), None if target is None else target.shape))
            np.copyto(target, array)
            self._given[name] = array
        if len(self._given) < len(self._inputs):
            missing = sorted(set(self._inputs) - set(self._given))
            raise BackendError("{}: no value given yet for input(s) {}".format(self.engine.name, ", ".join(missing)))
        self.engine.session.run_with_iobinding(self._bindings[self.parity])
        self.parity = 1 - self.parity
        return {name: array.copy() for name, array in self._outputs.items()}

    def close(self) -> None:
        """Drop the bindings; the buffers are numpy arrays freed with the stepper."""
        self._bindings = []


GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def choose_providers(ort: Any, providers: Union[None, str, Sequence[str]]) -> List[str]:
    """``None``: CPU only; ``"auto"``: TensorRT and CUDA execution providers first when this build has them."""
    if providers is None:
        return ["CPUExecutionProvider"]
    if providers == "auto":
        available = ort.get_available_providers()
        return [p for p in GPU_PROVIDERS if p in available] + ["CPUExecutionProvider"]
    return list(providers)


def load(
    path: Any,
    threads: int = 1,
    providers: Union[None, str, Sequence[str]] = None,
    profile_prefix: Optional[str] = None,
) -> OnnxRuntimeEngine:
    """Open ``path`` with ONNX Runtime. ``threads=1`` suits per-hop streaming calls; ``providers="auto"`` uses GPUs."""
    ort = _import_ort()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise BackendError("model file not found: " + path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    chosen = choose_providers(ort, providers)
    try:
        session = ort.InferenceSession(path, sess_options=options, providers=chosen)
    except Exception as exc:  # onnxruntime raises its own untyped errors for corrupt files
        raise BackendError("ONNX Runtime cannot load {}: {}".format(path, exc)) from exc
    return OnnxRuntimeEngine(session, os.path.basename(path))
