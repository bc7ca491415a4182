"""The event log: one SQLite file per incident, written by a single thread.

The log is the source of truth. Events are appended with group commit (whatever is
queued goes in one transaction), and only after a commit is the bus told, so an ingest
answers 2xx only for events that are on disk. Snapshots of the picture make seeking
fast; they are never needed for correctness.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import queue
import shutil
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from cockpit.events import Event, event_to_json, parse_event
from cockpit.situation import encode_snapshot

__all__ = [
    "FORMAT_VERSION",
    "LogReader",
    "LogRow",
    "Recorder",
    "RecorderError",
    "export_incident",
    "import_incident",
    "incident_folder",
    "incident_path",
    "log_row",
]

FORMAT_VERSION = "1"
log = logging.getLogger("cockpit.recorder")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    received_at REAL NOT NULL,
    observed_at REAL NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_received ON events (received_at);
CREATE TABLE IF NOT EXISTS snapshots (
    seq INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    body BLOB NOT NULL
);
"""


class RecorderError(Exception):
    """The log cannot be opened or written; the message says which file and why."""


# One row of the events table: seq, id, kind, received_at, observed_at, JSON body.
LogRow = tuple[int, str, str, float, float, bytes]


def log_row(event: Event) -> LogRow:
    """How an event (with its seq) is stored in the log."""
    if event.seq is None:
        raise RecorderError(f"event {event.id} has no seq: only the bus assigns them")
    return (
        event.seq,
        event.id,
        event.kind,
        event.received_at.timestamp(),
        event.observed_at.timestamp(),
        event_to_json(event),
    )


def incident_path(data_dir: Path, incident: str) -> Path:
    return data_dir / "incidents" / f"{incident}.sqlite"


def incident_folder(data_dir: Path, incident: str) -> Path:
    """Files that belong to an incident beside its log (video segments, snapshots)."""
    return data_dir / "incidents" / incident


def _connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


@dataclass(frozen=True, slots=True)
class _Snapshot:
    seq: int
    received_at: float
    data: dict[str, Any]


