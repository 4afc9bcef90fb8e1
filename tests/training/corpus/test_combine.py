"""``emotrt data combine``: namespaced speakers, disjoint splits, provenance, balancing reproducible from seeds."""
import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from emotrt.runtime.errors import ConfigError, CorpusError
from emotrt.training.corpus import MixConfig, MixingSampler, Utterance, load_manifest, write_manifest
from emotrt.training.corpus.combine import (augment_noises, combine_corpora, draw_augment, noise_corpora,
                                            render_augment)

needs_sox = pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed (make setup installs it)")


def voice(path, seed, seconds=0.4):
    """A short harmonic tone with a random pitch, written as 16 kHz PCM16."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    x = 0.2 * sum(np.sin(2 * np.pi * rng.uniform(100, 300) * h * t) / h for h in (1, 2, 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x.astype(np.float32), 16000, subtype="PCM_16")


def fake_corpus(root, name, rows):
    """A prepared corpus: ``rows`` of (utterance id, speaker, split, emotion), manifests and corpus.json."""
    utts = []
    for i, (ident, speaker, split, emotion) in enumerate(rows):
        path = "speech/{}/{}.wav".format(speaker, ident)
        voice(root / path, hash((name, i)) % 1000)
        utts.append(Utterance(id=ident, path=path, sample_rate=16000, duration=0.4, corpus=name, split=split,
                              speaker=speaker, emotion=emotion, text="sentence " + ident, arousal=3.0, valence=3.0, dominance=3.0))
    for split in ("train", "valid", "test"):
        write_manifest(root / "manifests" / (split + ".jsonl"), [u for u in utts if u.split == split])
    (root / "corpus.json").write_text(json.dumps({"corpus": name}))
    return root


def fake_noise(root):
    """A noise corpus: a seen environment with a train clip, an unseen one with another."""
    rng = np.random.default_rng(7)
    clips = []
    for ident, env in (("n1", "hum"), ("n2", "wind")):
        path = "noise/{}/{}.wav".format(env, ident)
        (root / path).parent.mkdir(parents=True)
        sf.write(str(root / path), (0.1 * rng.standard_normal(24000)).astype(np.float32), 16000, subtype="PCM_16")
        clips.append(Utterance(id=ident, path=path, sample_rate=16000, duration=1.5, corpus="fake", split="train",
                               environment=env))
    write_manifest(root / "manifests/noise.jsonl", clips)
    (root / "environments.json").write_text(json.dumps({
        "hum": {"descriptions": ["This speech is recorded next to a humming fridge."], "split": "seen"},
        "wind": {"descriptions": ["This speech is recorded in strong wind."], "split": "unseen"},
        "quiet": {"descriptions": ["This speech is recorded in a quiet room."], "split": "seen"}}))
    return root


@pytest.fixture
def two_corpora(tmp_path):
    """Two corpora with the same speaker name "s1" and unequal classes; B's "s9" sits in two splits."""
    a = fake_corpus(tmp_path / "a", "alpha", [
        ("a1", "s1", "train", "angry"), ("a2", "s1", "train", "angry"), ("a3", "s2", "train", "angry"),
        ("a4", "s2", "train", "sad"), ("a5", "s3", "test", "sad"), ("a6", "s3", "test", "fear")])
    b = fake_corpus(tmp_path / "b", "beta", [
        ("b1", "s1", "train", "happy"), ("b2", "s1", "train", "angry"), ("b3", "s4", "valid", "neutral"),
        ("b4", "s9", "train", "sad"), ("b5", "s9", "test", "sad")])
    return a, b


def manifests(out):
    return {s: load_manifest(out / "manifests" / (s + ".jsonl")) for s in ("train", "valid", "test")}


def speaker_splits(ms):
    seen = {}
    for split, utts in ms.items():
        for u in utts:
            seen.setdefault(u.speaker, set()).add(split)
    return seen


def test_combine_namespaces_speakers_keeps_provenance_and_disjoint_splits(two_corpora, tmp_path, validate_manifest):
    stats = combine_corpora(two_corpora, tmp_path / "out", classes="all")
    ms = manifests(tmp_path / "out")
    for split in ms:
        validate_manifest(tmp_path / "out" / "manifests" / (split + ".jsonl"))
    rows = {u.id: u for utts in ms.values() for u in utts}
    assert rows["alpha:a1"].speaker == "alpha:s1" and rows["beta:b1"].speaker == "beta:s1"
    assert {u.corpus for u in rows.values()} == {"alpha", "beta"} and rows["beta:b1"].corpus == "beta"
    assert all(len(splits) == 1 for splits in speaker_splits(ms).values())
    assert stats["moved_speakers"] == ["beta:s9"] and rows["beta:b4"].split == rows["beta:b5"].split
    assert stats["before"]["angry"]["train"] == 4 and stats["before"]["fear"]["test"] == 1
    same = sf.read(str(rows["alpha:a1"].file))[0]
    assert np.array_equal(same, sf.read(str(two_corpora[0] / "speech/s1/a1.wav"))[0])
    four = combine_corpora(two_corpora, tmp_path / "four")
    assert "fear" not in four["after"] and "alpha:a6" not in {u.id for utts in manifests(tmp_path / "four").values() for u in utts}


