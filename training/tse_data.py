"""TSE mixtures from the synthetic corpus: the corpus ``MixingSampler`` batched as a ``MixtureSource``.

On top of the sampler's mixtures (target + optional talker at an SIR + optional environment
noise at an SNR, target = the clean target speech), the TSE data path adds what the corpus
does not vary, without touching corpus synthesis: a speed warp of the target speaker (shared
with their enrollment) and, independently, of the interferer, which moves pitch and formants
together and so makes new voices of the espeak-ng ones; and a random input level. With
``[data] voices`` (a corpus from ``emotrt data voices``), a share ``p_voices`` of the training
mixtures are made of other synthesisers' voices instead (same mixing, the main corpus' noise).
"""
from __future__ import annotations

from fractions import Fraction
from typing import Dict, List, Optional, Tuple

import numpy as np

from emotrt.runtime.errors import ConfigError
from emotrt.training.corpus.mixing import pad_or_crop
from emotrt.training.corpus.sampler import MixConfig, Mixture, MixingSampler
from emotrt.training.tse_task import TSEDataConfig

VALID_BATCH = 8
PEAK = 0.99  # input-level augmentation never pushes a sample past this (the device reads PCM)


def _stack(arrays) -> np.ndarray:
    return np.stack(list(arrays)).astype(np.float32, copy=False)


def warp(x: np.ndarray, factor: float, rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """``x`` played ``factor`` times faster (pitch and formants × ``factor``), cut or padded back to its length."""
    if factor == 1.0:
        return x
    from scipy.signal import resample_poly

    ratio = Fraction(1.0 / factor).limit_denominator(50)
    out = resample_poly(x, ratio.numerator, ratio.denominator).astype(np.float32)
    return pad_or_crop(out, len(x), rng)


def augment(item: Mixture, data: TSEDataConfig, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mixture, target, enrollment) of one sampler item after speed warps and a random input level."""
    target, enrollment = item.target, item.enrollment
    interferer = item.interferer
    if data.warp and rng.random() < data.p_warp:
        factor = float(data.warp[int(rng.integers(len(data.warp)))])
        target, enrollment = warp(target, factor, rng), warp(enrollment, factor, rng)
    if interferer is not None and data.warp and rng.random() < data.p_warp:
        interferer = warp(interferer, float(data.warp[int(rng.integers(len(data.warp)))]), rng)
    mixture = target + sum(p for p in (interferer, item.noise) if p is not None)
    gain = 10.0 ** (rng.uniform(*data.gain_db) / 20.0)
    peak = float(np.max(np.abs(mixture))) if mixture.size else 0.0
    if peak * gain > PEAK:
        gain = PEAK / peak
    return (mixture * gain).astype(np.float32), (target * gain).astype(np.float32), enrollment.astype(np.float32)


class CorpusMixtures:
    """Train batches drawn at random from the train split; fixed validation sets from the valid split.

    Validation: ``valid_mixtures`` two-talker 0 dB mixtures (condition ``talker``), then
    ``valid_noise_mixtures`` of the target in seen-environment noise at ``valid_snr_db`` with no
    talker (``noise``) and ``valid_clean_mixtures`` of the target alone (``clean``).
    """

    def __init__(self, train: MixingSampler, valid: Dict[str, MixingSampler], data: TSEDataConfig,
                 voices: Optional[MixingSampler] = None) -> None:
        self.train, self.valid, self.data, self.voices = train, valid, data, voices
        self.speakers = sorted({u.speaker for u in train.speech} | {u.speaker for u in (voices.speech if voices else ())})
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
        cut = dict(segment_seconds=data.segment_seconds, enroll_seconds=data.enroll_seconds)
        mix = MixConfig(p_interferer=data.p_interferer, sir_db=tuple(data.sir_db), p_noise=data.p_noise,
                        snr_db=tuple(data.snr_db), snr_mode=data.snr_mode, **cut)
        conditions = {
            "talker": MixConfig(p_interferer=1.0, sir_db=(0.0, 0.0), p_noise=0.0, **cut),
            "noise": MixConfig(p_interferer=0.0, p_noise=1.0, snr_db=(data.valid_snr_db,), **cut),
            "clean": MixConfig(p_interferer=0.0, p_noise=0.0, **cut),
        }
        train = MixingSampler.from_corpus(data.corpus, split="train", config=mix)
        valid = {name: MixingSampler.from_corpus(data.corpus, split="valid", config=config, seed=data.valid_seed)
                 for name, config in conditions.items() if cls._count(data, name)}
        voices = (MixingSampler.from_corpus(data.voices, split="train", config=mix, seed=1, noise_root=data.corpus)
                  if data.voices and data.p_voices > 0 else None)
        return cls(train, valid, data, voices)

    @staticmethod
    def _count(data: TSEDataConfig, condition: str) -> int:
        return {"talker": data.valid_mixtures, "noise": data.valid_noise_mixtures,
                "clean": data.valid_clean_mixtures}[condition]

    def sample(self, rng: np.random.Generator, batch: int) -> Dict[str, np.ndarray]:
        """``batch`` fresh mixtures; the index drawn from ``rng`` seeds each one in the sampler and its augmentation."""
        seeds = [int(i) for i in rng.integers(0, 2 ** 31 - 1, batch)]
        items = [self._source(i)[i] for i in seeds]
        made = [augment(m, self.data, np.random.default_rng([i, 1])) for i, m in zip(seeds, items)]
        return {
            "mixture": _stack(m[0] for m in made),
            "target": _stack(m[1] for m in made),
            "enrollment": _stack(m[2] for m in made),
            "speaker": np.array([self.index[m.speaker] for m in items], dtype=np.int64),
        }

    def _source(self, seed: int) -> MixingSampler:
        """The sampler a training mixture comes from: the voices corpus for a share ``p_voices`` of the seeds."""
        if self.voices is not None and np.random.default_rng([seed, 2]).random() < self.data.p_voices:
            return self.voices
        return self.train

    def valid_set(self) -> List[Dict[str, np.ndarray]]:
        """The validation mixtures in batches of eight, each naming its ``condition`` (read once, then cached)."""
        if not self._valid:
            for condition, sampler in self.valid.items():
                n = self._count(self.data, condition)
                items = [sampler[i] for i in range(n)]
                for start in range(0, n, VALID_BATCH):
                    chunk = items[start:start + VALID_BATCH]
                    batch = {k: _stack(getattr(m, k) for m in chunk) for k in ("mixture", "target", "enrollment")}
                    batch["condition"] = condition  # type: ignore[assignment]
                    self._valid.append(batch)
        return self._valid
