"""Writing atomically: a file or a whole corpus directory is built under a hidden name, then renamed."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterable, List, Optional, TypeVar

T = TypeVar("T")
Progress = Callable[[int, int], None]

from emotrt.runtime.atomic import replace_dir
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
    replace_dir(tmp, out)


def abandon_output(tmp: Path) -> None:
    """Remove a half-written corpus after a failure."""
    shutil.rmtree(str(tmp), ignore_errors=True)


def collect(results: Iterable[T], total: int, progress: Optional[Progress] = None) -> List[T]:
    """Gather ``results`` in order, calling ``progress(done, total)`` after each one."""
    out = []
    for item in results:
        out.append(item)
        if progress is not None:
            progress(len(out), total)
    return out
