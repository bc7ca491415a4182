"""The trainer's incident library and a recording's timeline.

Both are read from the log without folding it: event density comes from range counts on
the log's time index, and the marks (alerts raised, detections and their steps, journal
entries) from the picture at the end of the recording, which is its latest snapshot plus
the few events after it. Results are cached per file state (size and mtime of the log
and its WAL), so a large recording is read once, not per request; a log that is being
written is read again at most every `LIVE_REUSE_S`.
"""

from __future__ import annotations

import bisect
import contextlib
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from cockpit.bookmarks import BookmarkError, BookmarkStore
from cockpit.detection_flow import LABEL_DE
from cockpit.pipeline import restore_from_log, situation_factory
from cockpit.recorder import LogReader, RecorderError, read_only
from cockpit.settings import Settings
from cockpit.situation import Situation, iso

__all__ = ["LIVE_REUSE_S", "MAX_BUCKETS", "list_recordings", "summary", "timeline"]

LIVE_REUSE_S = 10.0
MAX_BUCKETS = 2000
_TEXT_MAX = 140
_SEQS_PER_QUERY = 500

_GROUP = {"alert": "alerts", "detection": "detections", "journal": "journal"}

_V = TypeVar("_V")
_Signature = tuple[int, int, int, int]


def _signature(path: Path) -> _Signature:
    st = path.stat()
    try:
        wal = Path(f"{path}-wal").stat()
    except FileNotFoundError:
        return (st.st_size, st.st_mtime_ns, 0, 0)
    return (st.st_size, st.st_mtime_ns, wal.st_size, wal.st_mtime_ns)


