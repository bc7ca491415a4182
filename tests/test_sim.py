"""The demo incident simulator: geometry, the scenario's plausibility, the WS client."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from feeds.sim.actors import Actor, Vehicle
from feeds.sim.client import backoff_delays, run_sim
from feeds.sim.geo import (
    Polyline,
    angle_diff_deg,
    bearing_deg,
    destination,
    haversine_m,
    interpolate,
    offset,
)
from feeds.sim.motion import Drive, Patrol, SpeedProfile, itinerary
from feeds.sim.plume import Plume
from feeds.sim.scenario import FIRE, KLINIKUM_NORD, STATIONS, Scenario, harbour_fire

NOW = datetime(2026, 11, 26, 10, 0, 0, 123000, tzinfo=UTC)
DORTMUND = (51.40, 51.62, 7.30, 7.65)  # lat min, lat max, lon min, lon max
ENTITY = re.compile(r"^[a-z0-9-]+$")
FIELDS = {"entity", "kind", "callsign", "observed_at", "position", "readings", "meta"}


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return harbour_fire()


def _positions(scenario: Scenario, t: float) -> dict[str, tuple[float, float]]:
    return {
        m["entity"]: (m["position"]["lat"], m["position"]["lon"])
        for m in scenario.messages_at(t, NOW)
    }


def _horizon(scenario: Scenario) -> float:
    """Past the last scripted move (patrols go on for ever) plus a few minutes."""
    ends = [v.route.end_s for v in scenario.vehicles if math.isfinite(v.route.end_s)]
    return max(ends) + 300.0


# --- geo ------------------------------------------------------------------------------


def test_haversine_and_bearing() -> None:
    a = (51.5, 7.45)
    assert haversine_m(a, a) == 0.0
    assert haversine_m(a, (52.5, 7.45)) == pytest.approx(111_195, rel=1e-3)
    assert bearing_deg(a, (51.6, 7.45)) == pytest.approx(0.0, abs=1e-6)
    assert bearing_deg(a, (51.5, 7.55)) == pytest.approx(90.0, abs=0.1)
    assert bearing_deg(a, (51.4, 7.45)) == pytest.approx(180.0, abs=1e-6)
    assert bearing_deg(a, (51.5, 7.35)) == pytest.approx(270.0, abs=0.1)
    assert 0.0 <= bearing_deg((51.5, 7.45), (51.6, 7.45 - 1e-12)) < 360.0


def test_destination_and_offset_round_trip() -> None:
    a = (51.5287, 7.4441)
    for brg in (0.0, 45.0, 135.0, 260.0, 359.0):
        b = destination(a, brg, 750.0)
        assert haversine_m(a, b) == pytest.approx(750.0, abs=0.01)
        assert angle_diff_deg(bearing_deg(a, b), brg) < 0.01
    b = offset(a, 300.0, -400.0)
    assert haversine_m(a, b) == pytest.approx(500.0, abs=0.01)
    assert b[0] > a[0] and b[1] < a[1]


def test_angle_diff() -> None:
    assert angle_diff_deg(350.0, 10.0) == pytest.approx(20.0)
    assert angle_diff_deg(10.0, 350.0) == pytest.approx(20.0)
    assert angle_diff_deg(0.0, 180.0) == pytest.approx(180.0)
    assert angle_diff_deg(720.0, 0.0) == pytest.approx(0.0)


def test_interpolate_along_a_polyline() -> None:
    a, b, c = (51.5, 7.45), (51.501, 7.45), (51.501, 7.452)
    line = Polyline.of([a, a, b, c])  # the duplicate is dropped
    assert line.points == (a, b, c)
    ab, bc = haversine_m(a, b), haversine_m(b, c)
    assert line.length_m == pytest.approx(ab + bc)
    assert interpolate([a, b, c], -5.0) == (a, pytest.approx(0.0, abs=1e-9))
    point, heading = interpolate([a, b, c], ab / 2)
    assert haversine_m(point, (51.5005, 7.45)) < 0.01 and heading == pytest.approx(0.0, abs=1e-6)
    point, heading = interpolate([a, b, c], ab + bc / 2)
    assert haversine_m(point, (51.501, 7.451)) < 0.01 and heading == pytest.approx(90.0, abs=0.1)
    point, heading = line.at(1e9)
    assert point == c and heading == pytest.approx(90.0, abs=0.1)
    with pytest.raises(ValueError):
        Polyline.of([a, a])


# --- motion ---------------------------------------------------------------------------


def test_speed_profile_slows_at_both_ends() -> None:
    p = SpeedProfile.build(1000.0, 10.0, start_m=40, start_mps=4, end_m=200, end_mps=5)
    assert p.duration_s == pytest.approx(40 / 4 + 760 / 10 + 200 / 5)
    assert p.at(0.0) == (0.0, 4.0)
    assert p.at(20.0) == (pytest.approx(40 + 100), 10.0)
    assert p.at(p.duration_s - 1.0) == (pytest.approx(995.0), 5.0)
    assert p.at(p.duration_s + 5.0) == (1000.0, 0.0)
    short = SpeedProfile.build(30.0, 10.0, start_m=40, start_mps=4, end_m=200, end_mps=5)
    assert short.at(short.duration_s) == (30.0, 0.0)


def test_itinerary_parks_drives_and_chains() -> None:
    home, goal = (51.50, 7.45), (51.51, 7.45)
    plan = itinerary(home, [Drive(5, [goal], 10.0), Drive(10, [home], 5.0)], depart_s=20)
    assert plan.state_at(0).position == home and plan.state_at(24.9).speed_mps == 0
    assert plan.state_at(26).speed_mps == 10.0
    assert plan.state_at(26).heading_deg == pytest.approx(0.0, abs=1e-6)
    assert plan.arrival_s == pytest.approx(25 + haversine_m(home, goal) / 10)
    parked = plan.state_at(plan.arrival_s + 5)
    assert haversine_m(parked.position, goal) < 0.01 and parked.speed_mps == 0
    back = plan.state_at(plan.arrival_s + 11)
    assert back.speed_mps == 5.0 and back.heading_deg == pytest.approx(180.0, abs=1e-6)
    with pytest.raises(ValueError):  # a patrol must start where the vehicle is
        itinerary(home, [Patrol(0, [goal, (51.51, 7.46), goal], 5.0)], depart_s=0)


# --- scenario -------------------------------------------------------------------------


def test_incident(scenario: Scenario) -> None:
    assert scenario.incident.name == "Brand Lagerhalle Hafen"
    lat, lon = scenario.incident.location
    assert haversine_m((lat, lon), (51.525, 7.445)) < 1000


def test_at_least_eight_distinct_units_with_radio_callsigns(scenario: Scenario) -> None:
    messages = scenario.messages_at(0.0, NOW)
    assert len({m["entity"] for m in messages}) == len(messages) >= 8
    assert len({m["callsign"] for m in messages}) == len(messages)
    types = [m["meta"]["vehicle"] for m in messages]
    for needed in ("ELW 1", "DLK 23-12", "TLF 4000", "RW", "GW-Mess", "NEF"):
        assert needed in types
    assert 2 <= types.count("HLF 20") <= 3 and types.count("RTW") == 2
    for m in messages:
        assert re.fullmatch(r"Florian Dortmund \d+-[A-Za-z0-9-]+-\d+", m["callsign"])
        assert all(isinstance(a, Actor) for a in scenario.actors)


def test_every_message_has_exactly_the_native_fields(scenario: Scenario) -> None:
    for t in range(0, int(_horizon(scenario)), 7):
        for m in scenario.messages_at(float(t), NOW):
            json.dumps(m, allow_nan=False)  # serialisable, no NaN/inf
            assert set(m) == FIELDS
            assert ENTITY.match(m["entity"]) and m["kind"] == "unit"
            assert isinstance(m["callsign"], str) and 0 < len(m["callsign"]) <= 64
            assert m["observed_at"] == "2026-11-26T10:00:00.123Z"
            pos = m["position"]
            assert set(pos) == {"lat", "lon", "heading_deg", "speed_mps"}
            assert DORTMUND[0] < pos["lat"] < DORTMUND[1]
            assert DORTMUND[2] < pos["lon"] < DORTMUND[3]
            assert 0.0 <= pos["heading_deg"] < 360.0
            assert 0.0 <= pos["speed_mps"] <= 25.0
            assert m["readings"], "readings present only when there are some"
            for name, reading in m["readings"].items():
                assert re.fullmatch(r"[a-z_]+", name)
                assert set(reading) == {"value", "unit"}
                assert isinstance(reading["value"], int | float)
                assert math.isfinite(reading["value"]) and reading["value"] >= 0
                assert isinstance(reading["unit"], str)
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in m["meta"].items())
            assert set(m["meta"]) == {"vehicle", "organisation", "station"}


def test_observed_at_is_the_injected_clock_and_output_is_pure(scenario: Scenario) -> None:
    other = NOW + timedelta(hours=1, milliseconds=5)
    a = scenario.messages_at(123.4, NOW)
    b = scenario.messages_at(123.4, other)
    assert {m["observed_at"] for m in b} == {"2026-11-26T11:00:00.128Z"}
    assert a == scenario.messages_at(123.4, NOW)  # same inputs, same output
    for m in (*a, *b):
        m.pop("observed_at")
    assert a == b  # the wall clock only stamps; sim time alone decides the picture
    with pytest.raises(ValueError):
        scenario.messages_at(1.0, datetime(2026, 11, 26, 10, 0))  # naive: no timezone
    with pytest.raises(ValueError):
        scenario.messages_at(-1.0, NOW)


def test_routes_start_at_the_station_and_end_near_the_fire(scenario: Scenario) -> None:
    start = _positions(scenario, 0.0)
    for v in scenario.vehicles:
        approach = v.route.legs[0].path
        assert v.station in STATIONS.values()
        assert haversine_m(approach.start, v.station.position) < 1.0
        assert haversine_m(start[v.entity], v.station.position) < 1.0
        assert haversine_m(approach.end, FIRE) < 150.0
        assert haversine_m(v.station.position, FIRE) > 1000.0  # they really drive
        arrived = _positions(scenario, v.arrival_s + 1.0)[v.entity]
        assert haversine_m(arrived, FIRE) < 150.0


def test_vehicles_stay_at_the_station_until_alarmed(scenario: Scenario) -> None:
    for t in (0.0, 5.0, 9.9):
        for m in scenario.messages_at(t, NOW):
            assert m["position"]["speed_mps"] == 0.0
    for v in scenario.vehicles:
        depart = v.route.legs[0].depart_s
        assert depart > v.alarm_s  # turnout time
        before = v.step(depart - 0.5)[0]["position"]
        assert (before["lat"], before["lon"]) == pytest.approx(v.station.position, abs=1e-6)


def test_second_wave_is_alarmed_later(scenario: Scenario) -> None:
    first = [v for v in scenario.vehicles if v.wave == 1]
    second = [v for v in scenario.vehicles if v.wave == 2]
    assert first and second
    assert min(v.alarm_s for v in second) >= 30.0 > max(v.alarm_s for v in first)
    assert scenario.second_alarm_s == pytest.approx(30.0)
    assert min(v.route.legs[0].depart_s for v in second) > min(
        v.route.legs[0].depart_s for v in first
    )
    moving_early = {
        m["entity"] for m in scenario.messages_at(28.0, NOW) if m["position"]["speed_mps"]
    }
    assert moving_early and moving_early <= {v.entity for v in first}


def test_most_units_move_together_during_the_approach(scenario: Scenario) -> None:
    a, b = _positions(scenario, 90.0), _positions(scenario, 92.0)
    moved = [e for e in a if haversine_m(a[e], b[e]) > 1.0]
    assert len(moved) >= 8


def test_no_jumps_and_realistic_speeds(scenario: Scenario) -> None:
    prev = _positions(scenario, 0.0)
    for t in range(1, int(_horizon(scenario))):
        cur = _positions(scenario, float(t))
        for e, p in cur.items():
            assert haversine_m(prev[e], p) <= 25.0, (e, t)
        prev = cur
    # urban speeds with Sondersignal: nobody cruises above 60 km/h
    assert max(m["position"]["speed_mps"] for m in scenario.messages_at(90.0, NOW)) <= 60 / 3.6


def test_headings_point_along_the_direction_of_travel(scenario: Scenario) -> None:
    checked = turning = 0
    prev = scenario.messages_at(0.0, NOW)
    for t in range(1, int(_horizon(scenario))):
        cur = scenario.messages_at(float(t), NOW)
        for m0, m1 in zip(prev, cur, strict=True):
            p0, p1 = m0["position"], m1["position"]
            a, b = (p0["lat"], p0["lon"]), (p1["lat"], p1["lon"])
            if p0["speed_mps"] <= 0 or p1["speed_mps"] <= 0 or haversine_m(a, b) < 3.0:
                continue
            if angle_diff_deg(p0["heading_deg"], p1["heading_deg"]) > 20.0:
                # a corner was taken within this second: the chord cuts it
                turning += 1
                continue
            checked += 1
            assert angle_diff_deg(bearing_deg(a, b), p0["heading_deg"]) <= 20.0, (m0, m1)
        prev = cur
    assert checked > 2000 and turning < checked / 10


def test_units_keep_moving_on_scene(scenario: Scenario) -> None:
    by_type = {v.entity: v for v in scenario.vehicles}
    dlk = by_type["fw-do-1-dlk23-1"]
    rtw = by_type["fw-do-1-rtw-1"]
    gw = by_type["fw-do-2-gw-mess-1"]
    # the turntable ladder repositions after arriving
    parked = dlk.state_at(dlk.arrival_s + 10).position
    assert haversine_m(parked, dlk.state_at(dlk.route.end_s + 10).position) > 20
    # the ambulance leaves for the hospital and comes back
    far = max(
        haversine_m(rtw.state_at(float(t)).position, FIRE)
        for t in range(int(rtw.arrival_s), int(rtw.route.end_s))
    )
    assert far > 1000
    assert any(
        haversine_m(rtw.state_at(float(t)).position, KLINIKUM_NORD) < 20
        for t in range(int(rtw.arrival_s), int(rtw.route.end_s))
    )
    assert haversine_m(rtw.state_at(rtw.route.end_s + 1).position, FIRE) < 150
    # the measurement vehicle keeps driving its loop
    assert gw.route.end_s == math.inf
    late = [gw.state_at(3000.0 + t) for t in range(0, 600, 60)]
    assert all(s.speed_mps > 0 for s in late)


def test_gas_measurement_rises_downwind(scenario: Scenario) -> None:
    gw = next(v for v in scenario.vehicles if v.vehicle == "GW-Mess")

    def co(t: float) -> float:
        return float(gw.step(t)[0]["readings"]["co"]["value"])

    upwind_at_station = co(0.0)
    loop = [co(float(t)) for t in range(int(gw.route.legs[-1].depart_s), 3000)]
    assert max(loop) > 30.0 > upwind_at_station  # crosses the smoke axis
    assert min(loop) < 5.0  # and leaves it again
    assert all(m["readings"].keys() >= {"crew"} for m in scenario.messages_at(10.0, NOW))
    assert sum("co" in m["readings"] for m in scenario.messages_at(10.0, NOW)) == 1


def test_plume_shape() -> None:
    plume = Plume((51.5287, 7.4441), wind_from_deg=235.0)
    downwind = destination(plume.source, 55.0, 400.0)
    across = destination(plume.source, 145.0, 400.0)
    upwind = destination(plume.source, 235.0, 400.0)
    t = 1000.0
    assert plume.co_ppm(downwind, t) > 10 * plume.co_ppm(across, t)
    assert plume.co_ppm(upwind, t) == plume.background_ppm
    assert plume.co_ppm(destination(plume.source, 55.0, 1500.0), t) < plume.co_ppm(downwind, t)
    assert plume.co_ppm(plume.source, t) <= plume.max_ppm


def test_water_drains_then_holds(scenario: Scenario) -> None:
    hlf = next(v for v in scenario.vehicles if v.entity == "fw-do-1-hlf20-1")

    def water(t: float) -> float:
        return float(hlf.step(t)[0]["readings"]["water"]["value"])

    assert water(0.0) == water(hlf.arrival_s) == 2000
    assert water(hlf.arrival_s + 150) < 2000
    assert water(hlf.arrival_s + 2000) == water(hlf.arrival_s + 3000) > 0


def test_vehicle_rejects_bad_entity_ids(scenario: Scenario) -> None:
    v = scenario.vehicles[0]
    with pytest.raises(ValueError):
        Vehicle("FW_DO", v.callsign, v.vehicle, v.station, 1, 0.0, v.route)


# --- client ---------------------------------------------------------------------------


def test_backoff_doubles_to_the_cap() -> None:
    assert backoff_delays() == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0]


class _Cockpit:
    """A tiny stand-in for the cockpit's telemetry WebSocket."""

    def __init__(self, token: str, *, drop_after: int, reject_nth: int) -> None:
        self.token = token
        self.drop_after = drop_after  # close the first connection after this many messages
        self.reject_nth = reject_nth  # answer this message with an error
        self.connections = 0
        self.refused = 0
        self.received: list[tuple[int, dict[str, Any]]] = []  # (connection number, message)
        self.enough = asyncio.Event()

    def check_auth(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            self.refused += 1
            return connection.respond(HTTPStatus.UNAUTHORIZED, "bad token\n")
        return None

    async def handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        number = self.connections
        count = 0
        try:
            async for raw in ws:
                message = json.loads(raw)
                assert isinstance(message, dict)
                self.received.append((number, message))
                count += 1
                seq = len(self.received)
                if seq == self.reject_nth:
                    reply = {"error": "invalid telemetry", "errors": [{"reason": "test says no"}]}
                    await ws.send(json.dumps(reply))
                else:
                    await ws.send(json.dumps({"seq": [seq]}))
                if number == 1 and count >= self.drop_after:
                    await ws.close()
                    return
                if number >= 2 and count >= 30:
                    self.enough.set()
        except ConnectionClosed:
            pass


async def test_run_sim_sends_reconnects_and_survives_rejections(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="feeds.sim")
    cockpit = _Cockpit("s3cret", drop_after=25, reject_nth=3)
    scenario = harbour_fire()
    async with serve(cockpit.handler, "127.0.0.1", 0, process_request=cockpit.check_auth) as server:
        port = server.sockets[0].getsockname()[1]
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_sim(
                f"ws://127.0.0.1:{port}/ws/ingest/telemetry",
                "s3cret",
                rate_hz=20.0,
                speedup=30.0,
                stop=stop,
                scenario=scenario,
            )
        )
        async with asyncio.timeout(15):
            await cockpit.enough.wait()
        stop.set()
        async with asyncio.timeout(5):
            await task
    assert cockpit.connections == 2 and cockpit.refused == 0
    first = [m for n, m in cockpit.received if n == 1]
    second = [m for n, m in cockpit.received if n == 2]
    assert len(first) == 25 and len(second) >= 30
    units = len(scenario.actors)
    entities = [m["entity"] for _, m in cockpit.received[:units]]
    assert entities == [a.entity for a in scenario.actors]  # one message per unit per tick
    for _, m in cockpit.received:
        assert set(m) == FIELDS
        assert m["observed_at"].endswith("Z")
    # sim time goes on across the reconnect: observed_at does not go backwards
    stamps = [m["observed_at"] for _, m in cockpit.received]
    assert stamps == sorted(stamps)
    text = caplog.text
    assert "test says no" in text and "invalid telemetry" in text
    assert "reconnecting" in text


