"""Shared training fixtures: a harmonic "voice" mixture source small enough for a few CPU steps."""
from typing import Dict, List

import numpy as np
import pytest


class ToneSpeakers:
    """Speakers as harmonic series with their own pitch and spectral tilt; a real MixtureSource, no corpus."""

    def __init__(self, n_speakers: int = 6, samples: int = 1600, enroll: int = 1600, rate: int = 16000) -> None:
        self.n_speakers, self.samples, self.enroll, self.rate = n_speakers, samples, enroll, rate
        self.f0 = np.linspace(110.0, 330.0, n_speakers)
        self.tilt = np.linspace(0.4, 0.9, n_speakers)

    def voice(self, rng: np.random.Generator, speaker: int, length: int) -> np.ndarray:
        t = np.arange(length) / self.rate
        f0 = self.f0[speaker] * (1 + 0.03 * np.sin(2 * np.pi * rng.uniform(2, 5) * t + rng.uniform(0, 6)))
        phase = 2 * np.pi * np.cumsum(f0) / self.rate
        wave = sum(self.tilt[speaker] ** h * np.sin(h * phase) for h in range(1, 6))
        envelope = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(1, 3) * t + rng.uniform(0, 6)) ** 2
        return (0.3 * wave * envelope).astype(np.float32)

    def sample(self, rng: np.random.Generator, batch: int) -> Dict[str, np.ndarray]:
        target = rng.integers(0, self.n_speakers, batch)
        other = (target + rng.integers(1, self.n_speakers, batch)) % self.n_speakers
        s = np.stack([self.voice(rng, int(k), self.samples) for k in target])
        i = np.stack([self.voice(rng, int(k), self.samples) for k in other])
        e = np.stack([self.voice(rng, int(k), self.enroll) for k in target])
        return {"mixture": s + i, "target": s, "enrollment": e, "speaker": target.astype(np.int64)}

    def valid_set(self) -> List[Dict[str, np.ndarray]]:
        rng = np.random.default_rng(99)
        return [{k: v for k, v in self.sample(rng, 4).items() if k != "speaker"}]


@pytest.fixture(scope="session")
def tone_speakers() -> ToneSpeakers:
    return ToneSpeakers()
