import numpy as np
import pytest

from emotrt.runtime.errors import AudioError
from emotrt.runtime.resample import Resampler, to_mono


def test_to_mono_downmixes_selects_and_scales_integers():
    stereo = np.array([[0.2, 0.4], [-0.2, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(to_mono(stereo), [0.3, -0.1])
    np.testing.assert_allclose(to_mono(stereo, channel=1), [0.4, 0.0])
    np.testing.assert_allclose(to_mono(np.array([16384, -32768], dtype=np.int16)), [0.5, -1.0])
    with pytest.raises(AudioError, match="channel 2 requested but the audio has 2 channel"):
        to_mono(stereo, channel=2)
    with pytest.raises(AudioError, match="channel 1 requested but the audio is mono"):
        to_mono(np.zeros(4, np.float32), channel=1)


def test_streaming_resampling_equals_one_shot():
    import soxr

    rng = np.random.default_rng(0)
    x = rng.normal(size=44100).astype(np.float32) * 0.1
    resampler = Resampler(16000)
    blocks = [resampler(44100, x[i:i + 1234]) for i in range(0, x.shape[0], 1234)] + [resampler.flush()]
    streamed = np.concatenate(blocks)
    whole = soxr.resample(x, 44100, 16000)
    assert abs(streamed.shape[0] - whole.shape[0]) <= 1
    n = min(streamed.shape[0], whole.shape[0])
    np.testing.assert_allclose(streamed[:n], whole[:n], atol=1e-4)


def test_same_rate_passes_through_and_bad_rates_are_refused():
    resampler = Resampler(16000)
    x = np.ones(10, np.float32)
    assert resampler(16000, x) is x and resampler.flush().shape == (0,)
    with pytest.raises(AudioError, match="must be positive"):
        Resampler(16000)(0, x)
