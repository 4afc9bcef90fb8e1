"""Shared helpers for corpus tests: schema validation with jsonschema."""
import json

import pytest


@pytest.fixture(scope="session")
def schema_validator():
    """A jsonschema validator for manifest lines, built from the schema file shipped in the package."""
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is a dev dependency")
    from emotrt.training.corpus import SCHEMA_PATH

    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture(scope="session")
def validate_manifest(schema_validator):
    """Validate every line of a JSONL manifest against the schema; returns the number of lines."""

    def validate(path):
        lines = [json.loads(t) for t in open(path, encoding="utf-8") if t.strip()]
        for line in lines:
            errors = sorted(e.message for e in schema_validator.iter_errors(line))
            assert not errors, (path, line, errors)
        return len(lines)

    return validate


TINY = dict(train_speakers=4, valid_speakers=1, test_speakers=4, per_style_train=1, per_style_test=1,
            enroll_per_speaker=1, babble_talkers=2, noise_clips=(1, 1, 1), unseen_clips=1, noise_seconds=1.0,
            testset_size=4)


@pytest.fixture(scope="session")
def tiny_config():
    """A synthetic-corpus config small enough for a test (about 50 utterances)."""
    from emotrt.training.corpus.synth import SynthConfig

    return SynthConfig(**TINY)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory, tiny_config):
    """One tiny synthetic corpus shared by the corpus tests: (root, stats)."""
    from emotrt.training.corpus.synth import synthesise_corpus

    root = tmp_path_factory.mktemp("corpus") / "synth"
    stats = synthesise_corpus(root, seed=3, workers=2, config=tiny_config)
    return root, stats
