"""The TensorRT inference calls the runtime's backend makes (the build-side calls are
``emotrt.devices.trt_compat``; versions and the import are :mod:`emotrt.runtime.trt_version`).

Inference uses only the name-based tensor API that TensorRT 8.5 introduced and 10.x/11.x
kept (``num_io_tensors``, ``get_tensor_name``, ``get_tensor_mode``, ``set_input_shape``,
``set_tensor_address``, ``execute_async_v3``), per NVIDIA's "Migrating Python Code from
TensorRT 8.x to 10.x" guide; the binding-index API removed in 10.0 is never used. So the only
version branch is the floor, which ``trt_version.import_tensorrt`` enforces.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Tuple

import numpy as np

from emotrt.runtime.errors import BackendError, DependencyError


def import_pycuda() -> Any:
    """``pycuda.driver``, initialised; a clear error where CUDA or pycuda is missing."""
    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        raise DependencyError("pycuda is not importable ({})".format(exc), hint="pip install pycuda (on the device)") from exc
    try:
        cuda.init()
    except cuda.Error as exc:
        raise BackendError("CUDA cannot initialise: {}".format(exc), hint="check the GPU driver with `emotrt doctor`") from exc
    return cuda


@dataclass(frozen=True)
class IOTensor:
    """One engine I/O tensor as the name-based API describes it (-1 marks a dynamic dim)."""

    name: str
    is_input: bool
    shape: Tuple[int, ...]
    dtype: np.dtype
    max_shape: Tuple[int, ...]


def io_tensors(trt: Any, engine: Any) -> List[IOTensor]:
    """Every I/O tensor of ``engine``; dynamic inputs get the max shape of optimisation profile 0."""
    found = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
        shape = tuple(int(d) for d in engine.get_tensor_shape(name))
        max_shape = shape
        if is_input and any(d < 0 for d in shape):
            max_shape = tuple(int(d) for d in engine.get_tensor_profile_shape(name, 0)[2])
        found.append(IOTensor(name, is_input, shape, np.dtype(trt.nptype(engine.get_tensor_dtype(name))), max_shape))
    return found


def enqueue(context: Any, stream_handle: int) -> None:
    """Launch one inference on ``stream_handle`` (asynchronous)."""
    if not context.execute_async_v3(stream_handle):
        raise BackendError("TensorRT execute_async_v3 failed (see the TensorRT log above)")
