"""A dozen volunteer first responders about the district, as the A.D.Le.R. platform has them.

Twelve people with pseudonymous callsigns ("Ersthelfer 01" ...), each with qualifications
and a way of getting about (on foot, by bike, by car), go about their day within
`RADIUS_M` of the fire on street-like random walks (`feeds.sim.streets`). Through the
cockpit's real routes:

- the registry goes to `POST /api/v1/ingest/adler/responders` (device token, feed `adler`)
  at start and again when someone's availability changes ("Ersthelfer 11" comes off
  shift two minutes in; "Ersthelfer 07" stays unavailable);
- every `REPORT_EVERY_S` all positions go to `POST /api/v1/ingest/telemetry` as entities
  of kind `person` (feed `telemetry`);
- alerts come in over HTTP (`AlertEndpoint`, where the cockpit's
  `COCKPIT_ADLER_ALERT_URL` points). After a few seconds the person answers on
  `POST /api/v1/ingest/adler/answer`: `accepted` (then heads straight-ish to the
  detection at their travel speed and stays `ON_SCENE_S`; the cockpit sees them arrive
  from their position, so no `arrived` is sent: it would only be refused as a repeat)
  or `declined` (two of them always do; anyone already on a call, off duty, or sent to a
  place without coordinates does too).

Everything but the moments alerts arrive is drawn from `seed`: the same seed, the same
district.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import math
import random
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx

from feeds.sim.alert_endpoint import AlertEndpoint
from feeds.sim.geo import LatLon, haversine_m, offset
from feeds.sim.scenario import FIRE, format_observed_at
from feeds.sim.streets import Segment, Track, Water, errand, street_walk

__all__ = [
    "ARRIVED_M",
    "DEMO_RESPONDERS",
    "ON_SCENE_S",
    "RADIUS_M",
    "REPORT_EVERY_S",
    "ResponderSim",
    "SimResponder",
    "Travel",
    "demo_responders",
    "run_responders",
]

log = logging.getLogger("feeds.sim.responders")

_BASEMAP = Path(__file__).resolve().parents[2] / "assets" / "basemap" / "dortmund-hafen.geojson"


def harbour_water() -> Water:
    """The harbour basins and the canal of the demo's base map (none if it is missing)."""
    try:
        return Water.from_geojson(json.loads(_BASEMAP.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        log.warning("no water for the responders' walks (%s): %s", _BASEMAP, exc)
        return Water()


Travel = Literal["foot", "bike", "car"]

RADIUS_M = 1500.0
REPORT_EVERY_S = 3.0
ARRIVED_M = 20.0
ON_SCENE_S = 1200.0
# Going about (random walk) and hurrying to a call, m/s: town traffic for cars.
STROLL_MPS: dict[str, float] = {"foot": 1.3, "bike": 4.0, "car": 7.0}
HURRY_MPS: dict[str, float] = {"foot": 1.9, "bike": 5.5, "car": 9.0}
PAUSE_P: dict[str, float] = {"foot": 0.15, "bike": 0.1, "car": 0.25}  # cars park
ACCURACY_M: dict[str, float] = {"foot": 6.0, "bike": 8.0, "car": 10.0}


@dataclass(frozen=True)
class SimResponder:
    id: str
    callsign: str
    qualifications: tuple[str, ...]
    travel: Travel
    start: tuple[float, float]  # metres north, east of the fire
    available: bool = True
    declines: bool = False  # answers every alert with "declined"
    # (sim second, available) changes, in order: someone comes off shift, or goes on one
    switches: tuple[tuple[float, bool], ...] = ()

    def available_at(self, t_s: float) -> bool:
        now = self.available
        for at_s, value in self.switches:
            if t_s >= at_s:
                now = value
        return now

    def entry(self, t_s: float) -> dict[str, Any]:
        """The registry entry as the A.D.Le.R. platform sends it."""
        return {
            "id": self.id,
            "callsign": self.callsign,
            "qualifications": list(self.qualifications),
            "available": self.available_at(t_s),
            "travel": self.travel,
        }


def _r(n: int, quals: tuple[str, ...], travel: Travel, north: float, east: float, **kw: Any) -> Any:
    return SimResponder(
        f"adler-eh-{n:02d}", f"Ersthelfer {n:02d}", quals, travel, (north, east), **kw
    )


# Placed so that both demo detections (a fall 200 m north-west of the fire, a CO alarm
# 570 m south-east) have several people within a few minutes, and some are far off.
DEMO_RESPONDERS: tuple[SimResponder, ...] = (
    _r(1, ("first_aid",), "foot", 330.0, -260.0),
    _r(2, ("paramedic",), "bike", -250.0, 520.0),
    _r(3, ("nurse",), "foot", 420.0, 80.0, declines=True),
    _r(4, ("doctor",), "car", -900.0, -450.0),
    _r(5, ("firefighter", "first_aid"), "bike", 650.0, 600.0),
    _r(6, ("emergency_paramedic",), "car", -600.0, 1000.0),
    _r(7, ("first_aid",), "foot", 90.0, 300.0, available=False),
    _r(8, ("paramedic", "firefighter"), "car", 1050.0, -300.0),
    _r(9, ("first_aid",), "bike", -320.0, -650.0, declines=True),
    _r(10, ("nurse", "first_aid"), "foot", -650.0, 180.0),
    _r(11, ("doctor",), "bike", 250.0, 750.0, available=False, switches=((120.0, True),)),
    _r(12, ("firefighter",), "foot", -950.0, -850.0),
)


@dataclass
class _Call:
    detection: str
    goal: LatLon | None
    state: Literal["alerted", "accepted", "arrived"] = "alerted"
    arrive_s: float = math.inf
    leave_s: float = math.inf


@dataclass
class _Person:
    spec: SimResponder
    track: Track
    call: _Call | None = None
    calls: int = 0  # how many times sent out: seeds each new walk
    answer_delay_s: float = 8.0


@dataclass
class _Stats:
    registered: int = 0  # registry entries the cockpit took
    positions: int = 0
    answers: dict[str, int] = field(default_factory=dict)
    failed: int = 0


class ResponderSim:
    """The responders' state, their telemetry, and their answers to alerts."""

    def __init__(
        self,
        roster: tuple[SimResponder, ...] = DEMO_RESPONDERS,
        *,
        seed: int = 6,
        centre: LatLon = FIRE,
        radius_m: float = RADIUS_M,
        speedup: float = 1.0,
        start_s: float = 0.0,
        report_every_s: float = REPORT_EVERY_S,
        answer_delay_s: tuple[float, float] = (4.0, 15.0),
        water: Water | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (speedup > 0 and math.isfinite(speedup)):
            raise ValueError(f"speedup must be positive, got {speedup!r}")
        if not (report_every_s > 0 and math.isfinite(report_every_s)):
            raise ValueError(f"report_every_s must be positive, got {report_every_s!r}")
        if len({r.id for r in roster}) != len(roster):
            raise ValueError("responder ids must be unique")
        self.seed = seed
        self.centre = centre
        self.radius_m = radius_m
        self.speedup = speedup
        self.report_every_s = report_every_s
        self._clock = clock
        self.water = harbour_water() if water is None else water
        self._t0 = clock() - start_s / speedup
        self.people: dict[str, _Person] = {}
        for spec in roster:
            rng = self._rng(spec.id, 0)
            start = offset(centre, *spec.start)
            if self.water.contains(start):
                raise ValueError(f"{spec.callsign} would start in the water")
            walk = self._walk(spec, start, 0.0, rng)
            delay = rng.uniform(*answer_delay_s)
            self.people[spec.id] = _Person(spec, Track(walk), answer_delay_s=delay)
        self.stats = _Stats()
        self._answers: asyncio.Queue[tuple[float, str, str, str]] | None = None
        self._pending: list[tuple[float, str, str, str]] = []

    def _rng(self, rid: str, n: int) -> random.Random:
        return random.Random(f"{self.seed}:{rid}:{n}")

    def _walk(self, spec: SimResponder, start: LatLon, t0: float, rng: random.Random) -> Any:
        return street_walk(
            start,
            t0,
            STROLL_MPS[spec.travel],
            rng,
            centre=self.centre,
            radius_m=self.radius_m,
            pause_p=PAUSE_P[spec.travel],
            water=self.water,
        )

    # --- pure views --------------------------------------------------------------------

    def sim_time(self) -> float:
        return (self._clock() - self._t0) * self.speedup

    def registry(self, t_s: float) -> list[dict[str, Any]]:
        return [p.spec.entry(t_s) for p in self.people.values()]

    def position(self, rid: str, t_s: float) -> LatLon:
        return self.people[rid].track.at(t_s).position

    def telemetry(self, t_s: float, now: datetime) -> list[dict[str, Any]]:
        """Every responder's position at sim time t_s, stamped observed_at=now."""
        observed_at = format_observed_at(now)
        out = []
        for p in self.people.values():
            state = p.track.at(t_s)
            out.append(
                {
                    "entity": p.spec.id,
                    "kind": "person",
                    "callsign": p.spec.callsign,
                    "observed_at": observed_at,
                    "position": {
                        "lat": round(state.position[0], 6),
                        "lon": round(state.position[1], 6),
                        "heading_deg": round(state.heading_deg, 1) % 360.0,
                        "speed_mps": round(state.speed_mps, 2),
                        "accuracy_m": ACCURACY_M[p.spec.travel],
                    },
                }
            )
        return out

    # --- alerts ------------------------------------------------------------------------

    def on_alert(self, body: Any) -> tuple[int, dict[str, Any]]:
        """An alert from the cockpit: 202 and an answer later, or 4xx naming the field."""
        if not isinstance(body, dict):
            return 400, {"error": "body: must be a JSON object"}
        rid = body.get("responder")
        if not isinstance(rid, str) or not rid:
            return 400, {"error": "responder: must be a responder id"}
        person = self.people.get(rid)
        if person is None:
            return 404, {"error": f"responder: {rid!r} is not one of ours"}
        det = body.get("detection")
        if not isinstance(det, dict) or not isinstance(det.get("id"), str) or not det["id"]:
            return 400, {"error": "detection.id: must be a detection id"}
        goal = _lat_lon(det)
        if goal is False:
            return 400, {"error": "detection.lat/lon: must be numbers on the earth, or null"}
        t = self.sim_time()
        call = person.call
        if body.get("state") == "released":  # stood down: the detection was closed
            if call is None or call.detection != det["id"]:
                return 202, {"status": "not on that call"}
            person.call = None
            here = person.track.at(t).position
            person.calls += 1
            walk_on = self._walk(person.spec, here, t, self._rng(rid, person.calls))
            person.track = Track(iter(walk_on))
            log.info("%s stood down from %s", person.spec.callsign, det["id"])
            return 202, {"status": "released"}
        if call is not None and call.detection == det["id"]:
            return 202, {"status": "already alerted"}  # a retried delivery
        if call is not None or person.spec.declines or not person.spec.available_at(t):
            answer = "declined"
        elif goal is None:
            answer = "declined"  # nowhere to go: the platform cannot guide anyone
        else:
            answer = "accepted"
            person.call = _Call(det["id"], goal)
        due = t + person.answer_delay_s
        log.info("%s alerted for %s: will answer %s", person.spec.callsign, det["id"], answer)
        self._queue((due, rid, det["id"], answer))
        return 202, {"status": "alerted"}

    def _queue(self, item: tuple[float, str, str, str]) -> None:
        if self._answers is not None:
            self._answers.put_nowait(item)
        else:
            self._pending.append(item)

    def _accepted(self, rid: str, detection: str, t_s: float) -> None:
        """The cockpit took the acceptance: set off now, stay on scene, then walk on."""
        person = self.people[rid]
        call = person.call
        if call is None or call.detection != detection or call.goal is None:
            return
        here = person.track.at(t_s).position
        person.calls += 1
        rng = self._rng(rid, person.calls)
        legs = errand(here, call.goal, t_s, HURRY_MPS[person.spec.travel], rng, self.water)
        call.state = "accepted"
        call.arrive_s = legs[-1].t1
        call.leave_s = call.arrive_s + ON_SCENE_S
        stay = Segment(call.arrive_s, call.leave_s, call.goal, call.goal, legs[-1].heading_deg)
        walk_on = self._walk(person.spec, call.goal, call.leave_s, rng)
        person.track = Track(itertools.chain(legs, [stay], walk_on))

    def _due_arrivals(self, t_s: float) -> list[tuple[str, str]]:
        """(responder, detection) for those now within ARRIVED_M of their goal."""
        out = []
        for rid, p in self.people.items():
            call = p.call
            if call is None or call.goal is None:
                continue
            if call.state == "accepted" and haversine_m(p.track.at(t_s).position, call.goal) <= (
                ARRIVED_M
            ):
                call.state = "arrived"
                out.append((rid, call.detection))
            elif call.state == "arrived" and t_s >= call.leave_s:
                p.call = None  # back to their day, free for the next call
        return out

    # --- the network -------------------------------------------------------------------

    async def run(self, base_url: str, token: str, *, stop: asyncio.Event | None = None) -> None:
        """Register, report positions and answer alerts until `stop` (or cancelled)."""
        stop = stop or asyncio.Event()
        self._answers = asyncio.Queue()
        for item in self._pending:
            self._answers.put_nowait(item)
        self._pending.clear()
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=15) as client:
            answering = asyncio.create_task(self._answer_loop(client))
            try:
                await self._report_loop(client, stop)
            finally:
                answering.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await answering

    async def _report_loop(self, client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        registered: dict[str, bool] = {}  # id -> availability the cockpit has
        while not stop.is_set():
            t = self.sim_time()
            changed = [e for e in self.registry(t) if registered.get(e["id"]) != e["available"]]
            if changed and await self._post(client, "/api/v1/ingest/adler/responders", changed):
                registered.update((e["id"], e["available"]) for e in changed)
                self.stats.registered += len(changed)
            if registered and await self._post(
                client, "/api/v1/ingest/telemetry", self.telemetry(t, datetime.now(UTC))
            ):
                self.stats.positions += 1
            for rid, det in self._due_arrivals(t):
                log.info("%s is at %s", self.people[rid].spec.callsign, det)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.report_every_s)

    async def _answer_loop(self, client: httpx.AsyncClient) -> None:
        assert self._answers is not None
        waiting: set[asyncio.Task[None]] = set()
        try:
            while True:
                due, rid, det, answer = await self._answers.get()
                task = asyncio.create_task(self._answer_later(client, due, rid, det, answer))
                waiting.add(task)
                task.add_done_callback(waiting.discard)
        finally:
            for task in waiting:
                task.cancel()

    async def _answer_later(
        self, client: httpx.AsyncClient, due: float, rid: str, det: str, answer: str
    ) -> None:
        await asyncio.sleep(max(0.0, (due - self.sim_time()) / self.speedup))
        ok = await self._send_answer(client, rid, det, answer)
        person = self.people[rid]
        if answer == "accepted":
            if ok:
                self._accepted(rid, det, self.sim_time())
            elif person.call is not None and person.call.detection == det:
                person.call = None  # the cockpit did not take it: free again

    async def _send_answer(
        self, client: httpx.AsyncClient, rid: str, det: str, answer: str
    ) -> bool:
        body = {
            "detection": det,
            "responder": rid,
            "answer": answer,
            "observed_at": format_observed_at(datetime.now(UTC)),
        }
        ok = await self._post(client, "/api/v1/ingest/adler/answer", body)
        if ok:
            self.stats.answers[answer] = self.stats.answers.get(answer, 0) + 1
        return ok

    async def _post(self, client: httpx.AsyncClient, path: str, body: Any) -> bool:
        try:
            r = await client.post(path, json=body)
        except httpx.HTTPError as exc:
            self.stats.failed += 1
            log.warning("%s not sent: %s", path, exc)
            return False
        if r.status_code != 202:
            self.stats.failed += 1
            log.warning("%s refused: %s %s", path, r.status_code, r.text[:300])
            return False
        return True


def _lat_lon(det: dict[str, Any]) -> LatLon | Literal[False] | None:
    """The detection's place; None when it has none; False when it is not a place."""
    lat, lon = det.get("lat"), det.get("lon")
    if lat is None and lon is None:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lat, lon)):
        return False
    assert isinstance(lat, (int, float)) and isinstance(lon, (int, float))
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        return False
    return (float(lat), float(lon))


async def run_responders(
    sim: ResponderSim,
    endpoint: AlertEndpoint,
    base_url: str,
    token: str,
    *,
    stop: asyncio.Event | None = None,
) -> None:
    """Open the alert endpoint, then register, move and answer until stopped."""
    async with endpoint:
        log.info("first responders: alerts at %s", endpoint.url)
        await sim.run(base_url, token, stop=stop)


def demo_responders(*, seed: int = 6) -> tuple[ResponderSim, AlertEndpoint, str]:
    """The demo's responders and their alert endpoint on a free loopback port (bound now,
    served once running), with a fresh token: (sim, endpoint, token)."""
    token = secrets.token_urlsafe(24)  # a fresh one each run: no default secret
    sim = ResponderSim(seed=seed)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)  # an alert sent before the simulator runs waits in the backlog
    return sim, AlertEndpoint(sim.on_alert, token, sock=sock), token
