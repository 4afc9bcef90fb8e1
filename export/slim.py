"""Graph simplification with onnxslim, re-validated: a simplified graph is kept only if it still matches.

Recipes are tried in order. onnxslim 0.1.98 with shape inference changed the numerics of the
TSE step graph (tiny and edge presets, random weights) at opset 16, the decomposed-LayerNorm
export for TensorRT 8.5: max abs error 0.23 on the decoder state, found by this re-validation;
without shape inference the same graph simplifies correctly (the trained edge checkpoint was
unaffected). If no recipe validates, the unsimplified graph is kept.

Constant folding is capped at ``FOLD_LIMIT_BYTES``: the SER front end computes its DFT basis
(~0.8 MB) and mel filterbank from small vectors in the graph (training/features.py), and
unbounded folding would store them again.
"""
from __future__ import annotations

import logging
import shutil
from typing import Any, Callable, Dict, Tuple

log = logging.getLogger(__name__)

FOLD_LIMIT_BYTES = 1024
SLIM_RECIPES: Tuple[Tuple[str, Dict[str, Any]], ...] = (
    ("onnxslim", {"size_threshold": FOLD_LIMIT_BYTES}),
    ("onnxslim-no-shape-infer", {"no_shape_infer": True, "size_threshold": FOLD_LIMIT_BYTES}),
)


def slim_graph(src: Any, dst: Any, **options: Any) -> Tuple[int, int]:
    """Simplify the ONNX file ``src`` into ``dst``; returns (nodes before, nodes after)."""
    import onnx
    import onnxslim

    model = onnx.load(str(src))
    before = len(model.graph.node)
    slimmed = onnxslim.slim(model, **options)
    onnx.save(slimmed, str(dst))
    log.info("onnxslim %s %s: %d -> %d nodes", src, options or "", before, len(slimmed.graph.node))
    return before, len(slimmed.graph.node)


def slim_validated(src: Any, dst: Any, validate: Callable[[Any], Any]) -> Tuple[str, Tuple[int, int], Any]:
    """Write the first recipe's output that ``validate(path).ok`` accepts to ``dst`` (else a copy of ``src``).

    Returns (recipe name or ``none``, (nodes before, nodes after), the accepted validation result).
    """
    counts = (0, 0)
    for name, options in SLIM_RECIPES:
        counts = slim_graph(src, dst, **options)
        result = validate(dst)
        if result.ok:
            return name, counts, result
        log.warning("%s changed the numerics of %s (%s); trying the next recipe", name, src, "; ".join(result.mismatches()))
    shutil.copyfile(str(src), str(dst))
    log.warning("no onnxslim recipe kept %s exact; shipping it unsimplified", src)
    return "none", (counts[0], counts[0]), validate(dst)
