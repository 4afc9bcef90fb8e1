"""The VAD graph: silero-vad's MIT-licensed ONNX file from its installed wheel, with an emotrt contract.

The wheel ships several variants. ``silero_vad_openvino_16k.onnx`` is the one TensorRT can take:
fixed shapes (``input`` [1, 576] = 64 samples of context + 512 new, ``state`` [2, 1, 128]),
no ``sr`` input and no ``If`` (``silero_vad.onnx`` branches on an int64 ``sr`` with ``If``, which
the lint rejects). Its I/O names are silero's, recorded in the contract's ``extra.io``.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np

from emotrt.runtime.contract import ModelContract, StateSpec

log = logging.getLogger(__name__)

VAD_FILE = "silero_vad_openvino_16k.onnx"
CONTEXT, CHUNK, SAMPLE_RATE = 64, 512, 16000


def find_silero_vad() -> Optional[Path]:
    """The wheel's fixed-shape 16 kHz ONNX file, or ``None`` when silero-vad is not installed."""
    import importlib.util

    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / VAD_FILE
    return path if path.is_file() else None


def vad_contract(opset: int) -> ModelContract:
    """The contract of the silero graph: 512-sample hops at 16 kHz, one LSTM state."""
    return ModelContract(
        model="vad",
        sample_rate=SAMPLE_RATE,
        chunk_samples=CHUNK,
        states=(StateSpec("state", (2, 1, 128)),),
        opset=opset,
        extra={
            "source": "silero-vad wheel, " + VAD_FILE + " (MIT licence)",
            "context_samples": CONTEXT,
            "io": {"audio": "input", "state_in.state": "state", "probability": "output", "state_out.state": "stateN"},
        },
    )


def vad_testvector(path: Any, seed: int = 0) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]:
    """(feed, FP32 outputs) of one call of the VAD graph at ``path``: noise in, from a non-zero state."""
    from emotrt.runtime.backends import load_engine

    rng = np.random.default_rng(seed)
    with load_engine(path, backend="onnxruntime") as engine:
        io = engine.contract.extra["io"]
        feed = {
            io["audio"]: (0.1 * rng.standard_normal((1, CONTEXT + CHUNK))).astype(np.float32),
            io["state_in.state"]: (0.1 * rng.standard_normal((2, 1, 128))).astype(np.float32),
        }
        return feed, engine.run(feed)


def copy_vad(dst: Any) -> Optional[ModelContract]:
    """Copy silero's graph to ``dst`` with its contract; ``None`` (and a log line) when unavailable."""
    import onnx

    from emotrt.export.onnx_export import write_contract

    src = find_silero_vad()
    if src is None:
        log.warning("silero-vad is not installed: no vad.onnx (pip install silero-vad)")
        return None
    shutil.copyfile(str(src), str(dst))
    opset = next(i.version for i in onnx.load(str(dst), load_external_data=False).opset_import if i.domain in ("", "ai.onnx"))
    contract = vad_contract(opset)
    write_contract(dst, contract)
    return contract
