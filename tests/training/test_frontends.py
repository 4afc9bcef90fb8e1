import pytest
import torch

from emotrt.runtime.errors import ConfigError
from emotrt.training.ser import SER, SERConfig

TINY = dict(d_model=32, heads=2, layers=1, ff_dim=64, window_samples=16000, text_dim=16)


@pytest.mark.parametrize("kind, folder", [("ssl", "wavlm"), ("whisper", "whisper")])
def test_pretrained_frontend_runs_and_rebuilds_from_the_checkpoint_config(tiny_hf, kind, folder):
    model = SER.from_config(SERConfig(frontend=kind, frontend_path=str(tiny_hf / folder), **TINY)).eval()
    audio = torch.randn(2, 16000)
    logits, avd = model(audio, model.null_env(2))
    assert logits.shape == (2, 4) and avd.shape == (2, 3)
    config = model.checkpoint_config()
    assert config["frontend_hf_config"]["model_type"] == folder and config["frontend_path"] is None
    rebuilt = SER.from_checkpoint_config(config).eval()
    rebuilt.load_state_dict(model.state_dict())
    assert torch.allclose(rebuilt(audio, rebuilt.null_env(2))[0], logits, atol=1e-5)


@pytest.mark.parametrize("freeze", [True, False])
def test_freeze_controls_backbone_gradients(tiny_hf, freeze):
    model = SER.from_config(SERConfig(frontend="ssl", frontend_path=str(tiny_hf / "wavlm"), freeze_frontend=freeze, **TINY))
    backbone = [p.requires_grad for p in model.frontend.backbone.parameters()]
    assert all(backbone) is not freeze and any(backbone) is not freeze
    assert model.frontend.mix.weights.requires_grad


def test_missing_local_path_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no transformers model at .*nowhere") as err:
        SER.from_config(SERConfig(frontend="ssl", frontend_path=str(tmp_path / "nowhere"), **TINY))
    assert "save_pretrained" in str(err.value)
