"""Noise recipes: every environment makes a finite, audible, reproducible clip; descriptions are distinct."""
import numpy as np
import pytest

from emotrt.training.corpus.noises import ENVIRONMENTS, make_noise

POOL = [np.random.default_rng(i).standard_normal(8000).astype(np.float32) for i in range(8)]
NOISY = [e for e in ENVIRONMENTS if e != "quiet"]


@pytest.mark.parametrize("env", NOISY)
def test_each_environment_makes_a_clip(env):
    clip = make_noise(env, 0.5, (0, 1), POOL)
    assert clip.shape == (8000,) and clip.dtype == np.float32 and np.isfinite(clip).all()
    assert np.max(np.abs(clip)) == pytest.approx(0.5, abs=1e-6) and np.std(clip) > 0.005
    np.testing.assert_array_equal(clip, make_noise(env, 0.5, (0, 1), POOL))
    assert not np.array_equal(clip, make_noise(env, 0.5, (0, 2), POOL))


def test_environments_have_spectrally_different_sounds():
    spectra = {e: np.abs(np.fft.rfft(make_noise(e, 1.0, (0, 0), POOL))) for e in NOISY}
    centroid = {e: float(np.sum(np.arange(len(s)) * s) / np.sum(s)) for e, s in spectra.items()}
    assert centroid["rain"] > 2 * centroid["car_interior"] and centroid["rain"] > 2 * centroid["wind"]


def test_descriptions_follow_the_templates():
    for env in ENVIRONMENTS.values():
        assert len(set(env.descriptions)) == 3
    assert ENVIRONMENTS["cafe"].descriptions[0] == "This speech is recorded in a busy cafe."
