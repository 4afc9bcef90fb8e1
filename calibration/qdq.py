"""Explicit INT8: Q/DQ ONNX that TensorRT accepts, via ``onnxruntime.quantization``.

Signed INT8 activations and weights, symmetric (zero point 0), per-channel weights, QDQ
format (never QOperator or DynamicQuantizeLinear). Only Conv/MatMul/Gemm are quantised and
the log-mel front end (everything feeding a ``Log``) stays FP32: quantising it destroyed a
SER's output (REFERENCE.md). Activation ranges are computed once per graph
(:func:`collect_ranges`) and reused for every variant and for the TensorRT cache.

Why ONNX Runtime and not NVIDIA ModelOpt (measured here, 2026-11-22, nvidia-modelopt 0.47.0 in a
throwaway venv): its ONNX PTQ does run on CPU, but its ``[onnx]`` extra pins onnx~=1.21,
onnxruntime-gpu~=1.24 and cupy-cuda12x, conflicting with this project's onnx 1.23 /
onnxruntime 1.31. On the toy log-mel SER with the same 8 calibration windows ("max"
calibration) it quantised the log-mel MatMul and the ``Log`` output, giving a held-out max
logit error of 0.63 against 0.025 for this module, and it dropped the graph's
``metadata_props`` (the emotrt contract). ONNX Runtime's quantizer gives the node-level control
the sensitivity search needs and keeps the metadata.
"""
from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Collection, Dict, List, Optional, Sequence, Tuple

import numpy as np
import onnx

from emotrt.calibration.data import CalibrationSet
from emotrt.calibration.fp16_weights import store_fp16_weights
from emotrt.runtime.errors import ConfigError

log = logging.getLogger(__name__)

METHODS = ("minmax", "entropy", "percentile")
QUANTISED_OPS = ("Conv", "MatMul", "Gemm")


@dataclass(frozen=True)
class QuantConfig:
    """How to calibrate and quantise. ``num_bins``/``num_quantized_bins`` are Entropy's
    histogram settings (equal values made ORT return the MinMax range), ``percentile`` is
    Percentile's. Entropy by default: the default SER's plan loses at most 0.5 UA points on the
    stored test sets (MinMax 0.54, Percentile 0.69; under a UA-only check those lost 1.2;
    docs/eval/channels.md), and it is TensorRT's preferred implicit calibrator (IInt8EntropyCalibrator2)."""

    method: str = "entropy"
    percentile: float = 99.999
    num_bins: int = 512
    num_quantized_bins: int = 128
    per_channel: bool = True
    op_types: Tuple[str, ...] = QUANTISED_OPS

    def __post_init__(self) -> None:
        problems = []
        if self.method not in METHODS:
            problems.append("method={!r} is not one of {}".format(self.method, ", ".join(METHODS)))
        if not 50.0 < self.percentile <= 100.0:
            problems.append("percentile={} must be in (50, 100]".format(self.percentile))
        if self.num_quantized_bins < 128 or self.num_bins < self.num_quantized_bins:
            problems.append(
                "num_bins={} must be >= num_quantized_bins={} >= 128".format(self.num_bins, self.num_quantized_bins)
            )
        if problems:
            raise ConfigError("invalid quantisation config: " + "; ".join(problems), hint="see `emotrt calibrate --help`")


@dataclass(frozen=True)
class Ranges:
    """Per-tensor activation ranges of one graph on one calibration set (JSON-cacheable for ORT)."""

    method: str
    lows: Dict[str, float] = field(default_factory=dict)
    highs: Dict[str, float] = field(default_factory=dict)
    ort_json: str = ""

    def amax(self) -> Dict[str, float]:
        """Absolute maximum per tensor, the symmetric range TensorRT uses."""
        return {name: max(abs(self.lows[name]), abs(self.highs[name])) for name in self.highs}


def _ort_method(name: str):
    from onnxruntime.quantization import CalibrationMethod

    return {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
            "percentile": CalibrationMethod.Percentile}[name]


def collect_ranges(model_path: Path, calib: CalibrationSet, config: QuantConfig) -> Ranges:
    """Run the calibration set through the graph once and return every float tensor's range."""
    from onnxruntime.quantization import create_calibrator
    from onnxruntime.quantization.calibrate import save_tensors_data

    options = {"symmetric": True, "num_bins": config.num_bins, "num_quantized_bins": config.num_quantized_bins,
               "percentile": config.percentile}
    with tempfile.TemporaryDirectory(prefix="emotrt-calib-") as tmp:
        calibrator = create_calibrator(
            Path(model_path), None, augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=_ort_method(config.method), extra_options=options,
        )
        chatter = io.StringIO()
        with contextlib.redirect_stdout(chatter):  # the histogram calibrators print() their progress
            calibrator.collect_data(calib.reader())
            data = calibrator.compute_data()
        log.debug("%s", chatter.getvalue())
        save_tensors_data(data, Path(tmp) / "ranges.json")
        ort_json = (Path(tmp) / "ranges.json").read_text()
    lows, highs = {}, {}
    for name, value in data.items():
        low, high = value.range_value
        lows[name], highs[name] = float(np.min(low)), float(np.max(high))
    return Ranges(config.method, lows, highs, ort_json)


def frontend_nodes(model: onnx.ModelProto) -> List[str]:
    """Names of the nodes that feed a ``Log`` (the log-mel front end) and the ``Log`` itself."""
    producers = {out: node for node in model.graph.node for out in node.output}
    seen: Dict[str, onnx.NodeProto] = {}
    stack = [node for node in model.graph.node if node.op_type == "Log"]
    while stack:
        node = stack.pop()
        if node.name in seen:
            continue
        seen[node.name] = node
        stack.extend(producers[i] for i in node.input if i in producers)
    return [n.name for n in model.graph.node if n.name in seen]


