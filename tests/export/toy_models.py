"""Tiny models with the TSE/SER interfaces of docs/contracts.md, for export tests before (and besides) the real ones.

ToyTSE is a causal conv net whose step keeps one cache per stage (input context and a
dilated depthwise conv's frames); ToySER has a strided conv front end, a layer norm and the
environment projection.
"""
import torch
import torch.nn.functional as F
from torch import nn

from emotrt.training.checkpoint import load_checkpoint, save_checkpoint

TSE_CONFIG = {"family": "tse", "sample_rate": 16000, "chunk_samples": 16, "kernel": 5, "channels": 8, "spk_dim": 6}
SER_CONFIG = {
    "family": "ser", "sample_rate": 16000, "window_samples": 400, "d_model": 8, "text_dim": 256,
    "labels": ["neutral", "happy", "angry", "sad"], "text_encoder": "wordllama",
}
DW_CONTEXT = 4  # (kernel 3 - 1) * dilation 2


class ToyTSE(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        k, ch = config["kernel"], config["channels"]
        self.conv = nn.Conv1d(1, ch, k)
        self.dw = nn.Conv1d(ch, ch, 3, dilation=2, groups=ch)
        self.spk = nn.Linear(config["spk_dim"], ch)
        self.out = nn.Conv1d(ch, 1, 1)
        self.embed = nn.Linear(ch, config["spk_dim"])

    def _features(self, x):
        h = F.relu(self.conv(x))
        return F.layer_norm(h.transpose(1, 2), (self.config["channels"],)).transpose(1, 2)

    def forward(self, audio, spk_emb):
        x = F.pad(audio[:, None], (self.config["kernel"] - 1, 0))
        h = self._features(x) * self.spk(spk_emb)[..., None]
        h = h + self.dw(F.pad(h, (DW_CONTEXT, 0)))
        return self.out(h)[:, 0]

    def step(self, audio, spk_emb, input_cache, dw_cache):
        x = torch.cat([input_cache, audio[:, None]], dim=-1)
        h = self._features(x) * self.spk(spk_emb)[..., None]
        hp = torch.cat([dw_cache, h], dim=-1)
        h = h + self.dw(hp)
        return self.out(h)[:, 0], x[..., -(self.config["kernel"] - 1):], hp[..., -DW_CONTEXT:]

    def state_specs(self):
        return [("input", (1, 1, self.config["kernel"] - 1)), ("dw", (1, self.config["channels"], DW_CONTEXT))]

    def initial_state(self, batch=1):
        return tuple(torch.zeros(batch, *shape[1:]) for _, shape in self.state_specs())

    def enroll(self, audio):
        h = self._features(F.pad(audio[:, None], (self.config["kernel"] - 1, 0)))
        return self.embed(h.mean(-1))


class ToySER(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        d = config["d_model"]
        self.frames = nn.Conv1d(1, d, 40, stride=20)
        self.env = nn.Linear(config["text_dim"], d)
        self.head = nn.Linear(d, len(config["labels"]))
        self.avd = nn.Linear(d, 3)
        self.null_token = nn.Parameter(torch.randn(d))

    def forward(self, audio, env_token):
        h = F.relu(self.frames(audio[:, None])).mean(-1) + env_token
        h = F.layer_norm(h, (self.config["d_model"],))
        return self.head(h), torch.sigmoid(self.avd(h))

    def project_env(self, text_emb):
        return self.env(text_emb)

    def null_env(self, batch=1):
        return self.null_token.unsqueeze(0).expand(batch, -1)


TOYS = {"tse": ToyTSE, "ser": ToySER}


def toy_loader(ckpt_dir):
    """load_model's contract for the toys: (model, config); strict weights."""
    config, state = load_checkpoint(ckpt_dir)
    model = TOYS[config["family"]](config)
    model.load_state_dict(state)
    return model.eval(), config


def save_toy(path, config, seed=0):
    torch.manual_seed(seed)
    model = TOYS[config["family"]](config)
    save_checkpoint(path, model.state_dict(), config)
    return path
