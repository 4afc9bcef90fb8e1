"""Torch-free streaming runtime: microphone -> TSE -> SER -> results (DESIGN.md §3).

Runs on the device (Python 3.8+) and on the workstation. Imports nothing else of
emotrt and no workstation library (torch, onnx, transformers, optimum).
"""
from typing import Any

_LAZY = {"Pipeline": "emotrt.runtime.pipeline", "PipelineConfig": "emotrt.runtime.pipeline",
         "Stream": "emotrt.runtime.stream", "Result": "emotrt.runtime.results"}


def __getattr__(name: str) -> Any:
    """``emotrt.runtime.Pipeline`` etc., imported on first use so ``emotrt.runtime.errors`` stays light (PEP 562)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError("module 'emotrt.runtime' has no attribute " + repr(name))


__all__ = ["Pipeline", "PipelineConfig", "Result", "Stream"]
