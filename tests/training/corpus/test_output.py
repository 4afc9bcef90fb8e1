"""Atomic writes leave nothing behind on failure."""
import pytest

from emotrt.training.corpus.output import atomic_file, collect


def test_failed_write_leaves_no_file(tmp_path):
    target = tmp_path / "x.json"
    with pytest.raises(RuntimeError):
        with atomic_file(target) as tmp:
            open(tmp, "w").write("half")
            raise RuntimeError("cut")
    assert list(tmp_path.iterdir()) == []


def test_successful_write_replaces(tmp_path):
    target = tmp_path / "x.json"
    target.write_text("old")
    with atomic_file(target) as tmp:
        open(tmp, "w").write("new")
    assert target.read_text() == "new" and list(tmp_path.iterdir()) == [target]


def test_collect_reports_progress_in_order():
    seen = []
    assert collect(iter("abc"), 3, lambda done, total: seen.append((done, total))) == ["a", "b", "c"]
    assert seen == [(1, 3), (2, 3), (3, 3)]
