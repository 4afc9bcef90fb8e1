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


def test_augmented_batches_keep_target_and_mixture_consistent(synth_corpus):
    data = TSEDataConfig(corpus=str(synth_corpus), segment_seconds=0.5, enroll_seconds=0.75, p_interferer=0.5,
                         p_noise=1.0, snr_db=(-10.0, 0.0), gain_db=(-20.0, 20.0), warp=(0.9, 1.1), p_warp=1.0,
                         valid_mixtures=2)
    source = CorpusMixtures.open(data, 16000)
    batch = source.sample(np.random.default_rng(1), 8)
    assert batch["mixture"].shape == batch["target"].shape == (8, 8000) and batch["enrollment"].shape == (8, 12000)
    assert np.abs(batch["mixture"]).max() <= 0.99 + 1e-6  # +20 dB of gain never clips
    levels = 10 * np.log10((batch["mixture"] ** 2).mean(1))
    assert levels.max() - levels.min() > 6  # the input level varies


def test_warp_moves_pitch_and_keeps_length():
    from emotrt.training.tse_data import warp

    t = np.arange(16000) / 16000
    tone = np.sin(2 * np.pi * 200 * t).astype(np.float32)
    assert warp(tone, 1.0) is tone
    faster = warp(tone, 1.1)
    assert faster.shape == tone.shape and faster.dtype == np.float32
    peak = np.argmax(np.abs(np.fft.rfft(faster[:14000])))
    assert peak * 16000 / 14000 == pytest.approx(220, abs=3)


def test_validation_conditions_noise_and_clean(synth_corpus):
    data = TSEDataConfig(corpus=str(synth_corpus), segment_seconds=0.5, enroll_seconds=0.5, valid_mixtures=2,
                         valid_noise_mixtures=3, valid_clean_mixtures=2, valid_snr_db=-5.0)
    batches = CorpusMixtures.open(data, 16000).valid_set()
    assert [(b["condition"], b["mixture"].shape[0]) for b in batches] == [("talker", 2), ("noise", 3), ("clean", 2)]
    noise, clean = batches[1], batches[2]
    snr = 10 * np.log10((noise["target"] ** 2).sum(1) / ((noise["mixture"] - noise["target"]) ** 2).sum(1))
    assert np.allclose(snr, -5.0, atol=0.1)
    assert np.array_equal(clean["mixture"], clean["target"])


@pytest.mark.parametrize("field, value", [("gain_db", (3.0, -3.0)), ("p_warp", 1.5), ("warp", (3.0,))])
def test_bad_augmentation_settings_are_errors(field, value):
    with pytest.raises(ConfigError, match=field):
        TSEDataConfig(**{field: value, "warp": (1.1,) if field != "warp" else value})


def test_a_share_of_the_training_mixtures_comes_from_the_voices_corpus(synth_corpus, tmp_path):
    from emotrt.training.corpus.voices import make_voices

    stats = make_voices(tmp_path / "voices", per_speaker=2, enroll_per_speaker=1, workers=2)
    data = TSEDataConfig(corpus=str(synth_corpus), voices=str(tmp_path / "voices"), p_voices=0.5, segment_seconds=0.5,
                         enroll_seconds=0.75, p_interferer=0.0, p_noise=1.0, valid_mixtures=2)
    source = CorpusMixtures.open(data, 16000)
    flite = {name for name, v in stats["voices"].items() if v["voice"] != "rms"}  # rms is the voices' valid split
    assert flite <= set(source.speakers) and source.n_speakers == len(source.speakers)
    batch = source.sample(np.random.default_rng(0), 16)
    drawn = {source.speakers[i] for i in batch["speaker"]}
    assert drawn & flite and drawn - flite  # both corpora, one batch
    assert (np.abs(batch["mixture"] - batch["target"]).max(axis=1) > 1e-4).all()  # the main corpus' noise, voices too
    with pytest.raises(ConfigError, match="p_voices > 0 needs a voices corpus"):
        TSEDataConfig(corpus=str(synth_corpus), p_voices=0.3)
