"""Shared fixtures. Markers are registered once, in pyproject.toml."""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytest_plugins = ["tests.export.fixtures"]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO
