"""``emotrt data``: statistics tables, and one-line errors."""
import subprocess
import sys

from emotrt.commands._corpus_tables import print_stats
from tests.training.corpus.conftest import tiny_config, tiny_corpus  # noqa: F401  (shared fixtures)
from tests.training.corpus.test_prepare import build_ravdess


def test_synth_statistics_show_hours_speakers_styles_environments_and_testsets(tiny_corpus, capsys):
    root, stats = tiny_corpus
    print_stats(stats, root)
    out = capsys.readouterr().out
    for expected in ("hours", "4 (2/2)", "angry 4", "construction", "unseen", "two_talker_same_0db (4)", "generated in"):
        assert expected in out


def test_cli_prepare_prints_statistics_and_errors_in_one_line(tmp_path):
    build_ravdess(tmp_path / "src")
    cmd = [sys.executable, "-m", "emotrt", "data", "prepare", "ravdess", str(tmp_path / "src"), "--out", str(tmp_path / "o"), "--workers", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "train" in proc.stdout and "neutral" in proc.stdout
    bad = subprocess.run(cmd[:-5] + [str(tmp_path / "missing"), "--out", str(tmp_path / "p")], capture_output=True, text=True)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert bad.stderr.startswith("error: ravdess corpus path not found")


def test_cli_combine_prints_class_tables_and_bad_input_is_one_line(tmp_path):
    from tests.training.corpus.test_combine import fake_corpus

    a = fake_corpus(tmp_path / "a", "alpha", [("a1", "s1", "train", "angry"), ("a2", "s1", "train", "angry"),
                                             ("a3", "s2", "test", "sad")])
    b = fake_corpus(tmp_path / "b", "beta", [("b1", "s1", "train", "sad")])
    base = [sys.executable, "-m", "emotrt", "data", "combine"]
    ok = subprocess.run(base + [str(a), str(b), "--out", str(tmp_path / "o"), "--balance", "resample"],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "before balancing (resample)" in ok.stdout and "after balancing" in ok.stdout
    (tmp_path / "empty").mkdir()
    for args, message in (([str(a), str(tmp_path / "missing")], "error: corpus directory not found"),
                          ([str(a), str(tmp_path / "empty")], "error: {} has no prepared manifest".format(tmp_path / "empty")),
                          ([str(a), "--classes", "angry,bored"], "error: unknown class 'bored'")):
        bad = subprocess.run(base + args + ["--out", str(tmp_path / "p")], capture_output=True, text=True)
        assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
        assert bad.stderr.startswith(message), bad.stderr
    assert not (tmp_path / "p").exists()
