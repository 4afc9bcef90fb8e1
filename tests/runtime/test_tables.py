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


def _npy(array):
    import io

    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


GOOD = _npy(np.ones(3, np.float32))
BAD_VECTORS = {  # what a device, a cut or a hand edit can leave in <name>.npy
    "nan": (_npy(np.array([1, np.nan, 3], np.float32)), "1 non-finite value"),
    "inf": (_npy(np.array([np.inf, -np.inf, 3], np.float32)), "2 non-finite value"),
    "wider": (_npy(np.ones(4, np.float32)), r"\(4,\), expected 3 float32"),
    "narrower": (_npy(np.ones(2, np.float32)), r"\(2,\), expected 3 float32"),
    "2-d": (_npy(np.ones((1, 3), np.float32)), r"\(1, 3\), expected 3 float32"),
    "strings": (_npy(np.array(["a", "b", "c"])), "<U1 .*expected 3 float32"),
    "truncated": (GOOD[:-5], "cannot read"),
    "empty": (b"", "cannot read"),
    "text": (b"not a numpy file\n", "cannot read"),
    "pickle": (_npy(np.array([{"a": 1}], dtype=object)), "cannot read"),
}


@pytest.mark.parametrize("kind", ["speaker", "environment"])
@pytest.mark.parametrize("case", sorted(BAD_VECTORS) + ["missing"])
def test_a_bad_vector_file_is_refused_at_load_naming_it(tmp_path, kind, case):
    table = VectorTable(tmp_path, kind=kind, dim=3)
    table.add("alice", [1, 2, 3])
    if case == "missing":
        (tmp_path / "alice.npy").unlink()
        content, message = None, "cannot read"
    else:
        content, message = BAD_VECTORS[case]
        (tmp_path / "alice.npy").write_bytes(content)
    again = VectorTable(tmp_path, kind=kind)
    with pytest.raises(ConfigError, match="{} 'alice': .*{}".format(kind, message)) as info:
        again.check()
    assert str(tmp_path / "alice.npy") in info.value.message and "--replace" in info.value.hint
    assert "\n" not in info.value.message


BAD_INDEXES = {
    "empty": (b"", "unreadable"),
    "truncated": (b'{"schema": 1, "kind": "speaker", "dim": 3, "entr', "unreadable"),
    "binary": (b"\xff\xfe\x00garbage", "unreadable"),
    "a list": (b"[1, 2, 3]", "not a JSON object"),
    "zero width": (b'{"schema": 1, "kind": "speaker", "dim": 0, "entries": {}}', "positive integer dim"),
    "string width": (b'{"schema": 1, "kind": "speaker", "dim": "3", "entries": {}}', "positive integer dim"),
    "no entries": (b'{"schema": 1, "kind": "speaker", "dim": 3}', "entries object"),
    "path traversal": (b'{"schema": 1, "kind": "speaker", "dim": 3, "entries": {"a": {"file": "../a.npy"}}}',
                       "names no plain file"),
    "entry not an object": (b'{"schema": 1, "kind": "speaker", "dim": 3, "entries": {"a": 3}}', "names no plain file"),
}


@pytest.mark.parametrize("case", sorted(BAD_INDEXES))
def test_a_bad_index_is_one_config_error_naming_it(tmp_path, case):
    content, message = BAD_INDEXES[case]
    (tmp_path / "index.json").write_bytes(content)
    with pytest.raises(ConfigError, match=message) as info:
        VectorTable(tmp_path, kind="speaker")
    assert str(tmp_path / "index.json") in info.value.message
