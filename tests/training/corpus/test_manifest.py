"""Manifest lines: round trip, schema agreement, clear errors for bad files."""
import json

import pytest

from emotrt.runtime.errors import CorpusError
from emotrt.training.corpus import Utterance, check_line, load_manifest, write_manifest

CLEAN = Utterance(
    id="s001_u01", path="speech/s001/s001_u01.wav", sample_rate=16000, duration=2.1, corpus="synth", split="train",
    speaker="s001", gender="f", text="the cat sat", emotion="happy", arousal=4.0, valence=4.2, dominance=3.4,
)
MIXTURE = Utterance(
    id="mix0", path="testsets/x/mix0.wav", sample_rate=16000, duration=2.1, corpus="synth", split="test",
    speaker="s001", gender="f", emotion="sad", target="s001_u01", interferer="s002_u03", noise="cafe_0001",
    environment="cafe", snr_db=5.0, sir_db=0.0, snr_mode="power", gender_pair="different",
)


def test_round_trip_resolves_against_the_corpus_root(tmp_path, validate_manifest):
    (tmp_path / "corpus.json").write_text("{}")
    path = write_manifest(tmp_path / "manifests" / "train.jsonl", [CLEAN, MIXTURE])
    assert validate_manifest(path) == 2
    loaded = load_manifest(path)
    assert loaded == [CLEAN, MIXTURE]
    assert loaded[0].file == tmp_path.resolve() / "speech/s001/s001_u01.wav"
    assert "target" not in json.loads(path.read_text().splitlines()[0])


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"split": "dev"}, "split='dev'"),
        ({"gender": "x"}, "gender='x'"),
        ({"emotion": "joyful"}, "emotion='joyful'"),
        ({"arousal": 7.0}, "arousal=7.0"),
        ({"sample_rate": 16000.5}, "sample_rate=16000.5"),
        ({"duration": "2s"}, "duration='2s'"),
        ({"snr_mode": "db"}, "snr_mode='db'"),
        ({"colour": "red"}, "unknown field 'colour'"),
    ],
)
def test_light_checker_agrees_with_the_schema(change, problem, schema_validator):
    line = dict(CLEAN.to_json(), **change)
    assert any(problem in p for p in check_line(line))
    assert list(schema_validator.iter_errors(line))


def test_missing_required_field_is_reported_with_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    line = CLEAN.to_json()
    del line["split"]
    path.write_text(json.dumps(CLEAN.to_json()) + "\n" + json.dumps(line) + "\n")
    with pytest.raises(CorpusError, match=r"bad.jsonl:2 .*missing field 'split'"):
        load_manifest(path)


def test_missing_manifest_names_the_command_that_makes_one(tmp_path):
    with pytest.raises(CorpusError, match="manifest not found") as info:
        load_manifest(tmp_path / "nope.jsonl")
    assert "emotrt data synth" in info.value.hint


def test_not_json_is_a_corpus_error(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text("{not json\n")
    with pytest.raises(CorpusError, match="broken.jsonl:1 is not JSON"):
        load_manifest(path)


def test_unresolved_utterance_says_how_to_load_it():
    with pytest.raises(CorpusError, match="load_manifest"):
        CLEAN.file


def test_docstring_example_runs():
    import doctest

    from emotrt.training.corpus import manifest

    result = doctest.testmod(manifest)
    assert result.attempted >= 2 and result.failed == 0
