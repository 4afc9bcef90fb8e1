"""Trace one graph to ONNX and stamp its contract into ``metadata_props``.

Opset per TensorRT target (REFERENCE.md, "Export facts"; onnx-tensorrt docs/operators.md):

- TensorRT 8.5 (JetPack 5): opset 16. Its parser lists ``LayerNormalization`` as unsupported,
  and below opset 17 the TorchScript exporter writes layer norm as ReduceMean/Sub/Pow/Sqrt/Div.
- TensorRT 10.x (JetPack 6.1/6.2) and 11 (JetPack 7): opset 17, the highest the TorchScript
  exporter writes for these graphs and inside both parsers' ranges (9..20, 9..24); keeps
  ``LayerNormalization`` as one op, which TensorRT fuses.

The TorchScript exporter (``dynamo=False``) is used because dynamo emits opset 18 whatever is
asked and specialises batch-1 inputs.

transformers front ends (wav2vec2, HuBERT, WavLM, Whisper encoder) export inside the SER graph on
this same path. optimum's WavLM export config exists for the dynamo exporter's failure on WavLM
("Cannot view a tensor with shape...") and for dynamic lengths; neither applies here (TorchScript
exporter, fixed SER window), and the generic parity check validates the result
(tests/export/test_real_models.py), so optimum is not used.
"""
from __future__ import annotations

import logging
import warnings
from typing import Any, Dict

import torch

from emotrt.export.lint import load_operator_table
from emotrt.export.specs import GraphSpec
from emotrt.runtime.contract import ModelContract

log = logging.getLogger(__name__)

OPSET_FOR_TRT: Dict[str, int] = {"8.5": 16, "10.3": 17, "11": 17}


def opset_for(trt: str) -> int:
    """The ONNX opset exported for TensorRT target ``trt`` (validates the target)."""
    load_operator_table(trt)
    return OPSET_FOR_TRT[trt]


def export_graph(spec: GraphSpec, model: torch.nn.Module, config: Any, path: Any, opset: int) -> None:
    """Trace ``spec`` of ``model`` to the ONNX file ``path`` at ``opset``."""
    feed = spec.trace_feed(model, config)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about constant shapes are expected for fixed graphs
        torch.onnx.export(
            spec.module(model),
            tuple(feed.values()),
            str(path),
            input_names=list(spec.inputs(model)),
            output_names=list(spec.outputs(model)),
            dynamic_axes=spec.dynamic_axes(model),
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    log.info("exported %s to %s (opset %d)", spec.kind, path, opset)


def write_contract(path: Any, contract: ModelContract) -> None:
    """Replace the ``emotrt.*`` metadata of the ONNX file ``path`` with ``contract``."""
    import onnx

    model = onnx.load(str(path))
    kept = [(p.key, p.value) for p in model.metadata_props if not p.key.startswith("emotrt.")]
    del model.metadata_props[:]
    for key, value in kept + sorted(contract.to_metadata().items()):
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
