"""Losses and metrics against torchmetrics' reference implementations."""
import torch
from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio, scale_invariant_signal_noise_ratio

from emotrt.training.losses import align, neg_si_snr, si_sdr, si_snr, speaker_loss


def _signals():
    g = torch.Generator().manual_seed(0)
    target = torch.randn(4, 800, generator=g) + 0.3
    estimate = 0.7 * target + 0.4 * torch.randn(4, 800, generator=g) - 0.1
    return estimate, target


def test_si_snr_matches_torchmetrics():
    estimate, target = _signals()
    expected = scale_invariant_signal_noise_ratio(estimate, target)
    assert torch.allclose(si_snr(estimate, target), expected, atol=1e-4)
    assert torch.isclose(neg_si_snr(estimate, target), -expected.mean(), atol=1e-4)


def test_si_sdr_matches_torchmetrics_and_differs_from_si_snr_with_offsets():
    estimate, target = _signals()
    expected = scale_invariant_signal_distortion_ratio(estimate, target)
    assert torch.allclose(si_sdr(estimate, target), expected, atol=1e-4)
    assert not torch.allclose(si_sdr(estimate, target), si_snr(estimate, target), atol=1e-2)


def test_align_pairs_output_with_the_delayed_target():
    target = torch.arange(10.0).unsqueeze(0)
    delayed = torch.cat([torch.zeros(1, 3), target[:, :-3]], dim=1)
    est, tgt = align(delayed, target, 3)
    assert torch.equal(est, tgt)
    assert align(delayed, target, 0)[0] is delayed


def test_speaker_loss_is_cross_entropy():
    logits = torch.tensor([[4.0, 0.0], [0.0, 4.0]])
    assert float(speaker_loss(logits, torch.tensor([0, 1]))) < float(speaker_loss(logits, torch.tensor([1, 0])))
