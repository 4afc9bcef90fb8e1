import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from emotrt.runtime.errors import ConfigError
from emotrt.training.features import FeatureConfig, LogMel, dft_basis, frame, mel_matrix

SER_DEFAULT = dict(n_fft=512, win_length=400, hop_length=320, normalize=False)
WHISPER = dict(n_fft=400, win_length=400, hop_length=160, n_mels=80, mel_scale="slaney", log="whisper", normalize=False)
CONFIGS = [SER_DEFAULT, WHISPER, dict(), dict(n_fft=256, win_length=100, hop_length=160, normalize=False)]


def stored_basis_log_mel(config, audio):
    """The log-mel as the graph computed it before: a Conv1d with the float64 windowed-DFT basis cast to float32."""
    bins = config.n_fft // 2 + 1
    window = torch.zeros(config.n_fft, dtype=torch.float64)
    window[config.window_offset:config.window_offset + config.win_length] = torch.hann_window(
        config.win_length, periodic=True, dtype=torch.float64)
    angle = 2 * math.pi * torch.arange(bins, dtype=torch.float64)[:, None] * torch.arange(config.n_fft) / config.n_fft
    basis = (torch.cat([torch.cos(angle), -torch.sin(angle)]) * window).float().unsqueeze(1)
    spec = F.conv1d(audio.unsqueeze(1), basis, stride=config.hop_length)
    mel = torch.matmul((spec[:, :bins] ** 2 + spec[:, bins:] ** 2).transpose(1, 2), mel_matrix(config))
    if config.log == "whisper":
        logmel = torch.log10(mel + 1e-10)
        return (torch.maximum(logmel, logmel.amax(dim=(1, 2), keepdim=True) - 8.0) + 4.0) / 4.0
    logmel = torch.log(mel + 1e-6)
    return logmel - logmel.mean(dim=1, keepdim=True) if config.normalize else logmel


def speech_like(samples, seed, batch=1):
    """Noise at a speech-like level (about -20 dBFS), where the log-mel is well conditioned."""
    return 0.1 * torch.randn(batch, samples, generator=torch.Generator().manual_seed(seed)).clamp(-3, 3)


def test_conv_dft_log_mel_matches_torch_stft():
    config = FeatureConfig(normalize=False)
    audio = torch.randn(2, 8000, generator=torch.Generator().manual_seed(0))
    spec = torch.stft(audio, config.n_fft, config.hop_length, config.win_length, window=torch.hann_window(config.win_length),
                      center=False, return_complex=True).abs() ** 2
    reference = torch.log(torch.matmul(spec.transpose(1, 2), mel_matrix(config)) + 1e-6)
    out = LogMel(config)(audio)
    assert out.shape == (2, config.frames(8000), config.n_mels)
    assert torch.allclose(out, reference, atol=1e-4)


@pytest.mark.parametrize("settings", CONFIGS)
def test_frames_are_the_windowed_part_of_every_fft_frame(settings):
    config = FeatureConfig(**settings)
    audio = torch.randn(2, 5001, generator=torch.Generator().manual_seed(1))
    expected = audio.unfold(1, config.n_fft, config.hop_length)[..., config.window_offset:][..., :config.win_length]
    assert torch.equal(frame(audio, config), expected)


@pytest.mark.parametrize("settings", CONFIGS)
def test_log_mel_matches_the_stored_basis_log_mel(settings):
    config = FeatureConfig(**settings)
    audio = speech_like(16000, 2, batch=2)
    assert (LogMel(config)(audio) - stored_basis_log_mel(config, audio)).abs().max() <= 1e-4


def test_computed_basis_matches_a_float64_basis():
    angle = 2 * math.pi * torch.arange(257, dtype=torch.float64) * torch.arange(56, 456, dtype=torch.float64)[:, None] / 512
    window = torch.hann_window(400, periodic=True, dtype=torch.float64)[:, None]
    expected = torch.cat([torch.cos(angle), -torch.sin(angle)], dim=1) * window
    assert (dft_basis(512, 400).double() - expected).abs().max() <= 2e-6


def test_normalised_log_mel_ignores_input_gain():
    logmel = LogMel(FeatureConfig())
    audio = torch.randn(1, 8000, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(logmel(audio), logmel(0.1 * audio), atol=1e-3)


@pytest.mark.parametrize("opset, settings", [(16, SER_DEFAULT), (17, SER_DEFAULT), (17, WHISPER)])
def test_log_mel_exports_small_without_stft_conv_or_stored_basis(tmp_path, opset, settings):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    config = FeatureConfig(**settings)
    path = tmp_path / "logmel.onnx"
    torch.onnx.export(LogMel(config), (torch.randn(1, 16000),), str(path), dynamo=False, opset_version=opset,
                      do_constant_folding=True, input_names=["audio"])
    model = onnx.load(str(path))
    ops = {node.op_type for node in model.graph.node}
    assert {"MatMul", "Cos", "Sin", "Reshape", "Concat"} <= ops
    assert not ops & {"STFT", "DFT", "HannWindow", "MelWeightMatrix", "Conv", "Gather", "Range"}
    constants = [len(n.SerializeToString()) for n in model.graph.node if n.op_type == "Constant"]
    constants += [len(i.SerializeToString()) for i in model.graph.initializer]
    assert max(constants) <= 4096 and path.stat().st_size < 32 * 1024  # the stored basis alone was 1 MB
    audio = speech_like(16000, 3)
    (out,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"audio": audio.numpy()})
    assert np.abs(out - stored_basis_log_mel(config, audio).numpy()).max() <= 1e-4


@pytest.mark.parametrize("field, value", [("win_length", 1024), ("mel_scale", "bark"), ("f_max", 9000.0)])
def test_bad_feature_settings_name_the_field(field, value):
    with pytest.raises(ConfigError, match=field.split("_")[0]):
        FeatureConfig(**{field: value})


def test_unknown_feature_key_is_named():
    with pytest.raises(ConfigError, match="hop_size"):
        FeatureConfig.from_dict({"hop_size": 160})


def test_audio_shorter_than_one_frame_is_refused():
    with pytest.raises(ConfigError, match="shorter than one FFT frame"):
        LogMel(FeatureConfig())(torch.zeros(1, 300))
