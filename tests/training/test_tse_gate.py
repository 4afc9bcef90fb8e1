"""Gate calibration on the valid split: thresholds chosen from features and the SER's answers."""
import json

import numpy as np
import pytest

from emotrt.runtime.gate import PRESENCE_FEATURES, GateFeatures, GateThresholds, decide
from emotrt.training import tse_gate
from emotrt.training.tse_gate import WEIGHTS, GateSamples, calibrate, decisions, summarize


def _samples(n=40, seed=0):
    """Clean: the extraction only hurts (margin ~0). Talker: it helps (margin ~0.4). Noise: it hurts although the
    margin is high, but the residual norm gives it away. Absent: low similarities."""
    rng = np.random.default_rng(seed)
    rows = []
    truth = rng.integers(0, 4, 4 * n)
    wrong = (truth + 1) % 4
    for i, name in enumerate(["clean", "talker_0db", "noise_0db", "absent"]):
        for j in range(n):
            k = i * n + j
            good = np.array([truth[k]] * len(WEIGHTS))
            if name == "clean":
                preds, sims, norm = np.where(np.array(WEIGHTS) < 0.5, truth[k], wrong[k]), (0.9, 0.9), 1.0
            elif name == "talker_0db":
                preds, sims, norm = np.where(np.array(WEIGHTS) >= 0.5, truth[k], wrong[k]), (0.85, 0.45), 1.0
            elif name == "noise_0db":
                preds, sims, norm = np.where(np.array(WEIGHTS) <= 0.25, truth[k], wrong[k]), (0.7, 0.3), 3.0
            else:
                preds, sims, norm = good, (0.1, 0.0), 1.0
            jitter = rng.normal(0, 0.02, 2)
            rows.append((name, sims[0] + jitter[0], sims[1] + jitter[1], 40.0 + rng.normal(0, 0.5), norm + rng.normal(0, 0.1),
                         truth[k], preds))
    cols = list(zip(*rows))
    return GateSamples(np.array(cols[0]), np.array(cols[1]), np.array(cols[2]), np.array(cols[3]), np.array(cols[4]),
                       np.array(cols[5]), np.stack(cols[6]), labels=("neutral", "happy", "angry", "sad"))


def test_calibration_never_loses_to_tse_off_and_drops_absent_windows():
    samples = _samples()
    t = calibrate(samples)
    summary = summarize(samples, t)
    for name in ("clean", "talker_0db", "noise_0db"):
        assert summary[name]["ua_gated"] >= summary[name]["ua_off"]
        assert summary[name]["present"] == 1.0
    assert summary["talker_0db"]["ua_gated"] == 1.0 and summary["talker_0db"]["ua_off"] == 0.0
    assert summary["clean"]["used"] == 0.0 and summary["absent"]["present"] == 0.0
    assert t.clean_gain_db == pytest.approx(40.0, abs=0.5) and np.isfinite(t.noise_norm) and t.noise_weight <= 0.25
    assert t.calibration["worst_ua_gain_valid"] >= 0.0


@pytest.mark.parametrize("presence", [
    {},  # the similarity thresholds of bundles calibrated before the presence model
    dict(presence_weights=(1.0, 2.0, 0.05, -0.5, 0.0, 0.0, 0.0, 0.0, -1.0), presence_bias=-1.2),
])
def test_vectorised_decisions_match_the_runtime_gate(presence):
    samples = _samples(n=10, seed=1)
    t = GateThresholds(use_margin=0.3, bypass_margin=0.05, present_similarity=0.5, present_ratio_db=-3.0,
                       clean_gain_db=40.0, use_weight=0.75, noise_norm=2.0, noise_weight=0.25,
                       present_noise_norm=2.5, present_similarity_noisy=0.2, **presence)
    present, weight = decisions(samples, t)
    assert 0 < present.sum() < len(present)
    for i in range(len(samples.truth)):
        d = decide(GateFeatures(samples.sim_extracted[i], samples.sim_mixture[i], samples.ratio_db[i] - 40.0,
                                samples.residual_norm[i]), t)
        assert d.present == present[i]
        if d.present:
            assert d.weight == pytest.approx(weight[i])


