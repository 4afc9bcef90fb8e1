"""Self-describing checkpoints (DESIGN.md §2.1): ``config.json`` + ``model.safetensors``.

The config carries the model family, every dimension, audio settings, labels and
training provenance, so export needs nothing else. Weights are safetensors only:
no pickle is ever loaded.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Sequence, Tuple

from emotrt.runtime.atomic import staged_dir
from emotrt.runtime.errors import ConfigError

CONFIG, WEIGHTS = "config.json", "model.safetensors"
SCHEMA = 1


def save_checkpoint(path: Any, state_dict: Dict[str, Any], config: Dict[str, Any]) -> Path:
    """Write ``config`` (must hold ``family``) and ``state_dict`` atomically to the directory ``path``."""
    from safetensors.torch import save_file

    if "family" not in config:
        raise ConfigError("checkpoint config needs a 'family' key")
    path = Path(path)
    tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    with staged_dir(path, "ckpt") as tmp:
        save_file(tensors, str(tmp / WEIGHTS))
        (tmp / CONFIG).write_text(json.dumps(dict(config, schema=SCHEMA), indent=2, sort_keys=True))
    return path


def read_config(path: Any) -> Dict[str, Any]:
    """The config of the checkpoint directory ``path``, with clear errors for what is missing."""
    path = Path(path)
    if not path.is_dir():
        raise ConfigError("checkpoint directory not found: {}".format(path))
    missing = [name for name in (CONFIG, WEIGHTS) if not (path / name).is_file()]
    if missing:
        raise ConfigError(
            "checkpoint {} is missing {}".format(path, ", ".join(missing)),
            hint="a checkpoint is a directory with config.json and model.safetensors, as written by `emotrt train`",
        )
    try:
        config = json.loads((path / CONFIG).read_text())
    except ValueError as exc:
        raise ConfigError("checkpoint {}: config.json is not valid JSON ({})".format(path, exc))
    if config.get("schema", SCHEMA) > SCHEMA:
        raise ConfigError("checkpoint {} uses schema {}; this emotrt reads up to {}".format(path, config["schema"], SCHEMA))
    return config


def load_checkpoint(path: Any) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(config, state_dict of torch tensors) from the checkpoint directory ``path``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    config = read_config(path)
    try:
        return config, load_file(str(Path(path) / WEIGHTS))
    except (SafetensorError, OSError) as exc:
        raise ConfigError("checkpoint {}: {} is not readable safetensors ({})".format(path, WEIGHTS, exc),
                          hint="a truncated or overwritten file: copy the checkpoint again, or re-save it with `emotrt train`")


def warm_start(model: Any, path: Any, fresh: Sequence[str] = ()) -> Dict[str, Any]:
    """Load the checkpoint ``path`` into ``model`` (a recipe's ``[model] init``).

    Tensors whose names start with one of ``fresh`` may be missing or of another size there: they
    keep their fresh initialisation (the TSE's speaker head, sized by the corpus's speaker count).
    Returns the parent's provenance (path, sha256, step) for the new checkpoint's config.
    """
    from emotrt.runtime.manifest import sha256_file

    config, weights = load_checkpoint(path)
    own = model.state_dict()
    skipped = [k for k, v in weights.items() if k in own and own[k].shape != v.shape]
    kept = {k: v for k, v in weights.items() if k not in skipped}
    missing, unexpected = model.load_state_dict(kept, strict=False)
    bad = [k for k in list(missing) + list(unexpected) + skipped if not k.startswith(tuple(fresh))]
    if bad:
        raise ConfigError("[model] init={}: not a checkpoint of this model ({} mismatched tensors, e.g. {})".format(
            path, len(bad), bad[0]), hint="init must be a {} checkpoint of the same dimensions".format(
                config.get("family", "").upper() or "matching"))
    return {"path": str(path), "sha256": sha256_file(Path(path) / WEIGHTS),
            "step": config.get("training", {}).get("step"), "fresh": sorted(set(skipped) | set(missing))}
