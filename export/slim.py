"""Graph simplification with onnxslim (constant folding, Shape/Gather chain removal, dead nodes).

The caller re-runs parity on the result: simplification must not change numerics.
"""
from __future__ import annotations

import logging
from typing import Any, Tuple

log = logging.getLogger(__name__)


def slim_graph(src: Any, dst: Any) -> Tuple[int, int]:
    """Simplify the ONNX file ``src`` into ``dst``; returns (nodes before, nodes after)."""
    import onnx
    import onnxslim

    model = onnx.load(str(src))
    before = len(model.graph.node)
    slimmed = onnxslim.slim(model)
    after = len(slimmed.graph.node)
    onnx.save(slimmed, str(dst))
    log.info("onnxslim %s: %d -> %d nodes", src, before, after)
    return before, after
