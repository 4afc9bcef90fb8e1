"""FP16 plans: which nodes stay FP32, a range check against FP16 overflow, and an FP16 ONNX for ORT.

LayerNorm, Softmax and reductions overflow in FP16 inside transformer encoders (TensorRT
issues 2564, 3101, 2466), and an STFT power spectrum comes within 2x of the FP16 maximum
(REFERENCE.md), so they and the log-mel front end stay FP32 by default. Any tensor whose
|max| on calibration data exceeds ``FLAG_LIMIT`` is flagged and its producer and consumers
are kept FP32 too. The FP16 ONNX (onnxconverter-common) lets ONNX Runtime on CPU measure
what FP16 costs; on the device TensorRT applies the same plan to the FP32 graph.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Set, Tuple

import onnx

from emotrt.calibration.graph import readers
from emotrt.calibration.qdq import frontend_nodes

log = logging.getLogger(__name__)

FP16_MAX = 65504.0
FLAG_LIMIT = 6.0e4
FP32_OPS = (
    "LayerNormalization", "Softmax", "LogSoftmax", "ReduceMean", "ReduceSum", "ReduceSumSquare",
    "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceProd",
)


@dataclass(frozen=True)
class Fp16Plan:
    """FP16 everywhere except ``fp32_nodes`` (by op type, front end or flagged range)."""

    fp32_op_types: Tuple[str, ...]
    fp32_nodes: Tuple[str, ...]
    flagged: Tuple[Tuple[str, float], ...]

    def to_json(self) -> Dict[str, object]:
        """The plan as the precision plan's ``fp16`` section."""
        return {
            "fp32_op_types": list(self.fp32_op_types),
            "fp32_nodes": list(self.fp32_nodes),
            "flagged": [{"tensor": name, "abs_max": value} for name, value in self.flagged],
            "flag_limit": FLAG_LIMIT,
        }


def flag_ranges(amax: Mapping[str, float], limit: float = FLAG_LIMIT) -> List[Tuple[str, float]]:
    """Tensors whose absolute maximum exceeds ``limit``, largest first."""
    found = [(name, float(value)) for name, value in amax.items() if value > limit]
    return sorted(found, key=lambda item: -item[1])


def plan_fp16(
    model: onnx.ModelProto, amax: Mapping[str, float], fp32_ops: Tuple[str, ...] = FP32_OPS, keep_frontend: bool = True
) -> Fp16Plan:
    """Decide which nodes stay FP32 from op types, the front end and measured ranges."""
    flagged = flag_ranges(amax)
    hot = {name for name, _ in flagged}
    keep = set(frontend_nodes(model)) if keep_frontend else set()
    for node in model.graph.node:
        if node.op_type in fp32_ops or hot.intersection(node.output) or hot.intersection(node.input):
            keep.add(node.name)
    for name, value in flagged:
        log.warning("tensor %s reaches |x| = %.4g on calibration data (FP16 max %.0f): kept FP32", name, value, FP16_MAX)
    ordered = tuple(n.name for n in model.graph.node if n.name in keep and n.op_type != "Constant")
    return Fp16Plan(tuple(fp32_ops), ordered, tuple(flagged))


def convert_fp16(model_path: Path, out_path: Path, plan: Fp16Plan) -> Path:
    """Write an FP16 graph (FP32 I/O) that keeps the plan's nodes in FP32."""
    from onnxconverter_common import float16

    model = _fold_weight_identities(onnx.load(str(model_path)))
    # Stale or duplicated value_info (the export's graphs can list a tensor twice) would keep an
    # FP32 type next to the converter's FP16 one; the converter re-infers the types itself.
    del model.graph.value_info[:]
    op_block_list = sorted(set(float16.DEFAULT_OP_BLOCK_LIST) | set(plan.fp32_op_types))
    _unshare_float_initializers(model.graph, lambda n: n.name in plan.fp32_nodes or n.op_type in op_block_list)
    converted = float16.convert_float_to_float16(
        model, keep_io_types=True, op_block_list=op_block_list, node_block_list=list(plan.fp32_nodes),
    )
    _drop_fp16_round_trips(converted.graph, set(plan.fp32_nodes))
    onnx.save(converted, str(out_path))
    return Path(out_path)


def _is_cast_to(node: onnx.NodeProto, dtype: int) -> bool:
    return node.op_type == "Cast" and any(a.name == "to" and a.i == dtype for a in node.attribute)


def _drop_fp16_round_trips(graph: onnx.GraphProto, fp32_nodes: Set[str]) -> None:
    """Wire FP32 nodes straight to each other where the converter put Cast(FP16) -> Cast(FP32) between them.

    onnxconverter-common 1.16 removes such a pair only when the tensor has one consumer; with
    several (a Conv feeding two Slices, the DFT phase index feeding Div and Sub) the FP32 value
    went through FP16, rounding it and turning anything above 65504 into inf.
    """
    producer = {out: node for node in graph.node for out in node.output}
    consumers = readers(graph)
    outputs = {o.name for o in graph.output}
    rename: Dict[str, str] = {}
    dropped: Set[str] = set()
    for node in graph.node:
        source = producer.get(node.input[0]) if node.input else None
        users = consumers.get(node.output[0], []) if _is_cast_to(node, onnx.TensorProto.FLOAT16) else []
        if source is None or source.name not in fp32_nodes or not users or node.output[0] in outputs:
            continue
        if all(_is_cast_to(u, onnx.TensorProto.FLOAT) and u.output[0] not in outputs for u in users):
            rename.update((u.output[0], node.input[0]) for u in users)
            dropped.update([node.name] + [u.name for u in users])
    kept = [node for node in graph.node if node.name not in dropped]
    for node in kept:
        node.input[:] = [rename.get(name, name) for name in node.input]
    del graph.node[:]
    graph.node.extend(kept)


def _unshare_float_initializers(graph: onnx.GraphProto, is_fp32: Callable[[onnx.NodeProto], bool]) -> None:
    """Give FP32 nodes their own copy of a float initializer that FP16 nodes read too.

    The exporter deduplicates equal constants (the 0.5 of the front end's Hann window and of
    every GELU), and onnxconverter-common converts a shared initializer for one side only,
    leaving a Mul with an FP16 and an FP32 input that ONNX Runtime refuses to load.
    """
    reading = readers(graph)
    for init in list(graph.initializer):
        users = reading.get(init.name, [])
        if init.data_type != onnx.TensorProto.FLOAT or all(map(is_fp32, users)) or not any(map(is_fp32, users)):
            continue
        copy = onnx.TensorProto()
        copy.CopyFrom(init)
        copy.name = init.name + "_fp32"
        graph.initializer.append(copy)
        for node in filter(is_fp32, users):
            node.input[:] = [copy.name if name == init.name else name for name in node.input]


def _fold_weight_identities(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replace ``Identity(initializer)`` (TorchScript's shared weights) by a copy of the initializer.

    onnxconverter-common converts the initializer but not the Identity's declared output
    type, which ONNX Runtime then refuses; onnxslim would fold them too but renames nodes
    the plan refers to.
    """
    inits = {i.name: i for i in model.graph.initializer}
    keep = []
    for node in model.graph.node:
        if node.op_type == "Identity" and node.input[0] in inits:
            copy = onnx.TensorProto()
            copy.CopyFrom(inits[node.input[0]])
            copy.name = node.output[0]
            model.graph.initializer.append(copy)
        else:
            keep.append(node)
    del model.graph.node[:]
    model.graph.node.extend(keep)
    return model
