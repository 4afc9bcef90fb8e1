"""Open a bundle, choose the backend (``auto``: TensorRT only when the engines fit this device) and load.

The choice is explained in one sentence (``Pipeline.backend_reason``) because "why is it
running on the CPU?" is the first question anyone asks on a device.
"""
from __future__ import annotations

import functools
import importlib
import logging
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from emotrt.runtime.errors import BackendError, BundleError, DependencyError, FingerprintMismatchError

log = logging.getLogger(__name__)

STREAMING_MODELS = ("tse_step", "ser")
TRT_PRECISIONS = ("int8", "fp16", "fp32")
BACKEND_NAMES = ("auto", "tensorrt", "onnxruntime")


def tensorrt_available() -> Optional[str]:
    """None when TensorRT (8.5+) and pycuda import, else why not."""
    from emotrt.runtime import trt_version

    try:
        trt_version.import_tensorrt()
        importlib.import_module("pycuda.driver")
    except (DependencyError, ImportError) as exc:
        return str(getattr(exc, "message", exc))
    return None


def match_engines(bundle: Any, device: Any) -> Dict[str, Path]:
    """The plan of each streaming model built for ``device``, best precision first.

    Raises the bundle's :class:`FingerprintMismatchError` (naming the differing field)
    or :class:`BundleError` when a model has no fitting plan.
    """
    plans: Dict[str, Path] = {}
    for name in STREAMING_MODELS:
        errors = []
        for precision in TRT_PRECISIONS:
            try:
                plans[name] = bundle.engine_path(name, precision, device)
                break
            except BundleError as exc:
                errors.append(exc)
        if name not in plans:
            mismatches = [e for e in errors if isinstance(e, FingerprintMismatchError)]
            raise (mismatches or errors)[0]
    return plans


def choose_backend(bundle: Any, requested: str, probe: Any = None) -> Tuple[str, str, Dict[str, Path]]:
    """(backend, reason, plans): ``tensorrt`` needs TensorRT here and plans whose fingerprint matches."""
    if requested not in BACKEND_NAMES:
        raise BackendError(
            "unknown backend {!r}; expected one of {}".format(requested, ", ".join(BACKEND_NAMES)),
            hint="pass --backend auto",
        )
    if requested == "onnxruntime":
        return "onnxruntime", "ONNX Runtime requested", {}
    missing = tensorrt_available()
    if missing:
        if requested == "tensorrt":
            raise DependencyError(
                "the TensorRT backend cannot run here: " + missing,
                hint="run on a Jetson with JetPack's python3-libnvinfer and `pip install pycuda`, or --backend onnxruntime",
            )
        return "onnxruntime", "TensorRT not usable here ({}), using ONNX Runtime".format(missing), {}
    if probe is None:
        from emotrt.runtime.fingerprint import probe_device as probe
    device = probe()
    try:
        plans = match_engines(bundle, device)
    except BundleError as exc:
        if requested == "tensorrt":
            raise
        return "onnxruntime", "no TensorRT engine fits this device ({}), using ONNX Runtime".format(exc.message), {}
    return "tensorrt", "TensorRT engines match this device", plans


def load_bundle_parts(cls: Any, path: Any, backend: str, config: Any, verify: Any = True) -> Any:
    """Build a :class:`Pipeline` (``cls``) from the bundle at ``path`` (``verify`` as in :meth:`Bundle.open`)."""
    from emotrt.runtime.backends import load_engine
    from emotrt.runtime.bundle_reader import Bundle

    bundle = Bundle.open(path, verify=verify)
    engines: Dict[str, Any] = {}
    try:
        bundle.require(*STREAMING_MODELS)
        chosen, reason, plans = choose_backend(bundle, backend)
        log.info("backend %s: %s", chosen, reason)
        for name in STREAMING_MODELS:
            if chosen == "tensorrt":
                engines[name] = load_engine(plans[name], backend="tensorrt", contract=bundle.contract(name))
            else:
                engines[name] = load_engine(bundle.model_path(name, "fp32"), threads=config.threads, providers="auto")
        if "vad" in bundle.models and config.vad.use_model:
            engines["vad"] = load_engine(bundle.model_path("vad", "fp32"), threads=config.threads)
        offline = None
        if "tse_offline" in bundle.models:  # only whole-file extraction uses it: loaded on first use
            offline_path = bundle.model_path("tse_offline", "fp32")
            offline = functools.partial(load_engine, offline_path, threads=config.threads)
        spk_dim = bundle.contract("tse_step").spk_dim
        return cls(
            engines["tse_step"], engines["ser"], bundle.environments(), bundle.speakers(dim=spk_dim),
            vad=engines.get("vad"), tse_offline=offline, config=config,
            backend=chosen, backend_reason=reason, bundle=bundle,
        )
    except BaseException:
        for engine in engines.values():
            engine.close()
        bundle.close()
        raise
