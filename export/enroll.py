"""Speaker enrollment: enrollment audio -> ``enroll.onnx`` -> embedding in the speaker store.

Runs with ONNX Runtime only (numpy, soundfile), so it works on the workstation and the device.
The audio must be at the graph's sample rate: resampling silently would hide a wrong file.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from emotrt.runtime.errors import AudioError, ConfigError, DependencyError, ModelContractError
from emotrt.runtime.tables import VectorTable

log = logging.getLogger(__name__)

MIN_SECONDS = 1.0


def read_enrollment_audio(path: Any, sample_rate: int, min_seconds: float = MIN_SECONDS) -> np.ndarray:
    """Mono float32 [1, T] from ``path``; clear errors for a wrong rate or too little audio."""
    try:
        import soundfile
    except ImportError as exc:
        raise DependencyError("reading audio needs soundfile ({})".format(exc), hint="pip install 'emotrt[audio]'")
    try:
        audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, OSError) as exc:  # soundfile raises LibsndfileError (a RuntimeError) for bad files
        raise AudioError("cannot read enrollment audio {}: {}".format(path, exc))
    if rate != sample_rate:
        raise AudioError(
            "enrollment audio {} is {} Hz; the enroll model expects {} Hz".format(path, rate, sample_rate),
            hint="sox {} -r {} -c 1 enroll_{}k.wav".format(path, sample_rate, sample_rate // 1000),
        )
    seconds = audio.shape[0] / float(rate)
    if seconds < min_seconds:
        raise AudioError(
            "enrollment audio {} is {:.2f} s; at least {:.1f} s of the speaker is needed".format(path, seconds, min_seconds),
            hint="record a longer sample (3-10 s of speech works best)",
        )
    return audio.mean(axis=1)[None, :].astype(np.float32)


def enroll_speaker(
    store_dir: Any, name: str, audio_path: Any, enroll_model: Any, replace: bool = False, min_seconds: float = MIN_SECONDS
) -> np.ndarray:
    """Compute ``name``'s embedding from ``audio_path`` through ``enroll_model`` and store it."""
    from emotrt.runtime.backends import load_engine

    with load_engine(enroll_model, backend="onnxruntime") as engine:
        contract = engine.contract
        if contract is None or contract.model != "enroll":
            raise ModelContractError(
                "{} is not an enroll graph (emotrt.model={})".format(enroll_model, contract.model if contract else None),
                hint="pass the enroll.onnx written by `emotrt export`",
            )
        store = VectorTable(store_dir, kind="speaker", dim=contract.spk_dim)
        if name in store and not replace:
            raise ConfigError(
                "speaker {!r} is already enrolled in {}".format(name, store.root),
                hint="`emotrt enroll {} AUDIO --replace` to enroll again, or choose another name".format(name),
            )
        audio = read_enrollment_audio(audio_path, contract.sample_rate, min_seconds)
        embedding = engine.run({"audio": audio})["spk_emb"].reshape(-1)
    store.add(name, embedding, replace=replace, audio=str(Path(audio_path).name), seconds=audio.shape[1] / contract.sample_rate)
    log.info("enrolled %s from %.1f s of audio", name, audio.shape[1] / contract.sample_rate)
    return embedding
