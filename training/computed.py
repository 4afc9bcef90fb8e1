"""Fixed tables (DFT basis, mel filterbank, sinusoidal positions) written as graph ops instead of stored constants.

A table traced from torch ops on constants is recorded as one constant, and the front end and
positions stay FP32 in every precision, so a stored table would be a large part of a small INT8
file. Each table is a ``torch.autograd.Function`` whose ``forward`` returns the module's
(non-persistent) buffer and whose ``symbolic`` builds the table from a few small vectors, leaving
the buffer unused, so the exporter drops it. A vector enters the graph behind a no-op
``Floor``: the TorchScript exporter's constant folding evaluates Mul/Add/Concat of constants but
not ``Floor``, so the outer products built on it stay ops; onnxslim is held back by its
``size_threshold`` (export/slim.py). TensorRT folds such subgraphs at build time or runs them as
a few elementwise layers.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch


def const(g: Any, value: Any) -> Any:
    """A float32 ONNX Constant in a ``symbolic`` graph."""
    return g.op("Constant", value_t=torch.tensor(np.asarray(value, dtype=np.float32)))


def integers(g: Any, start: int, count: int, column: bool) -> Any:
    """start..start+count-1 as a small float32 vector ([count, 1] or [1, count]) that the exporter does not fold."""
    values = np.arange(start, start + count, dtype=np.float32)
    return g.op("Floor", const(g, values[:, None] if column else values[None, :]))


def int64s(g: Any, values: Any) -> Any:
    """An int64 ONNX Constant (axes, shapes) in a ``symbolic`` graph."""
    return g.op("Constant", value_t=torch.tensor(values, dtype=torch.int64))
