"""Causal TD-SpeakerBeam target speaker extraction, written from the paper for streaming export.

Delcroix et al., "Improving speaker discrimination of target speech extraction with
time-domain SpeakerBeam" (ICASSP 2020): a learned 1-D conv encoder/decoder, a temporal
conv network (TCN) of dilated depthwise-separable blocks, multiplicative speaker
adaptation after the first repeat, and an auxiliary enrollment network that averages
over time to the speaker embedding; the TCN estimates a mask on the encoder output.

Built to stream and to export (REFERENCE.md "Export facts", "Training on these CPUs"):

- every convolution is causal and every norm is a per-frame LayerNorm over channels;
- 1x1 convolutions are ``Linear`` on (batch, time, channels) and depthwise convolutions
  are sums of shifted slices (fast CPU backward, plain MatMul/Mul/Add/Slice in ONNX);
- each stage keeps its own cache: the encoder's last ``kernel - stride`` input samples,
  each depthwise conv's ``(kernel - 1) * dilation`` frames, and the overlap-add tail of
  the bias-free transposed-conv decoder.

``forward`` is ``step`` run once over the whole signal from the initial state, so the
offline model and hop-by-hop streaming are the same computation. The output lags the
input by ``latency_samples`` (``kernel - stride``): the overlap-add of a frame is complete
only once the next frames arrived. Training aligns the target accordingly.

Example::

    >>> import torch
    >>> model = TSE.from_config("tiny")
    >>> mix, enrollment = torch.randn(1, 1600), torch.randn(1, 3200)
    >>> emb = model.enroll(enrollment)
    >>> out = model(mix, emb)
    >>> states = model.initial_state()
    >>> hops = []
    >>> for chunk in mix.split(model.config.chunk_samples, dim=1):
    ...     y, *states = model.step(chunk, emb, *states)
    ...     hops.append(y)
    >>> bool(torch.allclose(torch.cat(hops, 1), out, atol=1e-5))
    True
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from emotrt.runtime.errors import ConfigError

FAMILY = "tse_td_speakerbeam"


@dataclass(frozen=True)
class TSEConfig:
    """Every dimension of the TSE; stored in the checkpoint's ``config.json``."""

    sample_rate: int = 16000
    enc_kernel: int = 32  # L: samples per encoder frame
    enc_stride: int = 16  # S: hop between frames; L must be a multiple of S
    n_filters: int = 256  # N: encoder basis size
    bottleneck: int = 96  # B: TCN residual width
    hidden: int = 192  # H: TCN block width
    conv_kernel: int = 3  # P: depthwise kernel
    blocks: int = 7  # X: blocks per repeat, dilations 1..2**(X-1)
    repeats: int = 2  # R
    emb_dim: int = 96  # D: speaker embedding
    aux_blocks: int = 3  # blocks of the enrollment network (dilations 1, 2, 4, ...)
    chunk_samples: int = 320  # one streaming step (20 ms at 16 kHz), a multiple of the stride
    n_speakers: int = 0  # > 0 adds a speaker-classification head on the embedding (training only)

    def __post_init__(self) -> None:
        positive = ("sample_rate", "enc_kernel", "enc_stride", "n_filters", "bottleneck", "hidden",
                    "conv_kernel", "blocks", "repeats", "emb_dim", "aux_blocks", "chunk_samples")
        bad = [name for name in positive if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0]
        if bad:
            raise ConfigError("TSE config: {} must be positive integers".format(", ".join(bad)))
        if self.enc_kernel % self.enc_stride:
            raise ConfigError("TSE config: enc_kernel ({}) must be a multiple of enc_stride ({})".format(
                self.enc_kernel, self.enc_stride))
        if self.chunk_samples % self.enc_stride:
            raise ConfigError("TSE config: chunk_samples ({}) must be a multiple of enc_stride ({})".format(
                self.chunk_samples, self.enc_stride))
        if self.repeats < 2:
            raise ConfigError("TSE config: repeats must be >= 2 (speaker adaptation sits after the first repeat)")
        if self.n_speakers < 0:
            raise ConfigError("TSE config: n_speakers must be >= 0, found {}".format(self.n_speakers))

    @property
    def latency_samples(self) -> int:
        """How far the output lags the input (the decoder's overlap-add)."""
        return self.enc_kernel - self.enc_stride

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "TSEConfig":
        """A config from ``data`` (e.g. a checkpoint's config.json), ignoring non-dimension keys."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


PRESETS: Dict[str, TSEConfig] = {
    # Tests: a few thousand parameters, three hops of state.
    "tiny": TSEConfig(enc_kernel=16, enc_stride=8, n_filters=16, bottleneck=8, hidden=12, blocks=3,
                      repeats=2, emb_dim=8, aux_blocks=1, chunk_samples=160),
    # The default: REFERENCE.md's 0.70 M-parameter, 391 KB-state config with a 32-sample (2 ms) stride
    # instead of 16: half the TCN frames, so about twice the training updates per CPU-hour (measured
    # with benchmarks/tse_train_step.py) and half the work per hop on the device.
    "edge": TSEConfig(enc_kernel=64, enc_stride=32),
    # The paper's dimensions (given at 8 kHz: L=16, S=8) at 16 kHz, so the same 2 ms / 1 ms frames.
    "paper": TSEConfig(enc_kernel=32, enc_stride=16, n_filters=512, bottleneck=128, hidden=512, blocks=8,
                       repeats=3, emb_dim=256, aux_blocks=4),
}


def resolve_config(config: Union[str, TSEConfig, Dict[str, Any]], **overrides: Any) -> TSEConfig:
    """A ``TSEConfig`` from a preset name, a dict or a config, with field overrides."""
    if isinstance(config, str):
        if config not in PRESETS:
            raise ConfigError("unknown TSE preset {!r}; expected one of {}".format(config, ", ".join(PRESETS)))
        config = PRESETS[config]
    elif isinstance(config, dict):
        config = TSEConfig.from_dict(config)
    names = {f.name for f in dataclasses.fields(TSEConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ConfigError("unknown TSE config field(s) {}; expected some of {}".format(
            ", ".join(unknown), ", ".join(sorted(names))))
    return dataclasses.replace(config, **overrides)


def _keep_last(x: torch.Tensor, n: int) -> torch.Tensor:
    """The last ``n`` steps of dim 1, sliced from the end so exported graphs keep a dynamic length."""
    return x[:, x.shape[1]:] if n == 0 else x[:, -n:]


def _drop_last(x: torch.Tensor, n: int) -> torch.Tensor:
    """All but the last ``n`` steps of dim 1 (a constant negative end, dynamic in ONNX)."""
    return x if n == 0 else x[:, :-n]


class CausalBlock(nn.Module):
    """One TCN block: 1x1 -> PReLU -> norm -> causal dilated depthwise conv -> PReLU -> norm -> 1x1, residual."""

    def __init__(self, channels: int, hidden: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.kernel, self.dilation = kernel, dilation
        self.context = (kernel - 1) * dilation
        self.inp = nn.Linear(channels, hidden)
        self.act1, self.act2 = nn.PReLU(), nn.PReLU()
        self.norm1, self.norm2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        # Depthwise weights as (kernel, hidden): tap i multiplies the frame (kernel-1-i)*dilation back.
        self.dw_weight = nn.Parameter(torch.randn(kernel, hidden) / kernel ** 0.5)
        self.dw_bias = nn.Parameter(torch.zeros(hidden))
        self.out = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor, cache: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """x [B, F, C], cache [B, context, H] -> (x + block(x), new cache)."""
        h = self.norm1(self.act1(self.inp(x)))
        padded = torch.cat([cache, h], dim=1)
        y = self.dw_bias
        for i in range(self.kernel):
            start = i * self.dilation
            y = y + _drop_last(padded[:, start:], self.context - start) * self.dw_weight[i]
        new_cache = _keep_last(padded, self.context)
        y = self.norm2(self.act2(y))
        return x + self.out(y), new_cache


class TSE(nn.Module):
    """Causal TD-SpeakerBeam: ``forward``, ``enroll``, ``initial_state``, ``state_specs``, ``step``."""

    #: the modules :meth:`enroll` runs (the encoder is shared with the extraction)
    ENROLL_MODULES = ("encoder", "aux_norm", "aux_proj", "aux", "aux_out")

    def __init__(self, config: TSEConfig) -> None:
        super().__init__()
        self.config = c = config
        self.k = c.enc_kernel // c.enc_stride
        self.encoder = nn.Linear(c.enc_kernel, c.n_filters, bias=False)
        self.decoder = nn.Linear(c.n_filters, c.enc_kernel, bias=False)  # no bias: overlap-add would add it twice
        self.in_norm = nn.LayerNorm(c.n_filters)
        self.in_proj = nn.Linear(c.n_filters, c.bottleneck)
        self.tcn = nn.ModuleList(
            CausalBlock(c.bottleneck, c.hidden, c.conv_kernel, 2 ** x) for _ in range(c.repeats) for x in range(c.blocks)
        )
        self.adapt = nn.Linear(c.emb_dim, c.bottleneck)
        nn.init.ones_(self.adapt.bias)  # adaptation starts near identity, so early training is not scrambled
        self.mask = nn.Linear(c.bottleneck, c.n_filters)
        # Auxiliary (enrollment) network: runs once per speaker, averages over time.
        self.aux_norm = nn.LayerNorm(c.n_filters)
        self.aux_proj = nn.Linear(c.n_filters, c.bottleneck)
        self.aux = nn.ModuleList(CausalBlock(c.bottleneck, c.hidden, c.conv_kernel, 2 ** x) for x in range(c.aux_blocks))
        self.aux_out = nn.Linear(c.bottleneck, c.emb_dim)
        self.speaker_head = nn.Linear(c.emb_dim, c.n_speakers) if c.n_speakers else None

    @classmethod
    def from_config(cls, config: Union[str, TSEConfig, Dict[str, Any]], **overrides: Any) -> "TSE":
        """A freshly initialised model from a preset name (``tiny``, ``edge``, ``paper``), dict or config."""
        return cls(resolve_config(config, **overrides))

    # -- streaming state -------------------------------------------------------------------------

    def state_specs(self) -> List[Tuple[str, Tuple[int, ...]]]:
        """(name, shape) of every state tensor for batch 1, in ``step`` order."""
        c = self.config
        tail = c.enc_kernel - c.enc_stride
        specs = [("enc", (1, tail))]
        for i, block in enumerate(self.tcn):
            specs.append(("tcn{}".format(i), (1, block.context, c.hidden)))
        specs.append(("dec", (1, tail)))
        return specs

    def initial_state(self, batch: int = 1) -> Tuple[torch.Tensor, ...]:
        """Zero state for ``batch`` streams, in ``state_specs`` order."""
        device = self.encoder.weight.device
        return tuple(torch.zeros((batch,) + shape[1:], device=device) for _, shape in self.state_specs())

    def state_bytes(self) -> int:
        """Size of one stream's state in bytes (float32)."""
        return sum(4 * math.prod(shape) for _, shape in self.state_specs())

    # -- building blocks ------------------------------------------------------------------------

    def _encode(self, audio: torch.Tensor, tail: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """audio [B, F*S] with the previous ``L-S`` samples -> (frames [B, F, N], new tail)."""
        s, k = self.config.enc_stride, self.k
        padded = torch.cat([tail, audio], dim=1)
        blocks = padded.reshape(padded.shape[0], -1, s)
        # Frame t is blocks t .. t+k-1 side by side (a strided conv without unfold, which exports poorly).
        frames = torch.cat([_drop_last(blocks[:, j:], k - 1 - j) for j in range(k)], dim=2)
        new_tail = _keep_last(padded, self.config.enc_kernel - s)
        return F.relu(self.encoder(frames)), new_tail

    def _decode(self, frames: torch.Tensor, tail: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """frames [B, F, N] + overlap-add tail -> (audio [B, F*S], new tail): a transposed conv, streamed."""
        s, k = self.config.enc_stride, self.k
        pieces = self.decoder(frames).reshape(frames.shape[0], -1, k, s)
        summed = F.pad(pieces[:, :, 0], (0, 0, 0, k - 1))
        for j in range(1, k):
            summed = summed + F.pad(pieces[:, :, j], (0, 0, j, k - 1 - j))
        flat = summed.reshape(frames.shape[0], -1)
        n = self.config.enc_kernel - s
        flat = torch.cat([flat[:, :n] + tail, flat[:, n:]], dim=1)
        return _drop_last(flat, n), _keep_last(flat, n)

    # -- public interface -------------------------------------------------------------------------

    def enroll(self, audio: torch.Tensor) -> torch.Tensor:
        """Enrollment audio [B, T] -> speaker embedding [B, D] (auxiliary network, time-averaged)."""
        c = self.config
        pad = (-audio.shape[1]) % c.enc_stride
        audio = F.pad(audio, (0, pad))
        frames, _ = self._encode(audio, audio.new_zeros(audio.shape[0], c.enc_kernel - c.enc_stride))
        h = self.aux_proj(self.aux_norm(frames))
        for block in self.aux:
            h, _ = block(h, h.new_zeros(h.shape[0], block.context, c.hidden))
        return self.aux_out(h).mean(dim=1)

    def step(self, audio: torch.Tensor, spk_emb: torch.Tensor, *states: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """One streaming call: audio [B, m*S], spk_emb [B, D], states -> (audio_out [B, m*S], *new states)."""
        enc_tail, dec_tail = states[0], states[-1]
        caches = states[1:-1]
        frames, enc_tail = self._encode(audio, enc_tail)
        h = self.in_proj(self.in_norm(frames))
        new_caches = []
        scale = self.adapt(spk_emb).unsqueeze(1)
        for i, block in enumerate(self.tcn):
            if i == self.config.blocks:
                h = h * scale  # multiplicative speaker adaptation after the first repeat
            h, cache = block(h, caches[i])
            new_caches.append(cache)
        masked = frames * torch.relu(self.mask(h))
        out, dec_tail = self._decode(masked, dec_tail)
        return (out, enc_tail) + tuple(new_caches) + (dec_tail,)

    def forward(self, audio: torch.Tensor, spk_emb: torch.Tensor) -> torch.Tensor:
        """Causal offline extraction: audio [B, T], spk_emb [B, D] -> [B, T] (lags by ``latency_samples``)."""
        length = audio.shape[1]
        pad = (-length) % self.config.enc_stride
        out = self.step(F.pad(audio, (0, pad)), spk_emb, *self.initial_state(audio.shape[0]))[0]
        return out[:, :length]

    def classify_speaker(self, spk_emb: torch.Tensor) -> Optional[torch.Tensor]:
        """Speaker logits from an embedding (training aid), or None without a speaker head."""
        return None if self.speaker_head is None else self.speaker_head(spk_emb)

    def checkpoint_config(self) -> Dict[str, Any]:
        """The ``config.json`` fields describing this model."""
        return dict(dataclasses.asdict(self.config), family=FAMILY, latency_samples=self.config.latency_samples,
                    state=[{"name": n, "shape": list(s)} for n, s in self.state_specs()])

    @classmethod
    def from_checkpoint_config(cls, config: Dict[str, Any]) -> "TSE":
        """An uninitialised model shaped by a checkpoint's ``config.json``."""
        return cls(TSEConfig.from_dict(config))


def count_parameters(model: nn.Module, exclude: Sequence[str] = ("speaker_head",)) -> int:
    """Parameters that ship (the training-only speaker head excluded)."""
    return sum(p.numel() for n, p in model.named_parameters() if not n.startswith(tuple(exclude)))
