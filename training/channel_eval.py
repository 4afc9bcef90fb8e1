"""``emotrt eval --channels``: the SER on each stored test set as other devices would hear it.

Every test utterance is scored unaltered and under each held-out condition of
:mod:`emotrt.training.channels` (input gains; microphones and rooms at the unaltered level).
The condition changes what the device hears, so with ``--tse`` it is applied to the mixture
before extraction, and the TSE output is brought to the target's level in the altered mixture as the runtime
does (:func:`emotrt.runtime.results.match_level`); an SER with ``level_reference = "enrollment"``
takes its gain from the speaker's enrollment heard through the same condition. Reported per set and condition: UA, CCC, the
UA difference from the unaltered run with a 95 % paired bootstrap interval, and the share of
utterances whose label equals the unaltered run's (label agreement).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from emotrt.runtime.errors import ConfigError, CorpusError
from emotrt.training.channels import CHANNELS, GAINS_DB, TARGET_CHANNELS, conditions, gain_name
from emotrt.training.checkpoint_eval import AVD, EvalConfig, Evaluator, fit_window, list_testsets
from emotrt.training.metrics import ccc, classification_scores
from emotrt.training.text_gain import paired_gain

log = logging.getLogger(__name__)

UNALTERED = "unaltered"
# Issue 19's "done when": UA within 2 points of unaltered; label agreement at these gains and channels.
UA_TOLERANCE = 0.02
AGREEMENT_TARGETS = {gain_name(-12.0): 0.90, gain_name(-6.0): 0.90, gain_name(6.0): 0.90,
                     **{name: 0.85 for name in TARGET_CHANNELS}}


@dataclass(frozen=True)
class ChannelEvalConfig:
    """Which sets (empty = all stored), gains (dB), channels (names in :data:`CHANNELS`), text mode, limit."""

    sets: Tuple[str, ...] = ()
    gains: Tuple[float, ...] = GAINS_DB
    channels: Tuple[str, ...] = tuple(CHANNELS)
    text_mode: str = "text"
    limit: Optional[int] = None
    batch_size: int = 16
    bootstrap: int = 500

    def __post_init__(self) -> None:
        unknown = [c for c in self.channels if c not in CHANNELS]
        if unknown:
            raise ConfigError("eval --channels: unknown channel(s) {}".format(", ".join(unknown)),
                              hint="known: " + ", ".join(CHANNELS))
        EvalConfig(sets=self.sets, text_modes=(self.text_mode,), limit=self.limit, batch_size=self.batch_size)


class ChannelEvaluator:
    """Scores an SER (optionally behind a TSE) under held-out input conditions on a corpus's test sets."""

    def __init__(self, ser: Any, corpus: Any, tse: Any = None, config: ChannelEvalConfig = ChannelEvalConfig(),
                 text_encoder: Any = None) -> None:
        base = EvalConfig(sets=config.sets, text_modes=(config.text_mode,), limit=config.limit,
                          batch_size=config.batch_size)
        self.base = Evaluator(ser, corpus, tse=tse, config=base, text_encoder=text_encoder)
        self.config = config
        self.conditions = conditions(config.gains, config.channels)

    def evaluate_set(self, name: str, on_item: Optional[Callable[[], None]] = None) -> List[Dict[str, Any]]:
        """One row per condition (the unaltered run first) for the stored test set ``name``."""
        from emotrt.training.corpus import load_manifest

        base = self.base
        items = [u for u in load_manifest(base.corpus / "testsets" / name / "mixtures.jsonl")
                 if u.emotion in base.labels][: self.config.limit]
        if not items:
            raise CorpusError("test set {} has no utterance with a label in {}".format(name, base.labels))
        window = base.ser.config.window_samples
        names = [UNALTERED] + list(self.conditions)
        windows: Dict[str, List[np.ndarray]] = {n: [] for n in names}
        for utt in items:
            audio = base._audio(utt)
            for cond in names:
                heard = audio if cond == UNALTERED else self.conditions[cond].apply(audio)
                if base.tse is not None:
                    heard = base._extract(utt, heard)
                windows[cond].append(fit_window(heard, window))
            if on_item is not None:
                on_item()
        envs = [str(u.environment) for u in items]
        truth = np.array([base.labels.index(u.emotion) for u in items])
        avd_true = torch.tensor([[getattr(u, k) or 3.0 for k in AVD] for u in items], dtype=torch.float64)
        speakers = [str(u.speaker) for u in items]
        scored = {n: base.score(windows[n], envs, self.config.text_mode, speakers=speakers,
                                condition=None if n == UNALTERED else self.conditions[n].apply) for n in names}
        reference = scored[UNALTERED]
        rows = []
        for cond in names:
            out = scored[cond]
            scores = classification_scores(truth, out.preds, len(base.labels))
            concord = ccc(out.avd, avd_true)
            row = dict(set=name, condition=cond, kind="none" if cond == UNALTERED else self.conditions[cond].kind,
                       tse="on" if base.tse is not None else "off", n=len(items), **scores,
                       **{"ccc_" + k[0]: float(v) for k, v in zip(AVD, concord)},
                       agreement=float(np.mean(out.preds == reference.preds)))
            if cond != UNALTERED:
                diff = paired_gain(truth, avd_true, out, reference, len(base.labels), reps=self.config.bootstrap)
                row.update(ua_change=diff["ua_gain"], ua_change_ci=diff["ua_ci"])
            rows.append(row)
        return rows

    def run(self, on_item: Optional[Callable[[], None]] = None) -> Dict[str, Any]:
        """``{"rows": per set and condition, "summary": per condition, "conditions": descriptions, "checks": ...}``."""
        corpus = self.base.corpus
        names = list(self.config.sets) or list_testsets(corpus)
        missing = [n for n in names if not (corpus / "testsets" / n / "mixtures.jsonl").is_file()]
        if missing:
            raise CorpusError("test sets not in {}: {}".format(corpus, ", ".join(missing)),
                              hint="stored sets: " + ", ".join(list_testsets(corpus)))
        rows: List[Dict[str, Any]] = []
        for name in names:
            rows += self.evaluate_set(name, on_item)
            log.info("evaluated %s under %d conditions", name, len(self.conditions))
        return {"rows": rows, "summary": summarise(rows),
                "conditions": {n: c.description for n, c in self.conditions.items()}, "checks": checks(rows)}


