"""The SER training task (:class:`emotrt.training.task.Task`): seeded on-the-fly noisy/talker mixing.

Each training item is a clean labelled utterance cropped to the model window, then left clean,
mixed with a seen environment's noise at a random SNR, or mixed with another training talker at
a random SIR. The environment text (one of the environment's descriptions, encoded once) is
dropped to the null token with probability ``p_no_text`` so the model also works without a
description. Loss: cross-entropy + ``ccc_weight`` * (1 - mean CCC of arousal/valence/dominance).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
from torch.nn import functional as F

from emotrt.runtime.errors import ConfigError, CorpusError
from emotrt.training.metrics import ccc, classification_scores
from emotrt.training.ser import SER, SERConfig

log = logging.getLogger(__name__)

AVD = ("arousal", "valence", "dominance")
QUIET = "quiet"


@dataclass(frozen=True)
class SERTaskConfig:
    """Data and loss settings of SER training (the recipe's ``[task]`` section)."""

    corpus: str = ""
    batch_size: int = 32
    p_clean: float = 0.25
    p_interferer: float = 0.2
    snr_range: Tuple[float, float] = (-7.5, 15.0)
    sir_range: Tuple[float, float] = (-2.5, 10.0)
    snr_mode: str = "power"
    p_no_text: float = 0.2
    ccc_weight: float = 1.0
    valid_size: int = 256
    valid_seed: int = 1234
    max_train_utterances: Optional[int] = None
    model: SERConfig = field(default_factory=SERConfig)

    def __post_init__(self) -> None:
        if not self.corpus:
            raise ConfigError("ser task: corpus is not set", hint="--set task.corpus=/work/data/synth")
        if self.batch_size < 2:
            raise ConfigError("ser task: batch_size must be >= 2 (CCC needs a batch), got {}".format(self.batch_size))
        for name in ("p_clean", "p_interferer", "p_no_text"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError("ser task: {} must be within [0, 1], got {}".format(name, getattr(self, name)))
        if self.p_clean + self.p_interferer > 1.0:
            raise ConfigError("ser task: p_clean + p_interferer exceeds 1 ({} + {})".format(self.p_clean, self.p_interferer))
        for name in ("snr_range", "sir_range"):
            low, high = getattr(self, name)
            if low > high:
                raise ConfigError("ser task: {} low {} is above high {}".format(name, low, high))

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "SERTaskConfig":
        """From a recipe's task section plus its ``model`` table; unknown keys are named."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError("ser task: unknown keys {}".format(", ".join(unknown)),
                              hint="known keys: " + ", ".join(sorted(known)))
        data = dict(data)
        for name in ("snr_range", "sir_range"):
            if name in data:
                data[name] = tuple(float(v) for v in data[name])
        data["model"] = SERConfig.from_dict(data.get("model", {}))
        return cls(**data)


def _crop(audio: np.ndarray, window: int, rng: np.random.Generator) -> np.ndarray:
    if len(audio) >= window:
        start = int(rng.integers(0, len(audio) - window + 1))
        return audio[start:start + window]
    out = np.zeros(window, dtype=np.float32)
    start = int(rng.integers(0, window - len(audio) + 1))
    out[start:start + len(audio)] = audio
    return out


class SERTask:
    """SER on a corpus directory (docs/contracts.md layout); the trainer drives it."""

    name = "ser"

    def __init__(self, config: SERTaskConfig, text_encoder: Any = None) -> None:
        from emotrt.training.corpus import load_manifest
        from emotrt.training.corpus.audio import read_audio
        from emotrt.training.text import DescriptionBank, load_text_encoder

        self.config = config
        model = config.model
        root = Path(config.corpus)
        envs_file = root / "environments.json"
        if not envs_file.is_file():
            raise CorpusError("no corpus at {} (environments.json missing)".format(root),
                              hint="emotrt data synth --size full --seed 0 --out {}".format(root))
        environments = json.loads(envs_file.read_text())
        encoder = text_encoder or load_text_encoder(model.text_encoder, model.text_encoder_path)
        if encoder.dim != model.text_dim:
            raise ConfigError("ser: text_dim {} but the {} encoder gives {}".format(model.text_dim, encoder.name, encoder.dim),
                              hint="--set model.text_dim={}".format(encoder.dim))
        self.bank = DescriptionBank(encoder, environments, model.text_template)
        labels = list(model.labels)

        def speech(split: str) -> List[Any]:
            items = [u for u in load_manifest(root / "manifests" / "{}.jsonl".format(split)) if u.emotion in labels]
            if not items:
                raise CorpusError("{} split of {} has no utterance labelled {}".format(split, root, labels))
            return items

        train = speech("train")[: config.max_train_utterances]
        self.train = [(read_audio(u.file), labels.index(u.emotion), [getattr(u, k) or 3.0 for k in AVD]) for u in train]
        self.train_speakers = [u.speaker for u in train]
        noise = [u for u in load_manifest(root / "manifests" / "noise.jsonl")
                 if u.split == "train" and environments.get(u.environment, {}).get("split") == "seen"]
        if not noise:
            raise CorpusError("{} has no training noise of a seen environment".format(root))
        self.noise = [(read_audio(u.file), str(u.environment)) for u in noise]
        valid = speech("valid")
        rng = np.random.default_rng(config.valid_seed)
        picks = rng.permutation(len(valid))[: config.valid_size]
        clips = [(read_audio(valid[i].file), labels.index(valid[i].emotion), [getattr(valid[i], k) or 3.0 for k in AVD])
                 for i in picks]
        self.valid = self._batch([self._item(c, rng, train_pool=False, pool=clips) for c in clips], rng, text_dropout=0.0)
        log.info("ser task: %d train, %d valid utterances, %d noise clips", len(self.train), len(clips), len(self.noise))

    @classmethod
    def from_recipe(cls, section: Dict[str, Any]) -> "SERTask":
        """Build from a recipe's task section (``corpus``, mixing and loss keys, ``model`` table)."""
        return cls(SERTaskConfig.from_dict(section))

    def _item(self, clip: Tuple[np.ndarray, int, List[float]], rng: np.random.Generator, train_pool: bool = True,
              pool: Optional[List[Any]] = None) -> Tuple[np.ndarray, int, List[float], str]:
        from emotrt.training.corpus.mixing import compose

        cfg = self.config
        audio, label, avd = clip
        target = _crop(audio, cfg.model.window_samples, rng)
        draw = rng.random()
        if draw < cfg.p_clean or rms(target) < 1e-4:
            return target, label, avd, QUIET
        if draw < cfg.p_clean + cfg.p_interferer:
            others = pool if pool is not None else self.train
            other = others[int(rng.integers(len(others)))][0]
            mixture, _, _ = compose(target, rng, interferer=other, sir_db=float(rng.uniform(*cfg.sir_range)))
            return mixture, label, avd, QUIET
        noise, env = self.noise[int(rng.integers(len(self.noise)))]
        mixture, _, _ = compose(target, rng, noise=noise, snr_db=float(rng.uniform(*cfg.snr_range)), snr_mode=cfg.snr_mode)
        return mixture, label, avd, env

    def _batch(self, items: List[Tuple[np.ndarray, int, List[float], str]], rng: np.random.Generator,
               text_dropout: float) -> Dict[str, Any]:
        from emotrt.training.corpus.mixing import headroom

        return {
            "audio": torch.from_numpy(np.stack([i[0] * headroom(i[0]) for i in items]).astype(np.float32)),
            "label": torch.tensor([i[1] for i in items]),
            "avd": torch.tensor([i[2] for i in items], dtype=torch.float32),
            "text": torch.stack([self.bank.embedding(i[3], int(rng.integers(1 << 16))) for i in items]),
            "has_text": torch.from_numpy(rng.random(len(items)) >= text_dropout),
            "environment": [i[3] for i in items],
        }

    def build_model(self) -> SER:
        """A fresh SER of the configured dimensions."""
        return SER.from_config(self.config.model)

    def train_batches(self, seed: int) -> Iterator[Dict[str, Any]]:
        """Endless seeded batches of freshly mixed training windows."""
        rng = np.random.default_rng([seed, 7])
        while True:
            picks = rng.integers(0, len(self.train), self.config.batch_size)
            yield self._batch([self._item(self.train[i], rng) for i in picks], rng, self.config.p_no_text)

    def tokens(self, model: SER, batch: Dict[str, Any]) -> torch.Tensor:
        """Environment tokens of a batch: projected text, or the null token where ``has_text`` is False."""
        projected = model.project_env(batch["text"])
        return torch.where(batch["has_text"][:, None], projected, model.null_env(len(projected)))

    def loss(self, model: SER, batch: Dict[str, Any]) -> Tuple[torch.Tensor, Dict[str, float]]:
        """Cross-entropy + ccc_weight * (1 - mean CCC)."""
        logits, avd = model(batch["audio"], self.tokens(model, batch))
        ce = F.cross_entropy(logits, batch["label"])
        concord = ccc(avd, batch["avd"]).mean()
        loss = ce + self.config.ccc_weight * (1.0 - concord)
        accuracy = (logits.argmax(-1) == batch["label"]).float().mean()
        return loss, {"ce": ce.item(), "ccc": concord.item(), "acc": accuracy.item()}

    def validate(self, model: SER) -> Dict[str, float]:
        """UA/WA/F1/CCC on the fixed validation mixtures; ``score`` is UA."""
        was_training = model.training
        model.eval()
        logits, avd = [], []
        with torch.no_grad():
            for start in range(0, len(self.valid["label"]), self.config.batch_size):
                part = {k: v[start:start + self.config.batch_size] for k, v in self.valid.items()}
                out = model(part["audio"], self.tokens(model, part))
                logits.append(out[0])
                avd.append(out[1])
        model.train(was_training)
        scores = classification_scores(self.valid["label"].numpy(), torch.cat(logits).argmax(-1).numpy(),
                                       len(self.config.model.labels))
        scores["ccc"] = float(ccc(torch.cat(avd), self.valid["avd"]).mean())
        scores["score"] = scores["ua"]
        return scores

    def checkpoint_config(self, model: SER) -> Dict[str, Any]:
        """The SER checkpoint config (family ``ser``, every dimension, labels, text encoder)."""
        return model.checkpoint_config()


def rms(audio: np.ndarray) -> float:
    """Root mean square of a signal."""
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