def test_presence_model_keeps_noisy_target_windows_and_drops_a_passed_through_talker():
    """Strong noise pulls both similarities below those of another talker alone; a talker the TSE passed
    whole (energy ratio 0 dB) is told by the mixture's similarity. No one threshold on the similarities
    keeps the first and drops the second; the presence model does, in every condition."""
    samples = _samples()
    rng = np.random.default_rng(3)
    noisy = samples.select(samples.condition == "noise_0db")
    n = len(noisy.truth)
    loud = GateSamples(np.array(["noise_m5db"] * n), rng.normal(0.3, 0.02, n), rng.normal(0.05, 0.02, n),
                       noisy.ratio_db - 6.0, noisy.residual_norm, noisy.truth, noisy.preds, labels=samples.labels)
    passed = GateSamples(np.array(["absent"] * n), rng.normal(0.5, 0.02, n), rng.normal(0.45, 0.02, n),
                         noisy.ratio_db, rng.normal(1.0, 0.1, n), noisy.truth, noisy.preds, labels=samples.labels)
    both = GateSamples(*(np.concatenate([getattr(s, k) for s in (samples, loud, passed)]) for k in GateSamples.FIELDS),
                       labels=samples.labels)
    t = calibrate(both, min_present=0.95)
    summary = summarize(both, t)
    assert min(summary[c]["present"] for c in ("clean", "talker_0db", "noise_0db", "noise_m5db")) >= 0.95
    assert summary["absent"]["present"] <= 0.05
    assert len(t.presence_weights) == len(PRESENCE_FEATURES)
    assert GateThresholds.from_dict(json.loads(json.dumps(t.to_dict()))) == t


def test_calibration_without_scikit_learn_says_what_to_install(monkeypatch):
    import sys

    from emotrt.runtime.errors import DependencyError

    monkeypatch.setitem(sys.modules, "sklearn.linear_model", None)
    with pytest.raises(DependencyError, match="presence model with scikit-learn") as err:
        calibrate(_samples(n=5))
    assert "emotrt[calibrate]" in err.value.hint


def test_samples_save_and_load(tmp_path):
    samples = _samples(n=3)
    samples.save(tmp_path / "s.npz")
    again = GateSamples.load(tmp_path / "s.npz")
    assert again.labels == samples.labels and all(np.array_equal(getattr(again, k), getattr(samples, k))
                                                  for k in GateSamples.FIELDS)


def test_thresholds_are_stored_in_the_checkpoint_config(tmp_path):
    from emotrt.training.checkpoint import read_config, save_checkpoint

    import torch

    save_checkpoint(tmp_path / "tse", {"w": torch.zeros(1)}, {"family": "tse_td_speakerbeam"})
    t = GateThresholds(use_margin=0.3, bypass_margin=0.05, present_similarity=0.5)
    tse_gate.store_thresholds(tmp_path / "tse", t)
    assert GateThresholds.from_dict(read_config(tmp_path / "tse")["gate"]) == t


def test_collection_hears_each_window_as_the_evaluator_does(ser_corpus, wordllama, monkeypatch):
    """An enrollment-referenced SER hears every blend at its speaker's enrollment gain (Evaluator.score)."""
    from emotrt.training.checkpoint_eval import Evaluator
    from emotrt.training.ser import SER, SERConfig

    from tests.training.conftest import TINY_SER
    from tests.training.test_checkpoint_eval import PassThroughTSE

    ser = SER.from_config(SERConfig(**dict(TINY_SER, level_reference="enrollment"))).eval()
    evaluator = Evaluator(ser, ser_corpus, tse=PassThroughTSE(), text_encoder=wordllama)
    heard = []
    score = evaluator.score

    def spy(windows, envs, text_mode, ser=None, speakers=None, condition=None):
        heard.append(speakers)
        return score(windows, envs, text_mode, ser, speakers, condition)

    monkeypatch.setattr(evaluator, "score", spy)
    samples = tse_gate.collect(evaluator, per_condition=2, conditions=("clean",))
    assert len(heard) == len(WEIGHTS) and all(s is not None and len(s) == 2 for s in heard)
    assert {evaluator.level_gain(s) for s in heard[0]} != {1.0}
    assert samples.preds.shape == (2, len(WEIGHTS))
