"""Torch-free streaming runtime: microphone -> TSE -> SER -> results (DESIGN.md §3).

Runs on the device (Python 3.8+) and on the workstation. Imports nothing else of
emotrt and no workstation library (torch, onnx, transformers, optimum).
"""
