"""Realistic-size stand-ins for the shipped graphs, for benchmarking before a trained bundle exists.

Sized after REFERENCE.md's measured models: a causal TD-SpeakerBeam-style TSE step (encoder
kernel 32 / stride 16, N=256, B=96, H=192, X=7, R=2, 20 ms hop, ~0.6 GMAC per second of audio)
and a log-mel transformer SER (3 s window, DFT as a strided Conv1d, 2 layers, d_model 128).
Weights are random; the compute graph and its shapes are what matter here. Host-only (torch).
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

import numpy as np

RATE = 16000
CHUNK = 320
WINDOW = 48000
SPK_DIM = 256
D_MODEL = 128
LABELS = ("neutral", "happy", "angry", "sad")


def _tse_module():
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, b: int, h: int, dilation: int) -> None:
            super().__init__()
            self.inp, self.out = nn.Linear(b, h), nn.Linear(h, b)
            self.dw = nn.Conv1d(h, h, 3, dilation=dilation, groups=h)
            self.span = 2 * dilation

        def forward(self, x, state):
            h = torch.relu(self.inp(x.transpose(1, 2))).transpose(1, 2)
            joined = torch.cat([state, h], dim=2)
            y = self.dw(joined)
            return x + self.out(torch.relu(y).transpose(1, 2)).transpose(1, 2), joined[:, :, -self.span:]

    class Step(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc = nn.Conv1d(1, 256, 32, stride=16, bias=False)
            self.bottleneck = nn.Linear(256, 96)
            self.spk = nn.Linear(SPK_DIM, 96)
            self.blocks = nn.ModuleList([Block(96, 192, 2 ** (i % 7)) for i in range(14)])
            self.mask = nn.Linear(96, 256)
            self.dec = nn.ConvTranspose1d(256, 1, 32, stride=16, bias=False)

        def forward(self, audio, spk_emb, enc_state, dec_state, *states):
            frames = self.enc(torch.cat([enc_state, audio], dim=1).unsqueeze(1))
            x = self.bottleneck(frames.transpose(1, 2)).transpose(1, 2)
            new_states = []
            for i, (block, state) in enumerate(zip(self.blocks, states)):
                x, s = block(x, state)
                if i == 6:
                    x = x * self.spk(spk_emb).unsqueeze(2)
                new_states.append(s)
            masked = frames * torch.sigmoid(self.mask(x.transpose(1, 2)).transpose(1, 2))
            wave = self.dec(masked).squeeze(1)
            head = wave[:, :16] + dec_state
            out = torch.cat([head, wave[:, 16:CHUNK]], dim=1)
            return (out, audio[:, -16:], wave[:, CHUNK:]) + tuple(new_states)

    return Step().eval()


def _ser_module():
    import torch
    from torch import nn

    class Ser(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.dft = nn.Conv1d(1, 402, 400, stride=160, bias=False)
            self.mel = nn.Linear(201, 64)
            self.proj = nn.Linear(64, D_MODEL)
            layer = nn.TransformerEncoderLayer(D_MODEL, 4, 256, batch_first=True, dropout=0.0)
            self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
            self.logits = nn.Linear(D_MODEL, len(LABELS))
            self.avd = nn.Linear(D_MODEL, 3)

        def forward(self, audio, env_token):
            spec = self.dft(audio.unsqueeze(1))
            power = spec[:, :201] ** 2 + spec[:, 201:] ** 2
            feats = torch.log(self.mel(power.transpose(1, 2)).abs() + 1e-6)
            x = torch.cat([env_token.unsqueeze(1), self.proj(feats)], dim=1)
            pooled = self.encoder(x).mean(dim=1)
            return self.logits(pooled), self.avd(pooled)

    return Ser().eval()


def tse_states() -> List[Tuple[str, Tuple[int, ...]]]:
    """(name, shape) of every TSE state in input order."""
    states = [("enc", (1, 16)), ("dec", (1, 16))]
    states += [("block{}".format(i), (1, 192, 2 * 2 ** (i % 7))) for i in range(14)]
    return states


def write_models(out: Path) -> Path:
    """Export tse_step.onnx and ser.onnx with their emotrt contracts into ``out``."""
    import onnx
    import torch

    from emotrt.runtime.contract import ModelContract, StateSpec

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    states = tse_states()
    tse_inputs = (torch.zeros(1, CHUNK), torch.zeros(1, SPK_DIM)) + tuple(torch.zeros(s) for _, s in states)
    names_in = ["audio", "spk_emb"] + ["state_in." + n for n, _ in states]
    names_out = ["audio_out"] + ["state_out." + n for n, _ in states]
    contract = ModelContract("tse_step", RATE, chunk_samples=CHUNK, spk_dim=SPK_DIM, opset=17,
                             states=tuple(StateSpec(n, s) for n, s in states))
    torch.onnx.export(_tse_module(), tse_inputs, str(out / "tse_step.onnx"), input_names=names_in,
                      output_names=names_out, opset_version=17, dynamo=False)
    ser_contract = ModelContract("ser", RATE, window_samples=WINDOW, d_model=D_MODEL, labels=LABELS, opset=17)
    torch.onnx.export(_ser_module(), (torch.zeros(1, WINDOW), torch.zeros(1, D_MODEL)), str(out / "ser.onnx"),
                      input_names=["audio", "env_token"], output_names=["logits", "avd"], opset_version=17, dynamo=False)
    for name, c in (("tse_step", contract), ("ser", ser_contract)):
        model = onnx.load(str(out / (name + ".onnx")))
        for key, value in c.to_metadata().items():
            model.metadata_props.add(key=key, value=value)
        onnx.save(model, str(out / (name + ".onnx")))
    return out


def count_macs(path: Path) -> int:
    """Multiply-accumulates of one call: Conv, ConvTranspose, MatMul and Gemm after shape inference."""
    import onnx
    from onnx import numpy_helper, shape_inference

    model = shape_inference.infer_shapes(onnx.load(str(path)))
    graph = model.graph
    shapes = {}
    for vi in list(graph.value_info) + list(graph.input) + list(graph.output):
        dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        shapes[vi.name] = dims
    for init in graph.initializer:
        shapes[init.name] = list(numpy_helper.to_array(init).shape)
    total = 0
    for node in graph.node:
        if node.op_type in ("Conv", "ConvTranspose"):
            w = shapes.get(node.input[1])
            y = shapes.get(node.output[0]) if node.op_type == "Conv" else shapes.get(node.input[0])
            if w and y:
                total += int(np.prod(y)) * int(np.prod(w[1:])) * (1 if node.op_type == "Conv" else w[0] // max(y[1], 1))
        elif node.op_type in ("MatMul", "Gemm"):
            a, y = shapes.get(node.input[0]), shapes.get(node.output[0])
            if a and y:
                total += int(np.prod(y)) * a[-1]
    return total
