"""Environment tables and speaker stores: the docstring example runs, bad names and widths are user errors."""
import doctest

import numpy as np
import pytest

import emotrt.runtime.tables as tables
from emotrt.runtime.errors import ConfigError
from emotrt.runtime.tables import VectorTable


def test_docstring_example_runs():
    assert doctest.testmod(tables).failed == 0


def test_reopened_table_keeps_vectors_and_refuses_another_width(tmp_path):
    VectorTable(tmp_path, kind="speaker", dim=3).add("alice", [1, 2, 3])
    again = VectorTable(tmp_path, kind="speaker")
    assert again.names() == ["alice"] and np.array_equal(again.get("alice"), [1, 2, 3])
    with pytest.raises(ConfigError, match="width 3, the model expects 4"):
        VectorTable(tmp_path, kind="speaker", dim=4)
    with pytest.raises(ConfigError, match="holds a speaker table, not environment"):
        VectorTable(tmp_path, kind="environment")


@pytest.mark.parametrize("name, vector, message", [
    ("alice", [1, 2, 3], "already exists"),
    ("../evil", [1, 2, 3], "must be 1-64 letters"),
    ("bob", [1, 2], "expected 3 finite values"),
    ("bob", [1, np.nan, 3], "expected 3 finite values"),
])
def test_bad_entries_are_refused_and_nothing_is_written(tmp_path, name, vector, message):
    table = VectorTable(tmp_path, kind="speaker", dim=3)
    table.add("alice", [1, 2, 3])
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ConfigError, match=message):
        table.add(name, vector)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_unknown_name_lists_the_known_ones(tmp_path):
    table = VectorTable(tmp_path, kind="environment", dim=2)
    table.add("cafe", [0, 1])
    with pytest.raises(ConfigError, match=r"unknown environment 'car' \(known: cafe\)"):
        table.get("car")
