"""Results helpers: level matching between the extractor and the SER."""
import numpy as np

from emotrt.runtime.results import match_level


def test_match_level_brings_a_loud_extraction_to_the_mixture_level():
    rng = np.random.default_rng(0)
    mixture = rng.normal(scale=0.1, size=(1, 16000)).astype(np.float32)
    extracted = 200.0 * mixture[:, ::-1].copy()
    out = match_level(extracted, mixture)
    assert out.dtype == np.float32
    assert np.isclose(np.sqrt(np.mean(out ** 2)), np.sqrt(np.mean(mixture ** 2)), rtol=1e-5)
    assert np.allclose(out / np.abs(out).max(), extracted / np.abs(extracted).max(), atol=1e-6)


def test_match_level_leaves_silence_alone():
    silence = np.zeros((1, 320), dtype=np.float32)
    assert match_level(silence, np.ones((1, 320), dtype=np.float32)) is silence
