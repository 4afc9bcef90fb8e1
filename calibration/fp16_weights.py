"""FP16 storage of the float weights the device may run in FP16: an FP16 initializer and a ``Cast`` to float.

In a Q/DQ graph the weights TensorRT does not run in INT8 (the MatMul/Gemm of blocks the mixed
plan kept out, biases, depthwise taps applied with ``Mul``) were stored FP32. The weakly typed
INT8 build (TensorRT 8.5-10.0) sets the FP16 flag with INT8 (``devices/trt_compat.py``) and
pins only the precision plan's FP32 nodes to FP32, so these layers may run FP16 there anyway;
the strongly typed build (10.1+) keeps computing them in FP32, from the FP16-rounded values
(TensorRT folds the ``Cast`` of a constant at build time). ONNX Runtime runs the same rounding,
so the calibration's accuracy check includes it. The parsers take both halves: onnx-tensorrt maps a
FLOAT16 initializer to ``DataType::kHALF`` weights (``convertDtype``, 8.x and 10.x) and its 8.5
operator matrix lists ``Cast`` for FP32/FP16 (``export/trt_ops/8.5.json``).

A weight is stored FP16 only when every node reading it is outside the plan's FP32 nodes and
reads it where the ONNX parser takes a computed tensor: either MatMul input
(IMatrixMultiplyLayer takes two tensors), an elementwise operand, or Gemm B/C (onnx-tensorrt's
Gemm importer calls ``convertToTensor`` on B and C and uses a fully connected layer only when
both are initializers; ``builtin_op_importers.cpp``, 8.x and 10.x branches). Never a
Conv/ConvTranspose kernel or bias: TensorRT 8.5/8.6 may refuse a computed kernel (the export
lint's ``constant_inputs`` rule), nor a Q/DQ scale.

One FP32-plan node takes FP16-stored weights too: a ``LayerNormalization``'s scale and bias. The
normalisation still computes in FP32 (the plan pins the node; the ``Cast`` gives it float32
inputs), from γ/β rounded to FP16. onnx-tensorrt's LayerNormalization importer (8.6-GA, 10.0-GA,
10.1-GA ``onnxOpImporters.cpp``) takes both through ``convertToTensor``; 8.5 exports decompose it.
"""
from __future__ import annotations

import logging
from typing import Collection, Dict, List

import numpy as np
import onnx
from onnx import helper, numpy_helper

from emotrt.calibration.graph import readers

log = logging.getLogger(__name__)

CASTABLE_INPUTS: Dict[str, Collection[int]] = {
    "MatMul": (0, 1), "Gemm": (0, 1, 2), "Mul": (0, 1), "Add": (0, 1), "Sub": (0, 1), "Div": (0, 1),
}
#: FP32-plan ops whose parameters may still be stored FP16 (they compute in FP32 from the rounded values)
FP32_NODE_PARAMETERS: Dict[str, Collection[int]] = {"LayerNormalization": (1, 2)}
MIN_ELEMENTS = 16  # below this the Cast node costs more bytes than FP16 saves


def _castable(init: onnx.TensorProto, users: List[onnx.NodeProto], fp32_nodes: Collection[str]) -> bool:
    if init.data_type != onnx.TensorProto.FLOAT or not users or int(np.prod(init.dims)) < MIN_ELEMENTS:
        return False
    for node in users:
        slots = [i for i, name in enumerate(node.input) if name == init.name]
        if node.domain not in ("", "ai.onnx"):
            return False
        allowed = FP32_NODE_PARAMETERS if node.name in fp32_nodes else CASTABLE_INPUTS
        if not set(slots) <= set(allowed.get(node.op_type, ())):
            return False
    values = numpy_helper.to_array(init)
    return bool(np.all(np.isfinite(values)) and np.abs(values).max() <= np.finfo(np.float16).max)


def store_fp16_weights(model: onnx.ModelProto, fp32_nodes: Collection[str]) -> List[str]:
    """Store castable float32 initializers as FP16 + ``Cast`` (in place); return the tensors changed."""
    graph = model.graph
    reading = readers(graph)
    io = {v.name for v in list(graph.input) + list(graph.output)}
    taken = {i.name for i in graph.initializer} | {o for n in graph.node for o in n.output}
    fp32 = set(fp32_nodes)
    casts, changed = [], []
    for init in graph.initializer:
        if init.name in io or not _castable(init, reading.get(init.name, []), fp32):
            continue
        stored = init.name + "h"
        while stored in taken:
            stored += "_"
        taken.add(stored)
        changed.append(init.name)
        casts.append(helper.make_node("Cast", [stored], [init.name], name="cast" + stored, to=onnx.TensorProto.FLOAT))
        init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), stored))
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    log.debug("stored %d float weights as FP16 + Cast", len(changed))
    return changed
