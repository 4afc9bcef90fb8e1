"""Atomic writes and staged directories leave nothing half-written."""
import pytest

from emotrt.runtime.atomic import atomic_file, staged_dir


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


def test_staged_dir_replaces_only_when_complete(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with staged_dir(out) as work:
            (work / "new.txt").write_text("half")
            raise RuntimeError("cut")
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and (out / "old.txt").exists()
    with staged_dir(out) as work:
        (work / "new.txt").write_text("new")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert [p.name for p in out.iterdir()] == ["new.txt"]


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_staged_outputs_follow_the_umask(tmp_path, umask):
    import os

    from emotrt.runtime.atomic import atomic_write, current_umask, staged_dir

    old = os.umask(umask)
    try:
        assert current_umask() == umask
        atomic_write(tmp_path / "f.bin", b"x")
        with staged_dir(tmp_path / "d") as work:
            (work / "inner").write_text("y")
    finally:
        os.umask(old)
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o777 & ~umask


def test_an_explicit_mode_holds_from_the_first_byte(tmp_path):
    import os

    from emotrt.runtime.atomic import atomic_file

    old = os.umask(0o022)
    try:
        with atomic_file(tmp_path / "key", mode=0o600) as tmp:
            assert os.stat(tmp).st_mode & 0o777 == 0o600  # before the secret is written
            with open(tmp, "wb") as f:
                f.write(b"secret")
    finally:
        os.umask(old)
    assert (tmp_path / "key").stat().st_mode & 0o777 == 0o600
