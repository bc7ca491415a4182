"""Trainer bookmarks and notes, kept beside a recording and never inside it.

One JSON file, `<recording without .sqlite>/trainer-bookmarks.json` (for a log in the
data dir that is the incident's own folder, beside its video and snapshots). JSON and
not SQLite: a trainer's handful of notes is read and copied along with the recording by
people, diffs cleanly, and a whole-file atomic replace (temp file, fsync, rename) can
never leave it half written. Every change reads the file again under an exclusive lock,
so two replay processes on the same recording do not lose each other's notes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from cockpit.situation import iso

__all__ = ["MAX_BOOKMARKS", "BookmarkError", "BookmarkStore", "bookmarks_path"]

MAX_BOOKMARKS = 2000
_FORMAT = 1


class BookmarkError(Exception):
    """The bookmarks file cannot be read or written; the message says which and why."""


def bookmarks_path(recording: Path) -> Path:
    return recording.with_suffix("") / "trainer-bookmarks.json"


class BookmarkStore:
    """Stateless: every call reads the file, so a restart loses nothing."""

    def __init__(self, recording: Path, incident: str) -> None:
        self.path = bookmarks_path(recording)
        self.incident = incident

    def all(self) -> list[dict[str, Any]]:
        return sorted(self._read(), key=lambda b: (b["t"], b["created_at"]))

    def add(self, t: float, title: str, note: str, author: str) -> dict[str, Any]:
        mark = {
            "id": "bm-" + secrets.token_hex(6),
            "t": t,
            "at": iso(t),
            "title": title,
            "note": note,
            "author": author,
            "created_at": iso(time.time()),
        }
        with self._locked():
            marks = self._read()
            if len(marks) >= MAX_BOOKMARKS:
                raise BookmarkError(f"at most {MAX_BOOKMARKS} bookmarks per recording")
            self._write([*marks, mark])
        return mark

    def get(self, mark_id: str) -> dict[str, Any] | None:
        return next((m for m in self._read() if m["id"] == mark_id), None)

    def delete(self, mark_id: str) -> bool:
        with self._locked():
            marks = self._read()
            kept = [m for m in marks if m["id"] != mark_id]
            if len(kept) == len(marks):
                return False
            self._write(kept)
        return True

    # --- the file -----------------------------------------------------------------

    def _read(self) -> list[dict[str, Any]]:
        try:
            data = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return []
        except (OSError, orjson.JSONDecodeError) as exc:
            raise BookmarkError(f"{self.path}: cannot read the bookmarks: {exc}") from exc
        marks = data.get("bookmarks") if isinstance(data, dict) else None
        if not isinstance(marks, list):
            raise BookmarkError(f"{self.path}: not a bookmarks file")
        return marks

    def _write(self, marks: list[dict[str, Any]]) -> None:
        body = orjson.dumps(
            {"format": _FORMAT, "incident": self.incident, "bookmarks": marks},
            option=orjson.OPT_INDENT_2,
        )
        fd, tmp = tempfile.mkstemp(prefix=".bookmarks-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise BookmarkError(f"{self.path}: cannot write the bookmarks: {exc}") from exc
        # The rename itself must survive a power cut, not just the file's bytes.
        with contextlib.suppress(OSError):
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise BookmarkError(f"{self.path.parent}: cannot store bookmarks here: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock
