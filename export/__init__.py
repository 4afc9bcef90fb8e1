"""Checkpoints -> ONNX graphs carrying their contract, with parity and streaming checks (DESIGN.md §2.2).

Modules, one concept each: ``specs`` (what each graph is), ``onnx_export`` (trace + contract,
opset per TensorRT), ``parity``, ``streaming``, ``slim``, ``lint`` (+ ``trt_ops/`` data),
``testvectors``, ``vad``, ``exporter`` (the ``emotrt export`` pipeline), ``environments``
(``emotrt env``) and ``enroll`` (``emotrt enroll``). Import them directly; this package
imports nothing heavy.
"""