@needs_sox
def test_augment_balances_train_classes_and_rows_regenerate_from_their_seeds(two_corpora, tmp_path, validate_manifest):
    noise = fake_noise(tmp_path / "noise")
    out = tmp_path / "out"
    stats = combine_corpora(two_corpora, out, classes="four", balance="augment", seed=3, noise=[noise], workers=1)
    ms = manifests(out)
    validate_manifest(out / "manifests/train.jsonl")
    train = ms["train"]
    counts = {c: sum(u.emotion == c for u in train) for c in ("angry", "sad", "happy")}
    assert counts == {"angry": 4, "sad": 4, "happy": 4}, counts
    assert stats["before"]["happy"]["train"] == 1 and stats["after"]["happy"]["train"] == 4
    assert {c: stats["after"][c]["augmented"] for c in counts} == {c: 4 - stats["before"][c]["train"] for c in counts}
    assert ms["test"] == [u for u in ms["test"] if u.augment is None]  # valid and test are never balanced
    made = [u for u in train if u.augment is not None]
    assert len(made) == sum(4 - stats["before"][c]["train"] for c in counts) and all(u.augment["method"] == "augment" and u.augment["noise"] == "n1" for u in made)
    assert all(len(splits) == 1 for splits in speaker_splits(ms).values())
    rows = {u.id: u for u in train}
    for row in made[:2]:
        source = rows[row.augment["of"]]
        assert (row.speaker, row.emotion, row.split, row.corpus) == (source.speaker, source.emotion, "train", source.corpus)
        assert draw_augment(row.augment["seed"], source.id, augment_noises(*noise_corpora([noise]))) == row.augment
        written = sf.read(str(row.file), dtype="float32")[0]
        again = render_augment(sf.read(str(source.file), dtype="float32")[0], row.augment, out)
        assert len(again) == len(written) and np.abs(again - written).max() <= 1.0 / 32767 + 1e-6
        assert not np.allclose(written[:len(written) // 2], sf.read(str(source.file), dtype="float32")[0][:len(written) // 2],
                               atol=1e-2)
    assert json.loads((out / "environments.json").read_text()) == json.loads((noise / "environments.json").read_text())
    assert [c.id for c in load_manifest(out / "manifests/noise.jsonl")] == ["n1", "n2"]
    sampler = MixingSampler.from_corpus(out, "train", MixConfig(segment_seconds=0.3, p_interferer=0.0, p_noise=1.0))
    assert sampler[0].environment == "hum" and len(sampler) == len(train)  # trains as it is: seen noise, enrollment
    again = combine_corpora(two_corpora, tmp_path / "again", classes="four", balance="augment", seed=3,
                            noise=[noise], workers=1)
    assert again["after"] == stats["after"]
    assert (tmp_path / "again/manifests/train.jsonl").read_text() == (out / "manifests/train.jsonl").read_text()
    assert all((tmp_path / "again" / u.path).read_bytes() == u.file.read_bytes() for u in made)
    assert draw_augment(4, "x", []) != draw_augment(3, "x", [])


def test_resample_repeats_rows_that_point_at_the_source_audio(two_corpora, tmp_path):
    stats = combine_corpora(two_corpora, tmp_path / "out", balance="resample", seed=0)
    train = manifests(tmp_path / "out")["train"]
    assert {c: stats["after"][c]["train"] for c in ("angry", "sad", "happy")} == {"angry": 4, "sad": 4, "happy": 4}
    copies = [u for u in train if u.augment]
    rows = {u.id: u for u in train}
    assert copies and all(u.augment["method"] == "resample" and u.path == rows[u.augment["of"]].path for u in copies)


def test_bad_inputs_are_one_error_and_nothing_is_written(two_corpora, tmp_path):
    a, _ = two_corpora
    out = tmp_path / "out"
    with pytest.raises(CorpusError, match="corpus directory not found: .*missing"):
        combine_corpora([a, tmp_path / "missing"], out)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="has no prepared manifest") as info:
        combine_corpora([a, tmp_path / "empty"], out)
    assert "emotrt data prepare" in info.value.hint
    with pytest.raises(ConfigError, match="unknown class 'joyful'"):
        combine_corpora([a], out, classes="happy,joyful")
    with pytest.raises(CorpusError, match="two inputs are both corpus 'a'"):
        combine_corpora([a, a], out)
    with pytest.raises(CorpusError, match="noise corpus .*empty has no environments.json"):
        combine_corpora([a], out, noise=[tmp_path / "empty"])
    with pytest.raises(ConfigError, match="balance='more'"):
        combine_corpora([a], out, balance="more")
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
