"""The demo's twelve volunteer first responders: who they are, how they move about the
district, and how they answer an alert (the HTTP endpoint the cockpit posts to)."""

from __future__ import annotations

import asyncio
import random
import secrets
from collections import Counter
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cockpit.auth import AuthStore
from feeds.sim.alert_endpoint import AlertEndpoint
from feeds.sim.geo import haversine_m, offset
from feeds.sim.responders import (
    HURRY_MPS,
    RADIUS_M,
    STROLL_MPS,
    ResponderSim,
)
from feeds.sim.scenario import FIRE
from feeds.sim.streets import BLOCK_M, Water, errand
from tests.serving import serve

QUALIFICATIONS = {"first_aid", "paramedic", "emergency_paramedic", "doctor", "nurse", "firefighter"}


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_twelve_pseudonymous_responders_with_a_mix_of_skills_and_ways_to_travel() -> None:
    sim = ResponderSim(clock=Clock())
    entries = sim.registry(0.0)
    assert len(entries) == 12 and len({e["id"] for e in entries}) == 12
    assert {e["callsign"] for e in entries} == {f"Ersthelfer {n:02d}" for n in range(1, 13)}
    for e in entries:
        assert set(e) == {"id", "callsign", "qualifications", "available", "travel"}
        assert 1 <= len(e["qualifications"]) <= 6 and set(e["qualifications"]) <= QUALIFICATIONS
    assert {q for e in entries for q in e["qualifications"]} >= {
        "first_aid",
        "paramedic",
        "nurse",
        "doctor",
        "firefighter",
    }
    assert set(Counter(e["travel"] for e in entries)) == {"foot", "bike", "car"}
    # Two off duty at the start; one of them comes on two minutes in.
    assert [e["callsign"] for e in entries if not e["available"]] == [
        "Ersthelfer 07",
        "Ersthelfer 11",
    ]
    later = {e["callsign"]: e["available"] for e in sim.registry(121.0)}
    assert later["Ersthelfer 11"] and not later["Ersthelfer 07"]


def test_they_walk_the_streets_of_the_district_at_their_pace() -> None:
    sim = ResponderSim(clock=Clock())
    for rid, person in sim.people.items():
        travel = person.spec.travel
        times = [float(t) for t in range(0, 7200, 3)]
        points = [sim.position(rid, t) for t in times]
        # Within the district (a block's overshoot at most) for two hours, never in the
        # harbour basins or the canal.
        assert max(haversine_m(p, FIRE) for p in points) <= RADIUS_M + BLOCK_M[1]
        assert not any(sim.water.contains(p) for p in points)
        # Never faster than their way of travel, and on the move a good part of the time.
        steps = [haversine_m(a, b) / 3.0 for a, b in pairwise(points)]
        assert max(steps) <= STROLL_MPS[travel] * 1.01
        assert sum(s > 0.1 for s in steps) > len(steps) / 3
        assert haversine_m(points[0], points[-1]) > 50.0 or max(steps) > 0
        # The reports say so too.
        state = person.track.at(600.0)
        assert 0.0 <= state.speed_mps <= STROLL_MPS[travel] * 1.01


def test_the_same_seed_gives_the_same_district() -> None:
    a, b, c = (ResponderSim(seed=s, clock=Clock()) for s in (6, 6, 7))
    now = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    # Asked in a different order, the walk is the same.
    b.telemetry(3000.0, now)
    assert a.telemetry(60.0, now) == b.telemetry(60.0, now)
    assert a.telemetry(3000.0, now) == b.telemetry(3000.0, now)
    assert a.telemetry(600.0, now) != c.telemetry(600.0, now)


def test_positions_are_native_telemetry_of_persons() -> None:
    sim = ResponderSim(clock=Clock())
    now = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    messages = sim.telemetry(30.0, now)
    assert len(messages) == 12
    for m in messages:
        assert m["kind"] == "person" and m["entity"].startswith("adler-eh-")
        assert m["observed_at"] == "2026-11-26T10:00:00.000Z"
        assert set(m["position"]) >= {"lat", "lon", "speed_mps", "heading_deg", "accuracy_m"}


