"""Shared fixtures. Markers are registered once, in pyproject.toml."""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytest_plugins = ["tests.runtime.pulse", "tests.runtime.fixtures", "tests.export.fixtures"]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory) -> Path:
    """A tiny export output directory (tests/fixtures/tiny_graphs.py), made once per session."""
    from tests.fixtures.tiny_graphs import write_export_dir

    return write_export_dir(tmp_path_factory.mktemp("export"))


@pytest.fixture(scope="session")
def calibration_dir(tmp_path_factory) -> Path:
    """A tiny calibration output directory for tse_step and ser, made once per session."""
    from tests.fixtures.tiny_graphs import write_calibration_dir

    return write_calibration_dir(tmp_path_factory.mktemp("calibration"))


@pytest.fixture(scope="session")
def session_bundle(tmp_path_factory, export_dir, calibration_dir) -> Path:
    """A bundle written from the tiny export and calibration dirs; tests must not modify it."""
    from emotrt.devices.bundle_writer import collect_models, write_bundle

    models = collect_models(export_dir, calibration_dir)
    out = tmp_path_factory.mktemp("bundles") / "bundle"
    return write_bundle(out, models, export_dir / "env", export_dir / "testvectors", targets=["orin-nano-8gb"])


@pytest.fixture
def bundle_copy(tmp_path, session_bundle) -> Path:
    """A private copy of the session bundle that a test may tamper with."""
    import shutil

    return Path(shutil.copytree(str(session_bundle), str(tmp_path / "bundle")))
