"""The on-the-fly mixing sampler: reproducible per (seed, index), labels and levels right."""
import numpy as np
import pytest

from emotrt.runtime.errors import ConfigError, CorpusError
from emotrt.training.corpus import load_manifest, measured_snr
from emotrt.training.corpus.sampler import MixConfig, MixingSampler


@pytest.fixture(scope="module")
def sampler(tiny_corpus):
    root, _ = tiny_corpus
    return MixingSampler.from_corpus(root, "train", MixConfig(segment_seconds=1.5), seed=11)


def test_same_seed_and_index_give_the_same_mixture(sampler, tiny_corpus):
    other = MixingSampler.from_corpus(tiny_corpus[0], "train", MixConfig(segment_seconds=1.5), seed=11)
    a, b = sampler[5], other[5]
    np.testing.assert_array_equal(a.mixture, b.mixture)
    assert (a.enrollment_id, a.interferer_id, a.noise_id, a.description) == (b.enrollment_id, b.interferer_id, b.noise_id, b.description)
    c = MixingSampler.from_corpus(tiny_corpus[0], "train", MixConfig(segment_seconds=1.5), seed=12)[5]
    assert not np.array_equal(a.mixture, c.mixture)


def test_items_are_consistent_mixtures_with_labels(sampler, tiny_corpus):
    root, _ = tiny_corpus
    texts = {u.id: u.text for u in load_manifest(root / "manifests" / "train.jsonl") + load_manifest(root / "manifests" / "enroll.jsonl")}
    seen = set()
    for i in range(len(sampler)):
        item = sampler[i]
        assert item.mixture.shape == item.target.shape == (24000,) and item.mixture.dtype == np.float32
        parts = item.target + sum(p for p in (item.interferer, item.noise) if p is not None)
        np.testing.assert_allclose(item.mixture, parts, atol=1e-6)
        assert item.enrollment_id.startswith(item.speaker) and texts[item.enrollment_id] != texts[item.target_id]
        assert item.emotion in ("neutral", "happy", "angry", "sad") and 1 <= item.arousal <= 5
        if item.noise is not None:
            assert item.snr_db in (12.5, 7.5, 2.5) and measured_snr(item.target, item.noise) == pytest.approx(item.snr_db, abs=1e-3)
            seen.add(item.environment)
        else:
            assert item.environment == "quiet"
        if item.interferer is not None:
            assert not item.interferer_id.startswith(item.speaker) and item.gender_pair in ("same", "different")
        assert item.description
    assert seen and all(e not in ("music", "wind", "tram", "construction") for e in seen)


def test_tgeat_mode_and_clean_only(tiny_corpus):
    root, _ = tiny_corpus
    loud = MixingSampler.from_corpus(root, "train", MixConfig(p_noise=1.0, p_interferer=0.0, snr_mode="tgeat"), seed=0)[0]
    assert measured_snr(loud.target, loud.noise, "tgeat") == pytest.approx(loud.snr_db, abs=1e-3)
    clean = MixingSampler.from_corpus(root, "test", MixConfig(p_noise=0.0, p_interferer=0.0, segment_seconds=None), seed=0)[0]
    np.testing.assert_array_equal(clean.mixture, clean.target)


@pytest.mark.parametrize("field", ["p_noise", "segment_seconds", "sir_db", "snr_db", "snr_mode"])
def test_invalid_config_names_the_field(field):
    bad = {"p_noise": 1.5, "segment_seconds": 0, "sir_db": (5.0, -5.0), "snr_db": (), "snr_mode": "db"}
    with pytest.raises(ConfigError, match=field):
        MixConfig(**{field: bad[field]})


def test_a_lone_speaker_cannot_have_an_interferer(tiny_corpus):
    root, _ = tiny_corpus
    speech = load_manifest(root / "manifests" / "train.jsonl")
    one = [u for u in speech if u.speaker == speech[0].speaker]
    with pytest.raises(CorpusError, match="at least two speakers"):
        MixingSampler(one, [], [], {"quiet": {"descriptions": ["q"]}}, MixConfig(p_noise=0.0))


def test_missing_corpus_says_how_to_make_one(tmp_path):
    with pytest.raises(CorpusError, match="environments.json") as info:
        MixingSampler.from_corpus(tmp_path)
    assert "emotrt data synth" in info.value.hint


def test_real_speech_with_noise_from_another_corpus(tiny_corpus, tmp_path):
    from emotrt.training.corpus.prepare import prepare_corpus

    from .test_prepare import tone

    for actor in (1, 2, 3):
        for statement in (1, 2):
            tone(tmp_path / "src" / "Actor_{:02d}".format(actor) / "03-01-03-01-{:02d}-01-{:02d}.wav".format(statement, actor))
    prepare_corpus("ravdess", tmp_path / "src", tmp_path / "ravdess", workers=1)
    sampler = MixingSampler.from_corpus(tmp_path / "ravdess", "train", MixConfig(p_noise=1.0), seed=0, noise_root=tiny_corpus[0])
    item = sampler[1]
    assert item.enrollment_id != item.target_id and item.speaker.startswith("ravdess_")
    assert item.noise_id is not None and item.emotion == "happy" and item.mixture.shape == (48000,)


def test_docstring_example_runs(tiny_corpus):
    import doctest

    from emotrt.training.corpus import sampler as module

    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner()
    for test in finder.find(module.MixingSampler, globs=dict(vars(module), root=tiny_corpus[0])):
        runner.run(test)
    assert runner.summarize(verbose=False).attempted >= 4 and runner.failures == 0
