"""Named vector tables on disk: the environment table (tokens) and the speaker store (embeddings).

A table is a directory: ``index.json`` plus one float32 ``<name>.npy`` per entry.
The device reads tokens and embeddings; it never sees the text or speaker encoder.
Writes go to a temporary file and are renamed into place, so a cut never leaves a
half-written table.
"""
from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from emotrt.runtime.atomic import atomic_write, make_dirs
from emotrt.runtime.errors import ConfigError

SCHEMA = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def is_valid_name(name: Any) -> bool:
    """Whether ``name`` may name a speaker or an environment (and its vector file)."""
    return isinstance(name, str) and _NAME.fullmatch(name) is not None  # fullmatch: "$" also matches before a final "\n"


class VectorTable:
    """A directory of named float32 vectors of one width.

    >>> import tempfile, numpy as np
    >>> table = VectorTable(tempfile.mkdtemp(), kind="environment", dim=4)
    >>> table.add("car_highway", np.ones(4), descriptions=["a car on the highway"])
    >>> table.names(), float(table.get("car_highway").sum())
    (['car_highway'], 4.0)
    """

    def __init__(self, root: Any, kind: str, dim: Optional[int] = None) -> None:
        self.root = Path(root)
        self.kind = kind
        index = self.root / "index.json"
        if index.is_file():
            data = _read_index(index, kind)
            self.dim = int(data["dim"])
            self.entries: Dict[str, Dict[str, Any]] = data["entries"]
            if dim is not None and dim != self.dim:
                raise ConfigError(
                    "{} table {} has width {}, the model expects {}".format(kind, self.root, self.dim, dim)
                )
        else:
            if dim is None:
                raise ConfigError("no {} table at {}".format(kind, self.root))
            self.dim, self.entries = int(dim), {}

    def names(self) -> List[str]:
        return sorted(self.entries)

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def info(self, name: str) -> Dict[str, Any]:
        self._require(name)
        return dict(self.entries[name])

    def get(self, name: str) -> np.ndarray:
        """The vector of ``name`` as float32 [dim]; a file that is unreadable, of another width or not finite is refused."""
        self._require(name)
        path = self.root / self.entries[name]["file"]
        hint = "re-create it: {}".format(_FIX[self.kind].format(name=name))
        try:
            vector = np.load(str(path), allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise ConfigError("{} {!r}: cannot read {} ({})".format(self.kind, name, path, _first_line(exc)), hint=hint)
        if not isinstance(vector, np.ndarray) or vector.dtype.kind not in "fiu" or vector.shape != (self.dim,):
            raise ConfigError("{} {!r}: {} holds {} {}, expected {} float32 values".format(
                self.kind, name, path, getattr(vector, "dtype", type(vector).__name__), getattr(vector, "shape", ""),
                self.dim), hint=hint)
        bad = int(np.count_nonzero(~np.isfinite(vector)))
        if bad:
            raise ConfigError("{} {!r}: {} holds {} non-finite value(s) of {}".format(self.kind, name, path, bad, self.dim),
                              hint=hint)
        return vector.astype(np.float32)

    def check(self) -> None:
        """Load every vector (see :meth:`get`): the first bad file raises, named."""
        for name in self.names():
            self.get(name)

    def add(self, name: str, vector: Any, replace: bool = False, **meta: Any) -> None:
        if not is_valid_name(name):
            raise ConfigError(
                "{} name {!r} must be 1-64 letters, digits, '_', '-' or '.'".format(self.kind, name)
            )
        if name in self.entries and not replace:
            raise ConfigError(
                "{} {!r} already exists in {}".format(self.kind, name, self.root),
                hint="remove it first or pass --replace",
            )
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        if vector.shape != (self.dim,) or not np.all(np.isfinite(vector)):
            raise ConfigError(
                "{} {!r}: expected {} finite values, got shape {}".format(self.kind, name, self.dim, vector.shape)
            )
        make_dirs(self.root)
        buf = io.BytesIO()
        np.save(buf, vector)
        atomic_write(self.root / (name + ".npy"), buf.getvalue())
        self.entries[name] = dict(meta, file=name + ".npy")
        self._save()

    def remove(self, name: str) -> None:
        self._require(name)
        entry = self.entries.pop(name)
        self._save()
        path = self.root / entry["file"]
        if path.exists():
            path.unlink()

    def _require(self, name: str) -> None:
        if name not in self.entries:
            known = ", ".join(self.names()) or "none"
            raise ConfigError("unknown {} {!r} (known: {})".format(self.kind, name, known))

    def _save(self) -> None:
        data = {"schema": SCHEMA, "kind": self.kind, "dim": self.dim, "entries": self.entries}
        atomic_write(self.root / "index.json", json.dumps(data, indent=1, sort_keys=True).encode())



_FIX = {"speaker": "emotrt enroll {name} AUDIO --replace",
        "environment": "emotrt env add {name} DESCRIPTION --ckpt CKPT/ser --table TABLE --replace"}


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _read_index(index: Path, kind: str) -> Dict[str, Any]:
    """``index.json`` of a table, checked: schema, kind, a positive width, entries naming plain files."""
    try:
        data = json.loads(index.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError("{} table index {} is unreadable ({})".format(kind, index, _first_line(exc)))
    if not isinstance(data, dict):
        raise ConfigError("{} table index {} is not a JSON object".format(kind, index))
    if data.get("kind") != kind:
        raise ConfigError("{} holds a {} table, not {}".format(index.parent, data.get("kind"), kind))
    dim, entries = data.get("dim"), data.get("entries")
    if not isinstance(dim, int) or isinstance(dim, bool) or dim <= 0 or not isinstance(entries, dict):
        raise ConfigError("{} table index {}: expected a positive integer dim and an entries object".format(kind, index))
    for name, entry in entries.items():
        file = entry.get("file") if isinstance(entry, dict) else None
        if not isinstance(file, str) or not is_valid_name(file) or not isinstance(name, str):
            raise ConfigError("{} table index {}: entry {!r} names no plain file in the table".format(kind, index, name))
    return data