class _Cache:
    """Computed values by key, valid while the file is unchanged (or recently computed)."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._values: OrderedDict[tuple[Any, ...], tuple[_Signature, float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._busy: dict[tuple[Any, ...], threading.Lock] = {}

    def get(self, key: tuple[Any, ...], path: Path, compute: Callable[[], _V]) -> _V:
        # One computation per key at a time: two trainers opening the same large
        # recording wait for one scan instead of running two.
        with self._lock:
            busy = self._busy.setdefault(key, threading.Lock())
        with busy:
            sig = _signature(path)
            with self._lock:
                hit = self._values.get(key)
            if hit is not None and (hit[0] == sig or time.monotonic() - hit[1] < LIVE_REUSE_S):
                value: _V = hit[2]
                return value
            value = compute()
            with self._lock:
                self._values[key] = (sig, time.monotonic(), value)
                self._values.move_to_end(key)
                while len(self._values) > self._size:
                    self._values.popitem(last=False)
            return value


_cache = _Cache()


@dataclass(frozen=True, slots=True)
class _Facts:
    incident: str
    events: int
    first: float | None
    last: float | None
    alerts: int
    detections: int
    journal: int
    journal_kept: int
    marks: tuple[dict[str, Any], ...]


def _short(text: str) -> str:
    return text if len(text) <= _TEXT_MAX else text[: _TEXT_MAX - 1] + "…"


def _received(conn: sqlite3.Connection, seqs: set[int]) -> dict[int, float]:
    """Server receive time of each seq (primary-key look-ups)."""
    out: dict[int, float] = {}
    ordered = sorted(seqs)
    for i in range(0, len(ordered), _SEQS_PER_QUERY):
        chunk = ordered[i : i + _SEQS_PER_QUERY]
        marks = ",".join("?" * len(chunk))  # placeholders only: the seqs are bound
        rows = conn.execute(
            f"SELECT seq, received_at FROM events WHERE seq IN ({marks})",  # noqa: S608
            chunk,
        ).fetchall()
        out.update((int(s), float(r)) for s, r in rows)
    return out


def _marks(sit: Situation) -> list[dict[str, Any]]:
    """Alerts raised, detections reported and each of their steps, journal entries; at
    the fold's time and seq. Only operational fields: a detection's `personal` part is
    never read here."""
    first_line: dict[tuple[str, str], dict[str, Any]] = {}
    for j in sit.journal:
        if j.get("ref"):
            first_line.setdefault((j["category"], j["ref"]), j)
    marks: list[dict[str, Any]] = []
    for a in sit.alerts.values():
        line = first_line.get(("alert", a["id"]))
        seq = line["seq"] if line else _seq_in_id(a["id"])
        marks.append(
            {
                "kind": "alert",
                "id": a["id"],
                "seq": seq,
                "t": a["raised_at"],
                "severity": a["severity"],
                "entity": a["entity"],
                "text": _short(a["text"]),
            }
        )
    lines_of: dict[str, list[dict[str, Any]]] = {}
    for j in sit.journal:
        if j["category"] == "detection" and j.get("ref"):
            lines_of.setdefault(j["ref"], []).append(j)
    for d in sit.detections.values():
        steps = d.get("history", [])
        # Each step wrote one journal line at its seq: the marks say what the
        # Einsatztagebuch said (in German, as the crews read it).
        line_at = {j["seq"]: j for j in lines_of.get(d["id"], [])}
        step_seqs = {h["seq"] for h in steps}
        report = next((j for s, j in line_at.items() if s not in step_seqs), None)
        marks.append(
            {
                "kind": "detection",
                "id": d["id"],
                "seq": report["seq"] if report else None,
                "t": d["first_seen"],
                "step": "reported",
                "category": d["category"],
                "text": _short(report["text"] if report else f"Meldung {d['category']}"),
            }
        )
        for h in steps:
            marks.append(
                {
                    "kind": "detection",
                    "id": d["id"],
                    "seq": h["seq"],
                    "t": _epoch(h["at"]),
                    "step": h["to"],
                    "from": h["from"],
                    "category": d["category"],
                    "text": _short(
                        line_at[h["seq"]]["text"]
                        if h["seq"] in line_at
                        else f"Meldung {d['category']}: {LABEL_DE.get(h['to'], h['to'])}"
                    ),
                }
            )
    for j in sit.journal:
        marks.append(
            {
                "kind": "journal",
                "id": j["id"],
                "seq": j["seq"],
                "t": j["t"],
                "category": j["category"],
                "text": _short(j["text"]),
            }
        )
    return marks


def _seq_in_id(alert_id: str) -> int | None:
    # Alerts the fold raises are named `rule:subject:seq`.
    tail = alert_id.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _epoch(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _facts(path: Path, settings: Settings) -> _Facts:
    reader = LogReader(path)
    try:
        events, first, last = reader.bounds()
        factory = situation_factory(settings, reader.incident, reader.meta)
        sit = restore_from_log(reader, factory, reader.last_seq())
        incident = reader.incident
    finally:
        reader.close()
    marks = _marks(sit)
    with read_only(path) as conn:
        received = _received(conn, {m["seq"] for m in marks if m["seq"] is not None})
    for m in marks:
        # On the replay's clock (server receive time): seeking to a mark shows it.
        t = received.get(m["seq"]) if m["seq"] is not None else None
        m["t"] = t if t is not None else (m["t"] if m["t"] is not None else first)
        m["at"] = iso(m["t"])
    marks.sort(key=lambda m: (m["t"] or 0.0, m["seq"] or 0))
    return _Facts(
        incident=incident,
        events=events,
        first=first,
        last=last,
        alerts=len(sit.alerts),
        detections=len(sit.detections),
        journal=sit.journal_count,
        journal_kept=len(sit.journal),
        marks=tuple(marks),
    )


def _facts_cached(path: Path, settings: Settings) -> _Facts:
    return _cache.get(("facts", str(path.resolve())), path, lambda: _facts(path, settings))


def summary(path: Path, settings: Settings) -> dict[str, Any]:
    """One recording as the library lists it."""
    facts = _facts_cached(path, settings)
    size = path.stat().st_size
    with contextlib.suppress(FileNotFoundError):
        size += Path(f"{path}-wal").stat().st_size
    try:
        bookmarks: int | None = len(BookmarkStore(path, facts.incident).all())
    except BookmarkError:
        bookmarks = None
    return {
        "incident": facts.incident,
        "file": path.name,
        "start": facts.first,
        "end": facts.last,
        "start_at": iso(facts.first),
        "end_at": iso(facts.last),
        "duration_s": round(facts.last - facts.first, 3)
        if facts.first is not None and facts.last is not None
        else 0.0,
        "events": facts.events,
        "alerts": facts.alerts,
        "detections": facts.detections,
        "journal": facts.journal,
        "size_bytes": size,
        "bookmarks": bookmarks,
    }


def list_recordings(folder: Path, settings: Settings, current: Path | None) -> list[dict[str, Any]]:
    """Every recording in `folder` (the data dir's incidents), and `current` (the one
    served) wherever it is; newest first. One that cannot be read is listed with why."""
    paths = sorted(folder.glob("*.sqlite")) if folder.is_dir() else []
    if current is not None and all(p.resolve() != current.resolve() for p in paths):
        paths.append(current)
    out: list[dict[str, Any]] = []
    for path in paths:
        try:
            entry = summary(path, settings)
        except (RecorderError, sqlite3.Error, OSError) as exc:
            entry = {"file": path.name, "error": str(exc).replace(str(path.parent), "…")}
        entry["current"] = current is not None and path.resolve() == current.resolve()
        out.append(entry)
    out.sort(key=lambda e: e.get("start") or 0.0, reverse=True)
    return out


def _density(path: Path, first: float, last: float, buckets: int) -> list[int]:
    """Events per bucket: one range count per bucket on the received_at index (the
    index alone answers; the event bodies are never read)."""
    width = (last - first) / buckets
    counts: list[int] = []
    with read_only(path) as conn:
        for i in range(buckets):
            lo = first + i * width
            if i == buckets - 1:
                sql, args = "received_at >= ? AND received_at <= ?", (lo, last)
            else:
                sql, args = "received_at >= ? AND received_at < ?", (lo, first + (i + 1) * width)
            row = conn.execute(f"SELECT COUNT(*) FROM events WHERE {sql}", args).fetchone()  # noqa: S608
            counts.append(int(row[0]))
    return counts


def timeline(path: Path, settings: Settings, buckets: int) -> dict[str, Any]:
    """Event density in `buckets` equal slices of the recording, and its marks."""
    facts = _facts_cached(path, settings)
    first, last = facts.first, facts.last
    body: dict[str, Any] = {
        "incident": facts.incident,
        "start": first,
        "end": last,
        "start_at": iso(first),
        "end_at": iso(last),
        "buckets": 0,
        "width_s": 0.0,
        "density": {"t": [], "events": [], "alerts": [], "detections": [], "journal": []},
        "marks": list(facts.marks),
        # Entries before these fell out of the picture's journal (it keeps the newest).
        "journal_trimmed": facts.journal - facts.journal_kept,
    }
    if first is None or last is None:
        return body
    if last <= first:
        buckets = 1
    events = _cache.get(
        ("density", str(path.resolve()), buckets),
        path,
        lambda: _density(path, first, last, buckets),
    )
    width = (last - first) / buckets
    edges = [first + i * width for i in range(buckets)]
    groups: dict[str, list[int]] = {k: [0] * buckets for k in ("alerts", "detections", "journal")}
    for m in facts.marks:
        i = 0 if width <= 0 else min(buckets - 1, max(0, bisect.bisect_right(edges, m["t"]) - 1))
        groups[_GROUP[m["kind"]]][i] += 1
    body.update(
        buckets=buckets,
        width_s=width,
        density={"t": edges, "events": events, **groups},
    )
    return body
