"""SER front ends: ``audio [B, T] -> frames [B, N, out_dim]``.

- ``fbank``: the conv-DFT log-mel of :mod:`emotrt.training.features`.
- ``ssl``: a transformers wav2vec2 / HuBERT / WavLM model from a local directory, its hidden
  layers mixed by a learned softmax-weighted sum (SUPERB style), optionally frozen.
- ``whisper``: a Whisper encoder from a local directory on any window length, with a learned
  layer weighting and a residual bottleneck adapter (the ASR-representation seed).

The transformers config of a pretrained backbone is copied into the SER checkpoint
(``frontend_hf_config``), so a checkpoint rebuilds without the original directory.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
from torch import nn

from emotrt.runtime.errors import ConfigError
from emotrt.training.features import FeatureConfig, LogMel

FRONTENDS = ("fbank", "ssl", "whisper")
INPUT_NORMS = ("none", "rms")  # fbank only: see FbankFrontend


def local_pretrained_dir(path: Optional[str], what: str) -> Path:
    """The local transformers directory ``path``, or a clear error (nothing is fetched from a hub)."""
    if not path:
        raise ConfigError("{} needs a local transformers directory, none given".format(what),
                          hint="set the path, e.g. --set {}_path=/models/dir".format(what.split()[0]))
    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise ConfigError("{}: no transformers model at {} (expected a directory with config.json)".format(what, folder),
                          hint="save one locally with model.save_pretrained(DIR); emotrt never downloads models")
    return folder


def hf_config_from_dict(data: Dict[str, Any]) -> Any:
    """A transformers config rebuilt from the dict stored in a checkpoint."""
    from transformers import AutoConfig

    data = dict(data)
    return AutoConfig.for_model(data.pop("model_type"), **data)


class LayerMix(nn.Module):
    """Softmax-weighted sum of a stack of hidden states [L, B, N, D] -> [B, N, D]."""

    def __init__(self, layers: int) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(layers))

    def forward(self, states: List[torch.Tensor]) -> torch.Tensor:
        stacked = torch.stack(states, dim=0)
        weights = torch.softmax(self.weights, dim=0)
        return (stacked * weights[:, None, None, None]).sum(0)


class FbankFrontend(nn.Module):
    """Log-mel frames scaled to about zero mean and unit variance; ``out_dim`` = n_mels.

    The scaling is one fixed affine map (speech in [-1, 1] gives natural-log mel energies of about
    -5.6 +- 4.7 here), not a per-frame norm: a per-frame LayerNorm would erase the level and the
    spectral tilt, which carry much of the emotion.

    ``input_norm="rms"`` first brings each window to one RMS (:data:`REFERENCE_RMS`, the corpus's
    median): the SER then cannot see the input gain, whatever the microphone's sensitivity or
    the TSE's output scale, while loudness changes inside the window stay. The SER scores
    independent windows, so this per-window normalisation streams exactly. In the graph:
    Mul, ReduceMean, Add, Sqrt, Div before the DFT (kept FP32 with the rest of the front end).
    """

    OFFSET, SCALE = 5.0, 5.0
    REFERENCE_RMS = 0.06  # median RMS of a 2 s test window of the synthetic corpus (-24.5 dBFS)
    RMS_FLOOR = 1e-10  # mean square below -100 dBFS is not amplified further (digital silence stays silent)

    def __init__(self, features: FeatureConfig, input_norm: str = "none") -> None:
        super().__init__()
        if input_norm not in INPUT_NORMS:
            raise ConfigError("fbank: input_norm must be one of {}, got {!r}".format(", ".join(INPUT_NORMS), input_norm))
        self.logmel = LogMel(features)
        self.input_norm = input_norm
        self.out_dim = features.n_mels
        self.normalise_frames = False

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        if self.input_norm == "rms":
            audio = audio * (self.REFERENCE_RMS / torch.sqrt((audio * audio).mean(-1, keepdim=True) + self.RMS_FLOOR))
        return (self.logmel(audio) + self.OFFSET) / self.SCALE


def _freeze(module: nn.Module) -> None:
    for param in module.parameters():
        param.requires_grad_(False)


class SSLFrontend(nn.Module):
    """A wav2vec2-family encoder with a learned weighted sum of all hidden layers."""

    def __init__(self, hf_config: Any, path: Optional[Path], freeze: bool) -> None:
        super().__init__()
        from transformers import AutoModel

        self.backbone = AutoModel.from_pretrained(str(path)) if path else AutoModel.from_config(hf_config)
        self.frozen = freeze
        if freeze:
            _freeze(self.backbone)
        self.mix = LayerMix(self.backbone.config.num_hidden_layers + 1)
        self.out_dim = self.backbone.config.hidden_size
        self.normalise_frames = True

    def hidden_states(self, audio: torch.Tensor) -> List[torch.Tensor]:
        """Every hidden layer [B, N, D] the mix weighs: the feature projection, then each transformer layer."""
        audio = (audio - audio.mean(-1, keepdim=True)) / torch.sqrt(audio.var(-1, keepdim=True) + 1e-7)
        return list(self.backbone(audio, output_hidden_states=True).hidden_states)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.mix(self.hidden_states(audio))


class WhisperFrontend(nn.Module):
    """Whisper encoder layers on a window of any length (positions sliced), mixed and adapted."""

    def __init__(self, hf_config: Any, path: Optional[Path], freeze: bool, adapter_dim: int = 64) -> None:
        super().__init__()
        from transformers import WhisperModel
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        self.encoder = WhisperModel.from_pretrained(str(path)).encoder if path else WhisperEncoder(hf_config)
        config = self.encoder.config
        self.logmel = LogMel(FeatureConfig(n_fft=400, win_length=400, hop_length=160, n_mels=config.num_mel_bins,
                                           mel_scale="slaney", log="whisper", normalize=False))
        self.frozen = freeze
        if freeze:
            _freeze(self.encoder)
        self.mix = LayerMix(config.encoder_layers + 1)
        self.adapter = nn.Sequential(nn.LayerNorm(config.d_model), nn.Linear(config.d_model, adapter_dim), nn.GELU(),
                                     nn.Linear(adapter_dim, config.d_model))
        self.out_dim = config.d_model
        self.normalise_frames = True

    def hidden_states(self, audio: torch.Tensor) -> List[torch.Tensor]:
        """Every hidden layer [B, N, D] the mix weighs: the position-embedded convolutions, then each layer."""
        enc = self.encoder
        mel = self.logmel(audio).transpose(1, 2)
        x = nn.functional.gelu(enc.conv1(mel))
        x = nn.functional.gelu(enc.conv2(x)).transpose(1, 2)
        x = x + enc.embed_positions.weight[: x.shape[1]]
        states = [x]
        for layer in enc.layers:
            x = layer(x, None, layer_head_mask=None)[0]
            states.append(x)
        states[-1] = enc.layer_norm(x)
        return states

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        mixed = self.mix(self.hidden_states(audio))
        return mixed + self.adapter(mixed)


def build_frontend(kind: str, features: FeatureConfig, path: Optional[str] = None,
                   hf_config: Optional[Dict[str, Any]] = None, freeze: bool = True, input_norm: str = "none") -> nn.Module:
    """The front end ``kind``; pretrained ones load from ``path`` or rebuild from a stored ``hf_config``."""
    if kind == "fbank":
        return FbankFrontend(features, input_norm)
    if input_norm != "none":
        raise ConfigError("input_norm {!r} is for the fbank front end; {} normalises its own input".format(input_norm, kind))
    if kind not in FRONTENDS:
        raise ConfigError("unknown SER frontend {!r}; expected one of {}".format(kind, ", ".join(FRONTENDS)))
    if hf_config is not None:
        config, folder = hf_config_from_dict(hf_config), None
    else:
        folder = local_pretrained_dir(path, "frontend ({})".format(kind))
        config = None
    if kind == "ssl":
        return SSLFrontend(config, folder, freeze)
    return WhisperFrontend(config, folder, freeze)


def frontend_hf_config(frontend: nn.Module) -> Optional[Dict[str, Any]]:
    """The transformers config dict to store in the checkpoint, or None for ``fbank``."""
    backbone = getattr(frontend, "backbone", None) or getattr(frontend, "encoder", None)
    if backbone is None:
        return None
    return backbone.config.to_diff_dict()
