"""The SER training task (:class:`emotrt.training.task.Task`) over the corpus's seeded mixing sampler.

Each training window is a clean labelled utterance cropped to the model window by
:class:`emotrt.training.corpus.sampler.MixingSampler`, optionally with another training talker at
an SIR and a seen environment's noise at an SNR, plus one of that environment's descriptions
(encoded once by the text encoder). The description is dropped to the null token with probability
``p_no_text`` so the model also works without one. ``[augment]`` (:class:`ChannelConfig`) then
passes the mixed window through a random room, microphone, self-noise and input gain, as a
device would (training and the validation windows alike, so the best checkpoint is the one that
holds up on another device). With ``[model] level_reference = "enrollment"`` one of the speaker's
enrollment recordings goes through the same device and the window is scaled by the gain that
brings it to the reference level (:mod:`emotrt.runtime.level`), as the runtime does. ``[model]
init`` warm-starts from an SER checkpoint (its dimensions, then the recipe's overrides). Loss:
cross-entropy + ``ccc_weight`` * (1 - mean CCC of arousal/valence/dominance), optionally +
distillation from a frozen teacher that hears the clean window (see :class:`SERLossConfig`).
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import numpy as np
import torch
from torch.nn import functional as F

from emotrt.runtime.errors import ConfigError, CorpusError
from emotrt.runtime.level import enrollment_gain
from emotrt.training.augment import ChannelAugment, ChannelConfig
from emotrt.training.metrics import ccc, classification_scores
from emotrt.training.ser import SER, SERConfig

log = logging.getLogger(__name__)

AVD = ("arousal", "valence", "dominance")
SECTIONS = ("model", "data", "loss", "augment")


@dataclass(frozen=True)
class SERDataConfig:
    """``[data]``: the corpus and how training windows are mixed (see corpus.sampler.MixConfig)."""

    corpus: str = ""  # corpus directory written by `emotrt data synth`
    batch_size: int = 32
    p_interferer: float = 0.25  # windows mixed with another training talker
    sir_db: Tuple[float, ...] = (-2.5, 10.0)  # uniform in [low, high]
    p_noise: float = 0.7  # windows mixed with a seen environment's noise
    snr_db: Tuple[float, ...] = (15.0, 10.0, 5.0, 2.5, 0.0, -2.5, -5.0, -7.5)  # one drawn per noisy window
    snr_mode: str = "power"  # or "tgeat" (TG-EAT's amplitude convention)
    p_no_text: float = 0.2  # share of windows given the null environment token
    valid_size: int = 256  # fixed validation windows (valid speakers, same mixing)
    valid_seed: int = 1234

    def __post_init__(self) -> None:
        if not self.corpus:
            raise ConfigError("recipe [data]: corpus is not set", hint="--set data.corpus=/work/data/synth")
        if self.batch_size < 2 or self.valid_size < 2:
            raise ConfigError("recipe [data]: batch_size and valid_size must be >= 2 (CCC needs a batch), got {} and {}"
                              .format(self.batch_size, self.valid_size))
        if not 0.0 <= self.p_no_text <= 1.0:
            raise ConfigError("recipe [data]: p_no_text must be within [0, 1], got {}".format(self.p_no_text))
        self.mix_config(1, 1)

    def mix_config(self, window_samples: int, sample_rate: int) -> Any:
        """The corpus sampler's MixConfig for windows of ``window_samples`` (validated there)."""
        from emotrt.training.corpus.sampler import MixConfig

        return MixConfig(segment_seconds=window_samples / sample_rate, p_interferer=self.p_interferer,
                         sir_db=tuple(self.sir_db), p_noise=self.p_noise, snr_db=tuple(self.snr_db),
                         snr_mode=self.snr_mode)


