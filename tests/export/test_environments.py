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
