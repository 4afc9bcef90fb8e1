"""What the environment text adds: the UA and mean-CCC difference between two text modes scored on
the same utterances, with a 95 % paired bootstrap interval.

Both modes saw the same utterances, so the utterances are resampled together (a paired
bootstrap): the interval shows whether a one-point gain on 400 utterances is more than the luck of
which utterances were drawn. The metrics are the evaluation's own (:mod:`emotrt.training.metrics`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np
import torch

from emotrt.training.metrics import ccc, classification_scores

#: (better-expected, compared-with) text modes whose differences the evaluation reports.
GAIN_PAIRS = (("text", "none"), ("text", "wrong"))


@dataclass(frozen=True)
class Scored:
    """One text mode's outputs on a test set: class predictions [N] and arousal/valence/dominance [N, 3]."""

    preds: np.ndarray
    avd: torch.Tensor


def _scores(truth: np.ndarray, avd_true: torch.Tensor, scored: Scored, idx: np.ndarray, classes: int) -> np.ndarray:
    ua = classification_scores(truth[idx], scored.preds[idx], classes)["ua"]
    return np.array([ua, float(ccc(scored.avd[idx], avd_true[idx]).mean())])


def paired_gain(truth: np.ndarray, avd_true: torch.Tensor, a: Scored, b: Scored, classes: int,
                reps: int = 1000, seed: int = 0) -> Dict[str, object]:
    """UA and mean CCC of ``a`` minus ``b`` on every utterance, with 2.5 / 97.5 % bootstrap quantiles."""
    n = len(truth)

    def gain(idx: np.ndarray) -> np.ndarray:
        return _scores(truth, avd_true, a, idx, classes) - _scores(truth, avd_true, b, idx, classes)

    rng = np.random.default_rng(seed)
    point = gain(np.arange(n))
    draws = np.stack([gain(rng.integers(0, n, n)) for _ in range(reps)])
    low, high = np.percentile(draws, [2.5, 97.5], axis=0)
    return {"ua_gain": float(point[0]), "ua_ci": [float(low[0]), float(high[0])],
            "ccc_gain": float(point[1]), "ccc_ci": [float(low[1]), float(high[1])]}


def text_gains(truth: np.ndarray, avd_true: torch.Tensor, scored: Dict[Tuple[str, str], Scored],
               classes: int) -> List[Dict[str, object]]:
    """One row per TSE mode and :data:`GAIN_PAIRS` entry whose modes were both scored."""
    rows = []
    for tse in dict.fromkeys(t for t, _ in scored):
        for a, b in GAIN_PAIRS:
            if (tse, a) in scored and (tse, b) in scored:
                rows.append(dict(tse=tse, compared="{} - {}".format(a, b),
                                 **paired_gain(truth, avd_true, scored[tse, a], scored[tse, b], classes)))
    return rows


def format_gains(rows: List[Dict[str, object]]) -> List[str]:
    """Markdown lines of the gains table (empty when there is nothing to compare)."""
    if not rows:
        return []
    lines = ["", "Environment text: differences on the same utterances, 95 % paired bootstrap interval", "",
             "| set | TSE | compared | UA | interval | mean CCC | interval |", "|" + "---|" * 7]
    for r in rows:
        lines.append("| {} | {} | {} | {:+.3f} | [{:+.3f}, {:+.3f}] | {:+.3f} | [{:+.3f}, {:+.3f}] |".format(
            r["set"], r["tse"], r["compared"], r["ua_gain"], *r["ua_ci"], r["ccc_gain"], *r["ccc_ci"]))
    return lines
