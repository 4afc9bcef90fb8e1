"""Export fixtures shared by tests/export and tests/cli (registered in tests/conftest.py): toy checkpoints, one export per session."""
import pytest

from emotrt.export.exporter import ExportConfig, export_checkpoints
from tests.export.toy_models import SER_CONFIG, TSE_CONFIG, save_toy, toy_loader


@pytest.fixture(scope="session")
def toy_ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    return save_toy(root / "tse", TSE_CONFIG), save_toy(root / "ser", SER_CONFIG)


@pytest.fixture(scope="session")
def toy_export(toy_ckpts, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "models"
    report = export_checkpoints(toy_ckpts, out, ExportConfig(trt="10.3"), loader=toy_loader)
    return out, report
