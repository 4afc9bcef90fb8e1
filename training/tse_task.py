"""The TSE training task: on-the-fly target + interferer (+ noise) mixtures, −SI-SNR loss.

Implements :class:`emotrt.training.task.Task` for the generic trainer. Batches come from a
:class:`MixtureSource` (the synthetic corpus in production, anything with the same two
methods in tests); an optional speaker-classification loss on the enrollment embedding
helps the enrollment network separate voices it has not heard.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Protocol, Tuple

import numpy as np
import torch

from emotrt.runtime.errors import ConfigError
from emotrt.training.checkpoint import warm_start
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
    gain_db: Tuple[float, ...] = (0.0, 0.0)  # random input level: mixture (and target) scaled by U[low, high] dB
    warp: Tuple[float, ...] = ()  # speed factors (pitch and formants move together); target+enrollment share one
    p_warp: float = 0.0  # share of target speakers (and, independently, interferers) warped by one of ``warp``
    voices: str = ""  # a corpus of other synthesisers' voices (`emotrt data voices`), mixed as the main corpus' train split
    p_voices: float = 0.0  # share of training mixtures drawn from ``voices`` (target, talker; noise from ``corpus``)
    valid_mixtures: int = 64  # fixed validation mixtures: valid speakers, one talker at 0 dB SIR, no noise
    valid_noise_mixtures: int = 0  # and this many target + seen-environment noise at ``valid_snr_db``, no talker
    valid_clean_mixtures: int = 0  # and this many of the target alone (the TSE must pass it through)
    valid_snr_db: float = -5.0
    valid_seed: int = 1234

    def __post_init__(self) -> None:
        if self.batch_size <= 0 or self.segment_seconds <= 0 or self.enroll_seconds <= 0 or self.valid_mixtures <= 0:
            raise ConfigError("recipe [data]: batch_size, segment_seconds, enroll_seconds, valid_mixtures must be > 0")
        bad = [] if len(self.gain_db) == 2 and self.gain_db[0] <= self.gain_db[1] else ["gain_db (expected [low, high])"]
        bad += [] if 0.0 <= self.p_warp <= 1.0 else ["p_warp (expected 0..1)"]
        bad += [] if all(0.5 <= w <= 2.0 for w in self.warp) else ["warp (speed factors in 0.5..2)"]
        bad += [] if self.warp or not self.p_warp else ["warp (p_warp > 0 needs factors)"]
        bad += [] if self.valid_noise_mixtures >= 0 and self.valid_clean_mixtures >= 0 else ["valid_*_mixtures (>= 0)"]
        bad += [] if 0.0 <= self.p_voices <= 1.0 else ["p_voices (expected 0..1)"]
        bad += [] if self.voices or not self.p_voices else ["voices (p_voices > 0 needs a voices corpus)"]
        if bad:
            raise ConfigError("recipe [data]: invalid {}".format(", ".join(bad)))


@dataclass(frozen=True)
class TSELossConfig:
    """``[loss]``: −SI-SNR plus an optional speaker-classification term on the embedding."""

    speaker_weight: float = 0.0


class MixtureSource(Protocol):
    """Makes TSE examples as float32 numpy arrays: mixture/target [B, T], enrollment [B, E], speaker [B].

    ``valid_set`` batches may name their ``condition`` (``talker``, ``noise``, ``clean``); without one
    a batch is a two-talker mixture.
    """

    n_speakers: int

    def sample(self, rng: np.random.Generator, batch: int) -> Dict[str, np.ndarray]: ...

    def valid_set(self) -> List[Dict[str, np.ndarray]]: ...


class TSETask:
    """TSE training: extraction loss on the causal model's aligned output, SI-SDRi for validation."""

    name = "tse"

    def __init__(self, model_config: TSEConfig, data: TSEDataConfig, loss: TSELossConfig,
                 source: MixtureSource, init: str = "") -> None:
        n_speakers = source.n_speakers if loss.speaker_weight > 0 else 0
        self.model_config = dataclasses.replace(model_config, n_speakers=n_speakers)
        self.data, self.loss_config, self.source = data, loss, source
        self.init = init
        self.parent: Optional[Dict[str, Any]] = None

    def build_model(self) -> TSE:
        """A TSE of the recipe's dimensions: fresh, or warm-started from ``[model] init``.

        A run that resumes (``parent`` already read from its ``last/``) skips the warm start:
        its weights come from ``last/`` and its provenance stays the first parent's.
        """
        model = TSE(self.model_config)
        if self.init and self.parent is None:
            self.parent = warm_start(model, self.init, fresh=("speaker_head",))
        return model

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
        """SI-SDR(i) per validation condition; ``score`` is the mean SI-SDRi over the talker and noise sets.

        ``si_sdri``/``si_sdr`` are the two-talker 0 dB set (comparable with older runs),
        ``noise_*`` the target in environment noise, ``clean_si_sdr`` the target alone passed through.
        """
        device = next(model.parameters()).device
        sdrs: Dict[str, List[torch.Tensor]] = {}
        gains: Dict[str, List[torch.Tensor]] = {}
        for item in self.source.valid_set():
            condition = str(item.get("condition", "talker"))
            mix, target, enrollment = (torch.from_numpy(item[k]).to(device) for k in ("mixture", "target", "enrollment"))
            estimate = model(mix, model.enroll(enrollment))
            estimate, aligned = align(estimate, target, model.config.latency_samples)
            sdr = si_sdr(estimate, aligned)
            sdrs.setdefault(condition, []).append(sdr)
            gains.setdefault(condition, []).append(sdr - si_sdr(mix, target))
        out: Dict[str, float] = {}
        scored = []
        for condition in sdrs:
            prefix = "" if condition == "talker" else condition + "_"
            out[prefix + "si_sdr"] = float(torch.cat(sdrs[condition]).mean())
            if condition != "clean":  # the clean input is the target: its SI-SDRi is not finite
                out[prefix + "si_sdri"] = float(torch.cat(gains[condition]).mean())
                scored.append(out[prefix + "si_sdri"])
        out["score"] = sum(scored) / len(scored)
        return out

    def checkpoint_config(self, model: TSE) -> Dict[str, Any]:
        """The model's dimensions plus the data settings it was trained with (and the warm start's parent)."""
        config = dict(model.checkpoint_config(), data=dataclasses.asdict(self.data),
                      loss=dataclasses.asdict(self.loss_config))
        if self.init:
            config["warm_started_from"] = self.parent or {"path": self.init}
        return config