def alert(rid: str, det: str = "adler-x", at: tuple[float, float] | None = None) -> dict[str, Any]:
    lat, lon = at if at else offset(FIRE, 100.0, 0.0)
    return {
        "detection": {"id": det, "category": "fall", "lat": lat, "lon": lon},
        "responder": rid,
        "alerted_at": "2026-11-26T10:00:00Z",
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({"detection": {"id": "d"}}, "responder"),
        ({"responder": "adler-eh-01", "detection": "d"}, "detection.id"),
        ({"responder": "adler-eh-01", "detection": {"id": "d", "lat": "x", "lon": 7}}, "lat/lon"),
        ({"responder": "adler-eh-01", "detection": {"id": "d", "lat": 91, "lon": 7}}, "lat/lon"),
    ],
)
def test_a_malformed_alert_is_refused_naming_the_field(body: Any, field: str) -> None:
    status, reply = ResponderSim(clock=Clock()).on_alert(body)
    assert status == 400 and field in reply["error"]


def test_who_accepts_and_who_declines() -> None:
    sim = ResponderSim(clock=Clock())
    assert sim.on_alert(alert("nobody"))[0] == 404
    for rid in ("adler-eh-01", "adler-eh-03", "adler-eh-07", "adler-eh-04"):
        assert sim.on_alert(alert(rid))[0] == 202
    assert sim.on_alert(alert("adler-eh-04", det="adler-y"))[0] == 202  # busy: declines
    assert sim.on_alert(alert("adler-eh-01"))[0] == 202  # the same alert again: ignored
    nowhere = alert("adler-eh-05")
    nowhere["detection"].update(lat=None, lon=None)
    assert sim.on_alert(nowhere)[0] == 202
    answers = {(rid, det): a for _, rid, det, a in sim._pending}
    assert answers == {
        ("adler-eh-01", "adler-x"): "accepted",
        ("adler-eh-03", "adler-x"): "declined",  # always does
        ("adler-eh-07", "adler-x"): "declined",  # off duty
        ("adler-eh-04", "adler-x"): "accepted",
        ("adler-eh-04", "adler-y"): "declined",  # already on a call
        ("adler-eh-05", "adler-x"): "declined",  # no place to go to
    }
    # Answers come after a few seconds, not at once.
    assert all(4.0 <= due <= 15.0 for due, *_ in sim._pending)


def test_an_accepted_call_heads_straight_ish_to_the_detection_and_stays() -> None:
    clock = Clock()
    sim = ResponderSim(clock=clock)
    rid = "adler-eh-04"  # by car, 1 km south-west
    goal = offset(FIRE, 100.0, 0.0)
    sim.on_alert(alert(rid, at=goal))
    start = sim.position(rid, 10.0)
    sim._accepted(rid, "adler-x", 10.0)
    call = sim.people[rid].call
    assert call is not None and call.state == "accepted"
    distance = haversine_m(start, goal)
    # No faster than a car in town, no more than a fifth longer than the crow flies.
    assert distance / HURRY_MPS["car"] <= call.arrive_s - 10.0 <= 1.2 * distance / 9.0
    halfway = sim.position(rid, (10.0 + call.arrive_s) / 2)
    assert haversine_m(halfway, goal) < 0.7 * distance
    assert sim._due_arrivals(call.arrive_s - 10.0) == []
    assert sim._due_arrivals(call.arrive_s) == [(rid, "adler-x")]
    assert haversine_m(sim.position(rid, call.arrive_s + 600.0), goal) < 1.0
    # After the stay they go about their day again, free for the next call.
    sim._due_arrivals(call.leave_s + 1)
    assert sim.people[rid].call is None
    assert haversine_m(sim.position(rid, call.leave_s + 300.0), goal) > 20.0


@pytest.fixture
async def endpoint() -> Any:
    sim = ResponderSim(clock=Clock())
    async with AlertEndpoint(sim.on_alert, "s3cret-token") as ep:
        yield ep, sim


