"""The trainer's replay over HTTP, against the real app serving a recording: control
(play, pause, speed, seek), the timeline, the incident library and bookmarks."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cockpit import library
from cockpit.api.replay import Seeks
from cockpit.bookmarks import BookmarkError, BookmarkStore, bookmarks_path
from cockpit.events import (
    Alert,
    AlertEvent,
    Context,
    Detection,
    DetectionEvent,
    DetectionTransition,
    DetectionTransitionEvent,
    Event,
    Source,
    with_seq,
)
from cockpit.recorder import Recorder
from cockpit.situation import Situation
from tests.factories import T0, journal, numbered, position, readings
from tests.serving import Served, serve, serve_in_thread

SECONDS = 120.0  # the recording: 10 units, one position every 0.1 s
PERSON = {"person": {"name": "Erika Musterfrau", "medical": "Marcumar", "age_group": "senior"}}


def _env(t: float, feed: str, actor: str) -> dict[str, Any]:
    at = T0 + timedelta(seconds=t)
    return {
        "incident": "test",
        "source": Source(feed=feed, device=actor),  # type: ignore[arg-type]
        "observed_at": at,
        "received_at": at,
        "context": Context(actor=actor),
    }


def _step(t: float, to: str) -> Event:
    return DetectionTransitionEvent(
        **_env(t, "ui", "el"),
        payload=DetectionTransition(id="adler-1", to=to),  # type: ignore[arg-type]
    )


def _events() -> list[Event]:
    moving = [
        position(f"u{i % 10}", 51.5 + i * 1e-5, 7.4 + (i % 10) * 1e-3, i * 0.1)
        for i in range(int(SECONDS * 10))
    ]
    fall = Detection(
        id="adler-1",
        source="adler",
        category="fall",
        lat=51.51,
        lon=7.46,
        summary="Sturz in Wohnung",
        personal=PERSON,
    )
    special: list[tuple[float, Event]] = [
        (20.05, journal("Lage: Dachstuhlbrand, zwei Trupps unter PA", 20.05)),
        (30.05, DetectionEvent(**_env(30.05, "adler", "adler-gw"), payload=fall)),
        (40.05, _step(40.05, "confirmed")),
        (50.05, _step(50.05, "dispatched")),
        (60.05, readings("robot-1", 60.05, co=250.0)),  # over the CO limit: the fold alerts
        (
            70.05,
            AlertEvent(
                **_env(70.05, "ui", "trainer"),
                payload=Alert(id="inject-1", severity="critical", text="Atemschutznotfall"),
            ),
        ),
    ]
    merged = sorted(
        [(e.received_at.timestamp() - T0.timestamp(), e) for e in moving]
        + [(t, e) for t, e in special],
        key=lambda p: p[0],
    )
    return numbered([e for _, e in merged])


async def record(path: Path, events: list[Event] | None = None, *, snapshots: bool = True) -> int:
    """Write `events` (numbered) as the live recorder does, with a snapshot every 200."""
    events = _events() if events is None else events
    rec = Recorder(path, "test")
    await asyncio.to_thread(rec.open)
    sit = Situation(incident="test")
    for i in range(0, len(events), 200):
        chunk = events[i : i + 200]
        await rec.append(chunk)
        sit.apply_all(chunk)
        if snapshots:
            rec.save_snapshot(sit.seq, sit.received_at, sit.snapshot())
    await rec.close()
    return len(events)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _iso(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


@pytest.fixture
async def recording(tmp_path: Path) -> Path:
    path = tmp_path / "archive" / "test.sqlite"
    await record(path)
    return path


@pytest.fixture
async def served(tmp_path: Path, recording: Path) -> AsyncIterator[Served]:
    async with serve(tmp_path / "data", replay=recording) as s:
        yield s


@contextlib.asynccontextmanager
async def _client(s: Served, user: str = "trainer") -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=s.url, timeout=10) as c:
        await s.login(c, user)
        yield c


# --- control ------------------------------------------------------------------------


async def test_seek_then_the_picture_equals_situation_at_that_time(served: Served) -> None:
    async with _client(served) as c:
        state = (await c.get("/api/v1/replay")).json()
        assert state["incident"] == "test" and state["playing"] is False
        assert state["start"] == T0.timestamp()
        assert state["end"] == pytest.approx(T0.timestamp() + SECONDS - 0.1)
        for seconds in (45.0, 12.3, 99.9):
            r = await c.post("/api/v1/replay/seek", json={"at": _iso(seconds)})
            assert r.status_code == 200, r.text
            assert r.json()["position"] == pytest.approx(T0.timestamp() + seconds)
            assert r.json()["superseded"] is False
            picture = (await c.get("/api/v1/situation")).json()
            at_t = (await c.get("/api/v1/situation", params={"at": _iso(seconds)})).json()
            assert picture["seq"] == at_t["seq"] == r.json()["seq"] > 0
            assert picture["entities"] == at_t["entities"]
            assert {e["id"] for e in picture["entities"]} >= {f"u{i}" for i in range(10)}
        # By epoch seconds too, and clamped to the recording at both ends.
        r = await c.post("/api/v1/replay/seek", json={"t": T0.timestamp() - 3600})
        assert r.json()["position"] == T0.timestamp() and r.json()["seq"] == 1
        r = await c.post("/api/v1/replay/seek", json={"t": T0.timestamp() + 10 * SECONDS})
        assert r.json()["position"] == r.json()["end"] and r.json()["seq"] == r.json()["events"]


async def test_a_seek_tells_the_open_push_stream_to_resync(served: Served) -> None:
    async with _client(served) as c, c.stream("GET", "/api/v1/stream") as stream:
        lines = stream.aiter_lines()
        assert await anext(lines) == "event: snapshot"

        async def until(event: str) -> None:
            async for line in lines:
                if line == f"event: {event}":
                    return

        seek = await c.post("/api/v1/replay/seek", json={"at": _iso(80.0)})
        assert seek.status_code == 200
        await asyncio.wait_for(until("resync"), 5)
    async with _client(served) as c, c.stream("GET", "/api/v1/stream") as again:
        lines = again.aiter_lines()
        assert await anext(lines) == "event: snapshot"
        data = await anext(lines)
    assert f'"seq":{seek.json()["seq"]}' in data.replace(" ", "")


async def test_play_at_ten_times_runs_ten_times_as_fast_as_at_one(served: Served) -> None:
    async def rate(c: httpx.AsyncClient, speed: float) -> tuple[float, int]:
        """Replay seconds per wall second while playing at `speed`, and seqs folded."""
        await c.post("/api/v1/replay/seek", json={"at": _iso(5.0)})
        r = await c.post("/api/v1/replay/play", json={"speed": speed})
        began, pos0 = time.monotonic(), r.json()["position"]
        assert r.json()["playing"] is True and r.json()["speed"] == speed
        await asyncio.sleep(1.0)
        r = await c.post("/api/v1/replay/pause")
        wall, pos1 = time.monotonic() - began, r.json()["position"]
        assert r.json()["playing"] is False
        seq = (await c.get("/api/v1/situation")).json()["seq"]
        return (pos1 - pos0) / wall, seq

    async with _client(served) as c:
        once, seq_once = await rate(c, 1.0)
        tenfold, seq_tenfold = await rate(c, 10.0)
        assert 8.0 < tenfold / once < 12.0, (once, tenfold)
        assert seq_tenfold > seq_once  # the picture moved on with the clock
        r = await c.post("/api/v1/replay/speed", json={"speed": 0.25})
        assert r.json()["speed"] == 0.25 and r.json()["playing"] is False


async def test_a_drag_of_seeks_rebuilds_the_picture_for_where_it_ends_only() -> None:
    class Slow:
        def __init__(self) -> None:
            self.made: list[float] = []

        async def seek(self, t: float) -> None:
            await asyncio.sleep(0.2)  # a rebuild on a large recording
            self.made.append(t)

    replay = Slow()
    seeks = Seeks(replay)
    first = asyncio.create_task(seeks.seek(1.0))
    await asyncio.sleep(0.05)  # the first is rebuilding while the drag goes on
    answers = await asyncio.gather(*(seeks.seek(t) for t in (2.0, 3.0, 4.0)))
    assert await first is True
    assert answers == [False, False, True]
    assert replay.made == [1.0, 4.0]


_BAD_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("/api/v1/replay/speed", {"speed": 0.1}, "speed"),
    ("/api/v1/replay/speed", {"speed": 100.5}, "speed"),
    ("/api/v1/replay/speed", {"speed": "fast"}, "speed"),
    ("/api/v1/replay/speed", {}, "speed"),
    ("/api/v1/replay/play", {"speed": 1000}, "speed"),
    ("/api/v1/replay/play", {"tempo": 2}, "tempo"),
    ("/api/v1/replay/seek", {}, "at"),
    ("/api/v1/replay/seek", {"at": "yesterday"}, "at"),
    ("/api/v1/replay/seek", {"at": "2026-11-26T10:00:30"}, "at"),
    ("/api/v1/replay/seek", {"at": _iso(3), "t": 1.0}, "t"),
    ("/api/v1/replay/seek", {"t": "soon"}, "t"),
    ("/api/v1/replay/bookmarks", {"title": ""}, "title"),
    ("/api/v1/replay/bookmarks", {"title": "x", "at": _iso(-60)}, "at"),
    ("/api/v1/replay/bookmarks", {"title": "x", "t": T0.timestamp() + 999}, "t"),
]


async def test_a_bad_body_is_422_naming_the_field(served: Served) -> None:
    async with _client(served) as c:
        for n, (path, body, field) in enumerate(_BAD_BODIES, 1):
            r = await c.post(path, json=body)
            assert r.status_code == 422, (path, body, r.text)
            assert r.json()["errors"][0]["field"] == field, (path, body, r.text)
            health = (await c.get("/healthz")).json()
            assert health["feeds"]["ui"]["rejected"] == n  # counted on /healthz
        state = (await c.get("/api/v1/replay")).json()
        bookmarks = (await c.get("/api/v1/replay/bookmarks")).json()["bookmarks"]
    assert state["speed"] == 1.0 and state["position"] == state["start"]  # nothing changed
    assert bookmarks == []


async def test_viewers_watch_and_trainers_drive(served: Served) -> None:
    controls = [
        ("/api/v1/replay/play", {"speed": 2}),
        ("/api/v1/replay/pause", {}),
        ("/api/v1/replay/speed", {"speed": 2}),
        ("/api/v1/replay/seek", {"at": _iso(30)}),
        ("/api/v1/replay/bookmarks", {"title": "Lagemeldung"}),
    ]
    async with _client(served, "viewer") as viewer:
        for path, body in controls:
            r = await viewer.post(path, json=body)
            assert r.status_code == 403 and r.json()["errors"][0]["field"] == "role", path
        for path in ("/api/v1/replay", "/api/v1/replay/timeline", "/api/v1/replay/bookmarks"):
            assert (await viewer.get(path)).status_code == 200, path
        r = await viewer.delete("/api/v1/replay/bookmarks/bm-0")
        assert r.status_code == 403
        state = (await viewer.get("/api/v1/replay")).json()
    assert state["playing"] is False and state["position"] == state["start"]
    for user in ("trainer", "el"):
        async with _client(served, user) as c:
            for path, body in controls:
                r = await c.post(path, json=body)
                assert r.status_code in (200, 201), (user, path, r.text)
    async with httpx.AsyncClient(base_url=served.url) as anonymous:
        assert (await anonymous.get("/api/v1/replay")).status_code == 401
        assert (await anonymous.post("/api/v1/replay/pause")).status_code == 401


async def test_a_live_server_says_it_is_not_a_replay(tmp_path: Path) -> None:
    async with serve(tmp_path / "data", incident="live-1") as s, _client(s, "el") as c:
        gauge = {
            "entity": "u1",
            "kind": "unit",
            "observed_at": datetime.now(UTC).isoformat(),
            "position": {"lat": 51.5, "lon": 7.4},
        }
        r = await c.post("/api/v1/ingest/telemetry", json=gauge, headers=s.device())
        assert r.status_code == 202, r.text
        for method, path in [
            ("GET", "/api/v1/replay"),
            ("POST", "/api/v1/replay/play"),
            ("POST", "/api/v1/replay/seek"),
            ("GET", "/api/v1/replay/timeline"),
            ("GET", "/api/v1/replay/bookmarks"),
            ("POST", "/api/v1/replay/bookmarks"),
        ]:
            r = await c.request(method, path, json={})
            assert r.status_code == 409, (path, r.text)
            assert r.json()["error"] == "not a replay"
            assert r.json()["errors"][0]["field"] == "mode"
        listed = (await c.get("/api/v1/recordings")).json()
    assert listed["mode"] == "live"
    [live] = listed["recordings"]
    assert live["incident"] == "live-1" and live["current"] is True and live["events"] >= 1


# --- timeline and library ---------------------------------------------------------


async def test_the_timeline_shows_density_and_marks_without_personal_data(
    served: Served,
) -> None:
    async with _client(served, "viewer") as c:
        r = await c.get("/api/v1/replay/timeline", params={"buckets": 12})
        assert r.status_code == 200, r.text
        tl = r.json()
        for bad in (0, library.MAX_BUCKETS + 1, "many"):
            r = await c.get("/api/v1/replay/timeline", params={"buckets": bad})
            assert r.status_code == 422 and r.json()["errors"][0]["field"] == "buckets"
    assert "Musterfrau" not in r.text and "Marcumar" not in str(tl)
    density = tl["density"]
    assert tl["buckets"] == 12 and len(density["t"]) == len(density["events"]) == 12
    assert sum(density["events"]) == len(_events())
    assert density["t"][0] == tl["start"] and tl["width_s"] == pytest.approx((SECONDS - 0.1) / 12)
    # 120 s in 12 slices of ~10 s: the detection (30 s) and its steps (40, 50 s) in the
    # 4th to 6th, the CO alert (60 s) in the 7th, the injected one (70 s) in the 8th.
    assert density["detections"][3:6] == [1, 1, 1] and sum(density["detections"]) == 3
    assert density["alerts"][6] == 1 and density["alerts"][7] == 1
    assert sum(density["alerts"]) == 2
    kinds = [
        (m["kind"], m.get("step") or m.get("category") or m.get("severity")) for m in tl["marks"]
    ]
    assert ("detection", "reported") in kinds and ("detection", "dispatched") in kinds
    assert ("journal", "note") in kinds and ("alert", "critical") in kinds
    # As the Einsatztagebuch says it, in German.
    assert [m["text"] for m in tl["marks"] if m["kind"] == "detection"] == [
        "Meldung fall: Sturz in Wohnung",
        "Meldung fall: bestätigt",
        "Meldung fall: Kräfte entsandt",
    ]
    by_text = {m["text"]: m for m in tl["marks"]}
    assert by_text["Atemschutznotfall"]["at"] == _iso(70.05)
    assert all(tl["start"] <= m["t"] <= tl["end"] for m in tl["marks"])
    assert tl["marks"] == sorted(tl["marks"], key=lambda m: (m["t"], m["seq"]))


async def test_seeking_to_a_mark_shows_what_it_marks(served: Served) -> None:
    async with _client(served) as c:
        marks = (await c.get("/api/v1/replay/timeline")).json()["marks"]
        confirmed = next(m for m in marks if m.get("step") == "confirmed")
        await c.post("/api/v1/replay/seek", json={"t": confirmed["t"]})
        picture = (await c.get("/api/v1/situation")).json()
        assert [d["state"] for d in picture["detections"]] == ["confirmed"]
        await c.post("/api/v1/replay/seek", json={"t": confirmed["t"] - 0.01})
        picture = (await c.get("/api/v1/situation")).json()
    assert [d["state"] for d in picture["detections"]] == ["new"]


async def test_the_library_lists_recordings_and_reads_each_once(
    tmp_path: Path, recording: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    other = data / "incidents" / "other.sqlite"
    await record(other, numbered([position("x1", 51.0, 7.0, t) for t in range(5)]))
    (data / "incidents" / "broken.sqlite").write_bytes(b"not a database at all" * 100)
    scans: list[str] = []
    real = library._facts

    def counted(path: Path, settings: Any) -> Any:
        scans.append(path.name)
        return real(path, settings)

    monkeypatch.setattr(library, "_facts", counted)
    async with serve(data, replay=recording) as s, _client(s, "viewer") as c:
        first = (await c.get("/api/v1/recordings")).json()
        again = (await c.get("/api/v1/recordings")).json()
        assert again == first
        read = [name for name in scans if name != "broken.sqlite"]  # fails at once, not cached
        assert sorted(read) == ["other.sqlite", "test.sqlite"]  # once, not per request
        monkeypatch.setattr(library, "LIVE_REUSE_S", 0.0)
        await record(other, [with_seq(position("x1", 51.0, 7.0, 9.0), 6)], snapshots=False)
        third = (await c.get("/api/v1/recordings")).json()
    read = [name for name in scans if name != "broken.sqlite"]
    assert sorted(read) == ["other.sqlite", "other.sqlite", "test.sqlite"]  # it changed
    assert first["mode"] == "replay"
    by_file = {r["file"]: r for r in first["recordings"]}
    current = by_file["test.sqlite"]
    assert current["current"] is True and current["incident"] == "test"
    assert current["events"] == len(_events())
    assert (current["alerts"], current["detections"]) == (2, 1)
    # journal: the note, the report and its two steps, the two alerts
    assert current["journal"] == 6
    assert current["duration_s"] == pytest.approx(SECONDS - 0.1)
    assert current["start_at"] == "2026-11-26T10:00:00.000000Z"
    assert current["size_bytes"] == recording.stat().st_size
    assert by_file["other.sqlite"]["events"] == 5 and by_file["other.sqlite"]["current"] is False
    assert "error" in by_file["broken.sqlite"] and str(tmp_path) not in str(first)
    assert {r["file"]: r for r in third["recordings"]}["other.sqlite"]["events"] == 6


# --- bookmarks ------------------------------------------------------------------------


async def test_bookmarks_survive_a_restart_and_never_change_the_recording(
    tmp_path: Path, recording: Path
) -> None:
    before = _sha(recording)
    data = tmp_path / "data"
    async with serve(data, replay=recording) as s:
        async with _client(s, "trainer") as c:
            r = await c.post(
                "/api/v1/replay/bookmarks",
                json={"at": _iso(30.05), "title": "Meldung Sturz", "note": "Wer hat's gesehen?"},
            )
            assert r.status_code == 201, r.text
            fall = r.json()
            await c.post("/api/v1/replay/seek", json={"at": _iso(61)})
            r = await c.post("/api/v1/replay/bookmarks", json={"title": "CO-Alarm"})
            co = r.json()
            assert co["at"] == _iso(61).replace("Z", ".000000Z") and co["author"] == "trainer"
            # Many at once (each a read-modify-write of the file): none is lost.
            many = await asyncio.gather(
                *(
                    c.post("/api/v1/replay/bookmarks", json={"t": fall["t"], "title": f"n{i}"})
                    for i in range(20)
                )
            )
            assert [r.status_code for r in many] == [201] * 20
            listed = (await c.get("/api/v1/replay/bookmarks")).json()["bookmarks"]
            assert len(listed) == 22
            for r in many:
                assert (await c.delete(f"/api/v1/replay/bookmarks/{r.json()['id']}")).is_success
        async with _client(s, "el") as el:
            r = await el.delete(f"/api/v1/replay/bookmarks/{co['id']}")
            assert r.status_code == 403 and r.json()["errors"][0]["field"] == "author"
            r = await el.post("/api/v1/replay/bookmarks", json={"t": fall["t"], "title": "EL"})
            mine = r.json()
            assert (await el.delete(f"/api/v1/replay/bookmarks/{mine['id']}")).status_code == 200
            r = await el.delete(f"/api/v1/replay/bookmarks/{mine['id']}")
            assert r.status_code == 404 and r.json()["errors"][0]["field"] == "bookmark_id"
    assert _sha(recording) == before
    assert bookmarks_path(recording).is_file()
    # A restart on the same recording (another data dir even: the notes are beside it).
    async with serve(tmp_path / "data2", replay=recording) as s, _client(s, "viewer") as c:
        kept = (await c.get("/api/v1/replay/bookmarks")).json()
        listed = (await c.get("/api/v1/recordings")).json()["recordings"]
    assert [(b["title"], b["note"], b["author"]) for b in kept["bookmarks"]] == [
        ("Meldung Sturz", "Wer hat's gesehen?", "trainer"),
        ("CO-Alarm", "", "trainer"),
    ]
    assert all(b["created_at"].endswith("Z") for b in kept["bookmarks"])
    assert [r["bookmarks"] for r in listed if r["current"]] == [2]
    assert _sha(recording) == before


def test_a_damaged_bookmarks_file_is_reported_and_never_overwritten(tmp_path: Path) -> None:
    recording = tmp_path / "incidents" / "test.sqlite"
    store = BookmarkStore(recording, "test")
    assert store.all() == []  # none yet: no file, nothing created
    assert not bookmarks_path(recording).parent.exists()
    mark = store.add(T0.timestamp(), "Lage", "", "trainer")
    assert bookmarks_path(recording) == tmp_path / "incidents" / "test" / "trainer-bookmarks.json"
    assert BookmarkStore(recording, "test").all() == [mark]
    damaged = b'{"format": 1, "bookmarks": [{"id": "bm-1", "t": 1'
    bookmarks_path(recording).write_bytes(damaged)
    with pytest.raises(BookmarkError, match=r"trainer-bookmarks\.json"):
        store.all()
    with pytest.raises(BookmarkError):
        store.add(T0.timestamp(), "Lage", "", "trainer")
    assert bookmarks_path(recording).read_bytes() == damaged  # the notes are still there
    assert [p.name for p in bookmarks_path(recording).parent.iterdir() if p.suffix != ".lock"] == [
        "trainer-bookmarks.json"
    ]  # no temp file left behind


# --- no body breaks a control -----------------------------------------------------

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(-(2**60), 2**60)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)
_FIELDS = st.sampled_from(["speed", "at", "t", "title", "note", "x"])
_VALUES = (
    _JSON
    | st.floats(min_value=-10, max_value=200)
    | st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat())
    | st.floats(min_value=T0.timestamp() - 50, max_value=T0.timestamp() + 200)
)
_PATHS = st.sampled_from(
    [f"/api/v1/replay/{p}" for p in ("play", "speed", "seek", "pause", "bookmarks")]
)


def test_no_control_body_breaks_the_replay(tmp_path: Path) -> None:
    recording = tmp_path / "archive" / "test.sqlite"
    asyncio.run(record(recording, _events()[:300]))
    with (
        serve_in_thread(tmp_path / "data", replay=recording) as s,
        httpx.Client(base_url=s.url, timeout=10) as c,
    ):
        r = c.post(
            "/api/v1/session", json={"username": "trainer", "password": s.passwords["trainer"]}
        )
        assert r.status_code == 200

        @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
        @given(
            _PATHS, st.dictionaries(_FIELDS, _VALUES, max_size=3) | _JSON | st.binary(max_size=40)
        )
        def check(path: str, body: Any) -> None:
            if isinstance(body, bytes):
                r = c.post(path, content=body, headers={"content-type": "application/json"})
            else:
                r = c.post(path, json=body)
            assert r.status_code in (200, 201, 422), (path, body, r.text)
            if r.status_code == 422:
                assert r.json()["errors"][0]["field"], r.text
            else:
                state = c.get("/api/v1/replay").json()
                assert state["start"] <= state["position"] <= state["end"]
                assert 0.25 <= state["speed"] <= 100

        check()


async def test_the_control_bodies_are_in_the_openapi_document(served: Served) -> None:
    async with _client(served, "viewer") as c:
        paths = (await c.get("/openapi.json")).json()["paths"]

    def body(path: str) -> dict[str, Any]:
        schema: dict[str, Any] = paths[path]["post"]["requestBody"]["content"]["application/json"][
            "schema"
        ]
        return schema

    assert set(body("/api/v1/replay/seek")["properties"]) == {"at", "t"}
    assert body("/api/v1/replay/speed")["required"] == ["speed"]
    assert body("/api/v1/replay/speed")["properties"]["speed"]["maximum"] == 100
    assert set(body("/api/v1/replay/bookmarks")["properties"]) == {"at", "t", "title", "note"}
    assert "delete" in paths["/api/v1/replay/bookmarks/{bookmark_id}"]
    assert "get" in paths["/api/v1/recordings"] and "get" in paths["/api/v1/replay/timeline"]