def quantisable_nodes(model: onnx.ModelProto, config: QuantConfig) -> List[str]:
    """Nodes INT8 may cover: ``config.op_types`` outside the front end, in graph order."""
    front = set(frontend_nodes(model))
    return [n.name for n in model.graph.node if n.op_type in config.op_types and n.name not in front]


class _PreprocessAdvice(logging.Filter):
    """Drops ORT's "consider pre-processing" root-logger warning: its pre-processing
    (ORT graph optimisation) would rename the nodes and tensors the plan and cache refer to."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-process" not in str(record.msg)


def quantise(
    model_path: Path, out_path: Path, ranges: Ranges, config: QuantConfig, nodes: Sequence[str], cpu: bool = False,
    fp32_nodes: Optional[Collection[str]] = None,
) -> Path:
    """Write a Q/DQ graph quantising exactly ``nodes`` with the precomputed ``ranges``.

    ``cpu=True`` writes instead ONNX Runtime's CPU-optimised form (QOperator, u8 activations,
    s8 per-channel weights) for CPU-only targets: TensorRT rejects it. No nodes gives an
    unchanged copy (ORT would read an empty list as "quantise everything"). Given the FP16
    plan's ``fp32_nodes``, the float weights outside them are stored FP16 + Cast
    (:mod:`emotrt.calibration.fp16_weights`).
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    if not nodes:
        shutil.copyfile(str(model_path), str(out_path))
        if fp32_nodes is not None:
            _store_fp16(out_path, fp32_nodes)
        return Path(out_path)
    advice = _PreprocessAdvice()
    logging.getLogger().addFilter(advice)
    try:
        with tempfile.TemporaryDirectory(prefix="emotrt-qdq-") as tmp:
            cache = Path(tmp) / "ranges.json"
            cache.write_text(ranges.ort_json)
            quantize_static(
                str(model_path), str(out_path), calibration_data_reader=None,
                quant_format=QuantFormat.QOperator if cpu else QuantFormat.QDQ,
                op_types_to_quantize=list(config.op_types), per_channel=config.per_channel,
                activation_type=QuantType.QUInt8 if cpu else QuantType.QInt8, weight_type=QuantType.QInt8,
                nodes_to_quantize=list(nodes),
                calibrate_method=_ort_method(config.method), calibration_cache_path=str(cache),
                # Biases stay float: TensorRT's Q/DQ types are INT8/FP8/INT4/FP4, not INT32 (docs.nvidia.com/
                # deeplearning/tensorrt/latest/inference-library/quantized-types-explicit-quantization.html).
                extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False},
            )
    finally:
        logging.getLogger().removeFilter(advice)
    _finish(model_path, out_path, None if cpu else fp32_nodes)
    return Path(out_path)


def _store_fp16(path: Path, fp32_nodes: Collection[str]) -> None:
    model = onnx.load(str(path))
    store_fp16_weights(model, fp32_nodes)
    onnx.save(model, str(path))


def _finish(source: Path, target: Path, fp32_nodes: Optional[Collection[str]]) -> None:
    """Copy the source graph's ``metadata_props`` (the emotrt contract), compact the quantised graph
    and, given ``fp32_nodes``, store the other float weights FP16."""
    original = onnx.load(str(source), load_external_data=False)
    model = onnx.load(str(target))
    present = {p.key for p in model.metadata_props}
    for prop in original.metadata_props:
        if prop.key not in present:
            model.metadata_props.add(key=prop.key, value=prop.value)
    compact_names(model.graph)
    if fp32_nodes is not None:
        store_fp16_weights(model, fp32_nodes)
    onnx.save(model, str(target))


def compact_names(graph: onnx.GraphProto) -> None:
    """Short names for every tensor but the graph's inputs and outputs, and for the nodes ORT added.

    ORT names each Q/DQ tensor after the tensor it quantises plus a suffix
    (``/tcn.9/out/MatMul_output_0_weight_quantized``, ``..._DequantizeLinear_Output``): about a
    tenth of a small INT8 file, and every intermediate ``value_info`` another 2 %. Nothing reads
    them: the engine build matches layers by node name (``devices/trt_compat.py``), so the
    source graph's node names stay, and the calibration cache names tensors of the FP32 graph.
    A graph with subgraphs (If/Loop bodies may name outer tensors) is left as it is.
    """
    if any(attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for node in graph.node
           for attr in node.attribute):
        return
    io = {v.name for v in list(graph.input) + list(graph.output)}
    names: Dict[str, str] = {}

    def short(name: str) -> str:
        if not name or name in io:
            return name
        if name not in names:
            names[name] = "t{}".format(len(names))
            while names[name] in io:
                names[name] += "_"
        return names[name]

    for node in graph.node:
        node.input[:] = [short(name) for name in node.input]
        node.output[:] = [short(name) for name in node.output]
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") and node.domain in ("", "ai.onnx"):
            node.name = "{}{}".format("q" if node.op_type == "QuantizeLinear" else "dq", node.output[0])
    for init in graph.initializer:
        init.name = short(init.name)
    del graph.value_info[:]


def tensorrt_problems(model: onnx.ModelProto) -> List[str]:
    """Why TensorRT would reject this Q/DQ graph (empty when it is fine)."""
    problems = []
    inits = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type in ("DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger"):
            problems.append("{} is a {} (QOperator/dynamic format)".format(node.name, node.op_type))
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") and len(node.input) > 2:
            zero = inits.get(node.input[2])
            if zero is None:
                continue
            values = onnx.numpy_helper.to_array(zero)
            if values.dtype != np.int8 or np.any(values != 0):
                problems.append("{}: zero point {} {} (expected int8 0)".format(node.name, values.dtype, values.ravel()[:4]))
    return problems