def model_config_from_table(table: Dict[str, Any], resumed: Optional[Dict[str, Any]] = None) -> Tuple[TSEConfig, str]:
    """``[model]``: ``preset`` (tiny, edge, paper) plus any :class:`TSEConfig` field to override, or
    ``init`` (a TSE checkpoint to warm-start from, whose dimensions then replace the preset's; a run
    that resumes, ``resumed`` being its ``last/`` config, takes them from there and needs no ``init``)."""
    table = dict(table)
    preset = table.pop("preset", "edge")
    init = str(table.pop("init", "") or "")
    if init and resumed is not None:
        base = TSEConfig.from_dict(resumed)
    elif init:
        from emotrt.training.checkpoint import read_config

        base = TSEConfig.from_dict(read_config(init))
    else:
        base = resolve_config(preset)
    merged = dict(dataclasses.asdict(base), **table)
    return parse_section(merged, TSEConfig, "recipe [model]"), init


def from_recipe(recipe: Recipe, source: Optional[MixtureSource] = None) -> TSETask:
    """The TSE task of a recipe; ``source`` defaults to the corpus named in ``[data] corpus``."""
    check_sections(recipe, SECTIONS)
    last = Path(recipe.train.out) / "last"
    resumed = None
    if (last / "config.json").is_file():
        from emotrt.training.checkpoint import read_config

        resumed = read_config(last)
    model, init = model_config_from_table(recipe.sections.get("model", {}), resumed)
    data = parse_section(recipe.sections.get("data", {}), TSEDataConfig, "recipe [data]")
    loss = parse_section(recipe.sections.get("loss", {}), TSELossConfig, "recipe [loss]")
    if source is None:
        from emotrt.training.tse_data import CorpusMixtures

        source = CorpusMixtures.open(data, model.sample_rate)
    task = TSETask(model, data, loss, source, init=init)
    if init and resumed is not None:
        task.parent = resumed.get("warm_started_from", {"path": init})
    return task
