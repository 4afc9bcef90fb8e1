"""Writes that never leave a half-written file or directory behind (DESIGN.md: "nothing is half-written").

Every stage stages its output beside the destination and renames it into place only when
complete; a failure removes the staging copy and leaves any previous output untouched.
Staged files and directories get the modes a plain ``open``/``mkdir`` would (0666/0777 less the
umask), not ``tempfile``'s 0600/0700: a bundle built by one user stays readable by the service user.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Optional

from emotrt.runtime.errors import OutputError


def current_umask() -> int:
    """The process umask, read without changing it where Linux reports it (/proc/self/status)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not atomic across threads)
    os.umask(mask)
    return mask


def make_dirs(path: Any) -> Path:
    """``mkdir -p path``; a file in the way or a read-only parent is one :class:`OutputError`, not a traceback."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable(path, exc) from exc
    return path


def _unwritable(path: Path, exc: OSError) -> OutputError:
    return OutputError("cannot write in {}: {}".format(path, exc.strerror or exc),
                       hint="choose an output in an existing, writable directory")


@contextlib.contextmanager
def atomic_file(path: Any, suffix: str = "", mode: Optional[int] = None) -> Iterator[str]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success, remove it on failure.

    The file gets ``mode`` (e.g. 0o600 for a private key, set before anything is written), else
    0666 less the umask.
    """
    path = Path(path)
    make_dirs(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix="." + path.name, suffix=suffix)
    except OSError as exc:
        raise _unwritable(path.parent, exc) from exc
    os.close(fd)
    os.chmod(tmp, mode if mode is not None else 0o666 & ~current_umask())
    try:
        yield tmp
        os.replace(tmp, str(path))
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write(path: Any, data: bytes, mode: Optional[int] = None) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (``mode``: see :func:`atomic_file`)."""
    with atomic_file(path, mode=mode) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def replace_dir(new: Any, out: Any) -> None:
    """Swap the finished directory ``new`` in as ``out``; an old ``out`` is removed only afterwards."""
    new, out = Path(new), Path(out)
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(dir=str(out.parent), prefix="." + out.name + ".old-")) / out.name
        os.replace(str(out), str(old))
    os.replace(str(new), str(out))
    if old is not None:
        shutil.rmtree(str(old.parent), ignore_errors=True)


@contextlib.contextmanager
def staged_dir(out: Any, tag: str = "partial") -> Iterator[Path]:
    """Yield an empty directory beside ``out`` that replaces ``out`` on success and is removed on failure."""
    out = Path(out)
    make_dirs(out.parent)
    try:
        work = Path(tempfile.mkdtemp(dir=str(out.parent), prefix="." + out.name + "." + tag + "-"))
    except OSError as exc:
        raise _unwritable(out.parent, exc) from exc
    os.chmod(str(work), 0o777 & ~current_umask())
    try:
        yield work
    except BaseException:
        shutil.rmtree(str(work), ignore_errors=True)
        raise
    replace_dir(work, out)
