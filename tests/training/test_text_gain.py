"""Text-mode differences with a paired bootstrap interval."""
import numpy as np
import torch

from emotrt.training.text_gain import Scored, format_gains, paired_gain, text_gains

N = 400
RNG = np.random.default_rng(0)
TRUTH = np.arange(N) % 4
AVD = torch.from_numpy(RNG.uniform(1, 5, (N, 3)))


def _scored(correct: np.ndarray, avd_noise: float) -> Scored:
    preds = np.where(correct, TRUTH, (TRUTH + 1) % 4)
    return Scored(preds, AVD + avd_noise * torch.from_numpy(np.random.default_rng(1).standard_normal((N, 3))))


def test_identical_modes_differ_by_nothing():
    a = _scored(RNG.random(N) < 0.6, 0.5)
    gain = paired_gain(TRUTH, AVD, a, a, 4, reps=200)
    assert gain["ua_gain"] == 0.0 and gain["ua_ci"] == [0.0, 0.0] and gain["ccc_ci"] == [0.0, 0.0]


def test_pairing_keeps_a_small_consistent_gain_above_zero():
    base = RNG.random(N) < 0.5
    better = base.copy()
    better[np.flatnonzero(~base)[:10]] = True  # right on 10 more utterances, never worse
    gain = paired_gain(TRUTH, AVD, _scored(better, 0.5), _scored(base, 0.5), 4, reps=300)
    assert gain["ua_gain"] > 0.02 and 0.0 <= gain["ua_ci"][0] < gain["ua_gain"] < gain["ua_ci"][1]
    assert gain == paired_gain(TRUTH, AVD, _scored(better, 0.5), _scored(base, 0.5), 4, reps=300)


def test_ccc_gain_follows_the_regression_error():
    correct = RNG.random(N) < 0.7
    gain = paired_gain(TRUTH, AVD, _scored(correct, 0.1), _scored(correct, 1.0), 4, reps=100)
    assert gain["ua_gain"] == 0.0 and gain["ccc_gain"] > 0.1 and gain["ccc_ci"][0] > 0.0


def test_only_modes_scored_together_are_compared_and_tabled():
    s = _scored(RNG.random(N) < 0.6, 0.5)
    assert text_gains(TRUTH, AVD, {("off", "text"): s}, 4) == [] and format_gains([]) == []
    rows = text_gains(TRUTH, AVD, {(t, m): s for t in ("off", "on") for m in ("text", "none")}, 4)
    assert [(r["tse"], r["compared"]) for r in rows] == [("off", "text - none"), ("on", "text - none")]
    table = format_gains([dict(r, set="clean") for r in rows])
    assert "| clean | on | text - none | +0.000 | [+0.000, +0.000] |" in table[-1]
