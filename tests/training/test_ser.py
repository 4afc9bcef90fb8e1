import doctest

import numpy as np
import pytest
import torch

from emotrt.runtime.errors import ConfigError
from emotrt.training import ser as ser_module
from emotrt.training.ser import SER, SERConfig, decompose_layer_norms

TINY = dict(d_model=32, heads=2, layers=1, ff_dim=64, window_samples=8000, text_dim=16)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return SER.from_config(SERConfig(**TINY)).eval()


def test_docstring_example_runs():
    assert doctest.testmod(ser_module).failed == 0


def test_forward_shapes_and_env_token_changes_the_output(tiny):
    audio = torch.randn(2, 8000)
    token = tiny.project_env(torch.randn(2, 16))
    logits, avd = tiny(audio, token)
    assert logits.shape == (2, 4) and avd.shape == (2, 3)
    other, _ = tiny(audio, tiny.null_env(2))
    assert not torch.allclose(logits, other)


def test_film_starts_as_identity_and_then_lets_the_token_reweight_the_features(tiny):
    film = SER.from_config(SERConfig(env_film=True, **TINY)).eval()
    missing = film.load_state_dict(tiny.state_dict(), strict=False).missing_keys
    assert sorted(missing) == ["env_film.bias", "env_film.weight"]
    audio, token = torch.randn(2, 8000), tiny.project_env(torch.randn(2, 16))
    assert torch.allclose(film(audio, token)[0], tiny(audio, token)[0], atol=1e-6)
    torch.nn.init.normal_(film.env_film.weight, std=0.1)
    assert not torch.allclose(film(audio, token)[0], tiny(audio, token)[0], atol=1e-4)


def test_zeros_null_env_is_a_fixed_zero_token():
    model = SER.from_config(SERConfig(null_env="zeros", **TINY))
    assert not model.null_token.requires_grad
    assert torch.equal(model.null_env(3), torch.zeros(3, 32))


def test_decomposed_layer_norm_matches_the_fused_one(tiny):
    audio, token = torch.randn(2, 8000), tiny.null_env(2)
    fused = tiny(audio, token)[0]
    decompose_layer_norms(tiny)
    try:
        assert torch.allclose(tiny(audio, token)[0], fused, atol=1e-5)
    finally:
        decompose_layer_norms(tiny, False)


def test_config_round_trips_through_its_dict():
    config = SERConfig(**TINY)
    data = config.to_dict()
    assert data["features"]["hop_length"] == 320 and data["labels"] == ["neutral", "happy", "angry", "sad"]
    assert SERConfig.from_dict(data) == config


@pytest.mark.parametrize("changes, field", [
    (dict(heads=3), "heads"),
    (dict(frontend="mfcc"), "frontend"),
    (dict(labels=("a",)), "labels"),
    (dict(null_env="random"), "null_env"),
])
def test_bad_config_names_the_field(changes, field):
    with pytest.raises(ConfigError, match=field):
        SERConfig(**dict(TINY, **changes))


def test_unknown_config_key_is_named():
    with pytest.raises(ConfigError, match="d_modle"):
        SERConfig.from_dict({"d_modle": 64})


def test_onnx_export_has_dynamic_window_and_no_stft(tmp_path, tiny):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    path = tmp_path / "ser.onnx"
    decompose_layer_norms(tiny)
    try:
        torch.onnx.export(tiny, (torch.randn(1, 8000), tiny.null_env(1).detach()), str(path), dynamo=False,
                          opset_version=17, input_names=["audio", "env_token"], output_names=["logits", "avd"],
                          dynamic_axes={"audio": {1: "window"}})
    finally:
        decompose_layer_norms(tiny, False)
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert not ops & {"STFT", "LayerNormalization"}
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    token = tiny.project_env(torch.randn(1, 16)).detach()
    for samples in (8000, 12000):
        audio = torch.randn(1, samples)
        logits, _ = session.run(None, {"audio": audio.numpy(), "env_token": token.numpy()})
        np.testing.assert_allclose(logits, tiny(audio, token)[0].detach().numpy(), atol=1e-4)


def test_committed_default_checkpoint_loads_with_its_contract(repo_root):
    from emotrt.training.models import load_model

    model, config = load_model(repo_root / "checkpoints" / "ser_fbank")
    assert config["family"] == "ser" and config["frontend"] == "fbank" and config["training"]["step"] > 0
    window, d_model = model.config.window_samples, model.config.d_model
    logits, avd = model(torch.zeros(1, window), model.null_env(1))
    assert logits.shape == (1, len(config["labels"])) and avd.shape == (1, 3) and d_model == 128


def test_committed_default_checkpoint_gives_the_stored_basis_front_end_outputs(repo_root, monkeypatch):
    from emotrt.training.models import load_model
    from tests.training.test_features import speech_like, stored_basis_log_mel

    model, _ = load_model(repo_root / "checkpoints" / "ser_fbank")
    model.eval()
    audio, token = speech_like(model.config.window_samples, 7), model.null_env(1)
    with torch.no_grad():
        computed = model(audio, token)
        logmel = model.frontend.logmel
        monkeypatch.setattr(logmel, "forward", lambda x: stored_basis_log_mel(logmel.config, x))
        stored = model(audio, token)
    for new, old in zip(computed, stored):
        assert (new - old).abs().max() <= 1e-4


def test_rms_input_norm_makes_the_output_independent_of_input_gain():
    torch.manual_seed(0)
    model = SER.from_config(SERConfig(input_norm="rms", **TINY)).eval()
    audio = torch.randn(2, 8000) * 0.05
    audio[1, :3000] = 0.0  # digital silence stays silent
    token = model.null_env(2)
    reference = model(audio, token)[0]
    for gain in (10 ** (-30 / 20), 10 ** (-12 / 20), 10 ** (6 / 20), 150.0):
        assert torch.allclose(model(audio * gain, token)[0], reference, atol=1e-4)
    absolute = SER.from_config(SERConfig(**TINY)).eval()
    absolute.load_state_dict(model.state_dict())
    assert not torch.allclose(absolute(audio * 0.1, token)[0], absolute(audio, token)[0], atol=1e-3)
    assert torch.equal(model(torch.zeros(1, 8000), model.null_env(1))[0],
                       absolute(torch.zeros(1, 8000), model.null_env(1))[0])


def test_input_norm_is_validated_and_only_for_fbank():
    with pytest.raises(ConfigError, match="input_norm"):
        SERConfig(input_norm="agc", **TINY)
    from emotrt.training.frontends import build_frontend

    with pytest.raises(ConfigError, match="input_norm"):
        build_frontend("ssl", SERConfig().features, input_norm="rms")
