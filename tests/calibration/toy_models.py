"""Tiny graphs with the emotrt contract, exported in fixtures (the real ones come from `emotrt export`).

A causal-conv TSE step with streaming state, an enroll graph and a log-mel + transformer SER with
LayerNorm/Softmax. Weights are random (seeded); calibration works on any graph with the contract.
"""
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch import nn

from emotrt.runtime.contract import ModelContract, StateSpec

SR = 16000
CHUNK = 160
ENC_K, ENC_S, N, SPK = 32, 16, 32, 16
BLOCKS, DW_K = 2, 3
WINDOW, N_FFT, HOP, MELS, D_MODEL = 4000, 128, 64, 16, 32
LABELS = ("neutral", "happy", "angry", "sad")


class Block(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.pw = nn.Conv1d(n, n, 1)
        self.dw = nn.Conv1d(n, n, DW_K, groups=n)
        self.out = nn.Conv1d(n, n, 1)

    def forward(self, x, cache):
        h = torch.relu(self.pw(x))
        full = torch.cat([cache, h], dim=2)
        return x + self.out(torch.relu(self.dw(full))), full[:, :, -(DW_K - 1):]


class ToyTseStep(nn.Module):
    def __init__(self, n: int = N, blocks: int = BLOCKS, chunk: int = CHUNK) -> None:
        super().__init__()
        self.chunk = chunk
        self.encoder = nn.Conv1d(1, n, ENC_K, stride=ENC_S)
        self.adapt = nn.Linear(SPK, n)
        self.blocks = nn.ModuleList([Block(n) for _ in range(blocks)])
        self.mask = nn.Conv1d(n, n, 1)
        self.decoder = nn.ConvTranspose1d(n, 1, ENC_K, stride=ENC_S, bias=False)

    def forward(self, audio, spk_emb, enc, tail, *dw):
        full = torch.cat([enc, audio], dim=1)
        e = torch.relu(self.encoder(full.unsqueeze(1)))
        h = e * self.adapt(spk_emb).unsqueeze(2)
        caches = []
        for block, cache in zip(self.blocks, dw):
            h, new = block(h, cache)
            caches.append(new)
        y = self.decoder(e * torch.sigmoid(self.mask(h))).squeeze(1)
        out = y[:, :self.chunk] + F.pad(tail, (0, self.chunk - tail.shape[1]))
        return (out, full[:, -(ENC_K - ENC_S):], y[:, self.chunk:], *caches)


class ToyEnroll(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, N, ENC_K, stride=ENC_S)
        self.proj = nn.Linear(N, SPK)

    def forward(self, audio):
        return self.proj(torch.relu(self.conv(audio.unsqueeze(1))).mean(dim=2))


def _dft_basis() -> torch.Tensor:
    n = np.arange(N_FFT)
    k = np.arange(N_FFT // 2 + 1)[:, None]
    window = np.hanning(N_FFT)
    cos = np.cos(2 * np.pi * k * n / N_FFT) * window
    sin = -np.sin(2 * np.pi * k * n / N_FFT) * window
    return torch.tensor(np.concatenate([cos, sin])[:, None, :], dtype=torch.float32)


class Layer(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.attn_out = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d)
        self.ff1 = nn.Linear(d, 2 * d)
        self.ff2 = nn.Linear(2 * d, d)

    def forward(self, x):
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=2)
        weights = torch.softmax(torch.matmul(q, k.transpose(1, 2)) / x.shape[2] ** 0.5, dim=2)
        x = x + self.attn_out(torch.matmul(weights, v))
        return x + self.ff2(torch.relu(self.ff1(self.norm2(x))))


class ToySer(nn.Module):
    def __init__(self, d: int = D_MODEL, layers: int = 1) -> None:
        super().__init__()
        self.register_buffer("dft", _dft_basis())
        self.register_buffer("mel", torch.rand(N_FFT // 2 + 1, MELS) / 8)
        self.frontend = nn.Linear(MELS, d)
        self.layers = nn.ModuleList([Layer(d) for _ in range(layers)])
        self.head = nn.Linear(d, len(LABELS))
        self.avd = nn.Linear(d, 3)

    def forward(self, audio, env_token):
        spec = F.conv1d(audio.unsqueeze(1), self.dft, stride=HOP)
        half = N_FFT // 2 + 1
        power = spec[:, :half] ** 2 + spec[:, half:] ** 2
        logmel = torch.log(torch.matmul(power.transpose(1, 2), self.mel) + 1e-6)
        x = torch.cat([env_token.unsqueeze(1), self.frontend(logmel)], dim=1)
        for layer in self.layers:
            x = layer(x)
        pooled = x.mean(dim=1)
        return self.head(pooled), self.avd(pooled)


def _save(module, args, path, inputs, outputs, contract, dynamic_axes=None) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(), args, str(path), input_names=inputs, output_names=outputs, opset_version=17,
            dynamo=False, dynamic_axes=dynamic_axes,
        )
    model = onnx.load(str(path))
    for key, value in contract.to_metadata().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return Path(path)


def tse_contract(n: int = N, blocks: int = BLOCKS, chunk: int = CHUNK) -> ModelContract:
    states = [StateSpec("enc", (1, ENC_K - ENC_S)), StateSpec("tail", (1, ENC_K - ENC_S))]
    states += [StateSpec("dw{}".format(i), (1, n, DW_K - 1)) for i in range(blocks)]
    return ModelContract("tse_step", SR, chunk_samples=chunk, states=tuple(states), spk_dim=SPK, opset=17)


# "default" approximates the project's default sizes (REFERENCE.md: a 0.7 M-parameter causal TSE
# with 20 ms hops, a 0.63 M-parameter log-mel transformer SER) for the timing benchmark.
SIZES = {"tiny": dict(n=N, blocks=BLOCKS, chunk=CHUNK, d=D_MODEL, layers=1),
         "default": dict(n=160, blocks=14, chunk=320, d=128, layers=3)}


def export_toy_models(folder: Path, seed: int = 0, size: str = "tiny") -> Path:
    """Write ``tse_step.onnx``, ``enroll.onnx`` and ``ser.onnx`` with their contracts into ``folder``."""
    torch.manual_seed(seed)
    dims = SIZES[size]
    folder.mkdir(parents=True, exist_ok=True)
    contract = tse_contract(dims["n"], dims["blocks"], dims["chunk"])
    states = [torch.zeros(s.shape) for s in contract.states]
    _save(
        ToyTseStep(dims["n"], dims["blocks"], dims["chunk"]), (torch.randn(1, dims["chunk"]), torch.randn(1, SPK), *states),
        folder / "tse_step.onnx",
        ["audio", "spk_emb"] + [s.input_name for s in contract.states],
        ["audio_out"] + [s.output_name for s in contract.states], contract,
    )
    _save(
        ToyEnroll(), (torch.randn(1, 8000),), folder / "enroll.onnx", ["audio"], ["spk_emb"],
        ModelContract("enroll", SR, spk_dim=SPK, opset=17), dynamic_axes={"audio": {1: "samples"}},
    )
    _save(
        ToySer(dims["d"], dims["layers"]), (torch.randn(1, WINDOW), torch.randn(1, dims["d"])), folder / "ser.onnx",
        ["audio", "env_token"], ["logits", "avd"],
        ModelContract("ser", SR, window_samples=WINDOW, d_model=dims["d"], labels=LABELS, opset=17),
    )
    return folder
