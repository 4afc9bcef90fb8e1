"""The environment table: paraphrase combination, file formats, and (with the SER checkpoint) real tokens."""
import json

import numpy as np
import pytest

from emotrt.export.environments import combine_paraphrases, read_environment_file
from emotrt.runtime.errors import ConfigError


def test_paraphrases_average_and_keep_the_typical_norm():
    tokens = np.array([[3.0, 0.0], [0.0, 1.0]], np.float32)
    token = combine_paraphrases(tokens)
    assert token.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(token), 2.0, rtol=1e-6)  # mean of norms 3 and 1
    np.testing.assert_allclose(token / np.linalg.norm(token), np.array([3.0, 1.0]) / np.sqrt(10.0), rtol=1e-6)
    np.testing.assert_allclose(combine_paraphrases(tokens[:1]), tokens[0])


def test_environment_files_in_every_accepted_form(tmp_path):
    path = tmp_path / "envs.json"
    path.write_text(json.dumps({
        "busy_cafe": {"descriptions": ["a busy cafe", "a crowded coffee shop"], "split": "seen"},
        "car": ["a car on the highway"],
        "street": "a street with traffic",
    }))
    assert read_environment_file(path) == {
        "busy_cafe": ["a busy cafe", "a crowded coffee shop"], "car": ["a car on the highway"], "street": ["a street with traffic"],
    }


@pytest.mark.parametrize("content", ["[1, 2]", "{}", '{"x": []}', '{"x": [1]}', "not json"])
def test_bad_environment_files(tmp_path, content):
    path = tmp_path / "envs.json"
    path.write_text(content)
    with pytest.raises(ConfigError):
        read_environment_file(path)


@pytest.fixture(scope="module")
def ser_ckpt(tmp_path_factory):
    import torch

    from emotrt.training.checkpoint import save_checkpoint
    from emotrt.training.ser import SER, SERConfig

    torch.manual_seed(0)
    model = SER.from_config(SERConfig(d_model=16, heads=2, layers=1, ff_dim=32, window_samples=8000))
    return save_checkpoint(tmp_path_factory.mktemp("env") / "ser", model.state_dict(), model.checkpoint_config())


@pytest.fixture(scope="module")
def embedder(ser_ckpt):
    from emotrt.export.environments import EnvironmentEmbedder

    return EnvironmentEmbedder.from_checkpoint(ser_ckpt)


def test_tokens_are_the_projected_text_embeddings(embedder, tmp_path):
    import torch

    from emotrt.export.environments import add_environment, list_environments
    from emotrt.runtime.tables import VectorTable
    from emotrt.training.text import encode_descriptions

    token = add_environment(tmp_path / "env", embedder, "busy_cafe", ["a busy cafe"])
    with torch.no_grad():
        expected = embedder.model.project_env(encode_descriptions(embedder.encoder, ["a busy cafe"], embedder.template))[0].numpy()
    np.testing.assert_allclose(token, expected, rtol=1e-5, atol=1e-6)
    table = VectorTable(tmp_path / "env", kind="environment")
    assert table.dim == 16 and table.get("busy_cafe").dtype == np.float32
    assert table.info("busy_cafe")["text_encoder"] == "wordllama"
    assert list_environments(tmp_path / "env") == [("busy_cafe", ["a busy cafe"])]


def test_an_environment_that_already_exists(embedder, tmp_path):
    from emotrt.export.environments import add_environment, import_environments

    add_environment(tmp_path / "env", embedder, "car", ["a car on the highway"])
    with pytest.raises(ConfigError, match="car already exist") as err:
        add_environment(tmp_path / "env", embedder, "car", ["a car"])
    assert "emotrt env remove car" in err.value.hint
    path = tmp_path / "envs.json"
    path.write_text(json.dumps({"street": "a street", "car": "a car"}))
    with pytest.raises(ConfigError, match="car already exist"):
        import_environments(tmp_path / "env", embedder, path)
    from emotrt.runtime.tables import VectorTable

    assert VectorTable(tmp_path / "env", kind="environment").names() == ["car"]  # nothing half-imported


def test_cli_env_add_list_import_remove(ser_ckpt, tmp_path):
    import subprocess
    import sys

    def emotrt(*args):
        return subprocess.run([sys.executable, "-m", "emotrt", "env", *args], capture_output=True, text=True)

    table = str(tmp_path / "env")
    ok = emotrt("add", "office", "a quiet office", "an open-plan office", "--ckpt", str(ser_ckpt), "--table", table)
    assert ok.returncode == 0, ok.stderr
    envs = tmp_path / "envs.json"
    envs.write_text(json.dumps({"tram": {"descriptions": ["a tram"], "split": "unseen"}}))
    assert emotrt("import", str(envs), "--ckpt", str(ser_ckpt), "--table", table).returncode == 0
    listed = emotrt("list", "--table", table).stdout
    assert "office\ta quiet office | an open-plan office" in listed and "tram\ta tram" in listed
    again = emotrt("add", "office", "x", "--ckpt", str(ser_ckpt), "--table", table)
    assert again.returncode == 2 and again.stderr.startswith("error: environment(s) office already exist")
    assert emotrt("remove", "tram", "--table", table).returncode == 0
    assert "tram" not in emotrt("list", "--table", table).stdout
