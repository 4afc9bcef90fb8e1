"""The speaker's own level as the SER's loudness reference (issue 19).

On the synthetic corpus, as in acted speech, loudness is a strong cue of the style (sad speech is
quiet, angry speech loud), and it is exactly what another microphone's gain changes. An SER with
``level_reference = "enrollment"`` hears every window scaled by one gain per speaker: the one that
brings that speaker's enrollment speech to :data:`REFERENCE_LEVEL_DB`. Enrollment and stream go
through the same microphone, so its gain cancels, while the window's loudness relative to the
speaker's usual voice (the cue) stays. Training, ``emotrt eval``, ``emotrt enroll`` and the stream
all compute the level with :func:`speech_level_db`, so they agree.

The level is the active speech level in the sense of ITU-T P.56, simplified: the mean power of the
20 ms frames within :data:`ACTIVE_RANGE_DB` of the loudest frame, so pauses in the recording do not
lower it.
"""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np

REFERENCE_LEVEL_DB = -25.0  # dBFS: the synthetic corpus's enrollment speech (mean active level -24.8 dBFS)
ACTIVE_RANGE_DB = 30.0
FRAME_SECONDS = 0.02
MAX_GAIN_DB = 40.0  # a near-silent enrollment must not turn into a +80 dB gain


def frame_powers(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mean square of each whole 20 ms frame of mono ``audio`` (a trailing partial frame is dropped)."""
    frame = max(1, int(round(FRAME_SECONDS * sample_rate)))
    samples = np.asarray(audio, dtype=np.float64).ravel()
    count = samples.size // frame
    return np.square(samples[: count * frame]).reshape(count, frame).mean(axis=1)


def active_level_db(powers: Iterable[np.ndarray]) -> float:
    """Active level (dBFS) of frame powers from :func:`frame_powers`, given in one or more pieces.

    Digital silence (no frame above -200 dBFS) is -200.
    """
    joined = np.concatenate([np.asarray(p, dtype=np.float64).ravel() for p in powers] or [np.zeros(0)])
    if joined.size == 0 or joined.max() <= 1e-20:
        return -200.0
    active = joined[joined >= joined.max() * 10.0 ** (-ACTIVE_RANGE_DB / 10.0)]
    return 10.0 * math.log10(float(active.mean()))


def speech_level_db(audio: np.ndarray, sample_rate: int) -> float:
    """Active speech level of ``audio`` in dBFS (see the module docstring)."""
    return active_level_db([frame_powers(audio, sample_rate)])


def reference_gain(level_db: float, reference_db: float = REFERENCE_LEVEL_DB) -> float:
    """The linear gain that brings speech at ``level_db`` to ``reference_db``, limited to +-:data:`MAX_GAIN_DB`."""
    return 10.0 ** (float(np.clip(reference_db - level_db, -MAX_GAIN_DB, MAX_GAIN_DB)) / 20.0)


def enrollment_gain(recording: np.ndarray, sample_rate: int, reference_db: float = REFERENCE_LEVEL_DB) -> float:
    """The gain a speaker is heard at: the one bringing their enrollment ``recording`` to ``reference_db``."""
    return reference_gain(speech_level_db(recording, sample_rate), reference_db)