class Recorder:
    """Single writer of one incident's log. `append` is called from the event loop."""

    def __init__(
        self,
        path: Path,
        incident: str,
        *,
        synchronous: str = "FULL",
        backlog_max: int = 200_000,
        on_commit: Callable[[int], None] | None = None,
        exclusive: bool = True,
        settings_meta: Mapping[str, str] | None = None,
    ) -> None:
        self.path = path
        # Settings that decide what the fold derives (rule thresholds), kept with the log
        # so that a replay elsewhere raises the alerts this incident raised.
        self._settings_meta = dict(settings_meta or {})
        # exclusive: hold a file lock while recording, so a second process on the same
        # data dir fails loudly instead of numbering events twice. Off when a Redis lease
        # decides (a frozen former holder must not block the takeover).
        self._exclusive = exclusive
        self._lock_fd: int | None = None
        self.incident = incident
        self._synchronous = synchronous
        self._backlog_max = backlog_max
        self._on_commit = on_commit
        self._queue: queue.Queue[list[Event] | _Snapshot | None] = queue.Queue()
        self._backlog = 0  # events queued but not yet committed (both threads change it)
        self._backlog_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self.committed_seq = 0
        self.commits = 0
        self.events_written = 0
        self.snapshots_written = 0
        self.last_commit_ms = 0.0
        self.error: str | None = None

    # --- life cycle -----------------------------------------------------------------

    def open(self) -> int:
        """Open (or create) the log; returns the highest committed seq."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._exclusive:
            self._take_lock()
        try:
            conn = _connect(self.path)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.executescript(_SCHEMA)
            stored = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.Error as exc:
            raise RecorderError(f"{self.path}: cannot open the incident log: {exc}") from exc
        if stored and stored.get("incident") != self.incident:
            conn.close()
            raise RecorderError(
                f"{self.path}: belongs to incident {stored.get('incident')!r}, "
                f"not {self.incident!r}"
            )
        if not stored:
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [
                    ("incident", self.incident),
                    ("format", FORMAT_VERSION),
                    ("created_at", str(time.time())),
                ],
            )
        if self._settings_meta:
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                sorted(self._settings_meta.items()),
            )
        row = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
        self.committed_seq = int(row[0])
        # A crash can leave a snapshot ahead of the events it summarises; drop it.
        conn.execute("DELETE FROM snapshots WHERE seq > ?", (self.committed_seq,))
        self._conn = conn
        self._thread = threading.Thread(target=self._writer, name="recorder", daemon=True)
        self._thread.start()
        return self.committed_seq

    def _take_lock(self) -> None:
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RecorderError(
                f"{self.path}: incident {self.incident!r} is already being recorded by another "
                "process; run several processes with COCKPIT_REDIS_URL, or stop the other one"
            ) from None
        self._lock_fd = fd

    async def close(self) -> None:
        """Write everything queued, then stop the writer (staged shutdown)."""
        if self._thread is not None:
            self._queue.put(None)
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    # --- writing --------------------------------------------------------------------

    @property
    def backlog(self) -> int:
        return self._backlog

    async def append(self, events: list[Event]) -> None:
        """Queue events (seq set, in order) for the next group commit."""
        if self.error is not None:
            raise RecorderError(self.error)
        # Backlog guard: hold the producer back instead of growing without bound.
        # The writer is a thread; a short poll is simpler than a cross-thread event.
        while self._backlog >= self._backlog_max:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        with self._backlog_lock:
            self._backlog += len(events)
        self._queue.put(events)

    def save_snapshot(self, seq: int, received_at: float, data: dict[str, Any]) -> None:
        self._queue.put(_Snapshot(seq, received_at, data))

    def _writer(self) -> None:
        assert self._conn is not None
        conn = self._conn
        stop = False
        while not stop:
            item = self._queue.get()
            batch: list[list[Event] | _Snapshot] = []
            if item is None:
                stop = True
            else:
                batch.append(item)
            # Group commit: take whatever else is already waiting.
            while len(batch) < 500:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            if batch:
                self._write(conn, batch)

    def _write(self, conn: sqlite3.Connection, batch: list[list[Event] | _Snapshot]) -> None:
        started = time.perf_counter()
        rows: list[LogRow] = []
        snaps: list[tuple[int, float, bytes]] = []
        for item in batch:
            if isinstance(item, _Snapshot):
                body = zlib.compress(encode_snapshot(item.data), 1)
                snaps.append((item.seq, item.received_at, body))
                continue
            rows.extend(log_row(ev) for ev in item)
        try:
            conn.execute("BEGIN")
            before = conn.total_changes
            # OR IGNORE: a redelivered event (bus reconnect) is already in the log.
            _insert_events(conn, rows)
            if conn.total_changes - before < len(rows):
                self._check_redelivered(conn, rows)
            conn.executemany("INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?)", snaps)
            conn.execute("COMMIT")
        except (sqlite3.Error, RecorderError) as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            self.error = f"{self.path}: write failed: {exc}"
            log.error("%s", self.error)
            return
        self.commits += 1
        self.events_written += len(rows)
        self.snapshots_written += len(snaps)
        with self._backlog_lock:
            self._backlog -= len(rows)
        self.last_commit_ms = (time.perf_counter() - started) * 1000
        if rows:
            top = max(r[0] for r in rows)
            if top > self.committed_seq:
                self.committed_seq = top
                if self._on_commit is not None:
                    self._on_commit(top)

    @staticmethod
    def _check_redelivered(conn: sqlite3.Connection, rows: list[LogRow]) -> None:
        """Ignored rows must be the very same events, else two writers share a seq."""
        for seq, event_id, *_ in rows:
            stored = conn.execute("SELECT id FROM events WHERE seq = ?", (seq,)).fetchone()
            if stored is not None and stored[0] != event_id:
                raise RecorderError(
                    f"seq {seq} is taken by event {stored[0]}, not {event_id}: "
                    "another process writes this incident"
                )

    def stats(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "committed_seq": self.committed_seq,
            "backlog": self._backlog,
            "commits": self.commits,
            "events_written": self.events_written,
            "snapshots_written": self.snapshots_written,
            "last_commit_ms": round(self.last_commit_ms, 3),
            "error": self.error,
        }


_ROWS_PER_STATEMENT = 1000  # 6000 parameters; SQLite allows 32766


def _insert_events(conn: sqlite3.Connection, rows: list[LogRow]) -> None:
    """One multi-row INSERT per chunk instead of executemany.

    sqlite3 releases the GIL for every statement step; executemany steps once per row,
    and each time this thread must win the GIL back from the busy event loop. Measured
    here: ~1,300 rows/s that way beside a busy loop, ~64,000 with one statement.
    """
    for i in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[i : i + _ROWS_PER_STATEMENT]
        placeholders = ",".join(["(?,?,?,?,?,?)"] * len(chunk))
        sql = "INSERT OR IGNORE INTO events VALUES " + placeholders  # noqa: S608 - only "?"s
        conn.execute(sql, [value for row in chunk for value in row])


_SEQ_AT_WINDOW_S = 10.0  # far more than publishers' receive stamps ever interleave


class LogReader:
    """Read-only access to a recorded incident: events, snapshots, time index."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise RecorderError(f"{path}: no such recording")
        self.path = path
        self._conn = _connect(path, readonly=True)
        self._lock = threading.Lock()
        try:
            meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            raise RecorderError(f"{path}: not a cockpit recording: {exc}") from exc
        if meta.get("format") != FORMAT_VERSION or "incident" not in meta:
            raise RecorderError(f"{path}: not a cockpit recording of format {FORMAT_VERSION}")
        self.incident: str = meta["incident"]
        self.meta = meta

    def close(self) -> None:
        self._conn.close()

    def _one(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        with self._lock:
            return self._conn.execute(sql, args).fetchone()

    def bounds(self) -> tuple[int, float | None, float | None]:
        """(event count, first received_at, last received_at)."""
        count, first, last = self._one(
            "SELECT COUNT(*), MIN(received_at), MAX(received_at) FROM events"
        )
        return int(count), first, last

    def last_seq(self) -> int:
        return int(self._one("SELECT COALESCE(MAX(seq), 0) FROM events")[0])

    def seq_at(self, t: float) -> int:
        """The highest seq the server had received at time t (0 if none).

        `MAX(seq) WHERE received_at <= t` alone reads the table back from its end (up to
        1.5 s on a 2 M-event log, and the player asks every 20 ms). Receive times rise
        with seq except for a few ms where several processes publish: the maximum over the
        last window before t, found through the time index, is the same answer."""
        last = self._one(  # the last receive time by t (a quiet spell may lie between)
            "SELECT received_at FROM events WHERE received_at <= ? "
            "ORDER BY received_at DESC LIMIT 1",
            (t,),
        )
        if last is None:
            return 0
        row = self._one(
            "SELECT MAX(seq) FROM events WHERE received_at > ? AND received_at <= ?",
            (last[0] - _SEQ_AT_WINDOW_S, last[0]),
        )
        return int(row[0]) if row is not None and row[0] is not None else 0

    def snapshot_before(self, seq: int) -> tuple[int, dict[str, Any]] | None:
        row = self._one(
            "SELECT seq, body FROM snapshots WHERE seq <= ? ORDER BY seq DESC LIMIT 1", (seq,)
        )
        if row is None:
            return None
        return int(row[0]), orjson.loads(zlib.decompress(row[1]))

    def events(self, after: int, upto: int | None = None, limit: int = 10_000) -> list[Event]:
        hi = upto if upto is not None else 2**62
        with self._lock:
            rows = self._conn.execute(
                "SELECT body FROM events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                (after, hi, limit),
            ).fetchall()
        return [parse_event(r[0]) for r in rows]

    def raw_events(self, after: int, limit: int) -> list[bytes]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT body FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
            ).fetchall()
        return [bytes(r[0]) for r in rows]

    def recent(
        self,
        kinds: tuple[str, ...],
        upto: int,
        needles: tuple[bytes, ...],
        *,
        scan: int,
        limit: int,
    ) -> list[Event]:
        """The newest events (newest first) of `kinds` up to seq `upto` whose JSON contains
        one of `needles`, looking back at most `scan` seqs: a bounded search without an
        index, for small questions like one unit's recent readings."""
        marks = ",".join("?" * len(kinds))  # placeholders only: the kinds are bound
        out: list[Event] = []
        with self._lock:
            cursor = self._conn.execute(
                f"SELECT body FROM events WHERE seq > ? AND seq <= ? AND kind IN ({marks})"  # noqa: S608
                " ORDER BY seq DESC",
                (max(0, upto - scan), upto, *kinds),
            )
            for (body,) in cursor:
                if any(n in body for n in needles):
                    out.append(parse_event(body))
                    if len(out) >= limit:
                        break
        return out

    def iter_events(self, after: int, upto: int, chunk: int = 5000) -> Iterator[Event]:
        while after < upto:
            batch = self.events(after, upto, chunk)
            if not batch:
                return
            yield from batch
            after = batch[-1].seq or upto


def export_incident(src: Path, dest: Path) -> int:
    """Copy a live or closed incident log consistently (SQLite backup); returns events."""
    if not src.is_file():
        raise RecorderError(f"{src}: no such incident log")
    if dest.exists():
        raise RecorderError(f"{dest}: exists; refusing to overwrite")
    source = _connect(src, readonly=True)
    target = sqlite3.connect(dest)
    try:
        source.backup(target)
        target.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
        count = int(target.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    finally:
        target.close()
        source.close()
    return count


def import_incident(src: Path, data_dir: Path, *, force: bool = False) -> tuple[str, Path]:
    """Check a recording and place it in the data dir; returns (incident, path)."""
    reader = LogReader(src)
    try:
        incident = reader.incident
        check = reader._one("PRAGMA integrity_check")[0]
    finally:
        reader.close()
    if check != "ok":
        raise RecorderError(f"{src}: integrity check failed: {check}")
    dest = incident_path(data_dir, incident)
    if dest.exists() and not force:
        raise RecorderError(f"{dest}: incident {incident!r} exists; use --force to replace")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".importing")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
    for suffix in ("-wal", "-shm"):
        Path(f"{dest}{suffix}").unlink(missing_ok=True)
    return incident, dest
