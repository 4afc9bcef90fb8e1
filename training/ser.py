"""Environment-conditioned SER (TG-EAT style): front end -> transformer with a prepended env token -> heads.

``forward(audio [B, window], env_token [B, d_model]) -> (logits [B, C], avd [B, 3])``. The
environment token is the text embedding already projected by :meth:`SER.project_env`, so the
device never sees the text encoder. Attention reshapes with ``-1`` so the graph exports with a
dynamic sequence length (``nn.MultiheadAttention`` bakes it in, REFERENCE.md), and every
LayerNorm can be switched to mean/variance arithmetic for TensorRT 8.5 (:func:`decompose_layer_norms`).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

from emotrt.runtime.errors import ConfigError
from emotrt.training.computed import const, int64s, integers
from emotrt.training.features import FeatureConfig
from emotrt.training.frontends import FRONTENDS, INPUT_NORMS, build_frontend, frontend_hf_config

FAMILY = "ser"
NULL_ENV = ("learned", "zeros")
LEVEL_REFERENCES = ("none", "enrollment")  # see SERConfig.level_reference


@dataclass(frozen=True)
class SERConfig:
    """Every dimension of an SER checkpoint; validated once, stored as its config.json."""

    labels: Tuple[str, ...] = ("neutral", "happy", "angry", "sad")
    sample_rate: int = 16000
    window_samples: int = 48000
    d_model: int = 128
    heads: int = 4
    layers: int = 3
    ff_dim: int = 256
    dropout: float = 0.1
    max_frames: int = 2048
    text_encoder: str = "wordllama"
    text_dim: int = 256
    text_encoder_path: Optional[str] = None
    text_template: str = "plain"
    text_fine_tune: bool = False  # train a transformers text encoder jointly (its weights join the checkpoint)
    null_env: str = "learned"
    # Also scale and shift every front-end feature by the environment token (FiLM): a per-band
    # weighting the description chooses, which the prepended token alone cannot express cheaply.
    env_film: bool = False
    frontend: str = "fbank"
    frontend_path: Optional[str] = None
    frontend_hf_config: Optional[Dict[str, Any]] = None
    freeze_frontend: bool = True
    # "rms": each window brought to one RMS before the log-mel, so input gain cannot change the
    # emotion (issue 19); "none": absolute level, as the SERs before it read it.
    input_norm: str = "none"
    # "enrollment": the window is heard at one gain per speaker, the one that brings the speaker's
    # enrollment speech to a fixed level (emotrt.runtime.level); the mic's gain cancels, loudness
    # relative to the speaker's usual voice stays (issue 19). Applied outside the graph.
    level_reference: str = "none"
    # Raw log-mel (no per-utterance mean removal): level and long-term spectrum carry emotion
    # (on the synthetic corpus a linear probe on mean/std log-mel fell from 0.64 to 0.35 with it).
    features: FeatureConfig = field(default_factory=lambda: FeatureConfig(n_fft=512, win_length=400, hop_length=320,
                                                                           normalize=False))

    def __post_init__(self) -> None:
        if len(self.labels) < 2 or len(set(self.labels)) != len(self.labels):
            raise ConfigError("ser: labels must be at least two distinct names, got {}".format(list(self.labels)))
        if self.d_model % self.heads:
            raise ConfigError("ser: d_model {} is not divisible by heads {}".format(self.d_model, self.heads))
        if self.frontend not in FRONTENDS:
            raise ConfigError("ser: unknown frontend {!r}; expected one of {}".format(self.frontend, ", ".join(FRONTENDS)))
        if self.text_fine_tune and self.text_encoder == "wordllama":
            raise ConfigError("ser: text_fine_tune needs a transformers text_encoder (roberta, bert, clap), not wordllama")
        if self.input_norm not in INPUT_NORMS:
            raise ConfigError("ser: input_norm must be one of {}, got {!r}".format(", ".join(INPUT_NORMS), self.input_norm))
        if self.level_reference not in LEVEL_REFERENCES:
            raise ConfigError("ser: level_reference must be one of {}, got {!r}".format(
                ", ".join(LEVEL_REFERENCES), self.level_reference))
        if self.level_reference != "none" and self.input_norm != "none":
            raise ConfigError("ser: level_reference {!r} needs input_norm \"none\" (an RMS-normalised window has no level "
                              "left to reference)".format(self.level_reference), hint="--set model.input_norm=none")
        if self.null_env not in NULL_ENV:
            raise ConfigError("ser: null_env must be one of {}, got {!r}".format(", ".join(NULL_ENV), self.null_env))
        if min(self.window_samples, self.d_model, self.layers, self.ff_dim, self.text_dim) <= 0:
            raise ConfigError("ser: window_samples, d_model, layers, ff_dim and text_dim must be positive")
        if self.features.sample_rate != self.sample_rate:
            raise ConfigError("ser: features.sample_rate {} differs from sample_rate {}".format(
                self.features.sample_rate, self.sample_rate))
        if self.frontend == "fbank" and self.features.frames(self.window_samples) > self.max_frames:
            raise ConfigError("ser: window_samples {} gives more than max_frames {} frames".format(
                self.window_samples, self.max_frames))

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "SERConfig":
        """From a checkpoint config or recipe section; unknown keys are named in the error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError("ser: unknown config keys {}".format(", ".join(unknown)),
                              hint="known keys: " + ", ".join(sorted(known)))
        data = dict(data)
        if "labels" in data:
            data["labels"] = tuple(data["labels"])
        if isinstance(data.get("features"), dict):
            data["features"] = FeatureConfig.from_dict(data["features"])
        return cls(**data)

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON-ready dict of every field."""
        data = asdict(self)
        data["labels"] = list(self.labels)
        return data


class LayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` that can run as mean/variance arithmetic (ONNX without LayerNormalization)."""

    decomposed = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.decomposed:
            return super().forward(x)
        mean = x.mean(-1, keepdim=True)
        centred = x - mean
        var = (centred * centred).mean(-1, keepdim=True)
        return centred / torch.sqrt(var + self.eps) * self.weight + self.bias


def decompose_layer_norms(model: nn.Module, decomposed: bool = True) -> nn.Module:
    """Switch every emotrt :class:`LayerNorm` in ``model`` to (or from) the decomposed form."""
    for module in model.modules():
        if isinstance(module, LayerNorm):
            module.decomposed = decomposed
    return model


class SelfAttention(nn.Module):
    """Multi-head self-attention written with ``reshape(b, -1, ...)`` for dynamic-length export."""

    def __init__(self, d_model: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, d_model // heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, d = x.shape[0], x.shape[2]
        qkv = self.qkv(x).reshape(b, -1, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_dim))
        weights = self.dropout(torch.softmax(scores, dim=-1))
        return self.out(torch.matmul(weights, v).transpose(1, 2).reshape(b, -1, d))


class Block(nn.Module):
    """Pre-norm transformer encoder block."""

    def __init__(self, d_model: int, heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.norm2 = LayerNorm(d_model), LayerNorm(d_model)
        self.attn = SelfAttention(d_model, heads, dropout)
        self.ff = nn.Sequential(nn.Linear(d_model, ff_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff_dim, d_model))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.attn(self.norm1(x)))
        return x + self.dropout(self.ff(self.norm2(x)))


def sinusoids(length: int, dim: int) -> torch.Tensor:
    """Fixed sinusoidal positions [length, dim]."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq)
    return table


class _Positions(torch.autograd.Function):
    """The first ``frames.shape[1]`` rows of ``table`` (:func:`sinusoids`), exported as Sin/Cos ops, not a stored table.

    Same arithmetic in the graph: positions times the frequencies, Sin and Cos interleaved by
    Concat + Reshape (training/computed.py).
    """

    @staticmethod
    def forward(ctx: Any, frames: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        rows = table[: frames.shape[1]]
        ctx.mark_non_differentiable(rows)
        return rows

    @staticmethod
    def symbolic(g: Any, frames: Any, table: Any) -> Any:
        length, dim = frames.type().varyingSizes()[1], table.type().sizes()[1]
        if length is None:  # a dynamic window (ONNX Runtime only: TensorRT graphs have fixed shapes)
            count = g.op("Cast", g.op("Gather", g.op("Shape", frames), int64s(g, 1), axis_i=0), to_i=1)
            index = g.op("Unsqueeze", g.op("Range", const(g, 0.0), count, const(g, 1.0)), int64s(g, [1]))
        else:
            index = integers(g, 0, length, column=True)
        freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
        angle = g.op("Mul", index, const(g, freq.numpy()[None, :]))
        pair = [g.op("Unsqueeze", g.op(op, angle), int64s(g, [2])) for op in ("Sin", "Cos")]
        return g.op("Reshape", g.op("Concat", *pair, axis_i=2), int64s(g, [-1, dim]))


class SER(nn.Module):
    """Speech emotion recogniser conditioned on one prepended environment token.

    >>> cfg = SERConfig(d_model=32, heads=2, layers=1, ff_dim=64, window_samples=8000)
    >>> model = SER.from_config(cfg).eval()
    >>> token = model.project_env(torch.zeros(2, cfg.text_dim))
    >>> logits, avd = model(torch.zeros(2, 8000), token)
    >>> tuple(logits.shape), tuple(avd.shape)
    ((2, 4), (2, 3))
    """

    def __init__(self, config: SERConfig) -> None:
        super().__init__()
        self.config = config
        self.frontend = build_frontend(config.frontend, config.features, config.frontend_path,
                                       config.frontend_hf_config, config.freeze_frontend, config.input_norm)
        dim = self.frontend.out_dim
        norm = [LayerNorm(dim)] if self.frontend.normalise_frames else []
        self.input_proj = nn.Sequential(*norm, nn.Linear(dim, config.d_model))
        self.env_film = None
        if config.env_film:
            self.env_film = nn.Linear(config.d_model, 2 * dim)
            nn.init.zeros_(self.env_film.weight)
            nn.init.zeros_(self.env_film.bias)
        self.register_buffer("positions", sinusoids(config.max_frames, config.d_model), persistent=False)
        self.env_proj = nn.Linear(config.text_dim, config.d_model)
        self.text = None
        if config.text_fine_tune:
            from emotrt.training.text import load_text_encoder

            self.text = load_text_encoder(config.text_encoder, config.text_encoder_path, fine_tune=True)
        self.null_token = nn.Parameter(torch.zeros(config.d_model), requires_grad=config.null_env == "learned")
        self.blocks = nn.ModuleList(Block(config.d_model, config.heads, config.ff_dim, config.dropout)
                                    for _ in range(config.layers))
        self.norm = LayerNorm(config.d_model)
        self.emotion_head = nn.Linear(2 * config.d_model, len(config.labels))
        self.avd_head = nn.Linear(2 * config.d_model, 3)
        nn.init.constant_(self.avd_head.bias, 3.0)

    @classmethod
    def from_config(cls, config: Any) -> "SER":
        """Build from an :class:`SERConfig` or its dict form (unknown keys are errors)."""
        return cls(config if isinstance(config, SERConfig) else SERConfig.from_dict(config))

    @classmethod
    def from_checkpoint_config(cls, config: Dict[str, Any]) -> "SER":
        """An uninitialised model shaped by a checkpoint's config.json (provenance keys ignored)."""
        known = {f.name for f in fields(SERConfig)}
        return cls.from_config({k: v for k, v in config.items() if k in known})

    def project_env(self, text_emb: torch.Tensor) -> torch.Tensor:
        """Text embedding [B, text_dim] -> environment token [B, d_model] (what bundles ship)."""
        return self.env_proj(text_emb)

    def encode_env(self, descriptions: List[str]) -> torch.Tensor:
        """Environment tokens [N, d_model] from descriptions through the jointly trained text encoder."""
        from emotrt.training.text import prompt

        if self.text is None:
            raise ConfigError("this SER has no jointly trained text encoder (text_fine_tune is false)",
                              hint="embed descriptions with emotrt.training.text.load_text_encoder, then project_env")
        return self.project_env(self.text.encode([prompt(d, self.config.text_template) for d in descriptions]))

    def null_env(self, batch: int = 1) -> torch.Tensor:
        """The "no description" token [batch, d_model] (learned, or zeros)."""
        return self.null_token.unsqueeze(0).expand(batch, -1)

    def embed(self, audio: torch.Tensor, env_token: torch.Tensor) -> torch.Tensor:
        """Pooled utterance embedding [B, 2*d_model]: mean of speech frames and the env token's output."""
        features = self.input_proj[:-1](self.frontend(audio))
        if self.env_film is not None:
            gain, shift = self.env_film(env_token).unsqueeze(1).chunk(2, dim=-1)
            features = features * (1.0 + gain) + shift
        frames = self.input_proj[-1](features)
        frames = frames + _Positions.apply(frames, self.positions)
        x = torch.cat([env_token.unsqueeze(1), frames], dim=1)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return torch.cat([x[:, 1:].mean(dim=1), x[:, 0]], dim=-1)

    def heads(self, pooled: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(emotion logits [B, C], AVD [B, 3]) from a pooled embedding of :meth:`embed`."""
        return self.emotion_head(pooled), self.avd_head(pooled)

    def forward(self, audio: torch.Tensor, env_token: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.embed(audio, env_token))

    def checkpoint_config(self) -> Dict[str, Any]:
        """config.json content, with any pretrained backbone's config copied in."""
        data = dict(self.config.to_dict(), family=FAMILY)
        data["frontend_hf_config"] = frontend_hf_config(self.frontend)
        data["frontend_path"] = None if data["frontend_hf_config"] else self.config.frontend_path
        return data


def load_ser(path: Any) -> Tuple[SER, Dict[str, Any]]:
    """(model in eval mode, config dict) from an SER checkpoint directory."""
    from emotrt.training.checkpoint import load_checkpoint

    config, state = load_checkpoint(path)
    if config.get("family") != FAMILY:
        raise ConfigError("checkpoint {} is a {!r} model, expected {!r}".format(path, config.get("family"), FAMILY),
                          hint="pass an SER checkpoint written by `emotrt train ser`")
    model = SER.from_checkpoint_config(config)
    model.load_state_dict(state)
    return model.eval(), config
