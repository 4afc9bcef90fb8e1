"""The synthetic corpus: layout, schema, disjoint speakers, enrollment sentences, seen/unseen noise, errors."""
import json
import os
import subprocess
import sys

import pytest
import soundfile as sf

from emotrt.runtime.errors import ConfigError, CorpusError, DependencyError
from emotrt.training.corpus import load_manifest
from emotrt.training.corpus.noises import ENVIRONMENTS
from emotrt.training.corpus.synth import SIZES, SynthConfig, synthesise_corpus
from emotrt.training.corpus.testsets import TESTSET_NAMES

from .conftest import TINY


def test_presets_meet_the_issue():
    small, full = SIZES["small"], SIZES["full"]
    assert small.train_speakers >= 200 and small.test_speakers >= 24
    assert full.train_speakers >= small.train_speakers and full.per_style_train > small.per_style_train
    noisy = [e for e in ENVIRONMENTS.values() if e.id != "quiet"]
    assert len(noisy) >= 10 and all(len(set(e.descriptions)) >= 3 for e in ENVIRONMENTS.values())
    assert len([e for e in noisy if e.split == "unseen"]) >= 3


def test_layout_and_every_manifest_validates(tiny_corpus, validate_manifest):
    root, stats = tiny_corpus
    for name in ("train", "valid", "test", "enroll", "noise"):
        assert validate_manifest(root / "manifests" / (name + ".jsonl")) == stats["utterances"][name]
    for name in TESTSET_NAMES:
        assert validate_manifest(root / "testsets" / name / "mixtures.jsonl") == TINY["testset_size"]
    saved = json.loads((root / "corpus.json").read_text())
    assert saved["seed"] == 3 and saved["generation_seconds"] > 0
    assert len(saved["speaker_settings"]) == 4 + 1 + 4 + 2 and saved["speaker_settings"]["t000"]["gender"] == "f"
    assert set(json.loads((root / "environments.json").read_text())) == set(ENVIRONMENTS)
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".")]


def test_audio_is_16k_mono_pcm16_and_durations_match(tiny_corpus):
    root, _ = tiny_corpus
    for utt in load_manifest(root / "manifests" / "train.jsonl")[:3] + load_manifest(root / "manifests" / "noise.jsonl")[:2]:
        info = sf.info(str(utt.file))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert info.duration == pytest.approx(utt.duration, abs=1e-3)


def test_speakers_styles_and_splits(tiny_corpus):
    root, stats = tiny_corpus
    m = {n: load_manifest(root / "manifests" / (n + ".jsonl")) for n in ("train", "valid", "test", "enroll")}
    spk = {n: {u.speaker for u in m[n]} for n in ("train", "valid", "test")}
    assert len(spk["train"]) == 4 and not spk["train"] & (spk["valid"] | spk["test"]) and not spk["valid"] & spk["test"]
    assert stats["speakers"]["train"] == {"f": 2, "m": 2, "total": 4}
    assert stats["styles"]["train"] == {"angry": 4, "happy": 4, "neutral": 4, "sad": 4}
    assert {u.speaker for u in m["enroll"]} == spk["train"] | spk["valid"] | spk["test"]
    for u in m["enroll"]:
        assert u.text not in {t.text for t in m["test"] + m["train"] + m["valid"] if t.speaker == u.speaker}
    angry = [u for u in m["train"] if u.emotion == "angry"]
    assert all(u.arousal > 4 and u.valence < 2 for u in angry)


def test_unseen_environments_never_reach_training(tiny_corpus):
    root, _ = tiny_corpus
    envs = json.loads((root / "environments.json").read_text())
    noise = load_manifest(root / "manifests" / "noise.jsonl")
    assert all(envs[c.environment]["split"] == "seen" for c in noise if c.split != "test")
    unseen = {c.environment for c in noise if envs[c.environment]["split"] == "unseen"}
    assert len(unseen) >= 3


