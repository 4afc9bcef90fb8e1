"""Corpus output helpers."""
from emotrt.training.corpus.output import collect


def test_collect_reports_progress_in_order():
    seen = []
    assert collect(iter("abc"), 3, lambda done, total: seen.append((done, total))) == ["a", "b", "c"]
    assert seen == [(1, 3), (2, 3), (3, 3)]
