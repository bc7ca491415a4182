"""The event log: group commit, reopen, snapshots, export/import."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest

from cockpit.events import event_to_json
from cockpit.recorder import (
    LogReader,
    Recorder,
    RecorderError,
    export_incident,
    import_incident,
    incident_path,
)
from tests.factories import numbered, position


def _events(n: int) -> list:
    return numbered([position(f"u{i % 7}", 51.5 + i * 1e-5, 7.4, i * 0.1) for i in range(n)])


async def _record(path: Path, events: list, chunk: int = 10) -> tuple[Recorder, list[int]]:
    commits: list[int] = []
    rec = Recorder(path, "test", on_commit=commits.append)
    await asyncio.to_thread(rec.open)
    for i in range(0, len(events), chunk):
        await rec.append(events[i : i + chunk])
    await rec.close()
    return rec, commits


async def test_every_event_is_read_back_exactly_and_commits_are_grouped(tmp_path: Path) -> None:
    events = _events(2000)
    rec, commits = await _record(tmp_path / "i.sqlite", events, chunk=10)
    assert commits[-1] == 2000 and commits == sorted(commits)
    assert rec.commits < 200  # 200 appends, grouped into fewer transactions
    reader = LogReader(tmp_path / "i.sqlite")
    back = reader.events(0, None, 5000)
    assert [event_to_json(e) for e in back] == [event_to_json(e) for e in events]
    assert reader.bounds()[0] == 2000
    reader.close()


async def test_reopen_continues_after_last_seq_and_drops_snapshot_ahead(tmp_path: Path) -> None:
    path = tmp_path / "i.sqlite"
    await _record(path, _events(100))
    # Simulate a crash that left a snapshot beyond the last event.
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO snapshots VALUES (500, 0, x'00')")
    conn.commit()
    conn.close()
    rec = Recorder(path, "test")
    assert await asyncio.to_thread(rec.open) == 100
    await rec.close()
    reader = LogReader(path)
    assert reader.snapshot_before(10_000) is None
    reader.close()


async def test_seq_at_time_and_snapshot_lookup(tmp_path: Path) -> None:
    path = tmp_path / "i.sqlite"
    rec = Recorder(path, "test")
    await asyncio.to_thread(rec.open)
    events = _events(50)
    await rec.append(events)
    rec.save_snapshot(20, events[19].received_at.timestamp(), {"seq": 20})
    await rec.close()
    reader = LogReader(path)
    t25 = events[24].received_at.timestamp()
    assert reader.seq_at(t25) == 25
    assert reader.seq_at(t25 - 0.05) == 24
    assert reader.snapshot_before(25) == (20, {"seq": 20})
    assert reader.snapshot_before(19) is None
    reader.close()


async def test_seq_at_is_the_highest_seq_received_by_then_through_gaps_and_interleaving(
    tmp_path: Path,
) -> None:
    """Two processes' receive stamps interleave by a few ms, and an incident has quiet
    spells of minutes: the answer is still the highest seq received by t, as
    `MAX(seq) WHERE received_at <= t` over the whole log says."""
    offsets = [0.0, 0.3, 0.2, 0.5, 0.4, 700.0, 700.1, 2000.0, 1999.99, 2000.5]
    base = position("u1", 51.5, 7.4, 0.0).received_at
    events = numbered(
        [
            msgspec.structs.replace(
                position("u1", 51.5, 7.4, dt), received_at=base + timedelta(seconds=dt)
            )
            for dt in offsets
        ]
    )
    path = tmp_path / "i.sqlite"
    await _record(path, events)
    reader = LogReader(path)
    conn = sqlite3.connect(path)
    t0 = base.timestamp()
    for dt in [-1.0, 0.0, 0.25, 0.35, 0.45, 1.0, 500.0, 700.05, 1000.0, 1999.995, 2000.0, 9999.0]:
        (want,) = conn.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM events WHERE received_at <= ?", (t0 + dt,)
        ).fetchone()
        assert reader.seq_at(t0 + dt) == want, dt
    conn.close()
    reader.close()


async def test_log_of_another_incident_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "i.sqlite"
    await _record(path, _events(3))
    with pytest.raises(RecorderError, match="belongs to incident 'test'"):
        Recorder(path, "other").open()


async def test_export_import_round_trip(tmp_path: Path) -> None:
    data = tmp_path / "data"
    src = incident_path(data, "test")
    await _record(src, _events(300))
    out = tmp_path / "export.sqlite"
    assert export_incident(src, out) == 300
    with pytest.raises(RecorderError, match="exists"):
        export_incident(src, out)
    other = tmp_path / "other"
    incident, placed = import_incident(out, other)
    assert incident == "test" and placed == incident_path(other, "test")
    assert LogReader(placed).bounds()[0] == 300
    with pytest.raises(RecorderError, match="use --force"):
        import_incident(out, other)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(RecorderError, match="not a cockpit recording"):
        import_incident(junk, other)
