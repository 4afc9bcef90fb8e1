"""Joint TSE→SER fine-tuning (arXiv 2409.19585): both pretrained models trained end to end.

The mixture goes through the TSE (enrollment → speaker embedding → causal extraction); the
extraction is realigned by the TSE's ``latency_samples`` and brought to the target's level in
the window exactly as :func:`emotrt.runtime.results.match_level` does at run time (SI-SNR leaves the
TSE's output scale arbitrary, and the SER hears level), then the SER classifies it. An SER with
``level_reference = "enrollment"`` hears it at the gain of one of the speaker's enrollment
recordings, as in its own training and at run time (:mod:`emotrt.runtime.level`). Loss:
``si_snr_weight`` * −SI-SNR(extraction, clean target) + ``ce_weight`` * CE + ``ccc_weight`` * (1 − CCC).

With ``p_absent``, some windows hold the other talker (and the noise) without the enrolled speaker,
as when the device's user is silent while someone else talks. The TSE should then output next to
nothing, which the runtime's gate reads as "speaker absent" (its ``ratio_db`` feature). Its output
scale is arbitrary (SI-SNR), so the absent loss is relative: ``absent_weight`` times the dB by which
an absent window's output/input energy ratio exceeds the batch's present windows' median ratio minus
``absent_margin_db`` (the "target-absent" training of Borsdorf et al., Interspeech 2021, with the
present windows as the level reference). Absent windows carry no SER or SI-SNR loss.

The run directory's ``last/`` and ``best/`` hold the joint weights (for resuming) and, inside them,
``tse/`` and ``ser/``: ordinary TSE and SER checkpoints that ``load_model`` and ``emotrt export``
take, whose configs name the parents they were fine-tuned from.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from emotrt.runtime.errors import ConfigError, CorpusError
from emotrt.runtime.level import enrollment_gain
from emotrt.runtime.manifest import sha256_file
from emotrt.training.checkpoint import WEIGHTS, save_checkpoint
from emotrt.training.losses import neg_si_snr
from emotrt.training.metrics import ccc, classification_scores, si_sdr_improvement
from emotrt.training.ser_task import enrollment_clips, env_tokens, labelled_sampler, reference_enrollment, window_batch

log = logging.getLogger(__name__)

SECTIONS = ("model", "data", "loss")
FAMILY = "joint_tse_ser"
PARTS = ("tse", "ser")


@dataclass(frozen=True)
class JointModelConfig:
    """``[model]``: the pretrained TSE and SER checkpoint directories to fine-tune."""

    tse: str = ""
    ser: str = ""
    # Train only the TSE, through the SER as it is: the SER keeps what it does on clean speech
    # (fine-tuned jointly, the default SER fell from 0.87 to 0.80 clean UA in 500 steps).
    freeze_ser: bool = False
    # Keep the TSE's encoder and enrollment network as they are: the speaker embeddings the runtime's
    # gate compares stay those of the TSE's own training (fine-tuned through the SER, they told the
    # enrolled speaker from another one worse: 15.6 % of absent windows let through instead of 9.0 %).
    freeze_enroll: bool = False

    def __post_init__(self) -> None:
        for name in PARTS:
            path = getattr(self, name)
            if not path or not Path(path).is_dir():
                raise ConfigError("recipe [model]: {} checkpoint directory not found: {!r}".format(name, path),
                                  hint="--set model.{0}=runs/{0}_quick/best (a checkpoint from `emotrt train {0}`)"
                                  .format(name))


@dataclass(frozen=True)
class JointDataConfig:
    """``[data]``: windows of the SER's length with an interferer (and noise), plus enrollment audio."""

    corpus: str = ""
    batch_size: int = 8
    enroll_seconds: float = 3.0
    p_interferer: float = 1.0
    sir_db: Tuple[float, ...] = (-5.0, 5.0)
    p_noise: float = 0.5
    snr_db: Tuple[float, ...] = (20.0, 12.5, 7.5)
    snr_mode: str = "power"
    p_no_text: float = 0.2
    p_absent: float = 0.0  # windows of another talker (and noise) without the target; needs p_interferer > 0
    valid_size: int = 64  # fixed two-talker 0 dB validation windows, no noise
    valid_absent: int = 0  # the first of those with the target taken out
    valid_seed: int = 1234

    def __post_init__(self) -> None:
        if not self.corpus:
            raise ConfigError("recipe [data]: corpus is not set", hint="--set data.corpus=/work/data/synth")
        if not 0.0 <= self.p_absent <= 1.0 or not 0 <= self.valid_absent <= self.valid_size:
            raise ConfigError("recipe [data]: p_absent must be in [0, 1] and valid_absent in [0, valid_size], got "
                              "{}, {}".format(self.p_absent, self.valid_absent))
        if self.p_absent > 0 and self.p_interferer <= 0:
            raise ConfigError("recipe [data]: p_absent > 0 needs another talker (p_interferer > 0)",
                              hint="--set data.p_interferer=0.7")
        if self.batch_size < 2 or self.valid_size < 2 or self.enroll_seconds <= 0:
            raise ConfigError("recipe [data]: batch_size and valid_size must be >= 2 and enroll_seconds > 0, got "
                              "{}, {}, {}".format(self.batch_size, self.valid_size, self.enroll_seconds))

    def mix_config(self, window_samples: int, sample_rate: int, valid: bool = False) -> Any:
        """The corpus sampler's MixConfig: training mixing, or two talkers at 0 dB without noise."""
        from emotrt.training.corpus.sampler import MixConfig

        if valid:
            return MixConfig(segment_seconds=window_samples / sample_rate, enroll_seconds=self.enroll_seconds,
                             p_interferer=1.0, sir_db=(0.0, 0.0), p_noise=0.0)
        return MixConfig(segment_seconds=window_samples / sample_rate, enroll_seconds=self.enroll_seconds,
                         p_interferer=self.p_interferer, sir_db=tuple(self.sir_db), p_noise=self.p_noise,
                         snr_db=tuple(self.snr_db), snr_mode=self.snr_mode)


