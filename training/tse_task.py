"""The TSE training task: on-the-fly target + interferer (+ noise) mixtures, −SI-SNR loss.

Implements :class:`emotrt.training.task.Task` for the generic trainer. Batches come from a
:class:`MixtureSource` (the synthetic corpus in production, anything with the same two
methods in tests); an optional speaker-classification loss on the enrollment embedding
helps the enrollment network separate voices it has not heard.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Protocol, Tuple

import numpy as np
import torch

from emotrt.runtime.errors import ConfigError
from emotrt.training.losses import align, neg_si_snr, si_sdr, speaker_loss
from emotrt.training.recipe import Recipe, check_sections, parse_section
from emotrt.training.tse import TSE, TSEConfig, resolve_config

SECTIONS = ("model", "data", "loss")


@dataclass(frozen=True)
class TSEDataConfig:
    """``[data]``: where mixtures come from and how they are cut (mixing fields as in the corpus ``MixConfig``)."""

    corpus: str = ""  # corpus directory written by `emotrt data synth`
    batch_size: int = 8
    segment_seconds: float = 2.0
    enroll_seconds: float = 3.0
    p_interferer: float = 1.0  # share of mixtures with an interfering talker
    sir_db: Tuple[float, ...] = (-5.0, 5.0)  # target-to-interferer ratio, uniform in [low, high]
    p_noise: float = 0.5  # share of mixtures that also get environment noise
    snr_db: Tuple[float, ...] = (20.0, 12.5, 7.5)  # speech-to-noise ratio, one of these
    snr_mode: str = "power"
    valid_mixtures: int = 64  # fixed validation mixtures: valid speakers, one talker at 0 dB SIR, no noise
    valid_seed: int = 1234

    def __post_init__(self) -> None:
        if self.batch_size <= 0 or self.segment_seconds <= 0 or self.enroll_seconds <= 0 or self.valid_mixtures <= 0:
            raise ConfigError("recipe [data]: batch_size, segment_seconds, enroll_seconds, valid_mixtures must be > 0")


@dataclass(frozen=True)
class TSELossConfig:
    """``[loss]``: −SI-SNR plus an optional speaker-classification term on the embedding."""

    speaker_weight: float = 0.0


class MixtureSource(Protocol):
    """Makes TSE examples as float32 numpy arrays: mixture/target [B, T], enrollment [B, E], speaker [B]."""

    n_speakers: int

    def sample(self, rng: np.random.Generator, batch: int) -> Dict[str, np.ndarray]: ...

    def valid_set(self) -> List[Dict[str, np.ndarray]]: ...


class TSETask:
    """TSE training: extraction loss on the causal model's aligned output, SI-SDRi for validation."""

    name = "tse"

    def __init__(self, model_config: TSEConfig, data: TSEDataConfig, loss: TSELossConfig,
                 source: MixtureSource) -> None:
        n_speakers = source.n_speakers if loss.speaker_weight > 0 else 0
        self.model_config = dataclasses.replace(model_config, n_speakers=n_speakers)
        self.data, self.loss_config, self.source = data, loss, source

    def build_model(self) -> TSE:
        """A fresh TSE of the recipe's dimensions."""
        return TSE(self.model_config)

    def train_batches(self, seed: int) -> Iterator[Dict[str, Any]]:
        """Endless seeded batches of fresh mixtures."""
        rng = np.random.default_rng(seed)
        while True:
            arrays = self.source.sample(rng, self.data.batch_size)
            yield {k: torch.from_numpy(v) for k, v in arrays.items()}

    def loss(self, model: TSE, batch: Dict[str, Any]) -> Tuple[torch.Tensor, Dict[str, float]]:
        """−SI-SNR of the extracted target (+ weighted speaker cross-entropy)."""
        emb = model.enroll(batch["enrollment"])
        estimate, target = align(model(batch["mixture"], emb), batch["target"], model.config.latency_samples)
        extraction = neg_si_snr(estimate, target)
        parts = {"si_snr": -extraction.item()}
        logits = model.classify_speaker(emb)
        if logits is None:
            return extraction, parts
        spk = speaker_loss(logits, batch["speaker"])
        parts["speaker_ce"] = spk.item()
        return extraction + self.loss_config.speaker_weight * spk, parts

    def validate(self, model: TSE) -> Dict[str, float]:
        """SI-SDR improvement on the fixed validation mixtures; ``score`` is the mean SI-SDRi."""
        device = next(model.parameters()).device
        improvements, sdrs = [], []
        for item in self.source.valid_set():
            mix, target, enrollment = (torch.from_numpy(item[k]).to(device) for k in ("mixture", "target", "enrollment"))
            estimate = model(mix, model.enroll(enrollment))
            estimate, aligned = align(estimate, target, model.config.latency_samples)
            sdr = si_sdr(estimate, aligned)
            baseline = si_sdr(mix, target)
            sdrs.append(sdr)
            improvements.append(sdr - baseline)
        si_sdri = float(torch.cat(improvements).mean())
        return {"score": si_sdri, "si_sdri": si_sdri, "si_sdr": float(torch.cat(sdrs).mean())}

    def checkpoint_config(self, model: TSE) -> Dict[str, Any]:
        """The model's dimensions plus the data settings it was trained with."""
        return dict(model.checkpoint_config(), data=dataclasses.asdict(self.data),
                    loss=dataclasses.asdict(self.loss_config))


def model_config_from_table(table: Dict[str, Any]) -> TSEConfig:
    """``[model]``: ``preset`` (tiny, edge, paper) plus any :class:`TSEConfig` field to override."""
    table = dict(table)
    preset = table.pop("preset", "edge")
    base = resolve_config(preset)
    merged = dict(dataclasses.asdict(base), **table)
    return parse_section(merged, TSEConfig, "recipe [model]")


def from_recipe(recipe: Recipe, source: Optional[MixtureSource] = None) -> TSETask:
    """The TSE task of a recipe; ``source`` defaults to the corpus named in ``[data] corpus``."""
    check_sections(recipe, SECTIONS)
    model = model_config_from_table(recipe.sections.get("model", {}))
    data = parse_section(recipe.sections.get("data", {}), TSEDataConfig, "recipe [data]")
    loss = parse_section(recipe.sections.get("loss", {}), TSELossConfig, "recipe [loss]")
    if source is None:
        from emotrt.training.tse_data import CorpusMixtures

        source = CorpusMixtures.open(data, model.sample_rate)
    return TSETask(model, data, loss, source)