async def test_the_endpoint_takes_alerts_with_the_token_only(endpoint: Any) -> None:
    ep, sim = endpoint
    async with httpx.AsyncClient(timeout=5) as c:
        ok = {"Authorization": "Bearer s3cret-token"}
        r = await c.post(ep.url, json=alert("adler-eh-01"), headers=ok)
        assert r.status_code == 202
        # Keep-alive: a second request on the same connection.
        r = await c.post(ep.url, json=alert("adler-eh-02"), headers=ok)
        assert r.status_code == 202
        for bad in (
            {},
            {"Authorization": "Bearer s3cret-tokeN"},
            {"Authorization": "s3cret-token"},
        ):
            r = await c.post(ep.url, json=alert("adler-eh-06"), headers=bad)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        r = await c.get(ep.url, headers=ok)
        assert r.status_code == 405
        r = await c.post(ep.url.replace("/alert", "/other"), json={}, headers=ok)
        assert r.status_code == 404
        r = await c.post(ep.url, content=b"{not json", headers=ok)
        assert r.status_code == 400 and "JSON" in r.json()["error"]
        r = await c.post(ep.url, content=b"x" * 70_000, headers=ok)
        assert r.status_code == 413
        r = await c.post(ep.url, json={"responder": "adler-eh-01"}, headers=ok)
        assert r.status_code == 400 and "detection" in r.json()["error"]
    assert [rid for _, rid, _, _ in sim._pending] == ["adler-eh-01", "adler-eh-02"]
    assert ep.refused == 8


def test_no_default_secret() -> None:
    with pytest.raises(ValueError, match="token"):
        AlertEndpoint(ResponderSim(clock=Clock()).on_alert, "")


# --- through a real cockpit ------------------------------------------------------------


async def picture(s: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=s.url, timeout=10) as c:
        await s.login(c)
        r = await c.get("/api/v1/situation")
        assert r.status_code == 200, r.text
        return dict(r.json())


def device(data_dir: Any) -> str:
    with AuthStore(data_dir / "auth.sqlite") as auth:
        return auth.add_device("adler-platform", ["adler", "telemetry"])


@pytest.mark.slow
async def test_the_responders_are_in_the_picture_and_move(tmp_path: Path) -> None:
    # Ten times faster, from just before Ersthelfer 11 comes on duty.
    stop = asyncio.Event()
    async with serve(tmp_path / "data") as s:
        token = device(tmp_path / "data")
        sim = ResponderSim(speedup=10.0, start_s=117.0, report_every_s=0.2)
        running = asyncio.create_task(sim.run(s.url, token, stop=stop))
        try:
            first = await until(s, lambda p: len(located(p)) == 12)
            await asyncio.sleep(1.5)
            then = await picture(s)
        finally:
            stop.set()
            await asyncio.wait_for(running, 10)
    before, after = located(first), located(then)
    assert {r["callsign"] for r in then["responders"]} == {
        f"Ersthelfer {n:02d}" for n in range(1, 13)
    }
    moved = [rid for rid in after if haversine_m(before[rid], after[rid]) > 5.0]
    assert len(moved) >= 8, moved  # some may be standing at a corner
    for r in then["responders"]:
        assert not r["stale"] and r["busy"] is None
        assert haversine_m((r["lat"], r["lon"]), FIRE) <= RADIUS_M + BLOCK_M[1]
    available = {r["callsign"]: r["available"] for r in then["responders"]}
    assert available["Ersthelfer 11"] is True and available["Ersthelfer 07"] is False
    assert sum(available.values()) == 11
    assert sim.stats.registered == 13  # all twelve, then Ersthelfer 11 again
    assert sim.stats.failed == 0


def located(p: dict[str, Any]) -> dict[str, tuple[float, float]]:
    return {
        r["id"]: (r["lat"], r["lon"])
        for r in p.get("responders", [])
        if r.get("lat") is not None and r.get("lon") is not None
    }


