"""Writing atomically: a file or a whole corpus directory is built under a hidden name, then renamed."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Iterator, List, Optional, TypeVar

T = TypeVar("T")
Progress = Callable[[int, int], None]

from emotrt.runtime.errors import CorpusError


def start_output(out: Path, force: bool) -> Path:
    """A fresh hidden directory next to ``out``, after checking ``out`` may be (re)placed."""
    if out.exists() and not out.is_dir():
        raise CorpusError("output {} exists and is not a directory".format(out), hint="choose another --out")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise CorpusError("output directory {} is not empty".format(out),
                          hint="pass --force to replace it or choose another --out")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=str(out.parent), prefix="." + out.name + ".partial-"))
    except OSError as exc:
        raise CorpusError(
            "cannot write the corpus to {}: {}".format(out, exc.strerror or exc),
            hint="choose a writable --out (e.g. --out ~/emotrt-data/synth) or fix the directory's permissions",
        ) from None


def finish_output(tmp: Path, out: Path) -> None:
    """Move the finished corpus into place, replacing an old one only after the new one is complete."""
    old = None
    if out.exists():
        old = out.with_name("." + out.name + ".old-" + str(os.getpid()))
        os.replace(str(out), str(old))
    os.replace(str(tmp), str(out))
    if old is not None:
        shutil.rmtree(str(old), ignore_errors=True)


def abandon_output(tmp: Path) -> None:
    """Remove a half-written corpus after a failure."""
    shutil.rmtree(str(tmp), ignore_errors=True)


@contextlib.contextmanager
def atomic_file(path: Path, suffix: str = "") -> Iterator[str]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success, remove it on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix="." + path.name, suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, str(path))
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def collect(results: Iterable[T], total: int, progress: Optional[Progress] = None) -> List[T]:
    """Gather ``results`` in order, calling ``progress(done, total)`` after each one."""
    out = []
    for item in results:
        out.append(item)
        if progress is not None:
            progress(len(out), total)
    return out
