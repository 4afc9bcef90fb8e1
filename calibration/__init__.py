"""INT8 (Q/DQ and TensorRT calibration caches), FP16 plans and accuracy reports (DESIGN.md §2.3)."""
