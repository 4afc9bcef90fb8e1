"""Where the bytes of a (quantised) ONNX file are: initializer bytes per element type and reading op.

Answers "what stays FP32 in ``<m>.int8.onnx``" (biases, per-channel scales, LayerNorm and
PReLU parameters, depthwise taps, blocks the mixed plan kept out); a weight behind a
``DequantizeLinear`` or a ``Cast`` is counted under the op that reads its output (``DQ->Gemm``,
``Cast->MatMul``).
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import onnx
from onnx import helper

from emotrt.calibration.graph import readers

_THROUGH = {"DequantizeLinear": "DQ", "Cast": "Cast"}  # counted under the op reading their output


def initializer_bytes(model: onnx.ModelProto) -> List[Tuple[str, str, int, int]]:
    """``(element type, reading op, bytes, count)`` per group, largest first."""
    first = {name: nodes[0] for name, nodes in readers(model.graph).items()}
    groups: Dict[Tuple[str, str], List[int]] = {}
    for init in model.graph.initializer:
        reader = first.get(init.name)
        op = reader.op_type if reader is not None else "-"
        if reader is not None and op in _THROUGH:
            nxt = first.get(reader.output[0])
            op = _THROUGH[op] + "->" + (nxt.op_type if nxt is not None else "-")
        dtype = helper.tensor_dtype_to_np_dtype(init.data_type)
        count = 1
        for dim in init.dims:
            count *= dim
        group = groups.setdefault((dtype.name, op), [0, 0])
        group[0] += count * dtype.itemsize
        group[1] += 1
    return sorted(((dtype, op, size, n) for (dtype, op), (size, n) in groups.items()), key=lambda row: -row[2])


def float_summary(model: onnx.ModelProto, top: int = 4, dtype: str = "float32") -> str:
    """The largest ``dtype`` groups as one line, e.g. ``LayerNormalization 44 KB, Mul 31 KB``."""
    rows = [row for row in initializer_bytes(model) if row[0] == dtype][:top]
    return ", ".join("{} {:.0f} KB".format(op, size / 1024.0) for _, op, size, _ in rows)
