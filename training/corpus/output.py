"""A corpus directory is built in a staged directory (:func:`emotrt.runtime.atomic.staged_dir`), then renamed."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable, Iterable, Iterator, List, Optional, TypeVar

from emotrt.runtime.atomic import staged_dir
from emotrt.runtime.errors import CorpusError

T = TypeVar("T")
Progress = Callable[[int, int], None]


@contextlib.contextmanager
def corpus_output(out: Path, force: bool) -> Iterator[Path]:
    """A fresh hidden directory next to ``out`` that replaces ``out`` when the block ends without an error.

    ``out`` is checked first: a non-empty one is replaced only with ``force``. On an error the
    staged directory is removed and an old ``out`` stays as it was.
    """
    if out.exists() and not out.is_dir():
        raise CorpusError("output {} exists and is not a directory".format(out), hint="choose another --out")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise CorpusError("output directory {} is not empty".format(out),
                          hint="pass --force to replace it or choose another --out")
    stack = contextlib.ExitStack()
    try:
        tmp = stack.enter_context(staged_dir(out, "partial"))
    except OSError as exc:
        raise CorpusError(
            "cannot write the corpus to {}: {}".format(out, exc.strerror or exc),
            hint="choose a writable --out (e.g. --out ~/emotrt-data/synth) or fix the directory's permissions",
        ) from None
    with stack:
        yield tmp


def collect(results: Iterable[T], total: int, progress: Optional[Progress] = None) -> List[T]:
    """Gather ``results`` in order, calling ``progress(done, total)`` after each one."""
    out = []
    for item in results:
        out.append(item)
        if progress is not None:
            progress(len(out), total)
    return out