def test_two_talker_sets_pair_genders_and_noise_sets_keep_their_side(tiny_corpus):
    root, _ = tiny_corpus
    gender = {u.id: u.gender for u in load_manifest(root / "manifests" / "test.jsonl")}
    for pair in ("same", "different"):
        for mix in load_manifest(root / "testsets" / "two_talker_{}_0db".format(pair) / "mixtures.jsonl"):
            assert mix.gender_pair == pair and mix.sir_db == 0.0
            assert (gender[mix.interferer] == gender[mix.target]) == (pair == "same")
    envs = json.loads((root / "environments.json").read_text())
    for mix in load_manifest(root / "testsets" / "noise_unseen_m5db" / "mixtures.jsonl"):
        assert envs[mix.environment]["split"] == "unseen" and mix.snr_db == -5.0 and mix.snr_mode == "power"
        assert mix.file.is_file()


def test_same_seed_same_corpus_whatever_the_worker_count(tiny_corpus, tiny_config, tmp_path):
    root, _ = tiny_corpus
    again = tmp_path / "again"
    synthesise_corpus(again, seed=3, workers=1, config=tiny_config)
    for name in ("train.jsonl", "noise.jsonl"):
        assert (again / "manifests" / name).read_text() == (root / "manifests" / name).read_text()


def test_unknown_size_and_bad_config_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="size='huge'"):
        synthesise_corpus(tmp_path / "x", size="huge")
    with pytest.raises(ConfigError, match="test_speakers=2"):
        SynthConfig(**dict(TINY, test_speakers=2))
    with pytest.raises(ConfigError, match="train_speakers"):
        SynthConfig(**dict(TINY, train_speakers=0))


def test_unwritable_output_directory_is_one_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(CorpusError, match="cannot write the corpus") as info:
        synthesise_corpus(blocker / "synth")
    assert "--out" in info.value.hint


def test_non_empty_output_needs_force(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(CorpusError, match="not empty") as info:
        synthesise_corpus(tmp_path)
    assert "--force" in info.value.hint and (tmp_path / "keep.txt").read_text() == "mine"


def test_missing_espeak_is_a_dependency_error(tmp_path):
    with pytest.raises(DependencyError, match="espeak-ng was not found") as info:
        synthesise_corpus(tmp_path / "x", espeak_path=str(tmp_path))
    assert "apt-get install" in info.value.hint
    assert not (tmp_path / "x").exists()


def test_cli_without_espeak_on_path_prints_one_line(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "emotrt", "data", "synth", "--out", str(tmp_path / "c")],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: espeak-ng was not found on PATH; the synthetic corpus needs it "
        "(fix: sudo apt-get install -y espeak-ng, or run `make setup`)"]


def test_an_identical_corpus_is_kept_and_another_seed_needs_force(tiny_corpus, tiny_config, tmp_path):
    root, stats = tiny_corpus
    marker = root / "manifests" / "train.jsonl"
    before = marker.stat().st_mtime_ns
    assert synthesise_corpus(root, seed=3, config=tiny_config, espeak_path=str(tmp_path)) == stats
    assert marker.stat().st_mtime_ns == before
    with pytest.raises(CorpusError, match="not empty"):
        synthesise_corpus(root, seed=4, config=tiny_config)


def test_a_failing_noise_recipe_stops_before_the_speech_and_leaves_nothing(tiny_config, tmp_path, monkeypatch):
    import emotrt.training.corpus.synth as synth

    def broken(env, *args):
        raise ValueError("recipe for {} is broken".format(env))

    monkeypatch.setattr(synth, "make_noise", broken)  # the pool's forked workers inherit it
    spoken = []
    with pytest.raises(ValueError, match="is broken"):
        synthesise_corpus(tmp_path / "c", seed=3, workers=1, config=tiny_config, progress=lambda done, total: spoken.append(done))
    assert spoken == [] and list(tmp_path.iterdir()) == []
