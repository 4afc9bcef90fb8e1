"""Log-mel features from ops TensorRT parses: Conv1d (windowed DFT) -> power -> MatMul (mel) -> Log.

``torch.stft`` exports to the ONNX ``STFT`` op, which TensorRT's parser does not support
(REFERENCE.md, export facts), so the short-time Fourier transform is a Conv1d whose fixed
kernels are the window times the DFT's cosine and sine rows, with stride = hop.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from emotrt.runtime.errors import ConfigError


@dataclass(frozen=True)
class FeatureConfig:
    """Log-mel settings stored in the checkpoint (``log`` is ``ln`` or ``whisper``)."""

    sample_rate: int = 16000
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 64
    f_min: float = 0.0
    f_max: Optional[float] = None
    mel_scale: str = "htk"
    log: str = "ln"
    normalize: bool = True

    def __post_init__(self) -> None:
        if self.win_length > self.n_fft:
            raise ConfigError("features: win_length {} exceeds n_fft {}".format(self.win_length, self.n_fft))
        if self.hop_length <= 0 or self.n_mels <= 0:
            raise ConfigError("features: hop_length and n_mels must be positive, got {} and {}".format(
                self.hop_length, self.n_mels))
        if self.mel_scale not in ("htk", "slaney"):
            raise ConfigError("features: mel_scale must be htk or slaney, got {!r}".format(self.mel_scale))
        if self.log not in ("ln", "whisper"):
            raise ConfigError("features: log must be ln or whisper, got {!r}".format(self.log))
        top = self.f_max if self.f_max is not None else self.sample_rate / 2
        if not 0 <= self.f_min < top <= self.sample_rate / 2:
            raise ConfigError("features: need 0 <= f_min < f_max <= sample_rate/2, got f_min={} f_max={}".format(
                self.f_min, self.f_max))

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "FeatureConfig":
        """Build from a checkpoint/recipe dict, naming any unknown key."""
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError("features: unknown keys {}".format(", ".join(unknown)),
                              hint="known keys: " + ", ".join(cls.__dataclass_fields__))
        return cls(**data)

    def to_dict(self) -> Dict[str, Any]:
        """Plain dict for config.json."""
        return asdict(self)

    def frames(self, samples: int) -> int:
        """Number of feature frames for ``samples`` input samples (no padding)."""
        if samples < self.n_fft:
            raise ConfigError("features: {} samples is shorter than one FFT frame ({})".format(samples, self.n_fft))
        return (samples - self.n_fft) // self.hop_length + 1


def dft_basis(config: FeatureConfig) -> torch.Tensor:
    """Conv1d kernels [2*(n_fft//2+1), 1, n_fft]: periodic Hann window times cos rows, then sin rows."""
    bins = config.n_fft // 2 + 1
    window = torch.hann_window(config.win_length, periodic=True, dtype=torch.float64)
    offset = (config.n_fft - config.win_length) // 2
    padded = torch.zeros(config.n_fft, dtype=torch.float64)
    padded[offset:offset + config.win_length] = window
    n = torch.arange(config.n_fft, dtype=torch.float64)
    k = torch.arange(bins, dtype=torch.float64)[:, None]
    angle = 2 * math.pi * k * n / config.n_fft
    basis = torch.cat([torch.cos(angle), -torch.sin(angle)], dim=0) * padded
    return basis.float().unsqueeze(1)


def mel_matrix(config: FeatureConfig) -> torch.Tensor:
    """Mel filterbank [n_fft//2+1, n_mels] from transformers' maintained implementation."""
    from transformers.audio_utils import mel_filter_bank

    top = config.f_max if config.f_max is not None else config.sample_rate / 2
    norm = "slaney" if config.mel_scale == "slaney" else None
    bank = mel_filter_bank(config.n_fft // 2 + 1, config.n_mels, config.f_min, top, config.sample_rate,
                           norm=norm, mel_scale=config.mel_scale)
    return torch.from_numpy(np.asarray(bank, dtype=np.float32))


class LogMel(nn.Module):
    """``audio [B, T] -> log-mel [B, frames, n_mels]``; exports to Conv/Mul/Add/MatMul/Log only.

    >>> m = LogMel(FeatureConfig())
    >>> tuple(m(torch.zeros(2, 16000)).shape)
    (2, 97, 64)
    """

    def __init__(self, config: FeatureConfig) -> None:
        super().__init__()
        self.config = config
        self.bins = config.n_fft // 2 + 1
        self.register_buffer("basis", dft_basis(config), persistent=False)
        self.register_buffer("mel", mel_matrix(config), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        spec = F.conv1d(audio.unsqueeze(1), self.basis, stride=self.config.hop_length)
        real, imag = spec[:, :self.bins], spec[:, self.bins:]
        power = (real * real + imag * imag).transpose(1, 2)
        mel = torch.matmul(power, self.mel)
        if self.config.log == "whisper":
            logmel = torch.log(mel + 1e-10) / math.log(10.0)
            logmel = torch.maximum(logmel, logmel.amax(dim=(1, 2), keepdim=True) - 8.0)
            return (logmel + 4.0) / 4.0
        logmel = torch.log(mel + 1e-6)
        if self.config.normalize:
            logmel = logmel - logmel.mean(dim=1, keepdim=True)
        return logmel
