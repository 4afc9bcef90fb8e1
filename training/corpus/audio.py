"""Reading any audio file as 16 kHz mono float32 and writing PCM16 WAV atomically."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from emotrt.runtime.audio import check_complete
from emotrt.runtime.errors import AudioError

from emotrt.runtime.atomic import atomic_file

SAMPLE_RATE = 16000


def resample(audio: np.ndarray, rate_in: int, rate_out: int = SAMPLE_RATE) -> np.ndarray:
    """Resample mono float32 audio with soxr (high quality); a no-op when the rates agree."""
    import soxr

    if rate_in == rate_out:
        return audio.astype(np.float32, copy=False)
    return soxr.resample(audio, rate_in, rate_out, quality="HQ").astype(np.float32)


def read_audio(path: Any, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A file (WAV, FLAC, ...) as mono float32 at ``sample_rate``; channels are averaged."""
    import soundfile as sf

    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, OSError) as exc:  # soundfile raises LibsndfileError (a RuntimeError)
        raise AudioError("cannot read audio {}: {}".format(path, exc)) from None
    check_complete(path, len(audio), rate)
    return resample(audio.mean(axis=1), rate, sample_rate)


def write_wav(path: Any, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write mono PCM16 WAV through a temporary file renamed into place; clips to [-1, 1]."""
    import soundfile as sf

    path = Path(path)
    with atomic_file(path, ".wav") as tmp:
        sf.write(tmp, np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
    return path
