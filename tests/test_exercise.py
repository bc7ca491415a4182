"""Exercise mode (`cockpit replay RECORDING --as-live`): a past incident played into a live
server with the times of today; the crew decides again; the trainer pauses, skips and
injects; the recording is never changed and no personal data enters the exercise.

The recording is written with the real recorder (tests/recordings.py, March 2025); the
server is the real app under uvicorn with its real live pipeline and log.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cockpit import cli
from cockpit.auth import AuthStore
from cockpit.events import (
    Context,
    Detection,
    DetectionEvent,
    Source,
    WeatherEvent,
    WeatherObservation,
    to_plain,
    with_seq,
)
from cockpit.exercise import PLAYED_KINDS, Exercise, ExerciseOptions, played, shifted
from cockpit.recorder import LogReader, Recorder, incident_path
from cockpit.settings import SettingsError, load_settings
from tests import recordings
from tests.serving import serve


def _times(value: Any, path: str = "") -> dict[str, str]:
    """Every ISO time in an event's JSON form, by its path."""
    out: dict[str, str] = {}
    if isinstance(value, dict):
        for k, v in value.items():
            out.update(_times(v, f"{path}.{k}"))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.update(_times(v, f"{path}[{i}]"))
    elif isinstance(value, str) and len(value) >= 20 and value[4] == "-" and value[10] == "T":
        out[path] = value
    return out


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


_WHEN = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)


@settings(max_examples=60, deadline=None)
@given(
    seconds=st.floats(min_value=-1e8, max_value=1e8, allow_nan=False),
    late=st.floats(min_value=0, max_value=3600),
)
def test_shifting_moves_every_time_by_the_same_amount_and_drops_personal_data(
    seconds: float, late: float
) -> None:
    delta = timedelta(seconds=seconds)
    env = {
        "incident": "then",
        "source": Source(feed="adler", device="gw"),
        "observed_at": _WHEN,
        "received_at": _WHEN + timedelta(seconds=late),
        "seq": 7,
        "context": Context(actor=None),
    }
    fall = DetectionEvent(
        **env,  # type: ignore[arg-type]
        payload=Detection(
            id="adler-1", source="adler", category="fall", personal={"person": {"medical": "x"}}
        ),
    )
    wind = WeatherEvent(**env, payload=WeatherObservation(station="ws-1", wind_dir_deg=270.0))  # type: ignore[arg-type]
    for ev in (fall, wind):
        out = shifted(ev, delta, "now")
        before, after = _times(to_plain(ev)), _times(to_plain(out))
        assert before.keys() == after.keys() and before
        for where, then in before.items():
            assert _epoch(after[where]) - _epoch(then) == pytest.approx(seconds, abs=1e-3), where
        assert out.seq is None and out.id != ev.id and out.incident == "now"
    assert shifted(fall, delta, "now").payload.personal is None  # type: ignore[union-attr]
    # Published now: received now; observed when it happened, never after it arrived.
    arrived = _WHEN + timedelta(seconds=30)
    out = shifted(fall, delta, "now", arrived)
    assert out.received_at == arrived
    assert out.observed_at == min(_WHEN + delta, arrived)
    assert fall.payload.personal is not None  # the recorded event itself is untouched


async def test_an_exercise_is_cut_off_from_the_real_world(tmp_path: Path) -> None:
    recording = await recordings.write_recording(tmp_path / "b.sqlite", seconds=5)
    duty = load_settings(
        None,
        data_dir=tmp_path / "d",
        incident="real-incident",
        mavlink_listen="udp:127.0.0.1:14550",
        cot_send_to="tcp:10.0.0.5:8087",
        mqtt_url="mqtt://127.0.0.1:1883",
        adler_alert_url="https://adler.example/alerts",
        adler_alert_token="secret-token",
        cap_url="https://warnings.example/cap.zip",
    )
    ex = ExerciseOptions.of(recording).settings(duty)
    assert ex.incident != "real-incident" and ex.incident.startswith("uebung-")
    off = (ex.mavlink_listen, ex.cot_send_to, ex.mqtt_url, ex.adler_alert_url, ex.cap_url)
    assert off == (None, None, None, None, None)  # nothing in from, nothing out to, reality
    assert ex.rosbridge == {} and ex.data_dir == duty.data_dir


