"""ONNX graph lookups the calibration passes share."""
from __future__ import annotations

from typing import Dict, List

import onnx


def readers(graph: onnx.GraphProto) -> Dict[str, List[onnx.NodeProto]]:
    """The nodes reading each tensor, in graph order (a node reading a tensor twice is listed once)."""
    found: Dict[str, List[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in dict.fromkeys(node.input):
            found.setdefault(name, []).append(node)
    return found
