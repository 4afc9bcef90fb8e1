import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score, recall_score
from torchmetrics.functional import concordance_corrcoef
from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio, scale_invariant_signal_noise_ratio

from emotrt.training.metrics import ccc, classification_scores, si_sdr, si_sdr_improvement, si_snr


def test_classification_scores_match_scikit_learn():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, 200)
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, 4, 200))
    scores = classification_scores(y_true, y_pred, 4)
    assert scores["ua"] == pytest.approx(recall_score(y_true, y_pred, average="macro"))
    assert scores["wa"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert scores["f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))


def test_ua_averages_only_classes_present_in_the_reference():
    y_true, y_pred = [0, 0, 1, 1], [0, 1, 1, 2]
    scores = classification_scores(y_true, y_pred, 4)
    assert scores["ua"] == pytest.approx(recall_score(y_true, y_pred, labels=[0, 1], average="macro"))
    assert scores["ua"] == pytest.approx(0.5)


def test_ccc_uses_population_variances():
    x = torch.arange(1.0, 6.0)
    y = torch.tensor([1.5, 2.0, 2.5, 4.5, 4.0])
    assert float(ccc(x, y)) == pytest.approx(0.895522, abs=1e-6)


def test_ccc_matches_torchmetrics_when_means_agree():
    # torchmetrics uses sample variances; with equal means the n/(n-1) factors cancel.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=g, dtype=torch.float64)
    y = 0.5 * x + torch.randn(64, 3, generator=g, dtype=torch.float64)
    y = y - y.mean(0) + x.mean(0)
    assert torch.allclose(ccc(x, y), concordance_corrcoef(x, y), atol=1e-9)


def test_si_sdr_and_si_snr_match_torchmetrics():
    g = torch.Generator().manual_seed(1)
    ref = torch.randn(3, 4000, generator=g, dtype=torch.float64) + 0.3
    est = 0.7 * ref + 0.2 * torch.randn(3, 4000, generator=g, dtype=torch.float64)
    assert torch.allclose(si_sdr(est, ref), scale_invariant_signal_distortion_ratio(est, ref), atol=1e-5)
    assert torch.allclose(si_snr(est, ref), scale_invariant_signal_noise_ratio(est, ref), atol=1e-5)


def test_si_sdr_improvement_is_zero_for_the_mixture_and_positive_for_a_cleaner_estimate():
    g = torch.Generator().manual_seed(2)
    ref = torch.randn(2, 4000, generator=g)
    mix = ref + torch.randn(2, 4000, generator=g)
    assert torch.allclose(si_sdr_improvement(mix, mix, ref), torch.zeros(2), atol=1e-5)
    assert (si_sdr_improvement(ref + 0.1 * (mix - ref), mix, ref) > 15).all()
