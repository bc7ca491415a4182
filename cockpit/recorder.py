"""The event log: one SQLite file per incident, written by a single thread.

The log is the source of truth. Events are appended with group commit (whatever is
queued goes in one transaction), and only after a commit is the bus told, so an ingest
answers 2xx only for events that are on disk. Snapshots of the picture make seeking
fast; they are never needed for correctness.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
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
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from cockpit.events import Event, event_to_json, parse_event
from cockpit.privacy import PERSONAL_MARK, redact_event_body, redact_snapshot
from cockpit.situation import encode_snapshot

__all__ = [
    "FORMAT_VERSION",
    "LogReader",
    "LogRow",
    "Recorder",
    "RecorderError",
    "Rewrites",
    "apply_rewrites",
    "export_incident",
    "import_incident",
    "incident_folder",
    "incident_path",
    "lock_incident",
    "log_row",
    "personal_rewrites",
    "read_only",
    "recorded_personal",
    "redact_file",
    "scan_personal",
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


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection of the caller's own to a log (a replay's reader is busy
    with its player), closed at the end of the block."""
    conn = _connect(path, readonly=True)
    try:
        yield conn
    finally:
        conn.close()


@dataclass(frozen=True, slots=True)
class _Snapshot:
    seq: int
    received_at: float
    data: dict[str, Any]


@dataclass
class Rewrites:
    """Rows of a log to be replaced in place (the personal part emptied): new bodies by
    seq, and the highest seq looked at in each table (where a later pass goes on)."""

    events: list[tuple[bytes, int]]
    snapshots: list[tuple[bytes, int]]
    events_upto: int = 0
    snapshots_upto: int = 0

    def __bool__(self) -> bool:
        return bool(self.events or self.snapshots)


@dataclass(frozen=True, slots=True)
class _Rewrite:
    rewrites: Rewrites
    done: concurrent.futures.Future[None]


def lock_incident(path: Path, incident: str) -> int:
    """Hold the incident's recording lock (a file descriptor; closing it releases the
    lock), or raise RecorderError when another process records it."""
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RecorderError(
            f"{path}: incident {incident!r} is already being recorded by another process; "
            "run several processes with COCKPIT_REDIS_URL, or stop the other one"
        ) from None
    return fd


def personal_rewrites(
    conn: sqlite3.Connection,
    ids: Collection[str] | None,
    *,
    events_after: int = 0,
    snapshots_after: int = 0,
    upto: int | None = None,
) -> Rewrites:
    """What to replace so that the log holds no personal data of the detections `ids`
    (None: of any) in events and snapshots after the given seqs, up to `upto`."""
    hi = upto if upto is not None else 2**62
    out = Rewrites([], [], events_after, snapshots_after)
    rows = conn.execute(
        "SELECT seq, body FROM events WHERE seq > ? AND seq <= ? AND kind = 'detection'",
        (events_after, hi),
    ).fetchall()
    for seq, body in rows:
        out.events_upto = max(out.events_upto, int(seq))
        new = redact_event_body(bytes(body), ids)
        if new is not None:
            out.events.append((new, int(seq)))
    for seq, blob in conn.execute(
        "SELECT seq, body FROM snapshots WHERE seq > ? AND seq <= ?", (snapshots_after, hi)
    ).fetchall():
        out.snapshots_upto = max(out.snapshots_upto, int(seq))
        raw = zlib.decompress(blob)
        if PERSONAL_MARK not in raw:
            continue
        data = orjson.loads(raw)
        if redact_snapshot(data, ids):
            out.snapshots.append((zlib.compress(encode_snapshot(data), 1), int(seq)))
    return out


def apply_rewrites(conn: sqlite3.Connection, rewrites: Rewrites) -> None:
    """Replace the rows (inside the caller's transaction). The connection should have
    secure_delete on, so that the old bodies do not linger in free pages."""
    conn.executemany("UPDATE events SET body = ? WHERE seq = ?", rewrites.events)
    conn.executemany("UPDATE snapshots SET body = ? WHERE seq = ?", rewrites.snapshots)


def scan_personal(
    path: Path,
    ids: Collection[str] | None,
    *,
    events_after: int = 0,
    snapshots_after: int = 0,
    upto: int | None = None,
) -> Rewrites:
    """`personal_rewrites` on a read-only connection of its own (beside the writer)."""
    conn = _connect(path, readonly=True)
    try:
        return personal_rewrites(
            conn, ids, events_after=events_after, snapshots_after=snapshots_after, upto=upto
        )
    finally:
        conn.close()