@dataclass(frozen=True)
class SERLossConfig:
    """``[loss]``: cross-entropy + ``ccc_weight`` * (1 - mean CCC) [+ ``distill_weight`` * distillation].

    Distillation: a frozen ``teacher`` SER checkpoint hears the clean target window while the
    student hears the mixed one; the term is KL(teacher || student) on logits softened by
    ``temperature`` (times T², as in Hinton et al.) + MSE between the pooled embeddings.
    """

    ccc_weight: float = 1.0
    distill_weight: float = 0.0
    teacher: str = ""  # SER checkpoint directory, needed when distill_weight > 0
    temperature: float = 2.0

    def __post_init__(self) -> None:
        for name in ("ccc_weight", "distill_weight"):
            if getattr(self, name) < 0:
                raise ConfigError("recipe [loss]: {} must be >= 0, got {}".format(name, getattr(self, name)),
                                  hint="--set loss.{}=1.0".format(name))
        if self.temperature <= 0:
            raise ConfigError("recipe [loss]: temperature must be > 0, got {}".format(self.temperature),
                              hint="--set loss.temperature=2.0")
        if self.distill_weight > 0 and not self.teacher:
            raise ConfigError("recipe [loss]: distill_weight is {} but no teacher checkpoint is set".format(
                self.distill_weight), hint="--set loss.teacher=runs/ser_quick/best (or loss.distill_weight=0)")
        if self.teacher and self.distill_weight == 0:
            raise ConfigError("recipe [loss]: teacher {!r} is set but distill_weight is 0".format(self.teacher),
                              hint="--set loss.distill_weight=1.0 (or remove loss.teacher)")


def load_teacher(path: str, student: SERConfig) -> SER:
    """The frozen teacher SER at ``path``, checked against the student's labels and embedding size."""
    from emotrt.training.ser import load_ser

    if not Path(path).is_dir():
        raise ConfigError("recipe [loss]: teacher checkpoint not found: {} (expected an SER checkpoint directory)"
                          .format(path), hint="--set loss.teacher=<run>/best, as written by `emotrt train ser`")
    teacher, _ = load_ser(path)
    if list(teacher.config.labels) != list(student.labels) or teacher.config.d_model != student.d_model:
        raise ConfigError("teacher {} has labels {} and d_model {}; the student has {} and {}".format(
            path, list(teacher.config.labels), teacher.config.d_model, list(student.labels), student.d_model),
            hint="distil from an SER trained with the same labels and d_model")
    for param in teacher.parameters():
        param.requires_grad_(False)
    return teacher


