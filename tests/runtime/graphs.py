"""Tiny contract-carrying ONNX graphs for the runtime tests (test-only: uses onnx).

``tse_step`` is a causal FIR filter scaled by the speaker embedding's mean, streaming its
last ``TAPS - 1`` input samples as state ``hist``, so hop-by-hop output must equal
:func:`reference_tse` on the whole signal. ``tse_offline`` is the same filter over [1, T].
``ser`` frames its window, takes log frame energies and maps them (plus the environment
token) linearly to logits and AVD, so its output depends on every sample of the window.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from emotrt.runtime.contract import ModelContract, StateSpec
from emotrt.runtime.tables import VectorTable

RATE = 16000
CHUNK = 160
TAPS = 9
SPK_DIM = 4
WINDOW = 4000
FRAMES = 10
D_MODEL = 4
LABELS = ("neutral", "happy", "angry", "sad")
OPSET = 17


def _weights(seed: int = 0) -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    taps = rng.normal(0, 0.3, TAPS).astype(np.float32)
    taps[-1] = 1.0
    return {
        "taps": taps,
        "w_feat": rng.normal(0, 0.5, (FRAMES, len(LABELS))).astype(np.float32),
        "w_env": rng.normal(0, 1.0, (D_MODEL, len(LABELS))).astype(np.float32),
        "w_avd": rng.normal(0, 0.1, (FRAMES, 3)).astype(np.float32),
    }


def reference_tse(audio: np.ndarray, spk_emb: np.ndarray, seed: int = 0) -> np.ndarray:
    """What the TSE graphs compute on a whole signal (zero initial history)."""
    taps = _weights(seed)["taps"].astype(np.float64)
    y = np.convolve(audio.astype(np.float64), taps[::-1])[: audio.shape[0]]
    return (y * float(np.mean(spk_emb))).astype(np.float32)


def _model(nodes, inputs, outputs, inits, contract: ModelContract) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, contract.model, inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    for key, value in contract.to_metadata().items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    return model


def _io(name: str, shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def _fir_nodes(source: str) -> list:
    """FIR over ``source`` [1, L] (history already prepended): Conv with a [1, 1, TAPS] kernel."""
    return [
        helper.make_node("Unsqueeze", [source, "axis1"], ["x3"]),
        helper.make_node("Conv", ["x3", "kernel"], ["y3"]),
        helper.make_node("Squeeze", ["y3", "axis1"], ["y"]),
        helper.make_node("ReduceMean", ["spk_emb"], ["scale"], keepdims=1),
        helper.make_node("Mul", ["y", "scale"], ["audio_out"]),
    ]


def _fir_inits(taps: np.ndarray) -> list:
    return [
        numpy_helper.from_array(taps.reshape(1, 1, TAPS), "kernel"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
    ]


def _taps(seed: int, delay: Optional[int]) -> np.ndarray:
    """The FIR's taps: seeded, or (``delay``) a pure delay of that many samples, as a TSE's latency."""
    if delay is None:
        return _weights(seed)["taps"]
    taps = np.zeros(TAPS, dtype=np.float32)
    taps[TAPS - 1 - delay] = 1.0
    return taps


def tse_step(seed: int = 0, gate: Optional[Dict[str, object]] = None, delay: Optional[int] = None) -> onnx.ModelProto:
    """Streaming causal FIR with state ``hist`` [1, TAPS-1] (``gate``: thresholds in its contract's extra;
    ``delay``: the input delayed by that many samples, declared as ``latency_samples``)."""
    extra: Dict[str, object] = {"gate": gate} if gate else {}
    if delay is not None:
        extra["latency_samples"] = delay
    contract = ModelContract("tse_step", RATE, chunk_samples=CHUNK, spk_dim=SPK_DIM,
                             states=(StateSpec("hist", (1, TAPS - 1)),), opset=OPSET, extra=extra)
    nodes = [helper.make_node("Concat", ["state_in.hist", "audio"], ["joined"], axis=1)]
    nodes += _fir_nodes("joined")
    nodes.append(helper.make_node("Slice", ["joined", "tail_start", "tail_end", "axis1"], ["state_out.hist"]))
    inits = _fir_inits(_taps(seed, delay)) + [
        numpy_helper.from_array(np.array([-(TAPS - 1)], dtype=np.int64), "tail_start"),
        numpy_helper.from_array(np.array([np.iinfo(np.int64).max], dtype=np.int64), "tail_end"),
    ]
    inputs = [_io("audio", (1, CHUNK)), _io("spk_emb", (1, SPK_DIM)), _io("state_in.hist", (1, TAPS - 1))]
    outputs = [_io("audio_out", (1, CHUNK)), _io("state_out.hist", (1, TAPS - 1))]
    return _model(nodes, inputs, outputs, inits, contract)


def tse_offline(seed: int = 0, delay: Optional[int] = None) -> onnx.ModelProto:
    """The same FIR over a whole signal [1, T] (left zero padding = zero initial history)."""
    contract = ModelContract("tse_offline", RATE, spk_dim=SPK_DIM, opset=OPSET)
    nodes = [helper.make_node("Pad", ["audio", "pads"], ["joined"])]
    nodes += _fir_nodes("joined")
    inits = _fir_inits(_taps(seed, delay)) + [
        numpy_helper.from_array(np.array([0, TAPS - 1, 0, 0], dtype=np.int64), "pads")]
    return _model(nodes, [_io("audio", (1, "T")), _io("spk_emb", (1, SPK_DIM))], [_io("audio_out", (1, "T"))],
                  inits, contract)


ENROLL_FRAME = 16


def enroll() -> onnx.ModelProto:
    """A spectral profile as the embedding: mean |DFT| of 16-sample frames at SPK_DIM bins (1..SPK_DIM).

    Flat-spectrum audio (noise) gets a flat profile, close to the constant enrolled vectors of
    ``SPEAKERS``; a pure tone a peaked one, far from them.
    """
    contract = ModelContract("enroll", RATE, chunk_samples=CHUNK, spk_dim=SPK_DIM, opset=OPSET)
    n = np.arange(ENROLL_FRAME)[:, None]
    k = np.arange(1, SPK_DIM + 1)[None, :]
    nodes = [
        helper.make_node("Reshape", ["audio", "frame_shape"], ["frames"]),
        helper.make_node("MatMul", ["frames", "cos"], ["re"]),
        helper.make_node("MatMul", ["frames", "sin"], ["im"]),
        helper.make_node("Mul", ["re", "re"], ["re2"]),
        helper.make_node("Mul", ["im", "im"], ["im2"]),
        helper.make_node("Add", ["re2", "im2"], ["power"]),
        helper.make_node("Sqrt", ["power"], ["magnitude"]),
        helper.make_node("ReduceMean", ["magnitude"], ["spk_emb"], axes=[1], keepdims=0),
    ]
    inits = [
        numpy_helper.from_array(np.array([1, -1, ENROLL_FRAME], dtype=np.int64), "frame_shape"),
        numpy_helper.from_array(np.cos(2 * np.pi * n * k / ENROLL_FRAME).astype(np.float32), "cos"),
        numpy_helper.from_array(np.sin(2 * np.pi * n * k / ENROLL_FRAME).astype(np.float32), "sin"),
    ]
    return _model(nodes, [_io("audio", (1, "T"))], [_io("spk_emb", (1, SPK_DIM))], inits, contract)


def ser(seed: int = 0, level_reference_db: Optional[float] = None) -> onnx.ModelProto:
    """Log frame energies + environment token -> logits [1, C] and AVD [1, 3]; ``level_reference_db`` marks
    an SER that hears speakers relative to their enrollment level (emotrt.runtime.level)."""
    w = _weights(seed)
    extra = {} if level_reference_db is None else {"level_reference_db": level_reference_db}
    contract = ModelContract("ser", RATE, window_samples=WINDOW, d_model=D_MODEL, labels=LABELS, opset=OPSET, extra=extra)
    nodes = [
        helper.make_node("Reshape", ["audio", "frame_shape"], ["frames"]),
        helper.make_node("Mul", ["frames", "frames"], ["sq"]),
        helper.make_node("ReduceMean", ["sq"], ["energy"], axes=[2], keepdims=0),
        helper.make_node("Add", ["energy", "eps"], ["energy_eps"]),
        helper.make_node("Log", ["energy_eps"], ["feat"]),
        helper.make_node("MatMul", ["feat", "w_feat"], ["from_audio"]),
        helper.make_node("MatMul", ["env_token", "w_env"], ["from_env"]),
        helper.make_node("Add", ["from_audio", "from_env"], ["logits_raw"]),
        helper.make_node("Mul", ["logits_raw", "temperature"], ["logits"]),
        helper.make_node("MatMul", ["feat", "w_avd"], ["avd_raw"]),
        helper.make_node("Sigmoid", ["avd_raw"], ["avd_unit"]),
        helper.make_node("Mul", ["avd_unit", "four"], ["avd_scaled"]),
        helper.make_node("Add", ["avd_scaled", "one"], ["avd"]),
    ]
    inits = [
        numpy_helper.from_array(np.array([1, FRAMES, WINDOW // FRAMES], dtype=np.int64), "frame_shape"),
        numpy_helper.from_array(np.array(1e-6, dtype=np.float32), "eps"),
        numpy_helper.from_array(np.array(0.5, dtype=np.float32), "temperature"),
        numpy_helper.from_array(np.array(4.0, dtype=np.float32), "four"),
        numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one"),
        numpy_helper.from_array(w["w_feat"], "w_feat"),
        numpy_helper.from_array(w["w_env"], "w_env"),
        numpy_helper.from_array(w["w_avd"], "w_avd"),
    ]
    inputs = [_io("audio", (1, WINDOW)), _io("env_token", (1, D_MODEL))]
    outputs = [_io("logits", (1, len(LABELS))), _io("avd", (1, 3))]
    return _model(nodes, inputs, outputs, inits, contract)


ENVIRONMENTS = {"busy_cafe": 0.0, "car_highway": 1.0, "quiet_office": -1.0}
SPEAKERS = {"alice": 1.0, "bob": 0.5}


def write_export_dir(out: Path, seed: int = 0) -> Path:
    """``<model>.onnx`` for tse_step, tse_offline and ser plus ``env/`` and ``speakers/`` tables."""
    out.mkdir(parents=True, exist_ok=True)
    for name, build in (("tse_step", tse_step), ("tse_offline", tse_offline), ("ser", ser)):
        onnx.save(build(seed), str(out / (name + ".onnx")))
    rng = np.random.default_rng(seed + 1)
    env = VectorTable(out / "env", kind="environment", dim=D_MODEL)
    for name, offset in ENVIRONMENTS.items():
        env.add(name, rng.normal(offset, 1.0, D_MODEL), descriptions=[name.replace("_", " ")])
    speakers = VectorTable(out / "speakers", kind="speaker", dim=SPK_DIM)
    for name, value in SPEAKERS.items():
        speakers.add(name, np.full(SPK_DIM, value))
    return out
