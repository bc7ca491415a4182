"""Replay: seek, play, pause, speed; and a recorded demo replays as it was seen live."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from cockpit.events import Event
from cockpit.pipeline import restore_from_log
from cockpit.recorder import LogReader, Recorder, incident_path
from cockpit.replay import ReplaySession, situation_at
from cockpit.situation import Situation
from feeds.sim.client import run_sim
from tests.factories import T0, numbered, position, readings, status
from tests.serving import serve


def _factory(snapshot: dict[str, Any] | None) -> Situation:
    return Situation.restore(snapshot) if snapshot else Situation(incident="test")


async def _recording(path: Path, n: int = 1200, snapshot_every: int = 100) -> list[Event]:
    """n events, one every 0.1 s of server time, snapshots every `snapshot_every`."""
    events = numbered([position(f"u{i % 10}", 51.5 + i * 1e-5, 7.4, i * 0.1) for i in range(n)])
    rec = Recorder(path, "test")
    await asyncio.to_thread(rec.open)
    sit = Situation(incident="test")
    for i in range(0, n, snapshot_every):
        chunk = events[i : i + snapshot_every]
        await rec.append(chunk)
        sit.apply_all(chunk)
        rec.save_snapshot(sit.seq, sit.received_at, sit.snapshot())
    await rec.close()
    return events


async def test_seek_anywhere_equals_folding_from_the_start(tmp_path: Path) -> None:
    events = await _recording(tmp_path / "r.sqlite")
    reader = LogReader(tmp_path / "r.sqlite")
    for k in (1, 99, 100, 101, 555, 1200):
        t = events[k - 1].received_at.timestamp()
        from_scratch = Situation(incident="test")
        from_scratch.apply_all(events[:k])
        seeked = situation_at(reader, t, _factory)
        assert seeked.seq == k
        assert seeked.snapshot() == from_scratch.snapshot()
    assert situation_at(reader, T0.timestamp() - 1, _factory).seq == 0
    reader.close()


async def _mixed_recording(path: Path) -> list[Event]:
    """Positions, gases crossing a threshold (alerts raised, cleared, reopened) and
    batteries; a snapshot every 150 events."""
    mixed: list[Event] = []
    for i in range(600):
        mixed.append(position(f"u{i % 7}", 51.5 + i * 1e-5, 7.4, i * 0.1))
        if i % 5 == 0:  # gases crossing the CO threshold now and then: alerts come and go
            mixed.append(readings(f"r{i % 2}", i * 0.1, co=45.0 if i % 50 < 10 else 3.0))
        if i % 11 == 0:
            mixed.append(status(f"d{i % 3}", i * 0.1, battery=100 - i / 10))
    events = numbered(mixed)
    rec = Recorder(path, "test")
    await asyncio.to_thread(rec.open)
    sit = Situation(incident="test")
    for i in range(0, len(events), 150):
        await rec.append(events[i : i + 150])
        sit.apply_all(events[i : i + 150])
        rec.save_snapshot(sit.seq, sit.received_at, sit.snapshot())
    await rec.close()
    return events


async def test_a_seek_gives_the_same_picture_and_the_same_deltas_after_it(tmp_path: Path) -> None:
    """A seek folds without making deltas (they were thrown away); the picture it gives
    is the one a fold from the start gives, and the events played after it still push
    each entity's change as before."""
    path = tmp_path / "mixed.sqlite"
    events = await _mixed_recording(path)
    reader = LogReader(path)
    try:
        for k in (40, 149, 150, 151, 487, len(events) - 2):
            # events share their second: seek to the last of the group (all that had come)
            while events[k].received_at == events[k - 1].received_at:
                k += 1
            from_scratch = Situation(incident="test")
            from_scratch.apply_all(events[:k])
            seeked = situation_at(reader, events[k - 1].received_at.timestamp(), _factory)
            assert seeked.seq == from_scratch.seq == k
            assert seeked.snapshot() == from_scratch.snapshot()
            assert seeked.alerts == from_scratch.alerts
            # The next event pushes the entity's whole state, as after a fold with deltas.
            nxt = events[k]
            deltas = seeked.apply(nxt)
            expected = from_scratch.apply(nxt)
            entity = [d for d in deltas if d.layer == "entities"]
            wanted = next(d for d in expected if d.layer == "entities")
            assert entity, "an entity change after a seek still makes its delta"
            assert (entity[0].whole or entity[0].data) == (wanted.whole or wanted.data)
            assert (entity[0].whole or entity[0].data) is not None
            assert [d.layer for d in deltas] == [d.layer for d in expected]
    finally:
        reader.close()