async def until(s: Any, ok: Any, timeout_s: float = 20.0) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while True:
        p = await picture(s)
        if ok(p):
            return p
        assert loop.time() < end, "the picture did not get there in time"
        await asyncio.sleep(0.2)


@pytest.mark.slow
async def test_an_alerted_responder_accepts_heads_there_and_arrives(tmp_path: Path) -> None:
    sim = ResponderSim(speedup=20.0, report_every_s=0.2, answer_delay_s=(2.0, 2.0))
    alert_token = "alert-" + secrets.token_urlsafe(16)
    stop = asyncio.Event()
    async with (
        AlertEndpoint(sim.on_alert, alert_token) as ep,
        serve(tmp_path / "data", adler_alert_url=ep.url, adler_alert_token=alert_token) as s,
    ):
        token = device(tmp_path / "data")
        running = asyncio.create_task(sim.run(s.url, token, stop=stop))
        try:
            await until(s, lambda p: len(located(p)) == 12)
            # An emergency 200 m from Ersthelfer 01 (on foot) and 150 m from nobody else
            # in particular; the commander sends 01 and 03 (who always declines).
            here = sim.position("adler-eh-01", sim.sim_time())
            goal = offset(here, 200.0, 0.0)
            async with httpx.AsyncClient(base_url=s.url, timeout=10) as c:
                r = await c.post(
                    "/api/v1/ingest/adler",
                    json={
                        "id": "adler-sim-test-1",
                        "type": "fall",
                        "confidence": 0.9,
                        "time": datetime.now(UTC).isoformat(),
                        "device": "gw-test-1",
                        "location": {"lat": goal[0], "lon": goal[1]},
                    },
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert r.status_code == 202, r.text
                await s.login(c)
                path = "/api/v1/detections/adler-sim-test-1/transition"
                r = await c.post(path, json={"to": "confirmed"})
                assert r.status_code == 201, r.text
                r = await c.post(
                    path, json={"to": "dispatched", "responders": ["adler-eh-01", "adler-eh-03"]}
                )
                assert r.status_code == 201, r.text
            seen: list[tuple[str, float]] = []  # (call state, distance to the detection)

            def arrived(p: dict[str, Any]) -> bool:
                det = next(d for d in p["detections"] if d["id"] == "adler-sim-test-1")
                call = det.get("calls", {}).get("adler-eh-01")
                where = located(p).get("adler-eh-01")
                if call and where:
                    seen.append((call["state"], haversine_m(where, goal)))
                return det["state"] == "on_scene" and bool(call) and call["state"] == "arrived"

            final = await until(s, arrived, 30.0)
            async with httpx.AsyncClient(base_url=s.url, timeout=10) as c:
                health = (await c.get("/healthz")).json()["feeds"]
        finally:
            stop.set()
            await asyncio.wait_for(running, 10)
    det = next(d for d in final["detections"] if d["id"] == "adler-sim-test-1")
    assert det["calls"]["adler-eh-03"]["state"] == "declined"
    # It accepted first, then came closer, and is there now.
    states = [state for state, _ in seen]
    assert "accepted" in states and states.index("accepted") < states.index("arrived")
    accepted_at = next(d for st, d in seen if st == "accepted")
    assert haversine_m(located(final)["adler-eh-01"], goal) <= 30.0 < accepted_at
    busy = {r["id"]: r["busy"] for r in final["responders"]}
    assert busy["adler-eh-01"] == "adler-sim-test-1" and busy["adler-eh-03"] is None
    assert sim.stats.answers.get("accepted") == 1 and sim.stats.answers.get("declined") == 1
    assert ep.refused == 0
    # Nothing the platform sent was refused, and both alerts were delivered.
    assert health["adler"]["rejected"] == 0 and health["telemetry"]["rejected"] == 0
    assert health["adler_out"]["accepted"] == 2


_json = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)


