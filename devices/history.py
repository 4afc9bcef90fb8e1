"""Profile history: every profile appended to a SQLite database (WAL, versioned schema).

One row per precision of a profile, keyed by bundle id, device fingerprint, precision and emotrt
commit; the row keeps that precision's whole run (per-hop samples included), so ``compare`` needs
nothing else. A locked or corrupt database is a one-line :class:`HistoryError`, never a traceback.

    with History("profiles.db") as history:
        ids = history.append(doc, device_name="orin-1")
        rows = history.rows(limit=10)
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, Dict, List, Optional

from emotrt.runtime.errors import EmotrtError

SCHEMA_VERSION = 1
DEFAULT_PATH = "profiles.db"

_CREATE = """
CREATE TABLE IF NOT EXISTS profiles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL,
    bundle_id TEXT NOT NULL,
    bundle_path TEXT NOT NULL,
    device_fingerprint TEXT NOT NULL,
    device_name TEXT NOT NULL,
    precision TEXT NOT NULL,
    backend TEXT NOT NULL,
    emotrt_commit TEXT NOT NULL,
    pace TEXT NOT NULL,
    real_time_factor REAL,
    end_to_end_p50_ms REAL,
    end_to_end_p99_ms REAL,
    average_power_mw REAL,
    run_json TEXT NOT NULL,
    profile_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS profiles_key ON profiles (bundle_id, device_fingerprint, precision, emotrt_commit);
"""

COLUMNS = ("id", "created", "bundle_id", "device_name", "device_fingerprint", "precision", "backend", "emotrt_commit",
           "pace", "real_time_factor", "end_to_end_p50_ms", "end_to_end_p99_ms", "average_power_mw")


class HistoryError(EmotrtError):
    """The profile history database cannot be used (locked, corrupt, newer schema)."""


def _fail(path: Path, exc: sqlite3.Error) -> HistoryError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return HistoryError("history database {} is locked by another process ({})".format(path, text),
                            hint="wait for the other profile to finish, or pass --history OTHER.db")
    return HistoryError("history database {} is unreadable or corrupt ({})".format(path, text),
                        hint="move it aside (mv {0} {0}.bad) and rerun: a new one is created".format(path))


class History:
    """The SQLite history at ``path`` (created on first use)."""

    def __init__(self, path: Any = DEFAULT_PATH, timeout: float = 5.0) -> None:
        self.path = Path(path)
        try:
            self.db = sqlite3.connect(str(self.path), timeout=timeout)
            self.db.row_factory = sqlite3.Row
            self._migrate()
        except sqlite3.Error as exc:
            raise _fail(self.path, exc) from exc

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise HistoryError("history database {} has schema {}, newer than this emotrt's {}".format(
                self.path, version, SCHEMA_VERSION), hint="upgrade emotrt, or pass --history OTHER.db")
        self.db.execute("PRAGMA journal_mode=WAL")
        if version < SCHEMA_VERSION:
            with self.db:
                self.db.executescript(_CREATE)
                self.db.execute("PRAGMA user_version = {}".format(SCHEMA_VERSION))

    def append(self, doc: Dict[str, Any], device_name: Optional[str] = None) -> List[int]:
        """One row per run (precision) of ``doc``; returns their ids."""
        ids = []
        name = device_name or doc.get("device_name") or doc["device"].get("hostname", "")
        shared = {k: v for k, v in doc.items() if k != "runs"}
        try:
            with self.db:
                for run in doc["runs"]:
                    e2e = run["stages"]["end_to_end"]
                    cursor = self.db.execute(
                        "INSERT INTO profiles (created, bundle_id, bundle_path, device_fingerprint, device_name, precision,"
                        " backend, emotrt_commit, pace, real_time_factor, end_to_end_p50_ms, end_to_end_p99_ms,"
                        " average_power_mw, run_json, profile_json) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (doc["created"], doc["bundle"]["id"], doc["bundle"]["path"], doc["device"]["fingerprint_id"], name,
                         run["precision"], run["backend"], doc["emotrt_commit"], doc["config"]["pace"],
                         run["real_time_factor"], e2e.get("p50_ms"), e2e.get("p99_ms"),
                         doc["resources"].get("average_power_mw"), json.dumps(run), json.dumps(shared)))
                    ids.append(int(cursor.lastrowid))
        except sqlite3.Error as exc:
            raise _fail(self.path, exc) from exc
        return ids

    def rows(self, limit: int = 20, bundle_id: Optional[str] = None, precision: Optional[str] = None) -> List[Dict[str, Any]]:
        """The newest ``limit`` rows (summary columns), optionally of one bundle or precision."""
        where, args = [], []  # type: List[str], List[Any]
        if bundle_id:
            where.append("bundle_id LIKE ?")
            args.append(bundle_id + "%")
        if precision:
            where.append("precision = ?")
            args.append(precision)
        sql = "SELECT {} FROM profiles {} ORDER BY id DESC LIMIT ?".format(
            ", ".join(COLUMNS), ("WHERE " + " AND ".join(where)) if where else "")
        try:
            return [dict(r) for r in self.db.execute(sql, args + [limit])]
        except sqlite3.Error as exc:
            raise _fail(self.path, exc) from exc

    def get(self, row_id: int) -> Dict[str, Any]:
        """Row ``row_id`` as a one-run profile document."""
        try:
            row = self.db.execute("SELECT * FROM profiles WHERE id = ?", (row_id,)).fetchone()
        except sqlite3.Error as exc:
            raise _fail(self.path, exc) from exc
        if row is None:
            raise HistoryError("no profile #{} in {}".format(row_id, self.path), hint="list them: emotrt profile history")
        doc = json.loads(row["profile_json"])
        doc["runs"] = [json.loads(row["run_json"])]
        doc["history_id"] = row_id
        doc["device_name"] = row["device_name"]
        return doc

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "History":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
