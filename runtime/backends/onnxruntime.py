"""ONNX Runtime backend: the CPU reference and the fallback (CUDA/TensorRT providers when present)."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from emotrt.runtime.backends.base import Engine, TensorSpec
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

    def close(self) -> None:
        self.session = None


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
