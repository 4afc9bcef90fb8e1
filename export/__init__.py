"""Checkpoints -> ONNX graphs carrying their contract, with parity and streaming checks (DESIGN.md §2.2)."""