@given(
    body=_json
    | st.fixed_dictionaries(
        {"responder": st.sampled_from(["adler-eh-01", "adler-eh-03", "x"]) | _json},
        optional={
            "detection": st.fixed_dictionaries(
                {},
                optional={"id": st.text(max_size=8) | _json, "lat": _json, "lon": _json},
            )
            | _json
        },
    )
)
@settings(max_examples=150, deadline=None)
def test_any_alert_body_is_answered_never_raises(body: Any) -> None:
    sim = ResponderSim(clock=Clock())
    status, reply = sim.on_alert(body)
    assert status in (202, 400, 404)
    if status != 202:
        assert reply["error"].split(":")[0] in {
            "body",
            "responder",
            "detection.id",
            "detection.lat/lon",
        }
        assert sim._pending == []


def test_the_demo_alerts_its_own_responders_never_a_real_platform(tmp_path: Path) -> None:
    from cockpit.cli import _with_demo_responders
    from cockpit.settings import load_settings

    real = load_settings(
        None,
        data_dir=tmp_path,
        adler_alert_url="https://adler.example/alerts",
        adler_alert_token="the-real-platform's",
    )
    one, run_one = _with_demo_responders(real)
    two, run_two = _with_demo_responders(real)
    assert one.adler_alert_url is not None and two.adler_alert_url is not None
    assert one.adler_alert_url.startswith("http://127.0.0.1:")
    assert one.adler_alert_url.endswith("/alert") and one.adler_alert_url != two.adler_alert_url
    assert one.adler_alert_token is not None and two.adler_alert_token is not None
    secret = one.adler_alert_token.get_secret_value()
    assert len(secret) >= 24 and secret != two.adler_alert_token.get_secret_value()
    assert secret != "the-real-platform's"
    for settings_, run in ((one, run_one), (two, run_two)):
        sim, endpoint = run.args
        assert endpoint.url == settings_.adler_alert_url and len(sim.people) == 12
        asyncio.run(endpoint.close())


@pytest.mark.parametrize(
    "raw",
    [
        b"NONSENSE\r\n\r\n",
        b"POST /alert HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"POST /alert HTTP/1.1\r\n" + b"X-Long: " + b"a" * 20_000 + b"\r\n\r\n",
    ],
)
async def test_garbage_on_the_alert_port_is_answered_400_and_served_on(
    endpoint: Any, raw: bytes
) -> None:
    ep, sim = endpoint
    reader, writer = await asyncio.open_connection("127.0.0.1", ep.port)
    writer.write(raw)
    await writer.drain()
    reply = await asyncio.wait_for(reader.read(), 5)  # answered, then closed
    writer.close()
    assert reply.startswith(b"HTTP/1.1 400 ")
    async with httpx.AsyncClient(timeout=5) as c:  # the next caller is served as ever
        r = await c.post(
            ep.url, json=alert("adler-eh-01"), headers={"Authorization": "Bearer s3cret-token"}
        )
    assert r.status_code == 202 and len(sim._pending) == 1


def test_the_water_of_the_base_map_is_kept_out_of_every_way() -> None:
    sim = ResponderSim(clock=Clock())
    assert len(sim.water.polygons) == 2  # the Hafenbecken and the Dortmund-Ems-Kanal
    # Points in the basins are wet; the fire on the quay is not.
    for ring in sim.water.polygons:
        assert any(sim.water.contains(p) for p in _probes(ring))
    assert not sim.water.contains(FIRE)
    # A pond 22 m across halfway along a 300 m way: the dog-leg takes the dry side.
    ring = ((0.0003, -0.0001), (0.0003, 0.0001), (0.0006, 0.0001), (0.0006, -0.0001))
    square = Water((ring,))
    start, goal = (-0.0009, 0.0), (0.0018, 0.0)
    assert square.crosses(start, goal) and square.contains((0.00045, 0.0))
    for seed in range(10):
        legs = errand(start, goal, 0.0, 2.0, random.Random(seed), square)
        assert legs[-1].b == goal
        assert not any(square.crosses(leg.a, leg.b) for leg in legs)


def _probes(ring: tuple[tuple[float, float], ...]) -> list[tuple[float, float]]:
    """Midpoints between vertices across the (narrow) polygon."""
    return [
        ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2) for i, a in enumerate(ring) for b in ring[i + 1 :]
    ]
