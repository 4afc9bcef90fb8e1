"""The environment table: text descriptions -> tokens the SER graph takes as ``env_token``.

A description is wrapped in a prompt template (the checkpoint's ``text_template`` unless one
is given, so tokens are made the way training made them), embedded with the SER checkpoint's own text
encoder (``text_encoder`` in its config; wordllama offline by default) and passed through the
checkpoint's ``project_env``, so the device stores float32 [d_model] tokens and never sees
the text encoder.

Paraphrases of one environment ("a busy cafe", "a crowded coffee shop") combine as the mean
of their projected tokens, rescaled to the mean norm of the individual tokens: averaging
keeps what the paraphrases agree on, and the rescale stops disagreement from shrinking the
token below the magnitudes the model saw in training.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from emotrt.runtime.errors import ConfigError
from emotrt.runtime.tables import VectorTable, is_valid_name

log = logging.getLogger(__name__)

DEFAULT_TEMPLATE = "recorded_in"


def combine_paraphrases(tokens: np.ndarray) -> np.ndarray:
    """[N, d] projected tokens of one environment -> one [d] token (mean, rescaled to the mean norm)."""
    tokens = np.asarray(tokens, dtype=np.float64)
    mean = tokens.mean(axis=0)
    norm = np.linalg.norm(mean)
    target = float(np.linalg.norm(tokens, axis=1).mean())
    return (mean * (target / norm if norm > 0 else 1.0)).astype(np.float32)


NO_ENVIRONMENT = "none"


class EnvironmentEmbedder:
    """A SER model's text encoder + projection: descriptions -> environment tokens."""

    def __init__(self, model: Any, config: Any, checkpoint_sha256: str = "") -> None:
        from emotrt.export.specs import config_value

        if not hasattr(model, "project_env"):
            raise ConfigError(
                "a {} model has no environment projection; environment tokens need the SER checkpoint".format(
                    type(model).__name__),
                hint="pass the SER checkpoint with --ckpt",
            )
        self.model = model
        self.d_model = int(config_value(config, "d_model"))
        self.text_encoder = str(config_value(config, "text_encoder"))
        self.template = _optional(config, "text_template") or DEFAULT_TEMPLATE
        self.encoder_path = _optional(config, "text_encoder_path")
        self.checkpoint_sha256 = checkpoint_sha256
        self._encoder: Any = None

    @property
    def encoder(self) -> Any:
        """The checkpoint's text encoder, loaded on first use (the no-description token needs none)."""
        if self._encoder is None:
            from emotrt.training.text import load_text_encoder

            self._encoder = load_text_encoder(self.text_encoder, self.encoder_path)
        return self._encoder

    @classmethod
    def from_checkpoint(cls, ckpt_dir: Any, loader: Optional[Callable[[Any], Tuple[Any, Any]]] = None) -> "EnvironmentEmbedder":
        """The embedder of the SER checkpoint directory ``ckpt_dir``."""
        from emotrt.export.exporter import default_loader, load_for_export
        from emotrt.runtime.manifest import sha256_file

        model, config, _ = load_for_export(ckpt_dir, loader or default_loader)
        return cls(model, config, sha256_file(Path(ckpt_dir) / "model.safetensors"))

    def token(self, descriptions: Sequence[str], template: Optional[str] = None) -> np.ndarray:
        """One token [d_model] for the paraphrases ``descriptions`` (``template`` defaults to the checkpoint's)."""
        import torch

        from emotrt.training.text import encode_descriptions

        descriptions = [d for d in (s.strip() for s in descriptions) if d]
        if not descriptions:
            raise ConfigError("an environment needs at least one non-empty description")
        embedded = encode_descriptions(self.encoder, list(descriptions), template or self.template)
        with torch.no_grad():
            tokens = self.model.project_env(embedded).numpy()
        return combine_paraphrases(tokens)


def _optional(config: Any, key: str) -> Any:
    return config.get(key) if isinstance(config, dict) else getattr(config, key, None)


def open_table(table_dir: Any, dim: Optional[int] = None) -> VectorTable:
    """The environment table at ``table_dir`` (created with width ``dim`` when new)."""
    return VectorTable(table_dir, kind="environment", dim=dim)


def _require_new(table: VectorTable, names: Sequence[str], replace: bool) -> None:
    existing = [n for n in names if n in table]
    if existing and not replace:
        raise ConfigError(
            "environment(s) {} already exist in {}".format(", ".join(existing), table.root),
            hint="`emotrt env remove {}` first, or pass --replace".format(existing[0]),
        )


def add_environment(
    table_dir: Any, embedder: EnvironmentEmbedder, name: str, descriptions: Sequence[str],
    template: Optional[str] = None, replace: bool = False,
) -> np.ndarray:
    """Embed ``descriptions`` and store them as environment ``name``; returns the token."""
    table = open_table(table_dir, embedder.d_model)
    _require_new(table, [name], replace)
    token = embedder.token(descriptions, template)
    table.add(
        name, token, replace=replace, descriptions=list(descriptions), template=template or embedder.template,
        text_encoder=embedder.text_encoder, checkpoint_sha256=embedder.checkpoint_sha256,
    )
    log.info("environment %s: %d description(s) -> token of %d", name, len(descriptions), token.size)
    return token


def read_environment_file(path: Any) -> Dict[str, List[str]]:
    """Environments from JSON: the corpus' ``{id: {"descriptions": [...]}}``, ``{id: [...]}`` or ``{id: "text"}``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError("cannot read environments from {}: {}".format(path, exc))
    if not isinstance(data, dict) or not data:
        raise ConfigError("{}: expected a JSON object of environment id -> descriptions".format(path))
    out = {}
    for name, value in data.items():
        if isinstance(value, dict):
            value = value.get("descriptions", [])
        if isinstance(value, str):
            value = [value]
        if not is_valid_name(name):
            raise ConfigError("{}: environment name {!r} must be 1-64 letters, digits, '_', '-' or '.'".format(path, name))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or not any(v.strip() for v in value):
            raise ConfigError("{}: environment {!r} needs a non-empty list of description strings".format(path, name))
        out[name] = value
    return out


def import_environments(
    table_dir: Any, embedder: EnvironmentEmbedder, path: Any, template: Optional[str] = None, replace: bool = False
) -> List[str]:
    """Add every environment of the JSON file ``path``; checks all names before writing any."""
    environments = read_environment_file(path)
    _require_new(open_table(table_dir, embedder.d_model), list(environments), replace)
    for name, descriptions in environments.items():
        add_environment(table_dir, embedder, name, descriptions, template, replace=True)
    return sorted(environments)


def add_no_environment(table_dir: Any, embedder: EnvironmentEmbedder) -> bool:
    """Store the model's "no description" token as environment ``none`` when it has one."""
    import torch

    if not hasattr(embedder.model, "null_env"):
        return False
    with torch.no_grad():
        token = embedder.model.null_env(1)[0].numpy()
    open_table(table_dir, embedder.d_model).add(
        NO_ENVIRONMENT, token, replace=True, descriptions=[], note="the checkpoint's no-description token",
        checkpoint_sha256=embedder.checkpoint_sha256,
    )
    return True


def list_environments(table_dir: Any) -> List[Tuple[str, List[str]]]:
    """(name, descriptions) of every environment in the table."""
    table = open_table(table_dir)
    return [(n, list(table.info(n).get("descriptions", []))) for n in table.names()]


def remove_environment(table_dir: Any, name: str) -> None:
    """Delete environment ``name``."""
    open_table(table_dir).remove(name)
