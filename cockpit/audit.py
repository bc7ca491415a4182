"""Who saw which personal record, when, and how: the privacy audit log.

Its own SQLite file in the data dir (`audit.sqlite`, 0600), not a table of the auth store
and not part of any incident's log:
- an incident's log is replayed, exported and handed to trainers; the audit must not
  travel with it, and replaying must not add to it;
- the auth store holds credentials and deletes rows as they are rotated (secure_delete);
  the audit only grows, and keeping it apart lets it be kept, backed up and read (by an
  admin) on its own terms.

An entry is written (committed) before the personal data it records is sent; a write that
fails raises `AuditError` and the caller sends nothing (503).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from cockpit.situation import iso

__all__ = ["AUDIT_FILE", "AuditEntry", "AuditError", "AuditLog"]

AUDIT_FILE = "audit.sqlite"
MAX_RECORDS = 10_000  # detection ids named in one entry (a page of the log: up to 5,000)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    user TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    incident TEXT NOT NULL,
    records TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at);
"""


class AuditError(Exception):
    """The audit log cannot be written or read; the message says why."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: float
    user: str
    role: str
    action: str
    incident: str
    records: list[str]
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": iso(self.at),
            "user": self.user,
            "role": self.role,
            "action": self.action,
            "incident": self.incident,
            "records": self.records,
            "detail": self.detail,
        }


class AuditLog:
    """Append and read audit entries; one connection, guarded by a lock (thread-safe).
    Several processes may share the file (WAL, busy timeout)."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        # 0600 from the first byte: who looked at whom is itself personal data.
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        try:
            self._db = sqlite3.connect(
                path, timeout=5.0, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA busy_timeout = 5000")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise AuditError(f"{path}: cannot open the audit log: {exc}") from exc

    def record(
        self,
        *,
        user: str,
        role: str,
        action: str,
        incident: str,
        records: Sequence[str],
        detail: str = "",
    ) -> int:
        """Write one entry and commit it; returns its id. Raises `AuditError`."""
        ids = list(records)[:MAX_RECORDS]
        # Cut to what the entry's ISO `at` says (microseconds), so `since=<an entry's at>`
        # means exactly "after that entry".
        at = datetime.fromtimestamp(self._clock(), UTC).timestamp()
        row = (at, user, role, action, incident, orjson.dumps(ids).decode(), detail)
        try:
            with self._lock:
                cursor = self._db.execute(
                    "INSERT INTO audit (at, user, role, action, incident, records, detail) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
        except (sqlite3.Error, ValueError) as exc:  # ValueError: str with NUL; closed db
            raise AuditError(f"{self.path}: audit entry not written: {exc}") from exc
        return int(cursor.lastrowid or 0)

    def entries(self, *, since: float | None = None, limit: int = 100) -> list[AuditEntry]:
        """Newest first; only entries after `since` (epoch seconds) if given."""
        try:
            with self._lock:
                rows = self._db.execute(
                    "SELECT id, at, user, role, action, incident, records, detail FROM audit "
                    "WHERE at > ? ORDER BY at DESC, id DESC LIMIT ?",
                    (since if since is not None else float("-inf"), limit),
                ).fetchall()
        except (sqlite3.Error, ValueError) as exc:
            raise AuditError(f"{self.path}: cannot read the audit log: {exc}") from exc
        return [
            AuditEntry(int(i), float(at), u, r, a, inc, list(orjson.loads(rec)), d)
            for i, at, u, r, a, inc, rec, d in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
