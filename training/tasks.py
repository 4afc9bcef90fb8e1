"""Which :class:`~emotrt.training.task.Task` trains each recipe ``task``.

Each entry is ``"module:function"`` taking the validated :class:`Recipe`; modules are
imported only for the task being run.
"""
from __future__ import annotations

import importlib
from typing import Dict

from emotrt.runtime.errors import ConfigError
from emotrt.training.recipe import Recipe
from emotrt.training.task import Task

TASKS: Dict[str, str] = {
    "tse": "emotrt.training.tse_task:from_recipe",
    "ser": "emotrt.training.ser_task:from_recipe",
    "joint": "emotrt.training.joint_task:from_recipe",
}


def build_task(recipe: Recipe) -> Task:
    """The task object for ``recipe.task``."""
    if recipe.task not in TASKS:
        raise ConfigError("recipe {}: unknown task {!r}; available: {}".format(
            recipe.source, recipe.task, ", ".join(sorted(TASKS))))
    module, attr = TASKS[recipe.task].split(":")
    return getattr(importlib.import_module(module), attr)(recipe)