def test_only_what_devices_reported_is_played() -> None:
    decisions = {"ack", "journal", "detection.transition", "hazard.drawn", "hazard.removed"}
    assert not decisions & PLAYED_KINDS
    assert {"alert", "responder.call", "clock", "detection.purged"}.isdisjoint(PLAYED_KINDS)
    assert {"position", "readings", "status", "detection", "warning", "weather"} <= PLAYED_KINDS


# --- a live exercise server -------------------------------------------------------------


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def _situation(c: httpx.AsyncClient, **params: str) -> dict[str, Any]:
    r = await c.get("/api/v1/situation", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _units(sit: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["id"]: e for e in sit["entities"] if e["id"] in recordings.UNITS}


async def _until(check: Any, timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        got = await check()
        if got:
            return got
        assert time.monotonic() < deadline, "not within the time"
        await asyncio.sleep(0.1)


@pytest.fixture
async def exercise(tmp_path: Path) -> Any:
    recording = await recordings.write_recording(tmp_path / "then" / "brand.sqlite")
    before = _sha(recording)
    opts = ExerciseOptions.of(recording)
    async with serve(tmp_path / "data", exercise=opts) as s:
        yield s, opts, recording
    assert _sha(recording) == before  # played, never written
    assert not (recording.with_suffix("")).exists()  # nothing was put beside it either


async def test_the_recording_plays_now_and_the_crew_decides_again(exercise: Any) -> None:
    s, opts, _recording = exercise
    async with httpx.AsyncClient(base_url=s.url) as c:
        await s.login(c, "el")
        state = (await c.get("/api/v1/exercise")).json()
        assert state["mode"] == "exercise" and state["playing"]
        assert state["recorded_incident"] == recordings.RECORDED
        assert state["incident"] == opts.incident != recordings.RECORDED
        health = (await c.get("/healthz")).json()
        assert health["mode"] == "exercise" and health["incident"] == opts.incident

        async def three_units() -> dict[str, Any] | None:
            units = _units(await _situation(c))
            return units if len(units) == 3 else None

        first = await _until(three_units)
        await asyncio.sleep(1.5)
        later = _units(await _situation(c))
        now = time.time()
        for unit in recordings.UNITS:
            # Moving, with the times of today: a report of seconds ago, not of 2025.
            assert later[unit]["lon"] > first[unit]["lon"], unit
            assert abs(_epoch(later[unit]["observed_at"]) - now) < 10, later[unit]
            assert later[unit]["callsign"].startswith("Florian Hafen")

        # The robot's CO raises the alert, as in the incident: the rules came along.
        async def co_alert() -> list[dict[str, Any]]:
            sit = await _situation(c)
            return [a for a in sit["alerts"] if a["entity"] == "robot-1" and a["active"]]

        alert = (await _until(co_alert))[0]
        assert abs(_epoch(alert["raised_at"]) - time.time()) < 15
        # ...and the crew acknowledges it themselves: the recorded acknowledgement and
        # journal entry (5 s and 15 s in) are not played.
        # Only the trainer moves the exercise on: the commander is the one being trained.
        r = await c.post("/api/v1/exercise/skip", json={"t": state["start"] + 20})
        assert r.status_code == 403 and r.json()["errors"][0]["field"] == "role", r.text
        async with httpx.AsyncClient(base_url=s.url) as trainer:
            await s.login(trainer, "trainer")
            r = await trainer.post("/api/v1/exercise/skip", json={"t": state["start"] + 20})
            assert r.status_code == 200, r.text
        sit = await _situation(c)
        texts = [j["text"] for j in sit["journal"]]
        assert recordings.JOURNAL_THEN not in texts
        assert not [a for a in sit["alerts"] if a["acknowledged_by"]]
        r = await c.post(f"/api/v1/alerts/{alert['id']}/ack")
        assert r.status_code == 201, r.text

        # The fall arrives; its person does not, not even for a commander who asks.
        async def fall() -> dict[str, Any] | None:
            sit = await _situation(c, personal="true")
            return next((d for d in sit["detections"] if d["id"] == "adler-1"), None)

        det = await _until(fall)
        assert det["address"] == "Kanalstraße 3" and not det.get("personal")
        # Nor the volunteers: neither their registry entry nor their phones' positions.
        sit = await _situation(c)
        assert not sit["responders"]
        assert recordings.RESPONDER not in {e["id"] for e in sit["entities"]}
        # A device posting a person into the exercise loses the person, not the report.
        with AuthStore(s.settings.data_dir / "auth.sqlite") as auth:
            token = auth.add_device("adler-gw", ["adler"])
        fall2 = {
            "id": "adler-2",
            "type": "fall",
            "device": "fall-sensor-3",
            "time": datetime.now(UTC).isoformat(),
            "location": {"lat": 51.52, "lon": 7.44, "address": "Hafenweg 1"},
            "person": {"id": "p-2", "medical": "Heparin"},
        }
        r = await c.post(
            "/api/v1/ingest/adler", json=fall2, headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 202, r.text
        sit = await _situation(c, personal="true")
        second = next(d for d in sit["detections"] if d["id"] == "adler-2")
        assert second["address"] == "Hafenweg 1" and not second.get("personal")
    log = incident_path(s.settings.data_dir, opts.incident)
    assert log.is_file() and recordings.PERSONAL.encode() not in log.read_bytes()
    assert b"Anna K." not in log.read_bytes() and b"Heparin" not in log.read_bytes()


async def test_pause_holds_the_picture_and_going_on_keeps_the_times_of_today(
    exercise: Any,
) -> None:
    s, _opts, _ = exercise
    async with httpx.AsyncClient(base_url=s.url) as c:
        await s.login(c, "trainer")
        await _until(lambda: _has_units(c))
        r = await c.post("/api/v1/exercise/pause")
        assert r.status_code == 200 and r.json()["playing"] is False, r.text
        held = _units(await _situation(c))
        await asyncio.sleep(2.5)
        still = _units(await _situation(c))
        assert {u: e["lon"] for u, e in still.items()} == {u: e["lon"] for u, e in held.items()}
        paused_at = (await c.get("/api/v1/exercise")).json()["position"]

        r = await c.post("/api/v1/exercise/play", json={})
        assert r.status_code == 200 and r.json()["playing"], r.text
        await asyncio.sleep(1.5)
        moved = _units(await _situation(c))
        now = time.time()
        for unit, e in moved.items():
            assert e["lon"] > held[unit]["lon"], unit
            # The pause is not a hole in time: the next report is of now, not 2.5 s ago.
            assert abs(_epoch(e["observed_at"]) - now) < 3, e
        position = (await c.get("/api/v1/exercise")).json()["position"]
        assert paused_at < position < paused_at + 10  # the recording went on where it held
        # A second "go on" (another trainer, a retry) neither rewinds nor jumps.
        r = await c.post("/api/v1/exercise/play")
        assert r.status_code == 200 and position <= r.json()["position"] < position + 5, r.text


async def _has_units(c: httpx.AsyncClient) -> bool:
    return len(_units(await _situation(c))) == 3


async def test_skip_runs_forward_only(exercise: Any) -> None:
    s, _opts, _ = exercise
    async with httpx.AsyncClient(base_url=s.url) as c:
        await s.login(c, "trainer")
        state = (await c.get("/api/v1/exercise")).json()
        target = state["start"] + 60
        r = await c.post("/api/v1/exercise/skip", json={"t": target})
        assert r.status_code == 200, r.text
        assert r.json()["published"] > 300 and r.json()["position"] >= target
        units = _units(await _situation(c))
        # The units stand where the recording had them a minute in.
        assert min(e["lon"] for e in units.values()) >= recordings.lon_at(int(60 / 0.5)) - 1e-9
        r = await c.post("/api/v1/exercise/skip", json={"t": state["start"] + 10})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "t", r.text
        assert "only runs forward" in r.json()["errors"][0]["reason"]
    # The exercise's own log can be replayed: its receive times rise with seq, also
    # across the skip (the skipped minute was received at once, now).
    reader = LogReader(incident_path(s.settings.data_dir, _opts.incident))
    try:
        received = [ev.received_at.timestamp() for ev in reader.events(0, None, 100_000)]
    finally:
        reader.close()
    assert len(received) > 300
    assert all(b >= a - 0.5 for a, b in itertools.pairwise(received))


async def test_the_trainer_injects_and_nobody_else_may(exercise: Any) -> None:
    s, _opts, _ = exercise
    async with httpx.AsyncClient(base_url=s.url) as trainer:
        await s.login(trainer, "trainer")
        r = await trainer.post(
            "/api/v1/exercise/inject", json={"kind": "journal", "text": "Einspielung: Gebäude 2"}
        )
        assert r.status_code == 201, r.text
        r = await trainer.post(
            "/api/v1/exercise/inject",
            json={
                "kind": "alert",
                "text": "Atemschutznotfall Trupp 2",
                "severity": "critical",
                "entity": "hlf-2",
            },
        )
        assert r.status_code == 201, r.text
        alert_id = r.json()["alert"]
        sit = await _situation(trainer)
        entry = next(j for j in sit["journal"] if j["text"] == "Einspielung: Gebäude 2")
        assert entry["category"] == "exercise" and entry["author"] == "trainer"
        alert = next(a for a in sit["alerts"] if a["id"] == alert_id)
        assert alert["severity"] == "critical" and alert["active"] and alert["entity"] == "hlf-2"

        rejects = (await trainer.get("/healthz")).json()["feeds"]["ui"]["rejected"]
        for body, field in (
            ({"kind": "fire", "text": "x"}, "kind"),
            ({"kind": "journal", "text": ""}, "text"),
            ({"kind": "alert", "text": "x", "severity": "loud"}, "severity"),
            ({"kind": "journal", "text": "x", "by": "me"}, "by"),
        ):
            r = await trainer.post("/api/v1/exercise/inject", json=body)
            assert r.status_code == 422, r.text
            assert r.json()["errors"][0]["field"] == field, r.text
        after = (await trainer.get("/healthz")).json()["feeds"]["ui"]["rejected"]
        assert after == rejects + 4
        # Nothing of the refused bodies reached the picture.
        texts = [j["text"] for j in (await _situation(trainer))["journal"]]
        assert texts.count("x") == 0
    async with httpx.AsyncClient(base_url=s.url) as viewer:
        await s.login(viewer, "viewer")
        r = await viewer.post("/api/v1/exercise/inject", json={"kind": "journal", "text": "y"})
        assert r.status_code == 403, r.text
        r = await viewer.post("/api/v1/exercise/pause")
        assert r.status_code == 403, r.text
        assert (await viewer.get("/api/v1/exercise")).status_code == 200
    async with httpx.AsyncClient(base_url=s.url) as stranger:
        r = await stranger.post("/api/v1/exercise/inject", json={"kind": "journal", "text": "z"})
        assert r.status_code == 401, r.text


async def test_a_live_server_and_a_replay_are_not_exercises(tmp_path: Path) -> None:
    async with serve(tmp_path / "live") as s, httpx.AsyncClient(base_url=s.url) as c:
        await s.login(c, "trainer")
        r = await c.get("/api/v1/exercise")
        assert r.status_code == 409 and r.json()["errors"][0]["field"] == "mode", r.text
        assert "live" in r.json()["errors"][0]["reason"]
    recording = await recordings.write_recording(tmp_path / "then" / "b.sqlite", seconds=5)
    async with (
        serve(tmp_path / "rp", replay=recording) as s,
        httpx.AsyncClient(base_url=s.url) as c,
    ):
        await s.login(c, "trainer")
        r = await c.post("/api/v1/exercise/inject", json={"kind": "journal", "text": "z"})
        assert r.status_code == 409 and "replay" in r.json()["errors"][0]["reason"], r.text


async def test_the_command_refuses_what_is_not_an_exercise(tmp_path: Path) -> None:
    recording = await recordings.write_recording(tmp_path / "b.sqlite", seconds=5)
    data = ["--data-dir", str(tmp_path / "d")]
    # --from and --paused belong to an exercise; a file that is no recording is refused.
    assert cli.main(["replay", str(recording), "--paused", *data]) == 2
    assert cli.main(["replay", str(recording), "--as-live", "--from", "9 Uhr", *data]) == 2
    (tmp_path / "no.sqlite").write_bytes(b"not sqlite")
    assert cli.main(["replay", str(tmp_path / "no.sqlite"), "--as-live", *data]) == 2
    # A --from outside the recording, and a recording with nothing to play, are refused
    # with one line, before anything is served.
    late = "2030-01-01T00:00:00Z"
    assert cli.main(["replay", str(recording), "--as-live", "--from", late, *data]) == 2
    empty = tmp_path / "empty.sqlite"
    rec = Recorder(empty, "nothing")
    rec.open()
    await rec.close()
    assert cli.main(["replay", str(empty), "--as-live", *data]) == 2
    with pytest.raises(SettingsError, match="no events to play"):
        ExerciseOptions.of(empty)
    reader = LogReader(recording)
    try:
        assert reader.incident == recordings.RECORDED
    finally:
        reader.close()


async def test_beginning_later_starts_from_what_was_known_then(tmp_path: Path) -> None:
    recording = await recordings.write_recording(tmp_path / "then" / "b.sqlite", seconds=60)
    begin = recordings.T0.timestamp() + 20
    opts = ExerciseOptions.of(recording, start=begin, paused=True)
    async with serve(tmp_path / "d", exercise=opts) as s, httpx.AsyncClient(base_url=s.url) as c:
        await s.login(c, "trainer")
        state = (await c.get("/api/v1/exercise")).json()
        assert state["position"] == pytest.approx(begin) and not state["playing"]
        sit = await _situation(c)
        # What was known 20 s in is there at once: callsigns registered at the start, the
        # fall of 10 s in, the robot's CO of 8 s in (and its alert).
        units = _units(sit)
        assert {u["callsign"] for u in units.values()} == {
            "Florian Hafen 1/46-1",
            "Florian Hafen 2/46-1",
            "Florian Hafen 3/46-1",
        }
        assert any(d["id"] == "adler-1" for d in sit["detections"])
        assert any(a["entity"] == "robot-1" and a["active"] for a in sit["alerts"])
        # ...where the units were then, not where they started.
        assert min(u["lon"] for u in units.values()) == pytest.approx(recordings.lon_at(40))


async def _write_hotspot(path: Path) -> None:
    """A recording with a thermal hotspot and its picture beside it."""
    when = recordings.T0
    fire = DetectionEvent(
        incident="pic",
        source=Source(feed="video", device="uav-1"),
        observed_at=when,
        received_at=when,
        payload=Detection(
            id="uav-1-hot-1",
            source="video",
            category="hotspot",
            lat=51.52,
            lon=7.44,
            stream="uav-1",
            snapshot="snapshots/uav-1/hot-1.jpg",
        ),
    )
    picture = path.with_suffix("") / "snapshots" / "uav-1" / "hot-1.jpg"
    picture.parent.mkdir(parents=True)
    picture.write_bytes(b"\xff\xd8 a jpeg")
    rec = Recorder(path, "pic")
    rec.open()
    try:
        await rec.append([with_seq(fire, 1)])
    finally:
        await rec.close()


async def test_a_failed_publish_or_picture_loses_and_repeats_nothing(tmp_path: Path) -> None:
    recording = await recordings.write_recording(tmp_path / "then" / "b.sqlite", seconds=5)
    reader = LogReader(recording)
    got: list[Any] = []
    failures = [ConnectionError("the bus is down")]

    async def publish(events: Any) -> list[int]:
        if failures:
            raise failures.pop()
        got.extend(events)
        return list(range(len(got) - len(events) + 1, len(got) + 1))

    try:
        ex = Exercise(reader, publish, "uebung-x")
        with pytest.raises(ConnectionError):
            await ex.skip(ex.t_last)
        await ex.skip(ex.t_last)  # the player's next tick does the same
        expected = [ev for ev in reader.events(0, None, 100_000) if played(ev)]
    finally:
        reader.close()
    assert len(got) == len(expected) == ex.played and len({e.id for e in got}) == len(got)
    assert ex.last_seq == len(got)

    # A picture that cannot be copied (its folder is a file) holds nothing up.
    pic = tmp_path / "pic" / "p.sqlite"
    pic.parent.mkdir()
    await _write_hotspot(pic)
    for target_ok in (True, False):
        target = tmp_path / f"target-{target_ok}"
        target.mkdir()
        if not target_ok:
            (target / "snapshots").write_text("in the way")
        sent: list[Any] = []

        async def keep(events: Any, sent: list[Any] = sent) -> list[int]:
            sent.extend(events)
            return [len(sent)]

        reader = LogReader(pic)
        try:
            ex = Exercise(
                reader, keep, "uebung-p", folder=pic.with_suffix(""), target_folder=target
            )
            await ex.skip(ex.t_last)
        finally:
            reader.close()
        assert [e.payload.id for e in sent] == ["uav-1-hot-1"]
        copied = target / "snapshots" / "uav-1" / "hot-1.jpg"
        assert copied.is_file() == target_ok