async def test_run_sim_keeps_retrying_a_refused_token(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="feeds.sim")
    cockpit = _Cockpit("right", drop_after=10**9, reject_nth=0)
    async with serve(cockpit.handler, "127.0.0.1", 0, process_request=cockpit.check_auth) as server:
        port = server.sockets[0].getsockname()[1]
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_sim(f"ws://127.0.0.1:{port}/ws/ingest/telemetry", "wrong", rate_hz=20.0, stop=stop)
        )
        async with asyncio.timeout(10):
            while cockpit.refused < 2:  # 0.5 s, then 1 s backoff
                await asyncio.sleep(0.05)
        assert not task.done()
        stop.set()
        async with asyncio.timeout(5):
            await task
    assert cockpit.connections == 0 and cockpit.received == []
    assert "HTTP 401" in caplog.text


async def test_run_sim_with_an_injected_clock_sets_sim_time_and_stamps() -> None:
    cockpit = _Cockpit("tok", drop_after=10**9, reject_nth=0)
    base = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    ticks = iter(range(10**6))

    def clock() -> datetime:  # every call is one simulated minute later
        return base + timedelta(minutes=next(ticks))

    async with serve(cockpit.handler, "127.0.0.1", 0, process_request=cockpit.check_auth) as server:
        port = server.sockets[0].getsockname()[1]
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_sim(
                f"ws://127.0.0.1:{port}/ws/ingest/telemetry",
                "tok",
                rate_hz=50.0,
                stop=stop,
                clock=clock,
            )
        )
        async with asyncio.timeout(10):
            while len(cockpit.received) < 100:
                await asyncio.sleep(0.02)
        stop.set()
        async with asyncio.timeout(5):
            await task
    stamps = sorted({m["observed_at"] for _, m in cockpit.received})
    assert stamps[0] == "2026-11-26T09:01:00.000Z"  # the first clock read is the start
    assert all(s.endswith(":00.000Z") for s in stamps)
    # a few simulated minutes in, the first wave has left the station
    late = [m for _, m in cockpit.received if m["observed_at"] >= "2026-11-26T09:04:00.000Z"]
    assert late and any(m["position"]["speed_mps"] > 0 for m in late)
