"""The voices corpus (flite): layout, schema, a held-out voice, the warp, and a missing flite."""
import json

import numpy as np
import pytest
import soundfile as sf

from emotrt.runtime.errors import ConfigError, CorpusError, DependencyError
from emotrt.training.corpus import load_manifest
from emotrt.training.corpus.voices import FLITE_VOICES, VALID_VOICE, WARPS, Voice, find_flite, make_voices, speak_flite


@pytest.fixture(scope="module")
def voices(tmp_path_factory):
    out = tmp_path_factory.mktemp("voices") / "v"
    return out, make_voices(out, per_speaker=2, enroll_per_speaker=1, workers=2)


def test_every_voice_at_every_warp_with_a_held_out_voice(voices, validate_manifest):
    out, stats = voices
    assert stats["speakers"] == len(FLITE_VOICES) * len(WARPS) and stats["utterances"] == stats["speakers"] * 3
    train = load_manifest(out / "manifests" / "train.jsonl", out)
    valid = load_manifest(out / "manifests" / "valid.jsonl", out)
    enroll = load_manifest(out / "manifests" / "enroll.jsonl", out)
    assert {stats["voices"][u.speaker]["voice"] for u in valid} == {VALID_VOICE}
    assert VALID_VOICE not in {stats["voices"][u.speaker]["voice"] for u in train}
    assert {u.speaker for u in enroll} == {u.speaker for u in train + valid}
    for name in ("train", "valid", "enroll"):
        assert validate_manifest(out / "manifests" / (name + ".jsonl")) > 0
    audio, rate = sf.read(str(train[0].file), dtype="float32")
    assert rate == 16000 and abs(float(np.abs(audio).max()) - 0.5) < 0.01
    assert json.loads((out / "corpus.json").read_text()) == stats


def test_the_warp_moves_the_voice_and_a_warp_above_one_shortens_it():
    exe = find_flite()
    text = "The museum guide carried a warm blanket by the river."
    low = speak_flite(exe, text, Voice("a", "slt", "f", 0.9, 170.0, 1.0))
    high = speak_flite(exe, text, Voice("b", "slt", "f", 1.1, 170.0, 1.0))
    assert low.dtype == np.float32 and len(low) / len(high) == pytest.approx(1.1 / 0.9, rel=0.02)


def test_missing_flite_or_a_used_output_is_a_clear_error(tmp_path, voices):
    with pytest.raises(DependencyError, match="flite was not found") as err:
        make_voices(tmp_path / "x", flite_path=str(tmp_path))
    assert "apt-get install -y flite" in err.value.hint
    with pytest.raises(ConfigError, match="per_speaker and enroll_per_speaker must be >= 1"):
        make_voices(tmp_path / "x", per_speaker=0)
    with pytest.raises(CorpusError, match="not empty"):
        make_voices(voices[0], per_speaker=1)
    assert not (tmp_path / "x").exists()