@dataclass(frozen=True)
class JointLossConfig:
    """``[loss]``: weights of −SI-SNR, cross-entropy, (1 − mean CCC) and the absent windows' loss (per dB)."""

    si_snr_weight: float = 0.1
    ce_weight: float = 1.0
    ccc_weight: float = 1.0
    absent_weight: float = 0.05
    absent_margin_db: float = 30.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value < 0:
                raise ConfigError("recipe [loss]: {} must be >= 0, got {}".format(name, value))


def match_level(extracted: torch.Tensor, mixture: torch.Tensor) -> torch.Tensor:
    """Differentiable torch form of :func:`emotrt.runtime.results.match_level` over [B, T] windows.

    Each row is scaled by its least-squares gain onto the mixture's row (clamped at 0); a silent
    row (power <= 1e-12) is left as is.
    """
    power = extracted.pow(2).sum(-1, keepdim=True)
    gain = ((mixture * extracted).sum(-1, keepdim=True) / power.clamp_min(1e-12)).clamp_min(0.0)
    return extracted * torch.where(power > 1e-12, gain, torch.ones_like(gain))


def energy_ratio_db(extracted: torch.Tensor, mixture: torch.Tensor) -> torch.Tensor:
    """Per row of [B, T]: 10·log10 of the extraction's over the mixture's energy (torch form of the gate's feature)."""
    return 10.0 * torch.log10(extracted.pow(2).sum(-1).clamp_min(1e-12) / mixture.pow(2).sum(-1).clamp_min(1e-12))


def absent_loss(ratio_db: torch.Tensor, absent: torch.Tensor, margin_db: float) -> torch.Tensor:
    """Mean dB by which absent rows' ``ratio_db`` exceed the present rows' median minus ``margin_db``
    (0 without both kinds of row; the reference carries no gradient)."""
    if not absent.any() or absent.all():
        return ratio_db.new_zeros(())
    reference = ratio_db[~absent].detach().median()
    return F.relu(ratio_db[absent] - (reference - margin_db)).mean()


