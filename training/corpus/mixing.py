"""Mixing speech with noise at an SNR and with an interfering talker at an SIR.

Two SNR conventions: ``power`` is the standard ratio of mean powers,
``10*log10(P_speech / P_noise)``. ``tgeat`` reproduces TG-EAT's mixing (REFERENCE.md "Seed
protocols"), which scales the noise so that the ratio of *mean absolute amplitudes* is
``10**(snr/10)``; in power terms that is about twice the nominal dB, so use it only to compare
with numbers reported under that convention.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from emotrt.runtime.errors import ConfigError

SNR_MODES = ("power", "tgeat")
_EPS = 1e-12


def power(x: np.ndarray) -> float:
    """Mean power of a signal."""
    return float(np.mean(np.square(x, dtype=np.float64)))


def noise_gain(speech: np.ndarray, noise: np.ndarray, snr_db: float, mode: str = "power") -> float:
    """The gain that puts ``noise`` at ``snr_db`` below ``speech`` under the convention ``mode``."""
    if mode == "power":
        return float(np.sqrt(power(speech) / (max(power(noise), _EPS) * 10.0 ** (snr_db / 10.0))))
    if mode == "tgeat":
        ratio = float(np.mean(np.abs(speech))) / max(float(np.mean(np.abs(noise))), _EPS)
        return ratio / 10.0 ** (snr_db / 10.0)
    raise ConfigError("snr_mode={!r}, expected one of {}".format(mode, ", ".join(SNR_MODES)))


def measured_snr(speech: np.ndarray, noise: np.ndarray, mode: str = "power") -> float:
    """The SNR in dB of ``speech`` against an already scaled ``noise`` under ``mode``."""
    if mode == "tgeat":
        return float(10.0 * np.log10(np.mean(np.abs(speech)) / max(float(np.mean(np.abs(noise))), _EPS)))
    return float(10.0 * np.log10(power(speech) / max(power(noise), _EPS)))


def fit_length(x: np.ndarray, length: int, rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """Crop ``x`` to ``length`` at a random offset, or loop it when shorter."""
    if len(x) == 0:
        raise ConfigError("cannot fit an empty signal to {} samples".format(length))
    if len(x) < length:
        x = np.tile(x, int(np.ceil(length / len(x))))
    start = int(rng.integers(0, len(x) - length + 1)) if rng is not None and len(x) > length else 0
    return x[start:start + length]


def pad_or_crop(x: np.ndarray, length: int, rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """Crop ``x`` to ``length`` at a random offset, or zero-pad it at a random offset when shorter."""
    if len(x) >= length:
        return fit_length(x, length, rng)
    out = np.zeros(length, dtype=x.dtype)
    start = int(rng.integers(0, length - len(x) + 1)) if rng is not None else 0
    out[start:start + len(x)] = x
    return out


def mix_noise(
    speech: np.ndarray, noise: np.ndarray, snr_db: float, mode: str = "power", rng: Optional[np.random.Generator] = None
) -> Tuple[np.ndarray, np.ndarray]:
    """``(mixture, scaled noise)``: ``noise`` fitted to the speech length and added at ``snr_db``."""
    noise = fit_length(np.asarray(noise, dtype=np.float32), len(speech), rng)
    scaled = (noise * noise_gain(speech, noise, snr_db, mode)).astype(np.float32)
    return (speech + scaled).astype(np.float32), scaled


def mix_interferer(
    target: np.ndarray, interferer: np.ndarray, sir_db: float, rng: Optional[np.random.Generator] = None
) -> Tuple[np.ndarray, np.ndarray]:
    """``(mixture, scaled interferer)``: a competing talker at ``sir_db`` (power ratio) below the target."""
    interferer = pad_or_crop(np.asarray(interferer, dtype=np.float32), len(target), rng)
    scaled = (interferer * noise_gain(target, interferer, sir_db, "power")).astype(np.float32)
    return (target + scaled).astype(np.float32), scaled


def headroom(*signals: np.ndarray, peak: float = 0.95) -> float:
    """One gain for all ``signals`` that keeps the loudest below ``peak`` (1.0 when they already are)."""
    top = max(float(np.max(np.abs(s))) if len(s) else 0.0 for s in signals)
    return 1.0 if top <= peak else peak / top


def compose(
    target: np.ndarray,
    rng: np.random.Generator,
    interferer: Optional[np.ndarray] = None,
    sir_db: float = 0.0,
    noise: Optional[np.ndarray] = None,
    snr_db: float = 0.0,
    snr_mode: str = "power",
) -> Tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
    """``(mixture, scaled interferer, scaled noise)``: target + talker at ``sir_db`` + noise at ``snr_db``.

    Both ratios are relative to the target alone. The mixture is not rescaled, so
    ``mixture == target + interferer + noise`` exactly; see :func:`headroom` before writing PCM.
    """
    mixture = np.asarray(target, dtype=np.float32)
    scaled_interferer = scaled_noise = None
    if interferer is not None:
        _, scaled_interferer = mix_interferer(mixture, interferer, sir_db, rng)
    if noise is not None:
        _, scaled_noise = mix_noise(mixture, noise, snr_db, snr_mode, rng)
    for part in (scaled_interferer, scaled_noise):
        if part is not None:
            mixture = mixture + part
    return mixture.astype(np.float32), scaled_interferer, scaled_noise
