"""Seed-protocol metrics: UA, WA, macro-F1, CCC (population variances), SI-SDR/SI-SNR/SI-SDRi.

Written here rather than taken from torchmetrics/scikit-learn because the seed protocols fix
details those libraries choose differently (CCC with population variances over the whole test
set; UA over the classes present in the reference) and because ``ccc`` and ``si_snr`` double as
differentiable losses (SI-SDR/SI-SNR live in :mod:`emotrt.training.losses`). tests/training/test_metrics.py checks each against the libraries.
"""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np
import torch

from emotrt.training.losses import si_sdr, si_snr  # one definition, shared with the TSE loss

__all__ = ["ccc", "classification_scores", "confusion", "si_sdr", "si_sdr_improvement", "si_snr"]


def confusion(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> np.ndarray:
    """Confusion matrix [true, predicted] of integer labels."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return matrix


def classification_scores(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> Dict[str, float]:
    """UA (macro recall), WA (accuracy) and macro-F1, each over the classes present in ``y_true``."""
    matrix = confusion(y_true, y_pred, num_classes).astype(np.float64)
    support = matrix.sum(axis=1)
    present = support > 0
    if not present.any():
        return {"ua": float("nan"), "wa": float("nan"), "f1": float("nan")}
    hits = np.diag(matrix)
    recall = hits[present] / support[present]
    predicted = matrix.sum(axis=0)[present]
    precision = np.divide(hits[present], predicted, out=np.zeros_like(predicted), where=predicted > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
    return {"ua": float(recall.mean()), "wa": float(hits.sum() / matrix.sum()), "f1": float(f1.mean())}


def ccc(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Concordance correlation over dim 0 with population variances (differentiable)."""
    mean_p, mean_t = pred.mean(0), target.mean(0)
    var_p = ((pred - mean_p) ** 2).mean(0)
    var_t = ((target - mean_t) ** 2).mean(0)
    cov = ((pred - mean_p) * (target - mean_t)).mean(0)
    return 2 * cov / (var_p + var_t + (mean_p - mean_t) ** 2 + 1e-12)


def si_sdr_improvement(estimate: torch.Tensor, mixture: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """SI-SDRi = SI-SDR(estimate, reference) - SI-SDR(mixture, reference), in dB."""
    return si_sdr(estimate, reference) - si_sdr(mixture, reference)
