"""``emotrt train``: recipe errors are one line and exit 2, before any training starts."""
import subprocess
import sys


def emotrt(*args):
    return subprocess.run([sys.executable, "-m", "emotrt", *args], capture_output=True, text=True)


def test_unknown_recipe_key_is_one_line_error():
    proc = emotrt("train", "tse", "tse_quick", "--set", "data.batchsize=3")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: recipe [data]: unknown key(s) batchsize") and proc.stderr.count("\n") == 1


def test_recipe_for_another_task_is_refused():
    proc = emotrt("train", "ser", "tse_quick")
    assert proc.returncode == 2 and "is for task 'tse', not 'ser'" in proc.stderr


def test_missing_recipe_lists_the_shipped_ones():
    proc = emotrt("train", "tse", "no_such_recipe")
    assert proc.returncode == 2 and "tse_edge" in proc.stderr and "tse_quick" in proc.stderr