def without_target(item: Any) -> Any:
    """A sampler mixture with the target taken out: the other talker and the noise, target silent."""
    import dataclasses

    return dataclasses.replace(item, mixture=(item.mixture - item.target).astype(np.float32),
                               target=np.zeros_like(item.target))


class JointModel(nn.Module):
    """A TSE and an SER trained as one: mixture + enrollment + environment token → extraction, logits, AVD."""

    def __init__(self, tse: nn.Module, ser: nn.Module, freeze_ser: bool = False, freeze_enroll: bool = False) -> None:
        super().__init__()
        self.tse, self.ser, self.freeze_ser = tse, ser, freeze_ser
        if freeze_ser:
            ser.requires_grad_(False)
        if freeze_enroll:
            for name in tse.ENROLL_MODULES:
                getattr(tse, name).requires_grad_(False)

    def train(self, mode: bool = True) -> "JointModel":
        """Train mode for what is trained; a frozen SER stays in eval mode (no dropout)."""
        super().train(mode)
        if self.freeze_ser:
            self.ser.eval()
        return self

    def extract(self, mixture: torch.Tensor, enrollment: torch.Tensor) -> torch.Tensor:
        """The TSE output [B, T] moved back by ``latency_samples`` (zeros at the end), as ``emotrt eval`` does."""
        out = self.tse(mixture, self.tse.enroll(enrollment))
        latency = self.tse.config.latency_samples
        return F.pad(out[:, latency:], (0, latency)) if latency > 0 else out

    def forward(self, mixture: torch.Tensor, enrollment: torch.Tensor, env_token: torch.Tensor,
                level_gain: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(aligned extraction [B, T], emotion logits [B, C], AVD [B, 3]); the SER hears the level-matched
        extraction, times ``level_gain`` [B] (the speakers' enrollment-level gains) when given."""
        extracted = self.extract(mixture, enrollment)
        heard = match_level(extracted, mixture)
        logits, avd = self.ser(heard if level_gain is None else heard * level_gain[:, None], env_token)
        return extracted, logits, avd


class JointTask:
    """Joint fine-tuning of a TSE and an SER checkpoint on the corpus's labelled mixtures."""

    name = "joint"

    def __init__(self, model: JointModelConfig, data: JointDataConfig, loss: JointLossConfig = JointLossConfig(),
                 text_encoder: Any = None) -> None:
        from emotrt.training.models import load_model
        from emotrt.training.text import DescriptionBank, load_text_encoder

        self.model_config, self.data, self.loss_config = model, data, loss
        self.tse, self.tse_parent = load_model(model.tse)
        self.ser, self.ser_parent = load_model(model.ser)
        # the parents' weights hash too: a parent run directory may be retrained after this one starts
        self.parents = {name: {"path": getattr(model, name), "sha256": sha256_file(Path(getattr(model, name)) / WEIGHTS)}
                        for name in PARTS}
        for name, parent, family in (("tse", self.tse_parent, "tse_td_speakerbeam"), ("ser", self.ser_parent, "ser")):
            if parent.get("family") != family:
                raise ConfigError("recipe [model]: {} = {} is a {!r} checkpoint, expected {!r}".format(
                    name, getattr(model, name), parent.get("family"), family),
                    hint="--set model.{0}=<a checkpoint from `emotrt train {0}`>".format(name))
        ser_cfg, tse_cfg = self.ser.config, self.tse.config
        if ser_cfg.sample_rate != tse_cfg.sample_rate:
            raise ConfigError("the TSE runs at {} Hz but the SER at {} Hz".format(tse_cfg.sample_rate, ser_cfg.sample_rate),
                              hint="fine-tune checkpoints trained at the same sample rate")
        self.root = Path(data.corpus)
        envs_file = self.root / "environments.json"
        if not envs_file.is_file():
            raise CorpusError("no corpus at {} (environments.json missing)".format(self.root),
                              hint="emotrt data synth --size full --seed 0 --out {}".format(self.root))
        encoder = text_encoder or self.ser.text or load_text_encoder(ser_cfg.text_encoder, ser_cfg.text_encoder_path)
        self.bank = DescriptionBank(encoder, json.loads(envs_file.read_text()), ser_cfg.text_template)
        self.labels = list(ser_cfg.labels)
        window, rate = ser_cfg.window_samples, ser_cfg.sample_rate
        self.mix = data.mix_config(window, rate)
        self.enrollments = enrollment_clips(self.root) if ser_cfg.level_reference == "enrollment" else None
        valid = labelled_sampler(self.root, "valid", self.labels, data.mix_config(window, rate, valid=True),
                                 data.valid_seed)
        items = [valid[i] for i in range(data.valid_size)]
        self.valid = self._batch(items, np.random.default_rng(data.valid_seed), 0.0)
        self.valid_absent = (self._batch(items[:data.valid_absent], np.random.default_rng(data.valid_seed), 0.0,
                                         absent=np.ones(data.valid_absent, bool)) if data.valid_absent else None)

    def _batch(self, items: Any, rng: np.random.Generator, text_dropout: float,
               absent: Optional[np.ndarray] = None) -> Dict[str, Any]:
        absent = np.zeros(len(items), bool) if absent is None else absent & np.array([m.interferer is not None for m in items])
        items = [without_target(m) if a else m for m, a in zip(items, absent)]
        batch = window_batch(items, self.labels, self.bank, rng, text_dropout)
        batch["absent"] = torch.from_numpy(absent)
        batch["enrollment"] = torch.from_numpy(np.stack([m.enrollment for m in items]).astype(np.float32))
        if self.enrollments is not None:
            rate = self.ser.config.sample_rate
            batch["level_gain"] = torch.tensor([enrollment_gain(reference_enrollment(self.enrollments, m, rng), rate)
                                                for m in items], dtype=torch.float32)
        return batch

    def build_model(self) -> JointModel:
        """The two pretrained models as one module, in training mode."""
        return JointModel(self.tse, self.ser, self.model_config.freeze_ser, self.model_config.freeze_enroll).train()

    def train_batches(self, seed: int) -> Iterator[Dict[str, Any]]:
        """Endless seeded batches of freshly mixed labelled windows with enrollment audio."""
        sampler = labelled_sampler(self.root, "train", self.labels, self.mix, seed)
        rng = np.random.default_rng([seed, 11])
        while True:
            picks = rng.integers(0, 1 << 40, self.data.batch_size)
            absent = rng.random(self.data.batch_size) < self.data.p_absent
            absent[:2] = False  # two windows with the target: CCC needs two, the absent loss a reference
            yield self._batch([sampler[int(i)] for i in picks], rng, self.data.p_no_text, absent)

    def loss(self, model: JointModel, batch: Dict[str, Any]) -> Tuple[torch.Tensor, Dict[str, float]]:
        """Weighted −SI-SNR (extraction vs clean target) + CE + (1 − mean CCC) on the windows where the
        target talks, plus the absent windows' loss (see the module docstring)."""
        extracted, logits, avd = model(batch["audio"], batch["enrollment"], env_tokens(model.ser, batch),
                                       batch.get("level_gain"))
        n = extracted.shape[-1] - model.tse.config.latency_samples  # the zero tail has no estimate
        absent = batch["absent"]
        present = ~absent
        extraction = neg_si_snr(extracted[present, :n], batch["clean"][present, :n])
        ce = F.cross_entropy(logits[present], batch["label"][present])
        concord = ccc(avd[present], batch["avd"][present]).mean()
        silence = absent_loss(energy_ratio_db(extracted[:, :n], batch["audio"][:, :n]), absent,
                              self.loss_config.absent_margin_db)
        w = self.loss_config
        loss = (w.si_snr_weight * extraction + w.ce_weight * ce + w.ccc_weight * (1.0 - concord)
                + w.absent_weight * silence)
        accuracy = (logits[present].argmax(-1) == batch["label"][present]).float().mean()
        return loss, {"si_snr": -extraction.item(), "ce": ce.item(), "ccc": concord.item(), "acc": accuracy.item(),
                      "absent_db": silence.item()}

    def validate(self, model: JointModel) -> Dict[str, float]:
        """UA/WA/F1/CCC and SI-SDRi on two-talker 0 dB windows through the TSE; ``score`` is UA.

        With ``valid_absent``, also the absent windows: ``absent_gap_db``, the median output/input
        energy ratio of the present windows over the absent ones', and ``absent_leak``, the share of
        absent windows at or above the present windows' 5th percentile (what a presence threshold
        keeping 95 % of them lets through); ``score`` is then the mean of UA and 1 − leak.
        """
        extracted, logits, avd = self._run(model, self.valid)
        n = extracted.shape[-1] - model.tse.config.latency_samples
        scores = classification_scores(self.valid["label"].numpy(), logits.argmax(-1).numpy(), len(self.labels))
        scores["ccc"] = float(ccc(avd, self.valid["avd"]).mean())
        scores["si_sdri"] = float(si_sdr_improvement(extracted[:, :n], self.valid["audio"][:, :n],
                                                     self.valid["clean"][:, :n]).mean())
        scores["score"] = scores["ua"]
        if self.valid_absent is not None:
            present = energy_ratio_db(extracted[:, :n], self.valid["audio"][:, :n])
            absent = energy_ratio_db(self._run(model, self.valid_absent)[0][:, :n], self.valid_absent["audio"][:, :n])
            scores["absent_gap_db"] = float(present.median() - absent.median())
            scores["absent_leak"] = float((absent >= torch.quantile(present, 0.05)).float().mean())
            scores["score"] = 0.5 * (scores["ua"] + 1.0 - scores["absent_leak"])
        return scores

    def _run(self, model: JointModel, batch: Dict[str, Any]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(extraction, logits, AVD) of a fixed batch, ``batch_size`` windows at a time."""
        device = next(model.parameters()).device
        size = self.data.batch_size
        outs = []
        for start in range(0, len(batch["label"]), size):
            part = {k: v[start:start + size].to(device) if isinstance(v, torch.Tensor) else v[start:start + size]
                    for k, v in batch.items()}
            outs.append(model(part["audio"], part["enrollment"], env_tokens(model.ser, part), part.get("level_gain")))
        extracted, logits, avd = (torch.cat([o[i] for o in outs]).cpu() for i in range(3))
        return extracted, logits, avd

    def checkpoint_config(self, model: JointModel) -> Dict[str, Any]:
        """The joint checkpoint's config: both models' configs and the parents' paths."""
        return {"family": FAMILY, "tse": model.tse.checkpoint_config(), "ser": model.ser.checkpoint_config(),
                "parents": self.parents, "data": asdict(self.data), "loss": asdict(self.loss_config)}

    def export_checkpoints(self, model: JointModel, out_dir: Path, training: Dict[str, Any]) -> None:
        """Write ``out_dir/tse`` and ``out_dir/ser``: each model in its own checkpoint format, with provenance."""
        for name, part, parent in (("tse", model.tse, self.tse_parent), ("ser", model.ser, self.ser_parent)):
            config = dict(part.checkpoint_config(), training=dict(training, parent_training=parent.get("training")),
                          fine_tuned_from=dict(self.parents, task=self.name, loss=asdict(self.loss_config),
                                               data=asdict(self.data)))
            save_checkpoint(Path(out_dir) / name, part.state_dict(), config)


def from_recipe(recipe: Any, text_encoder: Any = None) -> JointTask:
    """The joint task of a recipe: ``[model]`` tse/ser checkpoints, ``[data]``, ``[loss]`` weights."""
    from emotrt.training.recipe import check_sections, parse_section

    check_sections(recipe, SECTIONS)
    model = parse_section(recipe.sections.get("model", {}), JointModelConfig, "recipe [model]")
    data = parse_section(recipe.sections.get("data", {}), JointDataConfig, "recipe [data]")
    loss = parse_section(recipe.sections.get("loss", {}), JointLossConfig, "recipe [loss]")
    return JointTask(model, data, loss, text_encoder)
