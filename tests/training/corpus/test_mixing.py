"""Mixing at an SNR (power and TG-EAT amplitude conventions) and at an SIR."""
import numpy as np
import pytest

from emotrt.runtime.errors import ConfigError
from emotrt.training.corpus import measured_snr, mix_interferer, mix_noise, noise_gain
from emotrt.training.corpus.mixing import fit_length, headroom, pad_or_crop

RNG = np.random.default_rng(0)
SPEECH = (0.3 * np.sin(np.linspace(0, 400, 16000)) * RNG.random(16000)).astype(np.float32)
NOISE = RNG.standard_normal(7000).astype(np.float32)


@pytest.mark.parametrize("snr", [10.0, 5.0, 0.0, -5.0])
@pytest.mark.parametrize("mode", ["power", "tgeat"])
def test_noise_lands_at_the_requested_snr(snr, mode):
    mixture, scaled = mix_noise(SPEECH, NOISE, snr, mode, rng=np.random.default_rng(1))
    assert mixture.shape == SPEECH.shape and mixture.dtype == np.float32
    assert measured_snr(SPEECH, scaled, mode) == pytest.approx(snr, abs=1e-3)
    np.testing.assert_allclose(mixture - SPEECH, scaled, atol=1e-6)


def test_tgeat_mode_is_about_twice_the_power_snr_in_db():
    _, scaled = mix_noise(SPEECH, NOISE, 5.0, "tgeat")
    assert 7.0 < measured_snr(SPEECH, scaled, "power") < 13.0


def test_interferer_lands_at_the_requested_sir_and_is_padded():
    short = NOISE[:4000]
    mixture, scaled = mix_interferer(SPEECH, short, 0.0, rng=np.random.default_rng(2))
    assert measured_snr(SPEECH, scaled) == pytest.approx(0.0, abs=1e-3)
    assert np.count_nonzero(scaled) == 4000


def test_unknown_snr_mode_is_a_config_error():
    with pytest.raises(ConfigError, match="snr_mode='amplitude'"):
        noise_gain(SPEECH, NOISE, 0.0, "amplitude")


def test_lengths_and_headroom():
    assert len(fit_length(NOISE, 20000)) == 20000
    assert len(fit_length(NOISE, 100, np.random.default_rng(0))) == 100
    assert len(pad_or_crop(NOISE, 9000)) == 9000
    assert headroom(np.array([0.5]), np.array([-1.9])) == pytest.approx(0.5)
    assert headroom(np.array([0.5])) == 1.0
