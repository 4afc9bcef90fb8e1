"""Remember which bundle files already matched their sha256, so `emotrt run` hashes a bundle once per content.

A file counts as verified while its identity is unchanged: size, mtime, ctime and inode. ctime
cannot be set back from user space (any write or ``touch``/``os.utime`` advances it), so a
file modified after it was verified is hashed again and a tampered one is still caught. The
record lives outside the bundle (bundles may be read-only and list every file they carry), in
``$XDG_CACHE_HOME/emotrt/verified`` (else ``~/.cache/emotrt/verified``), one small JSON per
bundle path; ``emotrt selftest`` and :meth:`Bundle.open` without ``verify="cached"`` ignore it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

from emotrt.runtime.atomic import atomic_write

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """Where verification records are kept."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "emotrt" / "verified"


def file_identity(path: Path) -> List[int]:
    """What must stay equal for an earlier hash to still hold: size, mtime, ctime (ns) and inode."""
    st = os.stat(str(path))
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


class VerifiedFiles:
    """The sha256 each file of one bundle had when it last verified, keyed by its identity."""

    def __init__(self, root: Path, directory: Optional[Path] = None) -> None:
        root = Path(os.path.realpath(str(root)))
        key = hashlib.sha256(str(root).encode("utf-8")).hexdigest()[:32]
        self.path = (directory or cache_dir()) / (key + ".json")
        self.root = root
        self._entries: Dict[str, Any] = self._read()
        self._fresh: Dict[str, Any] = {}

    def _read(self) -> Dict[str, Any]:
        try:
            record = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(record, dict) or record.get("root") != str(self.root):
            return {}
        entries = record.get("files")
        return entries if isinstance(entries, dict) else {}

    def known(self, rel: str, sha256: str) -> bool:
        """True when ``rel`` verified as ``sha256`` before and has not changed since."""
        entry = self._entries.get(rel)
        if not isinstance(entry, list) or len(entry) != 2 or entry[0] != sha256:
            return False
        try:
            return entry[1] == file_identity(self.root / rel)
        except OSError:
            return False

    def remember(self, rel: str, sha256: str, identity: List[int]) -> None:
        """Record that ``rel`` (with ``identity`` taken before hashing) matched ``sha256``."""
        self._fresh[rel] = [sha256, identity]

    def save(self) -> None:
        """Write the record atomically; an unwritable cache only costs a re-hash next time."""
        if not self._fresh:
            return
        entries = dict(self._entries, **self._fresh)
        data = json.dumps({"root": str(self.root), "files": entries}).encode("utf-8")
        try:
            atomic_write(self.path, data)
        except OSError as exc:
            log.debug("cannot record verified files in %s: %s", self.path, exc)