def summarise(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Per condition over the sets: mean UA, mean and worst UA change, pooled and lowest agreement."""
    out = []
    for cond in dict.fromkeys(r["condition"] for r in rows):
        mine = [r for r in rows if r["condition"] == cond]
        n = sum(r["n"] for r in mine)
        changes = [r.get("ua_change", 0.0) for r in mine]
        out.append(dict(condition=cond, sets=len(mine), n=n, ua=float(np.mean([r["ua"] for r in mine])),
                        ua_change=float(np.mean(changes)), worst_ua_change=float(min(changes)),
                        agreement=float(sum(r["agreement"] * r["n"] for r in mine) / n),
                        lowest_agreement=float(min(r["agreement"] for r in mine))))
    return out


def checks(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Issue 19's criteria on these rows: UA within 2 points per set and condition (gains and target
    channels), pooled label agreement per condition at its target."""
    out = []
    summary = {s["condition"]: s for s in summarise(rows)}
    for cond, s in summary.items():
        if cond == UNALTERED or (cond not in AGREEMENT_TARGETS and not cond.startswith("gain_")):
            continue
        out.append(dict(condition=cond, criterion="UA within {:.0f} points on every set".format(100 * UA_TOLERANCE),
                        value=s["worst_ua_change"], ok=s["worst_ua_change"] >= -UA_TOLERANCE))
        if cond in AGREEMENT_TARGETS:
            out.append(dict(condition=cond, criterion="label agreement >= {:.0%}".format(AGREEMENT_TARGETS[cond]),
                            value=s["agreement"], ok=s["agreement"] >= AGREEMENT_TARGETS[cond]))
    return out


def format_channels(report: Dict[str, Any]) -> str:
    """Markdown: UA per set x condition, label agreement per set x condition, the summary and the checks."""
    rows = report["rows"]
    conds = list(dict.fromkeys(r["condition"] for r in rows))
    sets = list(dict.fromkeys(r["set"] for r in rows))
    cell = {(r["set"], r["condition"]): r for r in rows}
    head = "| set | " + " | ".join(conds) + " |"
    rule = "|---|" + "---|" * len(conds)
    lines = ["UA (change from unaltered in points)", "", head, rule]
    for name in sets:
        parts = []
        for c in conds:
            r = cell[name, c]
            parts.append("{:.3f}".format(r["ua"]) if c == UNALTERED else "{:.3f} ({:+.1f})".format(r["ua"], 100 * r["ua_change"]))
        lines.append("| {} | ".format(name) + " | ".join(parts) + " |")
    lines += ["", "Label agreement with the unaltered run", "", "| set | " + " | ".join(conds[1:]) + " |",
              "|---|" + "---|" * (len(conds) - 1)]
    for name in sets:
        lines.append("| {} | ".format(name) + " | ".join("{:.1%}".format(cell[name, c]["agreement"]) for c in conds[1:]) + " |")
    lines += ["", "| condition | what | mean UA | mean change | worst change | agreement | lowest agreement |",
              "|---|---|---|---|---|---|---|"]
    for s in report["summary"]:
        lines.append("| {} | {} | {:.3f} | {:+.1f} | {:+.1f} | {:.1%} | {:.1%} |".format(
            s["condition"], report["conditions"].get(s["condition"], "as stored"), s["ua"], 100 * s["ua_change"],
            100 * s["worst_ua_change"], s["agreement"], s["lowest_agreement"]))
    if report.get("checks"):
        lines += ["", "| check | condition | value | met |", "|---|---|---|---|"]
        for c in report["checks"]:
            value = "{:+.1f} points".format(100 * c["value"]) if c["criterion"].startswith("UA") else "{:.1%}".format(c["value"])
            lines.append("| {} | {} | {} | {} |".format(c["criterion"], c["condition"], value, "yes" if c["ok"] else "**no**"))
    return "\n".join(lines)


def evaluate_channels(ser_dir: Any, corpus: Any, tse_dir: Any = None, config: ChannelEvalConfig = ChannelEvalConfig(),
                      on_item: Optional[Callable[[], None]] = None) -> Dict[str, Any]:
    """Load the SER (and TSE) checkpoints and run :class:`ChannelEvaluator` on ``corpus``."""
    from emotrt.training.models import load_model

    ser, _ = load_model(ser_dir)
    if ser.__class__.__name__ != "SER":
        raise ConfigError("{} is not an SER checkpoint".format(ser_dir), hint="emotrt eval SER_CHECKPOINT --channels")
    tse = load_model(tse_dir)[0] if tse_dir is not None else None
    return ChannelEvaluator(ser, corpus, tse=tse, config=config).run(on_item)
