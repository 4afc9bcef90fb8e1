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
from dataclasses import asdict, dataclass
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


SECTIONS = ("model", "data", "loss")


@dataclass(frozen=True)
class SERDataConfig:
    """``[data]``: the corpus and how training windows are mixed."""

    corpus: str = ""  # corpus directory written by `emotrt data synth`
    batch_size: int = 32
    p_clean: float = 0.25  # share of windows left clean
    p_interferer: float = 0.2  # share mixed with another training talker (the rest get noise)
    snr_db: Tuple[float, ...] = (-7.5, 15.0)  # uniform in [low, high]
    sir_db: Tuple[float, ...] = (-2.5, 10.0)  # uniform in [low, high]
    snr_mode: str = "power"  # or "tgeat" (TG-EAT's amplitude convention)
    p_no_text: float = 0.2  # share of windows given the null environment token
    valid_size: int = 256  # fixed validation windows (valid speakers, same mixing)
    valid_seed: int = 1234
    max_train_utterances: int = 0  # 0 = all

    def __post_init__(self) -> None:
        if not self.corpus:
            raise ConfigError("recipe [data]: corpus is not set", hint="--set data.corpus=/work/data/synth")
        if self.batch_size < 2 or self.valid_size < 2:
            raise ConfigError("recipe [data]: batch_size and valid_size must be >= 2 (CCC needs a batch), got {} and {}"
                              .format(self.batch_size, self.valid_size))
        for name in ("p_clean", "p_interferer", "p_no_text"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError("recipe [data]: {} must be within [0, 1], got {}".format(name, getattr(self, name)))
        if self.p_clean + self.p_interferer > 1.0:
            raise ConfigError("recipe [data]: p_clean + p_interferer exceeds 1 ({} + {})".format(
                self.p_clean, self.p_interferer))
        for name in ("snr_db", "sir_db"):
            value = getattr(self, name)
            if len(value) != 2 or value[0] > value[1]:
                raise ConfigError("recipe [data]: {} expected [low, high], found {}".format(name, list(value)))


@dataclass(frozen=True)
class SERLossConfig:
    """``[loss]``: cross-entropy + ``ccc_weight`` * (1 - mean CCC)."""

    ccc_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.ccc_weight < 0:
            raise ConfigError("recipe [loss]: ccc_weight must be >= 0, got {}".format(self.ccc_weight))


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

    def __init__(self, model: SERConfig, data: SERDataConfig, loss: SERLossConfig = SERLossConfig(),
                 text_encoder: Any = None) -> None:
        from emotrt.training.corpus import load_manifest
        from emotrt.training.corpus.audio import read_audio
        from emotrt.training.text import DescriptionBank, load_text_encoder

        self.model_config, self.data, self.loss_config = model, data, loss
        root = Path(data.corpus)
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

        train = speech("train")[: data.max_train_utterances or None]
        # Training audio is read per batch (the page cache keeps it hot); a full corpus is GBs as float32.
        self.train = [(u.file, labels.index(u.emotion), [getattr(u, k) or 3.0 for k in AVD]) for u in train]
        noise = [u for u in load_manifest(root / "manifests" / "noise.jsonl")
                 if u.split == "train" and environments.get(u.environment, {}).get("split") == "seen"]
        if not noise:
            raise CorpusError("{} has no training noise of a seen environment".format(root))
        self.noise = [(read_audio(u.file), str(u.environment)) for u in noise]
        valid = speech("valid")
        clips = [(read_audio(u.file), labels.index(u.emotion), [getattr(u, k) or 3.0 for k in AVD]) for u in valid]
        rng = np.random.default_rng(data.valid_seed)
        order = rng.permutation(len(clips))
        picks = [clips[order[i % len(clips)]] for i in range(data.valid_size)]
        self.valid = self._batch([self._item(c, rng, pool=clips) for c in picks], rng, text_dropout=0.0)
        log.info("ser task: %d train, %d valid utterances, %d noise clips", len(self.train), len(clips), len(self.noise))

    def _item(self, clip: Tuple[Any, int, List[float]], rng: np.random.Generator,
              pool: Optional[List[Any]] = None) -> Tuple[np.ndarray, int, List[float], str]:
        from emotrt.training.corpus.mixing import compose

        cfg = self.data
        source, label, avd = clip
        target = _crop(_audio(source), self.model_config.window_samples, rng)
        draw = rng.random()
        if draw < cfg.p_clean or rms(target) < 1e-4:
            return target, label, avd, QUIET
        if draw < cfg.p_clean + cfg.p_interferer:
            others = pool if pool is not None else self.train
            other = _audio(others[int(rng.integers(len(others)))][0])
            mixture, _, _ = compose(target, rng, interferer=other, sir_db=float(rng.uniform(*cfg.sir_db)))
            return mixture, label, avd, QUIET
        noise, env = self.noise[int(rng.integers(len(self.noise)))]
        mixture, _, _ = compose(target, rng, noise=noise, snr_db=float(rng.uniform(*cfg.snr_db)), snr_mode=cfg.snr_mode)
        return mixture, label, avd, env

    def _batch(self, items: List[Tuple[np.ndarray, int, List[float], str]], rng: np.random.Generator,
               text_dropout: float) -> Dict[str, Any]:
        from emotrt.training.corpus.mixing import headroom

        picks = [int(j) for j in rng.integers(0, 1 << 16, len(items))]
        return {
            "audio": torch.from_numpy(np.stack([i[0] * headroom(i[0]) for i in items]).astype(np.float32)),
            "label": torch.tensor([i[1] for i in items]),
            "avd": torch.tensor([i[2] for i in items], dtype=torch.float32),
            "text": torch.stack([self.bank.embedding(i[3], j) for i, j in zip(items, picks)]),
            "description": [self.bank.descriptions[i[3]][j % len(self.bank.descriptions[i[3]])] for i, j in zip(items, picks)],
            "has_text": torch.from_numpy(rng.random(len(items)) >= text_dropout),
            "environment": [i[3] for i in items],
        }

    def build_model(self) -> SER:
        """A fresh SER of the configured dimensions."""
        return SER.from_config(self.model_config)

    def train_batches(self, seed: int) -> Iterator[Dict[str, Any]]:
        """Endless seeded batches of freshly mixed training windows."""
        rng = np.random.default_rng([seed, 7])
        while True:
            picks = rng.integers(0, len(self.train), self.data.batch_size)
            yield self._batch([self._item(self.train[i], rng) for i in picks], rng, self.data.p_no_text)

    def tokens(self, model: SER, batch: Dict[str, Any]) -> torch.Tensor:
        """Environment tokens of a batch: projected text, or the null token where ``has_text`` is False.

        A model with a jointly trained text encoder embeds the batch's descriptions itself.
        """
        projected = model.project_env(batch["text"]) if model.text is None else model.encode_env(batch["description"])
        return torch.where(batch["has_text"][:, None], projected, model.null_env(len(projected)))

    def loss(self, model: SER, batch: Dict[str, Any]) -> Tuple[torch.Tensor, Dict[str, float]]:
        """Cross-entropy + ccc_weight * (1 - mean CCC)."""
        logits, avd = model(batch["audio"], self.tokens(model, batch))
        ce = F.cross_entropy(logits, batch["label"])
        concord = ccc(avd, batch["avd"]).mean()
        loss = ce + self.loss_config.ccc_weight * (1.0 - concord)
        accuracy = (logits.argmax(-1) == batch["label"]).float().mean()
        return loss, {"ce": ce.item(), "ccc": concord.item(), "acc": accuracy.item()}

    def validate(self, model: SER) -> Dict[str, float]:
        """UA/WA/F1/CCC on the fixed validation mixtures; ``score`` is UA."""
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        logits, avd = [], []
        size = self.data.batch_size
        with torch.no_grad():
            for start in range(0, len(self.valid["label"]), size):
                part = {k: v[start:start + size].to(device) if isinstance(v, torch.Tensor) else v[start:start + size]
                        for k, v in self.valid.items()}
                out = model(part["audio"], self.tokens(model, part))
                logits.append(out[0].cpu())
                avd.append(out[1].cpu())
        model.train(was_training)
        scores = classification_scores(self.valid["label"].numpy(), torch.cat(logits).argmax(-1).numpy(),
                                       len(self.model_config.labels))
        scores["ccc"] = float(ccc(torch.cat(avd), self.valid["avd"]).mean())
        scores["score"] = scores["ua"]
        return scores

    def checkpoint_config(self, model: SER) -> Dict[str, Any]:
        """The SER checkpoint config (family ``ser``, every dimension, labels, text encoder, data settings)."""
        return dict(model.checkpoint_config(), data=asdict(self.data), loss=asdict(self.loss_config))


def _audio(source: Any) -> np.ndarray:
    """The samples of a clip held in memory or, for a path, read now."""
    from emotrt.training.corpus.audio import read_audio

    return read_audio(source) if isinstance(source, Path) else source


def rms(audio: np.ndarray) -> float:
    """Root mean square of a signal."""
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))


def from_recipe(recipe: Any, text_encoder: Any = None) -> SERTask:
    """The SER task of a recipe: ``[model]`` (:class:`SERConfig` keys), ``[data]``, ``[loss]``."""
    from emotrt.training.recipe import check_sections, parse_section

    check_sections(recipe, SECTIONS)
    model = SERConfig.from_dict(dict(recipe.sections.get("model", {})))
    data = parse_section(recipe.sections.get("data", {}), SERDataConfig, "recipe [data]")
    loss = parse_section(recipe.sections.get("loss", {}), SERLossConfig, "recipe [loss]")
    return SERTask(model, data, loss, text_encoder)
