"""Checkpoint directories: self-describing, atomic, and clear about what is wrong."""
import json

import pytest
import torch

from emotrt.runtime.errors import ConfigError
from emotrt.training.checkpoint import load_checkpoint, read_config, save_checkpoint


def test_round_trip_keeps_config_and_weights(tmp_path):
    weights = {"w": torch.arange(6.0).reshape(2, 3)}
    save_checkpoint(tmp_path / "ckpt", weights, {"family": "toy", "dim": 3})
    config, state = load_checkpoint(tmp_path / "ckpt")
    assert config == {"family": "toy", "dim": 3, "schema": 1}
    assert torch.equal(state["w"], weights["w"])


def test_overwrite_is_atomic_and_leaves_no_staging(tmp_path):
    save_checkpoint(tmp_path / "ckpt", {"w": torch.zeros(2)}, {"family": "toy"})
    save_checkpoint(tmp_path / "ckpt", {"w": torch.ones(2)}, {"family": "toy"})
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]
    assert torch.equal(load_checkpoint(tmp_path / "ckpt")[1]["w"], torch.ones(2))


@pytest.mark.parametrize("remove, message", [
    ("model.safetensors", "is missing model.safetensors"),
    ("config.json", "is missing config.json"),
])
def test_missing_file_is_a_clear_error(tmp_path, remove, message):
    save_checkpoint(tmp_path / "ckpt", {"w": torch.zeros(2)}, {"family": "toy"})
    (tmp_path / "ckpt" / remove).unlink()
    with pytest.raises(ConfigError, match=message):
        read_config(tmp_path / "ckpt")


def test_newer_schema_and_missing_family_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="needs a 'family' key"):
        save_checkpoint(tmp_path / "x", {"w": torch.zeros(1)}, {})
    save_checkpoint(tmp_path / "ckpt", {"w": torch.zeros(1)}, {"family": "toy"})
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps({"family": "toy", "schema": 99}))
    with pytest.raises(ConfigError, match="uses schema 99"):
        read_config(tmp_path / "ckpt")
