"""What each step of the ingest path costs, per event, on one thread without contention.

Prints ONE JSON object to stdout. Complements `bench/ingest.py` (end-to-end throughput):
the in-process figure there is bounded by the sum of these costs, since the event loop
and the recorder thread share one GIL.

    .venv/bin/python bench/ingest_steps.py [--reps 20]

The picture is warmed first (every entity reported, tracks full), as in a running incident.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from bench.ingest import BATCH, Traffic  # noqa: E402
from cockpit.events import (  # noqa: E402
    event_to_json,
    new_event_id,
    parse_event,
    utcnow,
    with_seq,
)
from cockpit.recorder import _SCHEMA, log_row  # noqa: E402
from cockpit.settings import Settings  # noqa: E402
from cockpit.situation import Situation  # noqa: E402
from feeds.telemetry import parse_body, to_events  # noqa: E402

SNAP_EVERY = Settings.model_fields["snapshot_every_n"].default  # what the pipeline uses
SNAP_LABEL = f"snapshot every {SNAP_EVERY} events, amortised (snapshot + 2x orjson + zlib)"


def per_event_us(fn: Callable[[], Any], events: int, reps: int) -> float:
    fn()  # warm
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return round(best / events * 1e6, 2)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=20, help="repetitions; the best is taken")
    args = p.parse_args(argv)
    reps = args.reps

    traffic = Traffic()
    body = traffic.batch(0)
    messages = parse_body(body)
    received = utcnow()
    events = []
    for m in messages:
        events.extend(to_events(m, incident="steps", device="bench", received_at=received))
    n = len(events)  # 2 per message
    stamped = [with_seq(e, i + 1) for i, e in enumerate(events)]

    # A warm picture: 200 entities with full tracks (track_len 200).
    sit = Situation(incident="steps")
    seq = 0
    for k in range(0, 200 * 16 // BATCH * 14 + 1):
        msgs = parse_body(traffic.batch(k))
        rec = utcnow()
        for m in msgs:
            for ev in to_events(m, incident="steps", device="bench", received_at=rec):
                seq += 1
                sit.apply(with_seq(ev, seq))
    warm_seq = sit.seq

    to_fold = [with_seq(e, warm_seq + i + 1) for i, e in enumerate(events)]

    def fold() -> None:
        # Back to the warm seq each time, so every event is folded again, not skipped.
        sit.seq = warm_seq
        for ev in to_fold:
            sit.apply(ev)

    def to_ev() -> None:
        rec = utcnow()
        for m in messages:
            to_events(m, incident="steps", device="bench", received_at=rec)

    def rows() -> list[tuple[Any, ...]]:
        return [log_row(e) for e in stamped]

    tmp = Path(tempfile.mkdtemp(prefix="bench-steps-"))
    results: dict[str, Any] = {}
    try:
        conns = {}
        for sync in ("FULL", "NORMAL"):
            conn = sqlite3.connect(tmp / f"{sync}.sqlite", isolation_level=None)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {sync}")
            conn.executescript(_SCHEMA)
            conns[sync] = conn
        prepared = rows()
        counter = {"FULL": 0, "NORMAL": 0}

        def insert(sync: str) -> Callable[[], None]:
            def run() -> None:
                conn = conns[sync]
                base = counter[sync]
                counter[sync] += n
                batch = [(base + i + 1, *r[1:]) for i, r in enumerate(prepared)]
                conn.execute("BEGIN")
                conn.executemany("INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?)", batch)
                conn.execute("COMMIT")

            return run

        snap_t0 = time.perf_counter()
        snap = sit.snapshot()
        snap_s = time.perf_counter() - snap_t0
        t0 = time.perf_counter()
        snap_json = orjson.dumps(snap)
        snap_dump_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        zlib.compress(orjson.dumps(snap), 1)
        snap_rec_s = time.perf_counter() - t0
        wire = [event_to_json(with_seq(e, None)) for e in stamped]

        steps = {
            "parse_body (validate native JSON)": per_event_us(lambda: parse_body(body), n, reps),
            "to_events (payload + envelope Structs, not re-validated)": per_event_us(
                to_ev, n, reps
            ),
            "  of which new_event_id": per_event_us(
                lambda: [new_event_id() for _ in range(n)], n, reps
            ),
            "bus stamp: with_seq": per_event_us(
                lambda: [with_seq(e, i) for i, e in enumerate(events)], n, reps
            ),
            "fold: Situation.apply (warm picture)": per_event_us(fold, n, reps),
            "recorder: event_to_json": per_event_us(
                lambda: [event_to_json(e) for e in stamped], n, reps
            ),
            "recorder: row tuples incl. event_to_json": per_event_us(rows, n, reps),
            "recorder: SQLite insert + commit, FULL": per_event_us(insert("FULL"), n, reps),
            "recorder: SQLite insert + commit, NORMAL": per_event_us(insert("NORMAL"), n, reps),
            SNAP_LABEL: round((snap_s + snap_dump_s + snap_rec_s) / SNAP_EVERY * 1e6, 2),
            "redis: parse_event per subscriber": per_event_us(
                lambda: [parse_event(w) for w in wire], n, reps
            ),
        }
        memory_path = [
            "parse_body (validate native JSON)",
            "to_events (payload + envelope Structs, not re-validated)",
            "bus stamp: with_seq",
            "fold: Situation.apply (warm picture)",
            "recorder: row tuples incl. event_to_json",
            "recorder: SQLite insert + commit, FULL",
            SNAP_LABEL,
        ]
        total = round(sum(steps[k] for k in memory_path), 2)
        results = {
            "bench": "ingest_steps",
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": "python bench/ingest_steps.py " + " ".join(sys.argv[1:]),
            "events_per_batch": n,
            "picture": {"entities": len(sit.entities), "seq": warm_seq},
            "snapshot_ms": {
                "Situation.snapshot": round(snap_s * 1000, 2),
                "orjson.dumps": round(snap_dump_s * 1000, 2),
                "orjson.dumps + zlib (recorder)": round(snap_rec_s * 1000, 2),
                "bytes": len(snap_json),
            },
            "us_per_event": steps,
            "memory_path_sum_us_per_event": total,
            "memory_path_ceiling_events_per_s": round(1e6 / total),
        }
        for conn in conns.values():
            conn.close()
    finally:
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
