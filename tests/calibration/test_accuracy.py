import numpy as np
import pytest

from emotrt.calibration.accuracy import EvalItem, ccc, run_items, score, si_sdr, unweighted_accuracy
from emotrt.runtime.contract import ModelContract


def test_ccc_matches_the_reference_value():
    assert ccc(np.arange(1, 6), np.array([1.5, 2, 2.5, 4.5, 4])) == pytest.approx(0.895522, abs=1e-6)


def test_si_sdr_of_known_noise_level():
    rng = np.random.default_rng(0)
    s = rng.standard_normal(16000)
    e = 3.0 * (s + 0.1 * rng.standard_normal(16000))
    assert si_sdr(e, s) == pytest.approx(20.0, abs=0.1)
    assert si_sdr(s, s) == 100.0


def test_ua_is_macro_recall():
    assert unweighted_accuracy([0, 0, 0, 1], [0, 0, 1, 1]) == pytest.approx(0.75)


def test_fp32_scores_itself_perfectly_and_tse_is_streamed(toy_jobs):
    job = next(j for j in toy_jobs if j.name == "tse_step")
    outputs = run_items(job.path, job.contract, job.items)
    assert outputs[0]["audio_out"].size == job.items[0].feed["audio"].size == 16000
    metrics = score(job.contract, job.items, outputs, outputs)
    assert metrics["sisdr_vs_fp32"] == 100.0 and np.isfinite(metrics["sisdri"])


def test_ser_without_labels_scores_against_fp32(toy_jobs):
    job = next(j for j in toy_jobs if j.name == "ser")
    items = [EvalItem(i.feed) for i in job.items]
    outputs = run_items(job.path, job.contract, items)
    assert score(job.contract, items, outputs, outputs) == {"ua": 1.0, "ccc": 1.0, "agreement": 1.0}


def test_ser_ua_is_also_scored_per_group():
    """One changed label in group b: its UA drops, group a's does not."""
    feed = {"audio": np.zeros((1, 4), np.float32)}
    items = [EvalItem(feed, label=c, avd=np.zeros(3), group=g) for g in "ab" for c in (0, 1)]
    fp32 = [{"logits": np.eye(2)[c][None], "avd": np.full((1, 3), float(i))} for i, c in enumerate([0, 1, 0, 1])]
    changed = fp32[:3] + [dict(fp32[3], logits=np.eye(2)[0][None])]
    metrics = score(ModelContract("ser", 16000, window_samples=4, d_model=2, labels=("x", "y")), items, fp32, changed)
    assert metrics["ua.a"] == 1.0 and metrics["ua.b"] == 0.5 and metrics["ua"] == 0.75 and metrics["agreement"] == 0.75
    assert metrics["agreement.a"] == 1.0 and metrics["agreement.b"] == 0.5


def test_tse_scoring_aligns_for_the_extractors_latency():
    rng = np.random.default_rng(0)
    target = rng.normal(size=3200).astype(np.float32)
    mixture = target + rng.normal(size=3200).astype(np.float32)
    lagged = np.concatenate([np.zeros(32, np.float32), target[:-32]])  # a perfect extractor, 32 samples late
    item = EvalItem({"audio": mixture[None]}, reference=target)
    outputs = [{"audio_out": lagged[None]}]

    def contract(latency):
        return ModelContract("tse_step", 16000, chunk_samples=320, extra={"latency_samples": latency})

    aligned = score(contract(32), [item], outputs, outputs)["sisdri"]
    unaligned = score(contract(0), [item], outputs, outputs)["sisdri"]
    assert aligned > 40 and unaligned < 3
