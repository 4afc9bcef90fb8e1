"""The task registry: recipe task names to Task factories."""
import pytest

from emotrt.runtime.errors import ConfigError
from emotrt.training.recipe import recipe_from_dict
from emotrt.training.tasks import TASKS, build_task


def test_unknown_task_lists_the_known_ones():
    recipe = recipe_from_dict({"task": "asr", "train": {"out": "x"}})
    with pytest.raises(ConfigError, match="unknown task 'asr'; available: .*tse"):
        build_task(recipe)


def test_tse_is_registered_and_checks_its_tables():
    assert "tse" in TASKS
    recipe = recipe_from_dict({"task": "tse", "train": {"out": "x"}, "modle": {}})
    with pytest.raises(ConfigError, match="modle"):
        build_task(recipe)