async def test_a_drag_along_the_timeline_gives_the_pictures_of_a_fold_from_the_start(
    tmp_path: Path,
) -> None:
    """A seek forward folds on from the picture shown (not from the snapshot); forward,
    back, across snapshots and after playing, every picture is the one folded from the
    start, and the next event still pushes the entity's whole state."""
    path = tmp_path / "mixed.sqlite"
    events = await _mixed_recording(path)
    reader = LogReader(path)
    clock = {"t": 1000.0}
    replay = ReplaySession(reader, _factory, clock=lambda: clock["t"])
    await replay.start()
    try:
        # ends of seconds (events share them); forward within and across snapshots, back
        ends = [
            k for k in range(1, len(events)) if events[k].received_at != events[k - 1].received_at
        ]
        drag = [ends[i] for i in (30, 31, 33, 40, 120, 121, 119, 60, 61, 200, 201)]
        for k in drag:
            await replay.seek(events[k - 1].received_at.timestamp())
            from_scratch = Situation(incident="test")
            from_scratch.apply_all(events[:k])
            assert replay.situation.seq == k
            assert replay.situation.snapshot() == from_scratch.snapshot()
        # played on, then dragged on from where the play stopped
        replay.play(speed=10)
        clock["t"] += 1.0
        for _ in range(100):
            await asyncio.sleep(0.02)
            if replay.situation.seq >= ends[210]:
                break
        replay.pause()
        await replay.caught_up()
        k = next(e for e in ends if e > replay.situation.seq + 5)
        await replay.seek(events[k - 1].received_at.timestamp())
        from_scratch = Situation(incident="test")
        from_scratch.apply_all(events[:k])
        assert replay.situation.snapshot() == from_scratch.snapshot()
        client = replay.hub.join("trainer")
        replay.play(speed=1)
        clock["t"] += 0.5
        for _ in range(100):
            await asyncio.sleep(0.02)
            if client.pending:
                break
        replay.pause()
        assert client.pending, "deltas of the events after a drag reach push clients"
    finally:
        await replay.close()
        reader.close()


async def test_a_picture_near_the_target_is_folded_on_only_from_between_snapshot_and_target(
    tmp_path: Path,
) -> None:
    """`restore_from_log(near=...)` takes the given picture only where it saves work: at
    or after the snapshot before the target and not past the target. (A picture with a
    journal line the log lacks shows which way was taken.)"""
    path = tmp_path / "mixed.sqlite"
    events = await _mixed_recording(path)
    reader = LogReader(path)
    try:
        snaps = [reader.snapshot_seq_before(s) for s in (300, 310, 320)]
        assert snaps == [300, 300, 300]

        def marked(k: int) -> Situation:
            sit = Situation(incident="test")
            sit.apply_all(events[:k])
            sit._journal(sit.seq, 0.0, "test", "note", "nur im Bild, nicht im Protokoll")
            return sit

        def journal_texts(sit: Situation) -> list[str]:
            return [j["text"] for j in sit.journal]

        note = "nur im Bild, nicht im Protokoll"
        assert note in journal_texts(restore_from_log(reader, _factory, 320, near=marked(310)))
        assert note in journal_texts(restore_from_log(reader, _factory, 320, near=marked(300)))
        assert note not in journal_texts(restore_from_log(reader, _factory, 320, near=marked(290)))
        assert note not in journal_texts(restore_from_log(reader, _factory, 320, near=marked(330)))
        plain = restore_from_log(reader, _factory, 320, near=None)
        near = restore_from_log(reader, _factory, 320, near=marked(310))
        assert near.seq == plain.seq == 320
        assert near.entities == plain.entities and near.alerts == plain.alerts
    finally:
        reader.close()


