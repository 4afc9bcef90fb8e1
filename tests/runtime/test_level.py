import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emotrt.runtime.level import (MAX_GAIN_DB, REFERENCE_LEVEL_DB, active_level_db, enrollment_gain, frame_powers,
                                  reference_gain, speech_level_db)

RATE = 16000


def _tone(amplitude: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def test_a_tone_has_its_rms_level_and_pauses_do_not_lower_it():
    tone = _tone(0.1)  # RMS 0.1/sqrt(2): -23.0 dBFS
    assert speech_level_db(tone, RATE) == pytest.approx(-23.01, abs=0.05)
    paused = np.concatenate([tone, np.zeros(3 * RATE, np.float32), tone])
    assert speech_level_db(paused, RATE) == pytest.approx(-23.01, abs=0.05)
    assert speech_level_db(np.zeros(RATE, np.float32), RATE) == -200.0


def test_frame_powers_in_pieces_give_the_level_of_the_whole():
    audio = np.random.default_rng(0).standard_normal(5 * RATE).astype(np.float32) * np.repeat([0.01, 0.2, 0.05, 0.0, 0.1], RATE)
    pieces = [frame_powers(audio[i:i + RATE], RATE) for i in range(0, audio.size, RATE)]
    assert active_level_db(pieces) == pytest.approx(speech_level_db(audio, RATE), abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(gain_db=st.floats(-30.0, 12.0), seed=st.integers(0, 2 ** 16))  # within MAX_GAIN_DB of the reference
def test_the_referenced_window_does_not_depend_on_the_microphone_gain(gain_db, seed):
    """What the SER hears (window x the enrollment's reference gain) is the same at any input gain."""
    rng = np.random.default_rng(seed)
    enrollment = rng.standard_normal(2 * RATE).astype(np.float32) * 0.05
    window = rng.standard_normal(RATE).astype(np.float32) * 0.1
    g = np.float32(10.0 ** (gain_db / 20.0))
    heard = window * enrollment_gain(enrollment, RATE)
    heard_scaled = (window * g) * enrollment_gain(enrollment * g, RATE)
    np.testing.assert_allclose(heard_scaled, heard, rtol=1e-4, atol=1e-7)


def test_reference_gain_brings_speech_to_the_reference_and_is_limited():
    assert reference_gain(REFERENCE_LEVEL_DB - 6.0) == pytest.approx(10 ** (6 / 20))
    assert reference_gain(-200.0) == pytest.approx(10 ** (MAX_GAIN_DB / 20))
