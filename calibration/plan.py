"""Write the precision plan (``<model>.precision.json``) the engine build reads.

Its shape is :class:`emotrt.runtime.precision_plan.PrecisionPlan` (read with ``PrecisionPlan.read``).

It names, for one FP32 graph (by sha256), the INT8 Q/DQ graph and its blocks/nodes, the
blocks kept out of INT8 (FP16 on the device), the nodes that always stay FP32 (LayerNorm,
Softmax, reductions, the front end, flagged ranges), the TensorRT calibration caches per
target version, and a recipe hash: the engine fingerprint's ``precision_recipe``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from emotrt.runtime.manifest import sha256_file
from emotrt.runtime.precision_plan import Fp32Nodes, NodeGroup, PrecisionPlan


def recipe_sha256(recipe: Mapping[str, object]) -> str:
    """sha256 of the canonical JSON of a recipe."""
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def precision_plan(
    model: str,
    source: Path,
    recipe: Mapping[str, object],
    int8: Mapping[str, Any],
    fp16: Mapping[str, Any],
    fp32: Mapping[str, Any],
    caches: Mapping[str, str],
    sensitivity: Optional[List[Dict[str, object]]] = None,
) -> PrecisionPlan:
    """Assemble the plan; ``recipe_sha256`` covers the recipe and every precision decision."""
    plan = PrecisionPlan(
        model=model, recipe=dict(recipe), int8=NodeGroup.from_json(int8), fp16=NodeGroup.from_json(fp16),
        fp32=Fp32Nodes.from_json(fp32), source_onnx=Path(source).name, onnx_sha256=sha256_file(source),
        calib_caches=dict(caches), sensitivity=tuple(sensitivity or ()),
    )
    return dataclasses.replace(plan, recipe_sha256=recipe_sha256(plan.decisions()))
