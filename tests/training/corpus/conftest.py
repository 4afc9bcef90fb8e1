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
