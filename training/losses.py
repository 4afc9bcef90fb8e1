"""Training losses: scale-invariant SNR for extraction, speaker classification for the enrollment net."""
from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-8


def si_sdr(estimate: torch.Tensor, target: torch.Tensor, zero_mean: bool = False) -> torch.Tensor:
    """SI-SDR in dB per item of [B, T] signals (REFERENCE.md "Metrics"); ``zero_mean`` gives SI-SNR."""
    if zero_mean:
        estimate = estimate - estimate.mean(dim=-1, keepdim=True)
        target = target - target.mean(dim=-1, keepdim=True)
    alpha = (estimate * target).sum(-1, keepdim=True) / (target.pow(2).sum(-1, keepdim=True) + EPS)
    projection = alpha * target
    noise = estimate - projection
    return 10 * torch.log10((projection.pow(2).sum(-1) + EPS) / (noise.pow(2).sum(-1) + EPS))


def si_snr(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SI-SNR in dB per item: SI-SDR after removing each signal's mean."""
    return si_sdr(estimate, target, zero_mean=True)


def neg_si_snr(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Batch mean of −SI-SNR: the TSE training loss."""
    return -si_snr(estimate, target).mean()


def align(estimate: torch.Tensor, target: torch.Tensor, latency: int) -> "tuple[torch.Tensor, torch.Tensor]":
    """Drop a causal model's ``latency`` samples so ``estimate[t]`` faces ``target[t - latency]``."""
    if latency <= 0:
        return estimate, target
    return estimate[..., latency:], target[..., : target.shape[-1] - latency]


def speaker_loss(logits: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of speaker logits against speaker indices (a regulariser for the enrollment net)."""
    return F.cross_entropy(logits, speaker)
