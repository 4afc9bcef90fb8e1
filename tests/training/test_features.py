import pytest
import torch

from emotrt.runtime.errors import ConfigError
from emotrt.training.features import FeatureConfig, LogMel


def test_conv_dft_log_mel_matches_torch_stft():
    config = FeatureConfig(normalize=False)
    logmel = LogMel(config)
    audio = torch.randn(2, 8000, generator=torch.Generator().manual_seed(0))
    spec = torch.stft(audio, config.n_fft, config.hop_length, config.win_length, window=torch.hann_window(config.win_length),
                      center=False, return_complex=True).abs() ** 2
    reference = torch.log(torch.matmul(spec.transpose(1, 2), logmel.mel) + 1e-6)
    out = logmel(audio)
    assert out.shape == (2, config.frames(8000), config.n_mels)
    assert torch.allclose(out, reference, atol=1e-4)


def test_normalised_log_mel_ignores_input_gain():
    logmel = LogMel(FeatureConfig())
    audio = torch.randn(1, 8000, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(logmel(audio), logmel(0.1 * audio), atol=1e-3)


def test_log_mel_exports_without_stft_ops(tmp_path):
    onnx = pytest.importorskip("onnx")
    path = tmp_path / "logmel.onnx"
    torch.onnx.export(LogMel(FeatureConfig()), (torch.randn(1, 8000),), str(path), dynamo=False, opset_version=17,
                      input_names=["audio"], dynamic_axes={"audio": {1: "t"}})
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert "Conv" in ops and "MatMul" in ops
    assert not ops & {"STFT", "DFT", "HannWindow", "MelWeightMatrix"}


@pytest.mark.parametrize("field, value", [("win_length", 1024), ("mel_scale", "bark"), ("f_max", 9000.0)])
def test_bad_feature_settings_name_the_field(field, value):
    with pytest.raises(ConfigError, match=field.split("_")[0]):
        FeatureConfig(**{field: value})


def test_unknown_feature_key_is_named():
    with pytest.raises(ConfigError, match="hop_size"):
        FeatureConfig.from_dict({"hop_size": 160})
