"""The seeded on-the-fly mixing dataset for training: every index is one reproducible mixture.

``MixingSampler(...)[i]`` draws, from ``numpy.random.default_rng([seed, i])`` alone: the target
utterance ``i % len``, an enrollment utterance of the same speaker with a different sentence,
optionally a talker of another speaker at an SIR and an environment noise clip at an SNR (power
or TG-EAT amplitude convention), and one of that environment's descriptions. It is a map-style
dataset (``__len__``/``__getitem__``), so a torch ``DataLoader`` can wrap it; numpy only here.
"""
from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from emotrt.runtime.errors import ConfigError, CorpusError

from .audio import SAMPLE_RATE, read_audio
from .manifest import Utterance, load_manifest
from .mixing import SNR_MODES, compose, pad_or_crop

QUIET = "quiet"


@dataclasses.dataclass(frozen=True)
class MixConfig:
    """What a training mixture may contain. The default SNRs are TG-EAT's training set {12.5, 7.5, 2.5} dB."""

    segment_seconds: Optional[float] = 3.0
    enroll_seconds: Optional[float] = None
    p_interferer: float = 0.5
    sir_db: Tuple[float, float] = (-5.0, 5.0)
    p_noise: float = 0.8
    snr_db: Tuple[float, ...] = (12.5, 7.5, 2.5)
    snr_mode: str = "power"

    def __post_init__(self) -> None:
        bad = [n for n in ("p_interferer", "p_noise") if not 0.0 <= getattr(self, n) <= 1.0]
        bad += [n for n in ("segment_seconds", "enroll_seconds") if getattr(self, n) is not None and getattr(self, n) <= 0]
        if len(self.sir_db) != 2 or self.sir_db[0] > self.sir_db[1]:
            bad.append("sir_db (expected (low, high))")
        if not self.snr_db:
            bad.append("snr_db (expected at least one value)")
        if self.snr_mode not in SNR_MODES:
            bad.append("snr_mode (expected one of {})".format(", ".join(SNR_MODES)))
        if bad:
            raise ConfigError("MixConfig has invalid fields: {}".format(", ".join(bad)))


@dataclasses.dataclass(frozen=True)
class Mixture:
    """One training example: float32 arrays at 16 kHz and the labels of the target."""

    mixture: np.ndarray
    target: np.ndarray
    enrollment: np.ndarray
    interferer: Optional[np.ndarray]
    noise: Optional[np.ndarray]
    speaker: str
    gender: Optional[str]
    emotion: Optional[str]
    arousal: Optional[float]
    valence: Optional[float]
    dominance: Optional[float]
    environment: str
    description: str
    snr_db: Optional[float]
    sir_db: Optional[float]
    snr_mode: Optional[str]
    gender_pair: Optional[str]
    target_id: str
    enrollment_id: str
    interferer_id: Optional[str]
    noise_id: Optional[str]


