"""load_model: one clear error per bad checkpoint."""
import json

import pytest

from emotrt.runtime.errors import ConfigError
from emotrt.training.checkpoint import save_checkpoint
from emotrt.training.models import load_model
from emotrt.training.tse import TSE


@pytest.fixture
def checkpoint(tmp_path):
    model = TSE.from_config("tiny")
    return save_checkpoint(tmp_path / "ckpt", model.state_dict(), model.checkpoint_config()), model


def test_loads_the_tse_family(checkpoint):
    path, model = checkpoint
    loaded, config = load_model(path)
    assert isinstance(loaded, TSE) and not loaded.training and loaded.config == model.config
    assert all((a == b).all() for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))


def test_missing_file_is_named(checkpoint):
    path, _ = checkpoint
    (path / "model.safetensors").unlink()
    with pytest.raises(ConfigError, match="missing model.safetensors"):
        load_model(path)


def test_unknown_family_is_named(checkpoint):
    path, _ = checkpoint
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps(dict(config, family="wavenet")))
    with pytest.raises(ConfigError, match="unknown model family 'wavenet'.*tse_td_speakerbeam"):
        load_model(path)
