"""Recipes: TOML + --set overrides into frozen dataclasses; every bad key is one clear error."""
from dataclasses import FrozenInstanceError, dataclass
from typing import Tuple

import pytest

from emotrt.runtime.errors import ConfigError
from emotrt.training import recipe as recipe_module
from emotrt.training.recipe import (RECIPES_DIR, apply_overrides, check_sections, load_recipe, parse_section,
                                    parse_value, recipe_from_dict)


@dataclass(frozen=True)
class Section:
    name: str = "a"
    rate: float = 1.0
    count: int = 2
    bounds: Tuple[float, ...] = (0.0, 1.0)


def test_set_values_parse_as_toml_or_bare_strings():
    assert parse_value("3") == 3 and parse_value("0.5") == 0.5 and parse_value("true") is True
    assert parse_value("[-5, 5]") == [-5, 5]
    assert parse_value("runs/x") == "runs/x"


def test_overrides_nest_and_do_not_touch_the_input():
    data = {"train": {"steps": 5}}
    merged = apply_overrides(data, ["train.steps=7", "model.preset=tiny"])
    assert merged == {"train": {"steps": 7}, "model": {"preset": "tiny"}}
    assert data == {"train": {"steps": 5}}


def test_override_without_equals_is_an_error():
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["train.steps"])


def test_parse_section_converts_and_freezes():
    section = parse_section({"rate": 2, "bounds": [1, 3]}, Section, "[s]")
    assert section.rate == 2.0 and isinstance(section.rate, float) and section.bounds == (1, 3)
    with pytest.raises(FrozenInstanceError):
        section.rate = 3.0


def test_unknown_key_names_it_and_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) colour.*valid keys: name, rate, count, bounds"):
        parse_section({"colour": 1}, Section, "[s]")


def test_wrong_type_names_the_field():
    with pytest.raises(ConfigError, match=r"\[s\]\.count: expected int"):
        parse_section({"count": "many"}, Section, "[s]")


def test_train_table_is_validated():
    with pytest.raises(ConfigError, match="unknown key.*stpes"):
        recipe_from_dict({"task": "tse", "train": {"out": "x", "stpes": 3}})
    with pytest.raises(ConfigError, match="lr"):
        recipe_from_dict({"task": "tse", "train": {"out": "x"}}, ["train.lr=-1"])
    with pytest.raises(ConfigError, match="stop_step"):
        recipe_from_dict({"task": "tse", "train": {"out": "x"}}, ["train.stop_step=-1"])
    with pytest.raises(ConfigError, match="missing key.*out"):
        recipe_from_dict({"task": "tse", "train": {}})
    with pytest.raises(ConfigError, match="task"):
        recipe_from_dict({"train": {"out": "x"}})


def test_unknown_table_is_an_error():
    recipe = recipe_from_dict({"task": "tse", "train": {"out": "x"}, "modle": {}})
    with pytest.raises(ConfigError, match="unknown table.*modle"):
        check_sections(recipe, ("model", "data"))


def test_load_recipe_checks_the_task_and_finds_shipped_recipes(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text('task = "ser"\n[train]\nout = "runs/ser"\n')
    with pytest.raises(ConfigError, match="for task 'ser', not 'tse'"):
        load_recipe(path, task="tse")
    assert load_recipe(path, ["train.steps=3"]).train.steps == 3
    with pytest.raises(ConfigError, match="recipe not found.*tse_edge"):
        load_recipe(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("task = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_recipe(bad)


@pytest.mark.parametrize("name", sorted(p.stem for p in RECIPES_DIR.glob("*.toml")))
def test_shipped_recipes_are_valid(name):
    from emotrt.training.tasks import TASKS

    recipe = load_recipe(name)
    assert recipe.task in TASKS


def test_docstring_example_runs():
    import doctest

    failures, tried = doctest.testmod(recipe_module)
    assert tried > 0 and failures == 0
