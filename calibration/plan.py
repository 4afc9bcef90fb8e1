"""The precision plan (``<model>.precision.json``) the engine build reads.

It names, for one FP32 graph (by sha256), the INT8 Q/DQ graph and its blocks/nodes, the
blocks kept out of INT8 (FP16 on the device), the nodes that always stay FP32 (LayerNorm,
Softmax, reductions, the front end, flagged ranges), the TensorRT calibration caches per
target version, and a recipe hash: the engine fingerprint's ``precision_recipe``.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Dict, List, Mapping, Optional

from emotrt.runtime.errors import ConfigError

SCHEMA = 1


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(str(path), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def recipe_sha256(recipe: Mapping[str, object]) -> str:
    """sha256 of the canonical JSON of a recipe."""
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def precision_plan(
    model: str,
    source: Path,
    recipe: Mapping[str, object],
    int8: Mapping[str, object],
    fp16: Mapping[str, object],
    fp32: Mapping[str, object],
    caches: Mapping[str, str],
    sensitivity: Optional[List[Dict[str, object]]] = None,
) -> Dict[str, object]:
    """Assemble the plan; ``recipe_sha256`` covers the recipe and every precision decision."""
    decisions = {"recipe": dict(recipe), "int8": dict(int8), "fp16": dict(fp16), "fp32": dict(fp32)}
    return {
        "schema": SCHEMA,
        "model": model,
        "source_onnx": Path(source).name,
        "onnx_sha256": file_sha256(source),
        "recipe_sha256": recipe_sha256(decisions),
        **decisions,
        "calib_caches": dict(caches),
        "sensitivity": list(sensitivity or []),
    }


def read_plan(path: Path) -> Dict[str, object]:
    """Load a precision plan written by this or an older emotrt."""
    plan = json.loads(Path(path).read_text())
    if not isinstance(plan, dict) or int(plan.get("schema", 0)) not in range(1, SCHEMA + 1):
        raise ConfigError(
            "{}: precision plan schema {} (this emotrt reads 1 to {})".format(
                path, plan.get("schema") if isinstance(plan, dict) else None, SCHEMA),
            hint="re-run `emotrt calibrate` with this emotrt",
        )
    return plan
