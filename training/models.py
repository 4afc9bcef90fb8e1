"""``load_model(ckpt_dir)``: rebuild any emotrt model from its self-describing checkpoint.

Families register here as ``family -> "module:Class"``; the class provides
``from_checkpoint_config(config)``. Modules are imported only when their family is loaded.
"""
from __future__ import annotations

import importlib
from typing import Any, Dict, Tuple

from emotrt.runtime.errors import ConfigError
from emotrt.training.checkpoint import load_checkpoint

FAMILIES: Dict[str, str] = {
    "tse_td_speakerbeam": "emotrt.training.tse:TSE",
    "ser": "emotrt.training.ser:SER",
}


def model_class(family: str) -> Any:
    """The model class registered for ``family``."""
    if family not in FAMILIES:
        raise ConfigError("unknown model family {!r}; this emotrt knows {}".format(family, ", ".join(sorted(FAMILIES))),
                          hint="train the checkpoint with `emotrt train` or upgrade emotrt")
    module, attr = FAMILIES[family].split(":")
    return getattr(importlib.import_module(module), attr)


def load_model(ckpt_dir: Any) -> Tuple[Any, Dict[str, Any]]:
    """(model in eval mode with the checkpoint's weights, its config) from a checkpoint directory."""
    config, weights = load_checkpoint(ckpt_dir)
    model = model_class(config.get("family", "")).from_checkpoint_config(config)
    model.load_state_dict(weights)
    return model.eval(), config