def redact_file(path: Path, ids: Collection[str] | None) -> Rewrites:
    """Empty the personal data of `ids` (None: all) in a log nobody records (hold
    `lock_incident`); the old bodies are overwritten, not left in free pages."""
    conn = _connect(path)
    try:
        conn.execute("PRAGMA secure_delete = ON")
        conn.execute("BEGIN IMMEDIATE")
        try:
            rewrites = personal_rewrites(conn, ids)
            apply_rewrites(conn, rewrites)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as exc:
        raise RecorderError(f"{path}: personal data not purged: {exc}") from exc
    finally:
        conn.close()
    return rewrites


def recorded_personal(path: Path) -> list[str]:
    """The ids of the detections whose personal data a recording holds (in its events)."""
    conn = _connect(path, readonly=True)
    try:
        rows = conn.execute("SELECT body FROM events WHERE kind = 'detection'").fetchall()
    finally:
        conn.close()
    ids = set()
    for (body,) in rows:
        if redact_event_body(bytes(body)) is not None:  # it holds personal data
            ids.add(str(orjson.loads(body)["payload"]["id"]))
    return sorted(ids)


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
        self._queue: queue.Queue[list[Event] | _Snapshot | _Rewrite | None] = queue.Queue()
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
            # A purge of personal data overwrites what it removes (free pages zeroed).
            conn.execute("PRAGMA secure_delete = ON")
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
        self._lock_fd = lock_incident(self.path, self.incident)

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

    async def rewrite(self, rewrites: Rewrites) -> None:
        """Replace rows in place (the purge of personal data), by the writer thread in
        its next transaction: after whatever was queued before. Raises RecorderError."""
        if rewrites:
            await self._through_writer(rewrites)

    async def flush(self) -> None:
        """Return once everything queued before this call is written (snapshots too)."""
        await self._through_writer(Rewrites([], []))

    async def _through_writer(self, rewrites: Rewrites) -> None:
        if self.error is not None or self._thread is None:
            raise RecorderError(self.error or f"{self.path}: not open")
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._queue.put(_Rewrite(rewrites, done))
        await asyncio.wrap_future(done)

    def _writer(self) -> None:
        assert self._conn is not None
        conn = self._conn
        stop = False
        while not stop:
            item = self._queue.get()
            batch: list[list[Event] | _Snapshot | _Rewrite] = []
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

    def _write(
        self, conn: sqlite3.Connection, batch: list[list[Event] | _Snapshot | _Rewrite]
    ) -> None:
        started = time.perf_counter()
        rows: list[LogRow] = []
        snaps: list[tuple[int, float, bytes]] = []
        rewrites: list[_Rewrite] = []
        for item in batch:
            if isinstance(item, _Rewrite):
                rewrites.append(item)
                continue
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
            for rw in rewrites:  # after the inserts: a snapshot queued before is covered
                apply_rewrites(conn, rw.rewrites)
            conn.execute("COMMIT")
        except (sqlite3.Error, RecorderError) as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            self.error = f"{self.path}: write failed: {exc}"
            log.error("%s", self.error)
            for rw in rewrites:
                rw.done.set_exception(RecorderError(self.error))
            return
        if any(rw.rewrites for rw in rewrites):
            # The old bodies also sit in the write-ahead log until it is checkpointed.
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        for rw in rewrites:
            rw.done.set_result(None)
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

    def snapshot_seq_before(self, seq: int) -> int:
        """The seq of the snapshot `snapshot_before(seq)` would give (0: none), unread."""
        row = self._one("SELECT MAX(seq) FROM snapshots WHERE seq <= ?", (seq,))
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


def export_incident(src: Path, dest: Path, *, include_personal: bool = False) -> int:
    """Copy a live or closed incident log consistently (SQLite backup); returns events.

    Every detection's personal part is emptied in the copy (events and snapshots, the
    file vacuumed so that nothing of it is left in free pages) unless `include_personal`.
    """
    if not src.is_file():
        raise RecorderError(f"{src}: no such incident log")
    if dest.exists():
        raise RecorderError(f"{dest}: exists; refusing to overwrite")
    part = dest.with_name(dest.name + ".part")  # never a half-redacted file under its name
    part.unlink(missing_ok=True)
    source = _connect(src, readonly=True)
    target = sqlite3.connect(part, isolation_level=None)
    try:
        source.backup(target)
        target.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
        if not include_personal:
            target.execute("PRAGMA secure_delete = ON")
            rewrites = personal_rewrites(target, None)
            target.execute("BEGIN")
            apply_rewrites(target, rewrites)
            target.execute("COMMIT")
            target.execute("VACUUM")
        count = int(target.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    except BaseException:
        target.close()
        part.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    target.close()
    os.replace(part, dest)
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
