import pytest
import torch

from emotrt.runtime.errors import ConfigError
from emotrt.training.text import encode_descriptions, load_text_encoder, prompt


def test_prompt_templates():
    assert prompt("a busy cafe") == "This speech is recorded in a busy cafe."
    assert prompt("a busy cafe.", "plain") == "a busy cafe"
    assert prompt("rain", "Noise: {}!") == "Noise: rain!"
    with pytest.raises(ConfigError, match="template"):
        prompt("rain", "nonsense")


def test_wordllama_loads_offline_and_separates_descriptions():
    encoder = load_text_encoder("wordllama")
    emb = encode_descriptions(encoder, ["a busy cafe with people talking", "a car on the highway"])
    assert emb.shape == (2, encoder.dim) and encoder.dim == 256
    assert not torch.allclose(emb[0], emb[1])


@pytest.mark.parametrize("kind, dim", [("bert", 16), ("clap", 12)])
def test_transformers_text_encoders_from_local_dirs(tiny_hf, kind, dim):
    encoder = load_text_encoder(kind, str(tiny_hf / kind))
    emb = encode_descriptions(encoder, ["a busy cafe", "a car street"])
    assert emb.shape == (2, dim) and encoder.dim == dim
    assert not any(p.requires_grad for p in encoder.parameters())


def test_fine_tuned_text_encoder_passes_gradients(tiny_hf):
    encoder = load_text_encoder("bert", str(tiny_hf / "bert"), fine_tune=True)
    encoder.encode(["a busy cafe"]).sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in encoder.parameters())


def test_text_encoder_errors(tmp_path):
    with pytest.raises(ConfigError, match="no transformers model"):
        load_text_encoder("roberta", str(tmp_path))
    with pytest.raises(ConfigError, match="unknown text encoder 'gpt'"):
        load_text_encoder("gpt")
    with pytest.raises(ConfigError, match="fine_tune"):
        load_text_encoder("wordllama", fine_tune=True)
