"""What every loader shares: the record it returns, layout checks, and a stable split rule."""
from __future__ import annotations

import csv
import dataclasses
import zlib
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from emotrt.runtime.errors import CorpusError


@dataclasses.dataclass(frozen=True)
class Source:
    """One file of a real corpus with its harmonised labels, before resampling."""

    file: Path
    id: str
    split: str
    speaker: Optional[str] = None
    gender: Optional[str] = None
    text: Optional[str] = None
    emotion: Optional[str] = None
    avd: Optional[Tuple[float, float, float]] = None
    environment: Optional[str] = None
    description: Optional[str] = None


def corpus_dir(path: Path, corpus: str) -> Path:
    """``path`` as a directory, or a CorpusError when it does not exist."""
    path = Path(path)
    if not path.is_dir():
        raise CorpusError(
            "{} corpus path not found: {}".format(corpus, path),
            hint="give the directory of your local copy: emotrt data prepare {} /path/to/{}".format(corpus, corpus),
        )
    return path


def wrong_layout(path: Path, corpus: str, layout: str) -> CorpusError:
    """The error for a directory that is not in ``corpus``'s documented layout."""
    found = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())[:8]
    return CorpusError(
        "{} is not a {} copy: expected {}; found {}".format(path, corpus, layout, ", ".join(found) or "an empty directory"),
        hint="point `emotrt data prepare {}` at the corpus root (see docs/corpus.md)".format(corpus),
    )


def nonempty(sources: Iterable[Source], path: Path, corpus: str, layout: str) -> List[Source]:
    """``sources`` as a list, or the wrong-layout error when nothing matched."""
    sources = list(sources)
    if not sources:
        raise wrong_layout(path, corpus, layout)
    return sources


def stable_split(name: str) -> str:
    """A split from a checksum of ``name`` (80/10/10) for corpora without an official one."""
    bucket = zlib.crc32(name.encode("utf-8")) % 10
    return "test" if bucket == 0 else "valid" if bucket == 1 else "train"


def csv_rows(path: Path) -> List[Dict[str, str]]:
    """The rows of a CSV file with a header line, as dicts."""
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
