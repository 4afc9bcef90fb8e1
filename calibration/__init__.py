"""INT8 (Q/DQ and TensorRT calibration caches), FP16 plans and accuracy reports (DESIGN.md §2.3).

- ``data``: calibration feeds from any iterable, ``tse_step`` states by streaming, hashing
- ``sources``: jobs from an export folder and a corpus manifest (what ``emotrt calibrate`` runs)
- ``qdq``: activation ranges and explicit INT8 Q/DQ graphs (onnxruntime.quantization)
- ``cache``: TensorRT calibration cache writer/reader (8.5 to 10.x headers)
- ``fp16``: FP16 plan, range check, FP16 ONNX for ONNX Runtime
- ``evaluate``: SI-SDR/SI-SDRi, UA, CCC of a variant against FP32
- ``sensitivity``: per-block leave-one-out and the mixed plan meeting a budget
- ``plan``: the precision plan JSON the engine build reads
- ``report``: JSON + Markdown table, latency in one run
- ``pipeline``: one atomic run over all models
"""
