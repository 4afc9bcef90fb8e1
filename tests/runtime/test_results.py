"""Results helpers: level matching between the extractor and the SER."""
import numpy as np

from emotrt.runtime.results import match_level


def test_match_level_brings_a_loud_extraction_to_the_targets_level_in_the_mixture():
    """Not the mixture's RMS, which the other talker and the noise raise: the least-squares gain."""
    rng = np.random.default_rng(0)
    target = rng.normal(scale=0.1, size=(1, 16000)).astype(np.float32)
    other = rng.normal(scale=0.1, size=(1, 16000)).astype(np.float32)
    out = match_level(200.0 * target, target + other)  # 0 dB SIR: the mixture is 3 dB above the target
    assert out.dtype == np.float32
    assert abs(20 * np.log10(np.sqrt(np.mean(out ** 2)) / np.sqrt(np.mean(target ** 2)))) < 0.1
    assert np.allclose(out, target, atol=0.01 * np.abs(target).max())


def test_match_level_never_inverts_an_unrelated_extraction():
    rng = np.random.default_rng(1)
    mixture = rng.normal(size=(1, 4000)).astype(np.float32)
    assert not match_level(-3.0 * mixture, mixture).any()


def test_match_level_leaves_silence_alone():
    silence = np.zeros((1, 320), dtype=np.float32)
    assert match_level(silence, np.ones((1, 320), dtype=np.float32)) is silence