def distillation(student_logits: torch.Tensor, student_pooled: torch.Tensor, teacher_logits: torch.Tensor,
                 teacher_pooled: torch.Tensor, temperature: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """(KL on temperature-softened logits × T², MSE on pooled embeddings)."""
    kl = F.kl_div(F.log_softmax(student_logits / temperature, -1), F.log_softmax(teacher_logits / temperature, -1),
                  reduction="batchmean", log_target=True) * temperature ** 2
    return kl, F.mse_loss(student_pooled, teacher_pooled)


def window_batch(items: List[Any], labels: List[str], bank: Any, rng: np.random.Generator,
                 text_dropout: float) -> Dict[str, Any]:
    """A batch of sampler mixtures: mixed ``audio``, its ``clean`` target (same gain), labels, AVD and text."""
    from emotrt.training.corpus.mixing import headroom

    gains = [headroom(m.mixture) for m in items]
    return {
        "audio": torch.from_numpy(np.stack([m.mixture * g for m, g in zip(items, gains)]).astype(np.float32)),
        "clean": torch.from_numpy(np.stack([m.target * g for m, g in zip(items, gains)]).astype(np.float32)),
        "label": torch.tensor([labels.index(m.emotion) for m in items]),
        "avd": torch.tensor([[getattr(m, k) or 3.0 for k in AVD] for m in items], dtype=torch.float32),
        "text": torch.stack([bank.embedding_of(m.environment, m.description) for m in items]),
        "has_text": torch.from_numpy(rng.random(len(items)) >= text_dropout),
        "description": [m.description for m in items],
        "environment": [m.environment for m in items],
    }


def env_tokens(model: SER, batch: Dict[str, Any]) -> torch.Tensor:
    """Environment tokens of a batch: projected text, or the null token where ``has_text`` is False.

    A model with a jointly trained text encoder embeds the batch's descriptions itself.
    """
    projected = model.project_env(batch["text"]) if model.text is None else model.encode_env(batch["description"])
    return torch.where(batch["has_text"][:, None], projected, model.null_env(len(projected)))


def enrollment_clips(root: Path) -> Dict[str, List[Any]]:
    """The corpus's enrollment recordings (``manifests/enroll.jsonl``) by speaker; empty without one.

    The level reference needs these, not the sampler's enrollment, which may be any other utterance
    of the speaker (an angry one is 4 dB above the speaker's neutral level, a sad one 6 dB below).
    """
    from collections import defaultdict

    from emotrt.training.corpus import load_manifest

    path = root / "manifests" / "enroll.jsonl"
    clips: Dict[str, List[Any]] = defaultdict(list)
    for u in load_manifest(path, root) if path.is_file() else []:
        clips[str(u.speaker)].append(u)
    return dict(clips)


def reference_enrollment(clips: Dict[str, List[Any]], item: Any, rng: np.random.Generator) -> np.ndarray:
    """One of the speaker's enrollment recordings from :func:`enrollment_clips` (neutral reading, as a
    user enrolls); the sampler's enrollment (another utterance of the speaker) where the corpus has none."""
    from emotrt.training.corpus.audio import read_audio

    chosen = clips.get(item.speaker)
    return read_audio(chosen[int(rng.integers(len(chosen)))].file) if chosen else item.enrollment


def labelled_sampler(root: Path, split: str, labels: List[str], mix: Any, seed: int) -> Any:
    """The corpus's MixingSampler over the utterances of ``split`` whose emotion is one of ``labels``."""
    from emotrt.training.corpus import load_manifest
    from emotrt.training.corpus.sampler import MixingSampler

    environments = json.loads((root / "environments.json").read_text())
    manifests = root / "manifests"
    speech = [u for u in load_manifest(manifests / (split + ".jsonl"), root) if u.emotion in labels]
    if not speech:
        raise CorpusError("{} split of {} has no utterance labelled {}".format(split, root, ", ".join(labels)))
    enroll = [u for u in load_manifest(manifests / "enroll.jsonl", root) if u.split == split]
    noise = [c for c in load_manifest(manifests / "noise.jsonl", root)
             if c.split == split and environments.get(c.environment, {}).get("split") == "seen"]
    return MixingSampler(speech, enroll, noise, environments, mix, seed)


class SERTask:
    """SER on a corpus directory (docs/contracts.md layout); the trainer drives it."""

    name = "ser"

    def __init__(self, model: SERConfig, data: SERDataConfig, loss: SERLossConfig = SERLossConfig(),
                 text_encoder: Any = None, augment: ChannelConfig = ChannelConfig(), init: str = "") -> None:
        from emotrt.training.text import DescriptionBank, load_text_encoder

        self.model_config, self.data, self.loss_config, self.augment_config = model, data, loss, augment
        self.init, self.parent = init, None  # [model] init: the checkpoint to warm-start from, its provenance
        self.channel = ChannelAugment(augment, model.sample_rate) if augment.active else None
        self.root = Path(data.corpus)
        envs_file = self.root / "environments.json"
        if not envs_file.is_file():
            raise CorpusError("no corpus at {} (environments.json missing)".format(self.root),
                              hint="emotrt data synth --size full --seed 0 --out {}".format(self.root))
        encoder = text_encoder or load_text_encoder(model.text_encoder, model.text_encoder_path)
        if encoder.dim != model.text_dim:
            raise ConfigError("ser: text_dim {} but the {} encoder gives {}".format(model.text_dim, encoder.name, encoder.dim),
                              hint="--set model.text_dim={}".format(encoder.dim))
        self.bank = DescriptionBank(encoder, json.loads(envs_file.read_text()), model.text_template)
        self.teacher = load_teacher(loss.teacher, model) if loss.distill_weight > 0 else None
        self.mix = data.mix_config(model.window_samples, model.sample_rate)
        self.labels = list(model.labels)
        self.enrollments = enrollment_clips(self.root) if model.level_reference == "enrollment" else {}
        valid = labelled_sampler(self.root, "valid", self.labels, self.mix, data.valid_seed)
        rng = np.random.default_rng(data.valid_seed)
        self.valid = self._batch([valid[i] for i in range(data.valid_size)], rng, text_dropout=0.0,
                                 channel_rng=np.random.default_rng([data.valid_seed, 19]))
        log.info("ser task: %d valid windows from %d utterances", data.valid_size, len(valid))

    def _batch(self, items: List[Any], rng: np.random.Generator, text_dropout: float,
               channel_rng: Any = None) -> Dict[str, Any]:
        batch = window_batch(items, self.labels, self.bank, rng, text_dropout)
        referenced = self.model_config.level_reference == "enrollment"
        if self.channel is None and not referenced:
            return batch
        channel_rng = channel_rng if channel_rng is not None else rng
        heard = []
        for audio, item in zip(batch["audio"].numpy(), items):
            device = self.channel.draw(channel_rng) if self.channel is not None else None
            if device is not None:
                audio = device.apply(audio, channel_rng)
            if referenced:  # the enrollment went through the same device; its level sets the window's gain
                enrollment = reference_enrollment(self.enrollments, item, channel_rng)
                enrollment = device.apply(enrollment, channel_rng) if device is not None else enrollment
                audio = audio * np.float32(enrollment_gain(enrollment, self.model_config.sample_rate))
            heard.append(audio.astype(np.float32))
        batch["audio"] = torch.from_numpy(np.stack(heard))
        return batch

    def build_model(self) -> SER:
        """An SER of the configured dimensions: fresh, or warm-started from ``[model] init``."""
        model = SER.from_config(self.model_config)
        if self.init and self.parent is None:
            from emotrt.training.checkpoint import warm_start

            self.parent = warm_start(model, self.init)
        return model

    def train_batches(self, seed: int) -> Iterator[Dict[str, Any]]:
        """Endless seeded batches of freshly mixed training windows."""
        sampler = labelled_sampler(self.root, "train", self.labels, self.mix, seed)
        rng = np.random.default_rng([seed, 7])
        while True:
            picks = rng.integers(0, 1 << 40, self.data.batch_size)
            yield self._batch([sampler[int(i)] for i in picks], rng, self.data.p_no_text)

    def tokens(self, model: SER, batch: Dict[str, Any]) -> torch.Tensor:
        """Environment tokens of a batch (see :func:`env_tokens`)."""
        return env_tokens(model, batch)

    def loss(self, model: SER, batch: Dict[str, Any]) -> Tuple[torch.Tensor, Dict[str, float]]:
        """Cross-entropy + ccc_weight * (1 - mean CCC) [+ distill_weight * (KL + embedding MSE)]."""
        pooled = model.embed(batch["audio"], self.tokens(model, batch))
        logits, avd = model.heads(pooled)
        ce = F.cross_entropy(logits, batch["label"])
        concord = ccc(avd, batch["avd"]).mean()
        loss = ce + self.loss_config.ccc_weight * (1.0 - concord)
        accuracy = (logits.argmax(-1) == batch["label"]).float().mean()
        parts = {"ce": ce.item(), "ccc": concord.item(), "acc": accuracy.item()}
        if self.teacher is None:
            return loss, parts
        teacher = self.teacher.to(pooled.device).eval()
        with torch.no_grad():
            teacher_pooled = teacher.embed(batch["clean"], env_tokens(teacher, batch))
            teacher_logits, _ = teacher.heads(teacher_pooled)
        kl, mse = distillation(logits, pooled, teacher_logits, teacher_pooled, self.loss_config.temperature)
        parts.update(distill_kl=kl.item(), distill_mse=mse.item())
        return loss + self.loss_config.distill_weight * (kl + mse), parts

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
        config = dict(model.checkpoint_config(), data=asdict(self.data), loss=asdict(self.loss_config),
                      augment=asdict(self.augment_config))
        if self.init:
            config["warm_started_from"] = self.parent or {"path": self.init}
        return config


def from_recipe(recipe: Any, text_encoder: Any = None) -> SERTask:
    """The SER task of a recipe: ``[model]`` (:class:`SERConfig` keys), ``[data]``, ``[loss]``."""
    from emotrt.training.recipe import check_sections, parse_section

    check_sections(recipe, SECTIONS)
    table = dict(recipe.sections.get("model", {}))
    init = str(table.pop("init", "") or "")
    resumed = None
    if (Path(recipe.train.out) / "last" / "config.json").is_file():
        from emotrt.training.checkpoint import read_config

        resumed = read_config(Path(recipe.train.out) / "last")
    if init:  # the parent's dimensions, then the recipe's overrides (a resumed run's parent is in its last/)
        from emotrt.training.checkpoint import read_config

        known = {f.name for f in fields(SERConfig)}
        table = dict({k: v for k, v in read_config(init).items() if k in known}, **table)
    model = SERConfig.from_dict(table)
    data = parse_section(recipe.sections.get("data", {}), SERDataConfig, "recipe [data]")
    loss = parse_section(recipe.sections.get("loss", {}), SERLossConfig, "recipe [loss]")
    augment = parse_section(recipe.sections.get("augment", {}), ChannelConfig, "recipe [augment]")
    task = SERTask(model, data, loss, text_encoder, augment, init=init)
    if init and resumed is not None:
        task.parent = resumed.get("warm_started_from", {"path": init})
    return task
