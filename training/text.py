"""Environment-text encoders behind one interface: ``encode(texts) -> [N, dim]``.

- ``wordllama``: the offline default; its wheel ships LLM-derived token embeddings (256-d).
- ``roberta`` / ``bert``: a transformers encoder from a local directory, pooled output
  (TG-EAT uses RoBERTa's pooled output); trainable when ``fine_tune`` is set.
- ``clap``: the CLAP text tower (``ClapTextModelWithProjection``) from a local directory.

Descriptions are wrapped in a prompt template first ("This speech is recorded in {}.").
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch
from torch import nn

from emotrt.runtime.errors import ConfigError, DependencyError
from emotrt.training.frontends import local_pretrained_dir

TEXT_ENCODERS = ("wordllama", "roberta", "bert", "clap")
TEMPLATES: Dict[str, str] = {
    "recorded_in": "This speech is recorded in {}.",
    "background": "The background sound is {}.",
    "speaker_in": "A person is speaking in {}.",
    "plain": "{}",
}


def prompt(description: str, template: str = "recorded_in") -> str:
    """``description`` wrapped in the named template (or a literal one containing ``{}``)."""
    pattern = TEMPLATES.get(template, template)
    problem = "" if "{}" in pattern else "unknown prompt template"
    if not problem:
        try:
            return pattern.format(description.strip().rstrip("."))
        except (IndexError, KeyError, ValueError) as exc:  # "{0}{1}", "{name}", "{:d}", a lone "}"
            problem = "prompt template cannot be filled ({}):".format(exc)
    raise ConfigError("{} {!r}; expected one of {} or a string with one {{}} (write a literal brace as {{{{ or }}}})".format(
        problem, template, ", ".join(TEMPLATES)))


class TextEncoder(nn.Module):
    """Base: ``name``, ``dim`` and ``encode(texts) -> FloatTensor [N, dim]``."""

    name = ""
    dim = 0

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        return self.encode(texts)


class WordLlamaEncoder(TextEncoder):
    """WordLlama's shipped embeddings, loaded offline (REFERENCE.md: the default load hits the hub)."""

    name = "wordllama"

    def __init__(self) -> None:
        super().__init__()
        try:
            import wordllama
            from wordllama import WordLlama
        except ImportError as exc:
            raise DependencyError("the wordllama text encoder needs the wordllama package ({})".format(exc),
                                  hint="pip install 'emotrt[train]'")
        self.model = WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)
        self.dim = int(self.model.embed(["x"]).shape[1])

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        return torch.from_numpy(self.model.embed(list(texts))).float()


class TransformersTextEncoder(TextEncoder):
    """A local RoBERTa/BERT (pooled output) or CLAP text tower (projected ``text_embeds``)."""

    def __init__(self, kind: str, path: Optional[str], fine_tune: bool = False, max_length: int = 64) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer, ClapTextModelWithProjection

        folder = local_pretrained_dir(path, "text_encoder ({})".format(kind))
        self.name, self.max_length, self.fine_tune = kind, max_length, fine_tune
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        if kind == "clap":
            self.model = ClapTextModelWithProjection.from_pretrained(str(folder))
            self.dim = self.model.config.projection_dim
        else:
            self.model = AutoModel.from_pretrained(str(folder), add_pooling_layer=True)
            self.dim = self.model.config.hidden_size
        for param in self.model.parameters():
            param.requires_grad_(fine_tune)

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="pt")
        batch = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask")}
        with torch.set_grad_enabled(self.fine_tune and torch.is_grad_enabled()):
            out = self.model(**batch)
        if self.name == "clap":
            return out.text_embeds
        return out.pooler_output


def load_text_encoder(name: str, path: Optional[str] = None, fine_tune: bool = False) -> TextEncoder:
    """The text encoder ``name`` (``wordllama`` needs no path; the others a local directory)."""
    if name == "wordllama":
        if fine_tune:
            raise ConfigError("text encoder wordllama has no trainable weights; fine_tune needs roberta, bert or clap")
        return WordLlamaEncoder()
    if name not in TEXT_ENCODERS:
        raise ConfigError("unknown text encoder {!r}; expected one of {}".format(name, ", ".join(TEXT_ENCODERS)))
    return TransformersTextEncoder(name, path, fine_tune)


def encode_descriptions(encoder: TextEncoder, descriptions: List[str], template: str = "recorded_in") -> torch.Tensor:
    """Embeddings [N, dim] of environment descriptions wrapped in ``template``, without gradients."""
    with torch.no_grad():
        return encoder.encode([prompt(d, template) for d in descriptions]).float()


class DescriptionBank:
    """Text embeddings of every environment's descriptions, computed once.

    ``environments`` is the corpus's environments.json mapping ``{id: {"descriptions": [...],
    "split": ...}}``. :meth:`wrong` names, for each environment, the one whose mean embedding is
    least similar, so a "wrong description" evaluation is really wrong.
    """

    def __init__(self, encoder: TextEncoder, environments: Dict[str, Dict[str, object]], template: str = "plain") -> None:
        self.ids = sorted(environments)
        self.splits = {k: str(environments[k].get("split", "")) for k in self.ids}
        self.embeddings: Dict[str, torch.Tensor] = {}
        self.descriptions: Dict[str, List[str]] = {}
        for env in self.ids:
            descriptions = list(environments[env].get("descriptions") or [])  # type: ignore[arg-type]
            if not descriptions:
                raise ConfigError("environment {!r} has no descriptions".format(env),
                                  hint="regenerate the corpus with `emotrt data synth --out DIR`")
            self.descriptions[env] = descriptions
            self.embeddings[env] = encode_descriptions(encoder, descriptions, template)
        means = torch.nn.functional.normalize(torch.stack([self.embeddings[e].mean(0) for e in self.ids]), dim=-1)
        similarity = means @ means.T
        self._wrong = {e: self.ids[int(similarity[i].argmin())] for i, e in enumerate(self.ids)}

    def embedding(self, env: str, index: int = 0) -> torch.Tensor:
        """The embedding [dim] of description ``index`` (modulo the count) of ``env``."""
        if env not in self.embeddings:
            raise ConfigError("unknown environment {!r}; the corpus describes {}".format(env, ", ".join(self.ids)))
        table = self.embeddings[env]
        return table[index % len(table)]

    def embedding_of(self, env: str, description: str) -> torch.Tensor:
        """The embedding [dim] of one of ``env``'s descriptions, given by its text."""
        self.embedding(env)
        if description not in self.descriptions[env]:
            raise ConfigError("{!r} is not a description of environment {!r}".format(description, env))
        return self.embeddings[env][self.descriptions[env].index(description)]

    def wrong(self, env: str) -> str:
        """The environment least like ``env`` (its descriptions make the wrong-description condition)."""
        self.embedding(env)
        return self._wrong[env]
