"""Log-mel features from ops every target TensorRT parses: framing -> MatMul (windowed DFT) -> power -> MatMul (mel) -> Log.

``torch.stft`` exports to the ONNX ``STFT`` op, which TensorRT's parser does not support
(REFERENCE.md, export facts). Here the audio is cut into frames with Slice/Concat/Reshape
(:func:`frame`), and the frames are multiplied by the window times the DFT's cosine and sine
rows. Nothing large is stored: the basis (~0.8 MB for n_fft 512) and the mel filterbank
(~66 KB) are computed inside the graph from a few small vectors (:class:`_WindowedDFT`,
:class:`_MelBank`, training/computed.py), since the front end stays FP32 and a stored basis
would otherwise be most of a small INT8 SER file. Neither is a Conv kernel: a MatMul of two tensors is an
IMatrixMultiplyLayer in TensorRT 8.5 to 11, while TensorRT 8.5/8.6 may refuse a Conv whose
kernel is not an initializer.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional

import numpy as np
import torch
from torch import nn

from emotrt.runtime.errors import ConfigError
from emotrt.training.computed import const, integers


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

    @property
    def window_offset(self) -> int:
        """Where the window starts inside each n_fft frame (it is centred; outside it the basis is zero)."""
        return (self.n_fft - self.win_length) // 2


def frame(audio: torch.Tensor, config: FeatureConfig) -> torch.Tensor:
    """``audio [B, T] -> [B, frames, win_length]``: the windowed part of every n_fft frame.

    Rows of ``hop_length`` samples side by side, ``ceil(win/hop)`` shifted copies concatenated:
    Slice, Concat and Reshape with constant shapes in the graph (no Gather index, no Conv).
    """
    hop, win = config.hop_length, config.win_length
    count = config.frames(audio.shape[-1])
    shifts = -(-win // hop)
    x = audio[:, config.window_offset:]
    if shifts * hop > win:  # zeros that only reach the parts of the last rows past the window (any length T)
        x = torch.cat([x, x.new_zeros(x.shape[0], shifts * hop - win)], dim=-1)
    rows = count + shifts - 1
    x = x[:, :rows * hop].reshape(audio.shape[0], rows, hop)
    return torch.cat([x[:, j:j + count] for j in range(shifts)], dim=-1)[..., :win]


def dft_basis(n_fft: int, win_length: int) -> torch.Tensor:
    """``[win_length, 2*(n_fft//2+1)]``: periodic Hann window times cos columns, then -sin columns.

    float32 arithmetic that :class:`_WindowedDFT` writes op for op into the graph. The phase index
    k*n is reduced modulo n_fft before scaling (exact integers in float32), so every angle is in
    [0, 2*pi) and the basis matches a float64 one to about 1e-6.
    """
    n = torch.arange(win_length, dtype=torch.float32)[:, None]
    m = (n + (n_fft - win_length) // 2) * torch.arange(n_fft // 2 + 1, dtype=torch.float32)
    angle = (m - n_fft * torch.floor(m / n_fft)) * (2 * math.pi / n_fft)
    window = 0.5 - 0.5 * torch.cos(n * (2 * math.pi / win_length))
    return torch.cat([torch.cos(angle), -torch.sin(angle)], dim=1) * window


class _WindowedDFT(torch.autograd.Function):
    """``basis`` (:func:`dft_basis`) as is, exported as graph ops (Mul, Sub, Floor, Cos, Sin, Concat; training/computed.py)."""

    @staticmethod
    def forward(ctx: Any, basis: torch.Tensor, n_fft: int, win_length: int) -> torch.Tensor:
        return basis.view_as(basis)

    @staticmethod
    def symbolic(g: Any, basis: Any, n_fft: int, win_length: int) -> Any:
        n = integers(g, 0, win_length, column=True)
        k = integers(g, 0, n_fft // 2 + 1, column=False)
        m = g.op("Mul", g.op("Add", n, const(g, float((n_fft - win_length) // 2))), k)
        whole = g.op("Mul", const(g, float(n_fft)), g.op("Floor", g.op("Div", m, const(g, float(n_fft)))))
        angle = g.op("Mul", g.op("Sub", m, whole), const(g, 2 * math.pi / n_fft))
        ramp = g.op("Cos", g.op("Mul", n, const(g, 2 * math.pi / win_length)))
        window = g.op("Sub", const(g, 0.5), g.op("Mul", const(g, 0.5), ramp))
        columns = g.op("Concat", g.op("Cos", angle), g.op("Neg", g.op("Sin", angle)), axis_i=1)
        return g.op("Mul", columns, window)


def _mel_band_edges(config: FeatureConfig) -> np.ndarray:
    """The n_mels+2 band edges in Hz, placed as transformers' ``mel_filter_bank`` places them."""
    from transformers.audio_utils import hertz_to_mel, mel_to_hertz

    top = config.f_max if config.f_max is not None else config.sample_rate / 2
    mels = np.linspace(hertz_to_mel(config.f_min, config.mel_scale), hertz_to_mel(top, config.mel_scale),
                       config.n_mels + 2)
    return mel_to_hertz(mels, config.mel_scale)


def mel_matrix(config: FeatureConfig) -> torch.Tensor:
    """Mel filterbank [n_fft//2+1, n_mels] from transformers' maintained implementation."""
    from transformers.audio_utils import mel_filter_bank

    top = config.f_max if config.f_max is not None else config.sample_rate / 2
    norm = "slaney" if config.mel_scale == "slaney" else None
    bank = mel_filter_bank(config.n_fft // 2 + 1, config.n_mels, config.f_min, top, config.sample_rate,
                           norm=norm, mel_scale=config.mel_scale)
    return torch.from_numpy(np.asarray(bank, dtype=np.float32))


class _MelBank(torch.autograd.Function):
    """``bank`` (:func:`mel_matrix`) as is, exported as graph ops (triangles from the n_mels+2 band edges).

    The graph follows transformers' triangular filter construction (rising and falling slopes
    between neighbouring edges, clipped at zero, optional slaney area normalisation) in float32.
    """

    @staticmethod
    def forward(ctx: Any, bank: torch.Tensor, config: FeatureConfig) -> torch.Tensor:
        return bank.view_as(bank)

    @staticmethod
    def symbolic(g: Any, bank: Any, config: FeatureConfig) -> Any:
        bins = config.n_fft // 2 + 1
        edges = _mel_band_edges(config)
        width = np.diff(edges)
        freqs = g.op("Mul", integers(g, 0, bins, column=True), const(g, float(config.sample_rate // 2) / (bins - 1)))
        rising = g.op("Div", g.op("Sub", freqs, const(g, edges[:-2])), const(g, width[:-1]))
        falling = g.op("Div", g.op("Sub", const(g, edges[2:]), freqs), const(g, width[1:]))
        bank = g.op("Max", g.op("Min", rising, falling), const(g, 0.0))
        if config.mel_scale == "slaney":
            bank = g.op("Mul", bank, const(g, 2.0 / (edges[2:] - edges[:-2])))
        return bank


class LogMel(nn.Module):
    """``audio [B, T] -> log-mel [B, frames, n_mels]``; exports to Slice/Concat/Reshape/MatMul/Mul/Add/Log.

    >>> m = LogMel(FeatureConfig())
    >>> tuple(m(torch.zeros(2, 16000)).shape)
    (2, 97, 64)
    """

    def __init__(self, config: FeatureConfig) -> None:
        super().__init__()
        self.config = config
        self.bins = config.n_fft // 2 + 1
        self.register_buffer("basis", dft_basis(config.n_fft, config.win_length), persistent=False)
        self.register_buffer("mel", mel_matrix(config), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        basis = _WindowedDFT.apply(self.basis, self.config.n_fft, self.config.win_length)
        spec = torch.matmul(frame(audio, self.config), basis)
        real, imag = spec[..., :self.bins], spec[..., self.bins:]
        mel = torch.matmul(real * real + imag * imag, _MelBank.apply(self.mel, self.config))
        if self.config.log == "whisper":
            logmel = torch.log(mel + 1e-10) / math.log(10.0)
            logmel = torch.maximum(logmel, logmel.amax(dim=(1, 2), keepdim=True) - 8.0)
            return (logmel + 4.0) / 4.0
        logmel = torch.log(mel + 1e-6)
        if self.config.normalize:
            logmel = logmel - logmel.mean(dim=1, keepdim=True)
        return logmel
