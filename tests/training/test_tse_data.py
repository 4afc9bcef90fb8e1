"""TSE mixtures from a real (tiny) synthetic corpus."""
import json

import numpy as np
import pytest

from emotrt.runtime.errors import ConfigError, CorpusError
from emotrt.training.tse_data import CorpusMixtures
from emotrt.training.tse_task import TSEDataConfig


def test_batches_hold_aligned_mixtures_and_speaker_indices(synth_corpus):
    data = TSEDataConfig(corpus=str(synth_corpus), segment_seconds=0.5, enroll_seconds=0.75, p_noise=0.0,
                         valid_mixtures=3)
    source = CorpusMixtures.open(data, 16000)
    train_speakers = {json.loads(line)["speaker"] for line in (synth_corpus / "manifests" / "train.jsonl").open()}
    assert source.n_speakers == len(train_speakers)
    batch = source.sample(np.random.default_rng(0), 3)
    assert batch["mixture"].shape == batch["target"].shape == (3, 8000) and batch["enrollment"].shape == (3, 12000)
    assert all(v.dtype == np.float32 for k, v in batch.items() if k != "speaker")
    assert batch["speaker"].dtype == np.int64 and set(batch["speaker"]) <= set(range(source.n_speakers))
    interferer = batch["mixture"] - batch["target"]
    assert (np.abs(interferer).max(axis=1) > 1e-3).all()  # every training mixture has a second talker
    again = source.sample(np.random.default_rng(0), 3)
    assert np.array_equal(again["mixture"], batch["mixture"])  # seeded


def test_validation_set_is_fixed_zero_db_two_talker(synth_corpus):
    data = TSEDataConfig(corpus=str(synth_corpus), segment_seconds=0.5, enroll_seconds=0.5, valid_mixtures=10)
    source = CorpusMixtures.open(data, 16000)
    batches = source.valid_set()
    assert [b["mixture"].shape[0] for b in batches] == [8, 2]
    assert source.valid_set() is batches
    target, other = batches[0]["target"], batches[0]["mixture"] - batches[0]["target"]
    sir = 10 * np.log10((target ** 2).sum(1) / (other ** 2).sum(1))
    assert np.abs(sir).max() < 0.5


def test_missing_or_empty_corpus_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=r"\[data\].corpus is empty"):
        CorpusMixtures.open(TSEDataConfig(), 16000)
    with pytest.raises(CorpusError, match="environments.json"):
        CorpusMixtures.open(TSEDataConfig(corpus=str(tmp_path)), 16000)
    with pytest.raises(ConfigError, match="8000 Hz"):
        CorpusMixtures.open(TSEDataConfig(corpus=str(tmp_path)), 8000)