async def test_play_pause_and_speed(tmp_path: Path) -> None:
    await _recording(tmp_path / "r.sqlite")
    reader = LogReader(tmp_path / "r.sqlite")
    clock = {"t": 1000.0}
    replay = ReplaySession(reader, _factory, clock=lambda: clock["t"])
    await replay.start()
    try:
        assert replay.situation.seq == 1 and not replay.playing
        await replay.seek(T0.timestamp() + 30.0)  # 30 s in: 301 events
        assert replay.situation.seq == 301
        client = replay.hub.join("trainer")
        replay.play(speed=10)
        clock["t"] += 2.0  # two wall seconds at 10x: 20 s of incident
        for _ in range(100):
            await asyncio.sleep(0.02)
            if replay.situation.seq >= 501:
                break
        assert replay.situation.seq == 501
        assert client.pending, "deltas of the replayed events reach push clients"
        replay.pause()
        clock["t"] += 5.0
        await asyncio.sleep(0.1)
        assert replay.situation.seq == 501 and replay.now() == pytest.approx(T0.timestamp() + 50.0)
        with pytest.raises(ValueError, match="speed"):
            replay.set_speed(200)
        replay.play(speed=100)
        clock["t"] += 100.0  # past the end: stops there
        for _ in range(200):
            await asyncio.sleep(0.02)
            if not replay.playing:
                break
        assert replay.situation.seq == 1200 and not replay.playing
    finally:
        await replay.close()
        reader.close()


@pytest.mark.slow
async def test_recorded_demo_replays_what_the_live_server_answered(tmp_path: Path) -> None:
    """Record >= 60 s of the demo, then replay it: situation?at=T equals the live answer at T."""
    data = tmp_path / "data"
    live: list[dict[str, Any]] = []
    async with serve(data, incident="demo-e2e", snapshot_every_n=500) as s:
        stop = asyncio.Event()
        sim = asyncio.create_task(
            run_sim(
                s.ws_url + "/ws/ingest/telemetry",
                s.tokens["robot"],
                rate_hz=2.0,
                start_s=120.0,
                stop=stop,
            )
        )
        started = time.monotonic()
        async with httpx.AsyncClient(base_url=s.url, timeout=10) as c:
            await s.login(c)
            await asyncio.sleep(5)
            while time.monotonic() - started < 62:
                live.append((await c.get("/api/v1/situation")).json())
                await asyncio.sleep(9)
        stop.set()
        await asyncio.wait_for(sim, 15)
    assert len(live) >= 6 and live[-1]["seq"] > live[0]["seq"] > 0
    assert len({e["id"] for e in live[-1]["entities"]}) >= 8

    recording = incident_path(data, "demo-e2e")
    async with (
        serve(tmp_path / "replay-data", replay=recording) as r,
        httpx.AsyncClient(base_url=r.url, timeout=10) as c,
    ):
        await r.login(c)
        for seen in live:
            replayed = (await c.get("/api/v1/situation", params={"at": seen["at"]})).json()
            assert replayed["seq"] == seen["seq"]
            for key in ("entities", "alerts", "journal", "detections", "hazards", "warnings"):
                assert replayed[key] == seen[key], key
        health = (await c.get("/healthz")).json()
        assert health["mode"] == "replay"


async def test_a_replay_elsewhere_uses_the_incidents_own_thresholds(tmp_path: Path) -> None:
    """The water mark was set on the command vehicle; the trainer's machine has none. The
    replay still raises the alert the commander saw: thresholds travel with the log."""
    data = tmp_path / "live"
    gauge = {
        "entity": "pegel-1",
        "kind": "sensor",
        "observed_at": datetime.now(UTC).isoformat(),
        "position": {"lat": 51.52, "lon": 7.44},
        "readings": {"water_level": {"value": 412.0, "unit": "cm"}},
    }
    rules = {"water_marks_cm": {"pegel-1": 400.0}}
    async with (
        serve(data, incident="flood", rules=rules) as s,
        httpx.AsyncClient(base_url=s.url, timeout=10) as c,
    ):
        await s.login(c)
        r = await c.post("/api/v1/ingest/telemetry", json=gauge, headers=s.device())
        assert r.status_code == 202
        live = (await c.get("/api/v1/situation")).json()
    assert [a["detail"] for a in live["alerts"]] == ["water.level"]
    async with (
        serve(tmp_path / "trainer", replay=incident_path(data, "flood")) as r,
        httpx.AsyncClient(base_url=r.url, timeout=10) as c,
    ):
        assert r.settings.rules.water_marks_cm == {}  # not configured here
        await r.login(c)
        replayed = (await c.get("/api/v1/situation", params={"at": live["at"]})).json()
    assert [a["detail"] for a in replayed["alerts"]] == ["water.level"]
