"""Inference backends behind one interface (Polygraphy's loader/runner shape).

    from emotrt.runtime.backends import load_engine
    with load_engine("tse_step.onnx", backend="onnxruntime") as engine:
        outputs = engine.run(feed)

Each backend module is imported only when asked for, so importing this package
pulls in neither onnxruntime nor TensorRT.
"""
from __future__ import annotations

import importlib
from typing import Any

from emotrt.runtime.backends.base import Engine, TensorSpec
from emotrt.runtime.errors import BackendError

BACKENDS = {
    "onnxruntime": "emotrt.runtime.backends.onnxruntime",
    "tensorrt": "emotrt.runtime.backends.tensorrt",
}


def load_engine(path: Any, backend: str = "onnxruntime", **options: Any) -> Engine:
    """Load one model file with the named backend."""
    if backend not in BACKENDS:
        raise BackendError(
            "unknown backend {!r}; expected one of {}".format(backend, ", ".join(sorted(BACKENDS)))
        )
    module = importlib.import_module(BACKENDS[backend])
    return module.load(path, **options)


__all__ = ["BACKENDS", "Engine", "TensorSpec", "load_engine"]