class MixingSampler:
    """Reproducible mixtures from clean, enrollment and noise manifests (see the module docstring).

    ``root`` is a corpus made by ``emotrt data synth``:

    >>> sampler = MixingSampler.from_corpus(root, split="train", config=MixConfig(segment_seconds=2.0), seed=0)
    >>> item = sampler[7]
    >>> item.mixture.shape, item.mixture.dtype.name, item.speaker == item.enrollment_id.split("_")[0]
    ((32000,), 'float32', True)
    >>> bool(np.array_equal(item.mixture, sampler[7].mixture))
    True
    """

    def __init__(
        self,
        speech: Sequence[Utterance],
        enroll: Sequence[Utterance],
        noise: Sequence[Utterance],
        environments: Mapping[str, Mapping[str, Any]],
        config: MixConfig = MixConfig(),
        seed: int = 0,
    ) -> None:
        if not speech:
            raise CorpusError("the mixing sampler got no speech utterances", hint="check the manifest and --split")
        self.speech, self.config, self.seed = list(speech), config, seed
        self.environments = environments
        self._by_speaker: Dict[str, List[Utterance]] = defaultdict(list)
        for u in list(enroll) + self.speech:
            self._by_speaker[u.speaker].append(u)
        self._noise: Dict[str, List[Utterance]] = defaultdict(list)
        for c in noise:
            self._noise[c.environment].append(c)
        self._env_ids = sorted(self._noise)
        if config.p_noise > 0 and not self._env_ids:
            raise CorpusError("p_noise={} but no noise clips were given".format(config.p_noise),
                              hint="pass noise clips (manifests/noise.jsonl) or MixConfig(p_noise=0)")
        if config.p_interferer > 0 and len({u.speaker for u in self.speech}) < 2:
            raise CorpusError("p_interferer={} needs at least two speakers".format(config.p_interferer),
                              hint="use a manifest with more speakers or MixConfig(p_interferer=0)")
        missing = [e for e in self._env_ids + ([QUIET] if config.p_noise < 1 else []) if e not in environments]
        if missing:
            raise CorpusError("environments without descriptions: {}".format(", ".join(missing)),
                              hint="environments.json must describe every noise environment and 'quiet'")

    @classmethod
    def from_corpus(
        cls, root: Any, split: str = "train", config: MixConfig = MixConfig(), seed: int = 0, noise_root: Any = None,
    ) -> "MixingSampler":
        """A sampler over ``root``'s ``split``, with noise of that split from *seen* environments only.

        ``noise_root`` takes the noise and environments from another corpus (e.g. IEMOCAP speech
        from ``emotrt data prepare`` with synthetic or DEMAND noise). Without ``enroll.jsonl``,
        enrollment comes from the speaker's other utterances.
        """
        root = Path(root)
        noise_root = Path(noise_root) if noise_root is not None else root
        envs_file = noise_root / "environments.json"
        if not envs_file.is_file():
            raise CorpusError("{} has no environments.json".format(noise_root),
                              hint="make a corpus with `emotrt data synth --out DIR` or pass noise_root")
        environments = json.loads(envs_file.read_text())
        enroll_file = root / "manifests" / "enroll.jsonl"
        enroll = [u for u in load_manifest(enroll_file, root) if u.split == split] if enroll_file.is_file() else []
        noise = [c for c in load_manifest(noise_root / "manifests" / "noise.jsonl", noise_root)
                 if c.split == split and environments.get(c.environment, {}).get("split") == "seen"]
        return cls(load_manifest(root / "manifests" / (split + ".jsonl"), root), enroll, noise, environments, config, seed)

    def __len__(self) -> int:
        return len(self.speech)

    def _enrollment(self, target: Utterance, rng: np.random.Generator) -> Utterance:
        pool = [u for u in self._by_speaker[target.speaker] if u.id != target.id and u.text != target.text]
        if not pool:
            raise CorpusError("speaker {} has no other utterance to enroll with".format(target.speaker),
                              hint="every speaker needs at least two utterances with different sentences")
        return pool[int(rng.integers(len(pool)))]

    def _interferer(self, target: Utterance, rng: np.random.Generator) -> Utterance:
        while True:
            other = self.speech[int(rng.integers(len(self.speech)))]
            if other.speaker != target.speaker:
                return other

    def __getitem__(self, index: int) -> Mixture:
        cfg = self.config
        rng = np.random.default_rng([self.seed, int(index)])
        utt = self.speech[int(index) % len(self.speech)]
        target = read_audio(utt.file)
        if cfg.segment_seconds is not None:
            target = pad_or_crop(target, int(cfg.segment_seconds * SAMPLE_RATE), rng)
        enroll_utt = self._enrollment(utt, rng)
        enrollment = read_audio(enroll_utt.file)
        if cfg.enroll_seconds is not None:
            enrollment = pad_or_crop(enrollment, int(cfg.enroll_seconds * SAMPLE_RATE), rng)
        other = self._interferer(utt, rng) if rng.random() < cfg.p_interferer else None
        clip = None
        if rng.random() < cfg.p_noise:
            env_clips = self._noise[self._env_ids[int(rng.integers(len(self._env_ids)))]]
            clip = env_clips[int(rng.integers(len(env_clips)))]
        sir = float(rng.uniform(*cfg.sir_db)) if other else None
        snr = float(cfg.snr_db[int(rng.integers(len(cfg.snr_db)))]) if clip else None
        mixture, interferer, noise = compose(
            target, rng, interferer=read_audio(other.file) if other else None, sir_db=sir or 0.0,
            noise=read_audio(clip.file) if clip else None, snr_db=snr or 0.0, snr_mode=cfg.snr_mode)
        environment = clip.environment if clip else QUIET
        descriptions = self.environments[environment]["descriptions"]
        return Mixture(
            mixture=mixture, target=target, enrollment=enrollment, interferer=interferer, noise=noise,
            speaker=utt.speaker, gender=utt.gender, emotion=utt.emotion, arousal=utt.arousal, valence=utt.valence,
            dominance=utt.dominance, environment=environment,
            description=descriptions[int(rng.integers(len(descriptions)))], snr_db=snr, sir_db=sir,
            snr_mode=cfg.snr_mode if clip else None,
            gender_pair=("same" if other.gender == utt.gender else "different") if other else None,
            target_id=utt.id, enrollment_id=enroll_utt.id, interferer_id=other.id if other else None,
            noise_id=clip.id if clip else None,
        )
