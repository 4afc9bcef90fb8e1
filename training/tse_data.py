"""TSE mixtures from the synthetic corpus: the corpus ``MixingSampler`` batched as a ``MixtureSource``."""
from __future__ import annotations

from typing import Dict, List

import numpy as np

from emotrt.runtime.errors import ConfigError
from emotrt.training.corpus.sampler import MixConfig, MixingSampler
from emotrt.training.tse_task import TSEDataConfig

VALID_BATCH = 8


def _stack(arrays) -> np.ndarray:
    return np.stack(list(arrays)).astype(np.float32, copy=False)


class CorpusMixtures:
    """Train batches drawn at random from the train split; a fixed 0 dB two-talker set from the valid split."""

    def __init__(self, train: MixingSampler, valid: MixingSampler, data: TSEDataConfig) -> None:
        self.train, self.valid, self.data = train, valid, data
        self.speakers = sorted({u.speaker for u in train.speech})
        self.index = {name: i for i, name in enumerate(self.speakers)}
        self.n_speakers = len(self.speakers)
        self._valid: List[Dict[str, np.ndarray]] = []

    @classmethod
    def open(cls, data: TSEDataConfig, sample_rate: int) -> "CorpusMixtures":
        """Samplers over ``data.corpus`` (16 kHz, the corpus rate)."""
        from emotrt.training.corpus.audio import SAMPLE_RATE

        if not data.corpus:
            raise ConfigError("recipe [data].corpus is empty: TSE training needs a corpus directory",
                              hint="emotrt data synth --out data/synth, then --set data.corpus=data/synth")
        if sample_rate != SAMPLE_RATE:
            raise ConfigError("the TSE runs at {} Hz but the corpus is {} Hz".format(sample_rate, SAMPLE_RATE),
                              hint="--set model.sample_rate={}".format(SAMPLE_RATE))
        mix = MixConfig(segment_seconds=data.segment_seconds, enroll_seconds=data.enroll_seconds,
                        p_interferer=data.p_interferer, sir_db=tuple(data.sir_db), p_noise=data.p_noise,
                        snr_db=tuple(data.snr_db), snr_mode=data.snr_mode)
        valid_mix = MixConfig(segment_seconds=data.segment_seconds, enroll_seconds=data.enroll_seconds,
                              p_interferer=1.0, sir_db=(0.0, 0.0), p_noise=0.0)
        train = MixingSampler.from_corpus(data.corpus, split="train", config=mix)
        valid = MixingSampler.from_corpus(data.corpus, split="valid", config=valid_mix, seed=data.valid_seed)
        return cls(train, valid, data)

    def sample(self, rng: np.random.Generator, batch: int) -> Dict[str, np.ndarray]:
        """``batch`` fresh mixtures; the index drawn from ``rng`` seeds each one in the sampler."""
        items = [self.train[int(i)] for i in rng.integers(0, 2 ** 31 - 1, batch)]
        return {
            "mixture": _stack(m.mixture for m in items),
            "target": _stack(m.target for m in items),
            "enrollment": _stack(m.enrollment for m in items),
            "speaker": np.array([self.index[m.speaker] for m in items], dtype=np.int64),
        }

    def valid_set(self) -> List[Dict[str, np.ndarray]]:
        """The validation mixtures in batches of eight (read once, then cached)."""
        if not self._valid:
            n = self.data.valid_mixtures
            items = [self.valid[i] for i in range(n)]
            for start in range(0, n, VALID_BATCH):
                chunk = items[start:start + VALID_BATCH]
                self._valid.append({k: _stack(getattr(m, k) for m in chunk)
                                    for k in ("mixture", "target", "enrollment")})
        return self._valid
