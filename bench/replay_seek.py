"""Replay seek latency and memory on a generated long recording (issue 7).

Prints ONE JSON object to stdout; progress goes to stderr.

    .venv/bin/python -m bench.replay_seek                   # 4 h, 2,000,000 events, 50 seeks
    .venv/bin/python -m bench.replay_seek --reuse           # keep the generated file if it fits
    .venv/bin/python -m bench.replay_seek --events 20000 --hours 0.1 --seeks 3   # smoke size
    .venv/bin/python -m bench.replay_seek --save            # also bench/results/replay_seek-*.json

The recording is written the way the live server writes one: real events (msgspec, the
cockpit's own vocabulary) folded into a `Situation` made by `situation_factory` from the
default settings, appended through `Recorder.append` (its group commit) and snapshotted
by the rule of `Pipeline._maybe_snapshot` (every `snapshot_every_n` events or
`snapshot_every_s` seconds of server time) through `Recorder.save_snapshot`, i.e. the
same encoder and compression as live. Only the clock differs: server time is the
recording's, so 4 hours take minutes. The recorder runs with `synchronous=NORMAL` while
generating (the file's content is the same as with FULL).

What happens in it (rates are scaled so that the total matches --events; the JSON lists
them): 50 units (vehicles; half of the crews carry gas meters), 2 drones (position several
times a second, status, video segments every minute), 2 robots (position, gases, status),
30 LoRaWAN sensors (5 weather stations, 5 water gauges, 20 air-quality boxes; an uplink
every few minutes), manual alerts with acknowledgements, journal entries, A.D.Le.R.
detections with their review steps and responder calls, drone hotspots (confirmed ones
derive hazard zones), hand-drawn hazards, a CAP warning and its update, and clock events
whenever `Situation.next_deadline()` has passed (as the live tick loop publishes them).

Generation runs in a child process, so the measuring process holds only the replay; it
tunes the garbage collector as the server does (the settings of `cockpit.cli.tune_gc`).
Measured there, for N random seek targets (seeded): `ReplaySession.seek` (the trainer's
path: cancel the fold, rebuild the picture in a thread, new bus) and `situation_at` alone
(what `situation?at=T` costs), each as p50/p95/max ms; per seek also the parts (seq_at,
snapshot read + decode, restore, fold forward and the number of events folded). Then a
drag along the timeline: 3 × 10 seeks 2 s forward (folded on from the picture shown) and
10 back, each as p50/p95/max wall and CPU ms. Memory:
VmRSS of the measuring process after imports, after opening the replay, after the seeks,
and its peak (VmHWM).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from bench.common import git_commit  # noqa: E402

TARGETS = {"seek_ms": 250.0, "memory_mb": 500.0}  # DESIGN.md quality bars
INCIDENT = "bench-replay"
CENTRE = (51.5136, 7.4653)  # Dortmund
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC).timestamp()


def _progress(msg: str) -> None:
    print(f"[replay_seek] {msg}", file=sys.stderr, flush=True)


def _rss_mb(field: str = "VmRSS") -> float | None:
    """This process's resident memory (or its peak, VmHWM) in MB, from /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def _pcts(values: list[float]) -> dict[str, float]:
    s = sorted(values)

    def pct(p: float) -> float:
        # nearest rank: the value at or above p of the samples
        return s[max(0, math.ceil(p * len(s)) - 1)]

    return {
        "p50": round(statistics.median(s), 1),
        "p95": round(pct(0.95), 1),
        "max": round(s[-1], 1),
        "mean": round(statistics.fmean(s), 1),
    }


# --- the recording -------------------------------------------------------------------


class _Scenario:
    """Who reports what, and how often (events per second of server time)."""

    def __init__(self, events: int, hours: float, seed: int) -> None:
        self.seconds = max(60, int(hours * 3600))
        self.rng = random.Random(seed)
        h = self.seconds / 3600
        # Rare things, per hour of incident: fixed, whatever the event count.
        self.per_hour = {
            "manual_alerts": 45,  # with an acknowledgement for most
            "journal": 60,
            "adler": 6,  # each reviewed: confirmed, dispatched, on scene, closed
            "hotspots": 15,  # drone video: confirmed (derives zones) or dismissed
            "hazards": 3,  # drawn by hand, removed later
        }
        self.sensor_period_s = {"weather": 300.0, "water": 300.0, "air": 180.0}
        rare = sum(self.per_hour.values()) * h * 2.5 + 30 * h * 3600 / 200 + 200
        # The busy sources share the rest in these proportions (1.0 = once a second).
        self.base = {
            "unit.position": 50 * 1.0,
            "unit.readings": 25 * 1.0,  # crews' gas meters
            "unit.status": 50 / 30,
            "drone.position": 2 * 5.0,
            "drone.status": 2 * 1.0,
            "robot.position": 2 * 2.0,
            "robot.readings": 2 * 1.0,
            "robot.status": 2 * 0.5,
        }
        scale = max(0.0, events - rare) / self.seconds / sum(self.base.values())
        self.rates = {k: v * scale for k, v in self.base.items()}

    def describe(self) -> dict[str, Any]:
        per_entity = {
            "unit.position": 50,
            "unit.readings": 25,
            "unit.status": 50,
            "drone.position": 2,
            "drone.status": 2,
            "robot.position": 2,
            "robot.readings": 2,
            "robot.status": 2,
        }
        return {
            "seconds": self.seconds,
            "entities": {"units": 50, "drones": 2, "robots": 2, "sensors": 30, "responders": 8},
            "hz_per_entity": {k: round(v / per_entity[k], 3) for k, v in self.rates.items()},
            "per_hour": self.per_hour,
            "sensor_period_s": self.sensor_period_s,
        }


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _square(lat: float, lon: float, half_m: float) -> dict[str, Any]:
    dlat = half_m / 111_320
    dlon = half_m / (111_320 * math.cos(math.radians(lat)))
    ring = [
        [lon - dlon, lat - dlat],
        [lon + dlon, lat - dlat],
        [lon + dlon, lat + dlat],
        [lon - dlon, lat + dlat],
        [lon - dlon, lat - dlat],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


def _generate_events(sc: _Scenario) -> Iterator[list[Any]]:
    """The incident second by second: each item is one second's events in server order."""
    from cockpit import events as ev

    rng = sc.rng
    sources: dict[tuple[str, str], ev.Source] = {}

    def env(feed: str, device: str, observed: float, received: float) -> dict[str, Any]:
        src = sources.get((feed, device))
        if src is None:
            src = sources[(feed, device)] = ev.Source(feed=feed, device=device)  # type: ignore[arg-type]
        return {
            "incident": INCIDENT,
            "source": src,
            "observed_at": _dt(observed),
            "received_at": _dt(received),
        }

    clat, clon = CENTRE
    units = [f"unit-{i:02d}" for i in range(50)]
    unit_pos = {
        u: [clat + rng.uniform(-0.02, 0.02), clon + rng.uniform(-0.03, 0.03)] for u in units
    }
    gas_units = units[:25]
    drones = ["drone-1", "drone-2"]
    robots = ["robot-1", "robot-2"]
    robot_pos = {r: [clat + rng.uniform(-0.002, 0.002), clon + 0.002] for r in robots}
    weather = [f"ws-{i}" for i in range(5)]
    water = [f"pegel-{i}" for i in range(5)]
    air = [f"air-{i:02d}" for i in range(20)]
    sensor_pos = {
        s: (clat + rng.uniform(-0.05, 0.05), clon + rng.uniform(-0.08, 0.08))
        for s in weather + water + air
    }
    responders = [f"resp-{i}" for i in range(8)]
    water_level = dict.fromkeys(water, 120.0)
    wind_dir = 240.0

    # Rare happenings: (time, kind, data), scheduled up front and consumed in order.
    h = sc.seconds / 3600
    rare: list[tuple[float, str, Any]] = []

    def sched(kind: str, count: float) -> None:
        for _ in range(round(count)):
            rare.append((rng.uniform(30, sc.seconds - 1), kind, None))

    for kind in ("manual_alerts", "journal", "adler", "hotspots", "hazards"):
        sched(kind, sc.per_hour[kind] * h)
    rare.append((sc.seconds * 0.1, "cap", "Alert"))
    rare.append((sc.seconds * 0.5, "cap", "Update"))
    rare.sort(key=lambda r: r[0])

    first: list[tuple[float, Any]] = []
    t = T0
    for u in units:
        first.append(
            (
                t,
                ev.EntityRegisteredEvent(
                    **env("sim", u, t, t),
                    payload=ev.EntityRegistered(
                        entity=u,
                        entity_kind="unit",
                        callsign=f"HLF {u[-2:]}",
                        meta={"organisation": "FW Dortmund"},
                    ),
                ),
            )
        )
    for r in responders:
        first.append(
            (
                t,
                ev.ResponderEvent(
                    **env("adler", "platform", t, t),
                    payload=ev.Responder(
                        id=r, callsign=f"Ersthelfer {r[-1]}", qualifications=("first_aid",)
                    ),
                ),
            )
        )
    for d in drones:
        first.append(
            (
                t,
                ev.VideoStreamEvent(
                    **env("video", d, t, t),
                    payload=ev.VideoStream(stream=d, entity=d, state="live", codec="VP8"),
                ),
            )
        )

    # Next due time per periodic source (entity, kind) with its period; staggered starts.
    periodic: list[tuple[str, str, float]] = []
    for u in units:
        periodic.append((u, "unit.position", 50 / sc.rates["unit.position"]))
        periodic.append((u, "unit.status", 50 / sc.rates["unit.status"]))
    for u in gas_units:
        periodic.append((u, "unit.readings", 25 / sc.rates["unit.readings"]))
    for d in drones:
        periodic.append((d, "drone.position", 2 / sc.rates["drone.position"]))
        periodic.append((d, "drone.status", 2 / sc.rates["drone.status"]))
        periodic.append((d, "drone.video", 60.0))
    for r in robots:
        periodic.append((r, "robot.position", 2 / sc.rates["robot.position"]))
        periodic.append((r, "robot.readings", 2 / sc.rates["robot.readings"]))
        periodic.append((r, "robot.status", 2 / sc.rates["robot.status"]))
    for s in weather:
        periodic.append((s, "weather", sc.sensor_period_s["weather"]))
    for s in water:
        periodic.append((s, "water", sc.sensor_period_s["water"]))
    for s in air:
        periodic.append((s, "air", sc.sensor_period_s["air"]))
    due = [rng.uniform(0, min(p, 300.0)) for _, _, p in periodic]

    alerts_open: list[str] = []
    adler_steps: list[tuple[float, str, str]] = []  # (when, detection id, to)
    hazards_open: list[str] = []
    n_alert = n_det = n_haz = 0
    ri = 0
    yield [e for _, e in first]

    for sec in range(sc.seconds):
        base = T0 + sec
        out: list[tuple[float, Any]] = []
        for i, (who, kind, period) in enumerate(periodic):
            while due[i] < sec + 1:
                rt = base + (due[i] - sec)  # received
                due[i] += period
                lag = rng.uniform(0.05, 0.6)
                ot = rt - lag
                e: Any
                if kind == "unit.position":
                    p = unit_pos[who]
                    p[0] += rng.gauss(0, 2e-5)
                    p[1] += rng.gauss(0, 3e-5)
                    e = ev.PositionEvent(
                        **env("cot", who, ot, rt),
                        payload=ev.Position(
                            entity=who,
                            entity_kind="unit",
                            lat=p[0],
                            lon=p[1],
                            speed_mps=rng.uniform(0, 14),
                            heading_deg=rng.uniform(0, 359),
                        ),
                    )
                elif kind == "unit.readings":
                    spike = rng.random() < 0.0005  # a crew walks into smoke now and then
                    e = ev.ReadingsEvent(
                        **env("telemetry", who, ot, rt),
                        payload=ev.Readings(
                            entity=who,
                            entity_kind="unit",
                            values={
                                "co": ev.Reading(
                                    value=rng.uniform(40, 80) if spike else rng.uniform(0, 8),
                                    unit="ppm",
                                ),
                                "o2": ev.Reading(value=rng.uniform(20.6, 20.9), unit="Vol-%"),
                                "lel": ev.Reading(value=rng.uniform(0, 2), unit="% UEG"),
                            },
                        ),
                    )
                elif kind == "unit.status":
                    e = ev.StatusEvent(
                        **env("cot", who, ot, rt),
                        payload=ev.Status(
                            entity=who, entity_kind="unit", battery_pct=rng.uniform(40, 100)
                        ),
                    )
                elif kind == "drone.position":
                    k = 0 if who == drones[0] else math.pi
                    a = (rt - T0) / 120 * 2 * math.pi + k
                    e = ev.PositionEvent(
                        **env("mavlink", who, rt - 0.02, rt),
                        payload=ev.Position(
                            entity=who,
                            entity_kind="drone",
                            lat=clat + 0.002 * math.sin(a),
                            lon=clon + 0.003 * math.cos(a),
                            alt_m=60.0,
                            heading_deg=math.degrees(a) % 360,
                            speed_mps=8.0,
                        ),
                    )
                elif kind == "drone.status":
                    # batteries are swapped every 25 minutes
                    pct = 100 - ((rt - T0) % 1500) / 1500 * 85
                    e = ev.StatusEvent(
                        **env("mavlink", who, rt - 0.02, rt),
                        payload=ev.Status(
                            entity=who,
                            entity_kind="drone",
                            battery_pct=pct,
                            link="ok",
                            mode="AUTO",
                        ),
                    )
                elif kind == "drone.video":
                    e = ev.VideoSegmentEvent(
                        **env("video", who, rt, rt),
                        payload=ev.VideoSegment(
                            stream=who,
                            path=f"video/{who}/{int(rt)}.webm",
                            start=_dt(rt - 60),
                            end=_dt(rt),
                            codec="VP8",
                            frames=1800,
                            bytes=9_000_000,
                        ),
                    )
                elif kind == "robot.position":
                    p = robot_pos[who]
                    p[0] += rng.gauss(0, 3e-6)
                    p[1] += rng.gauss(0, 4e-6)
                    e = ev.PositionEvent(
                        **env("rosbridge", who, ot, rt),
                        payload=ev.Position(entity=who, entity_kind="robot", lat=p[0], lon=p[1]),
                    )
                elif kind == "robot.readings":
                    plume = 0.5 + 0.5 * math.sin((rt - T0) / 1800)
                    e = ev.ReadingsEvent(
                        **env("rosbridge", who, ot, rt),
                        payload=ev.Readings(
                            entity=who,
                            entity_kind="robot",
                            values={
                                "co": ev.Reading(
                                    value=plume * 45 * rng.uniform(0.8, 1.1), unit="ppm"
                                ),
                                "hcn": ev.Reading(value=plume * 2 * rng.random(), unit="ppm"),
                                "temperature": ev.Reading(value=20 + plume * 60, unit="°C"),
                            },
                        ),
                    )
                elif kind == "robot.status":
                    e = ev.StatusEvent(
                        **env("rosbridge", who, ot, rt),
                        payload=ev.Status(
                            entity=who,
                            entity_kind="robot",
                            battery_pct=rng.uniform(50, 90),
                            link="ok",
                        ),
                    )
                elif kind == "weather":
                    wind_dir = (wind_dir + rng.gauss(0, 6)) % 360
                    la, lo = sensor_pos[who]
                    e = ev.WeatherEvent(
                        **env("ttn", who, rt - 2, rt),
                        payload=ev.WeatherObservation(
                            station=who,
                            callsign=f"Wetter {who[-1]}",
                            lat=la,
                            lon=lo,
                            wind_speed_mps=rng.uniform(2, 7),
                            wind_dir_deg=wind_dir,
                            temperature_c=rng.uniform(8, 12),
                            humidity_pct=rng.uniform(60, 90),
                            pressure_hpa=rng.uniform(1005, 1015),
                        ),
                    )
                elif kind == "water":
                    water_level[who] += rng.uniform(-0.5, 1.5)
                    e = ev.ReadingsEvent(
                        **env("ttn", who, rt - 2, rt),
                        payload=ev.Readings(
                            entity=who,
                            entity_kind="sensor",
                            callsign=f"Pegel {who[-1]}",
                            values={
                                "water_level": ev.Reading(value=water_level[who], unit="cm"),
                                "battery": ev.Reading(value=rng.uniform(3.4, 3.6), unit="V"),
                            },
                        ),
                    )
                else:  # air quality
                    e = ev.ReadingsEvent(
                        **env("ttn", who, rt - 2, rt),
                        payload=ev.Readings(
                            entity=who,
                            entity_kind="sensor",
                            values={
                                "pm10": ev.Reading(value=rng.uniform(5, 60), unit="µg/m³"),
                                "pm2_5": ev.Reading(value=rng.uniform(3, 40), unit="µg/m³"),
                                "co": ev.Reading(value=rng.uniform(0, 5), unit="ppm"),
                            },
                        ),
                    )
                out.append((rt, e))

        while ri < len(rare) and rare[ri][0] < sec + 1:
            at, kind, data = rare[ri]
            ri += 1
            rt = T0 + at
            if kind == "manual_alerts":
                n_alert += 1
                aid = f"manual-{n_alert}"
                out.append(
                    (
                        rt,
                        ev.AlertEvent(
                            **env("ui", "trainer", rt, rt),
                            context=ev.Context(actor="einsatzleiter"),
                            payload=ev.Alert(
                                id=aid,
                                severity=rng.choice(("info", "warning", "critical")),
                                entity=rng.choice(units),
                                text="Atemschutzüberwachung: Rückzug prüfen",
                            ),
                        ),
                    )
                )
                alerts_open.append(aid)
                if len(alerts_open) > 3 and rng.random() < 0.9:
                    out.append(
                        (
                            rt,
                            ev.AckEvent(
                                **env("ui", "tablet", rt, rt),
                                context=ev.Context(actor="einsatzleiter"),
                                payload=ev.Acknowledgement(alert=alerts_open.pop(0)),
                            ),
                        )
                    )
            elif kind == "journal":
                out.append(
                    (
                        rt,
                        ev.JournalEvent(
                            **env("ui", "tablet", rt, rt),
                            context=ev.Context(actor="fuehrungsassistent"),
                            payload=ev.JournalEntry(
                                text=f"Lage {sec // 60} min: Brandabschnitt {rng.randint(1, 4)} "
                                "gehalten, Riegelstellung an der Nordseite, zwei Trupps unter PA.",
                            ),
                        ),
                    )
                )
            elif kind == "adler":
                n_det += 1
                did = f"adler-{n_det}"
                la, lo = clat + rng.uniform(-0.01, 0.01), clon + rng.uniform(-0.01, 0.01)
                out.append(
                    (
                        rt,
                        ev.DetectionEvent(
                            **env("adler", "gateway-1", rt - 1, rt),
                            payload=ev.Detection(
                                id=did,
                                source="adler",
                                category=rng.choice(("smoke", "fall", "co")),
                                confidence=0.9,
                                lat=la,
                                lon=lo,
                                summary="Rauchwarnmelder ausgelöst",
                                device=f"rwm-{n_det}",
                                address=f"Hauptstraße {n_det}, 44135 Dortmund",
                                floor="2. OG",
                                personal={"name": "Erika Mustermann", "age": 84},
                            ),
                        ),
                    )
                )
                step = rt
                for to in ("confirmed", "dispatched", "on_scene", "closed"):
                    step += rng.uniform(30, 300)
                    adler_steps.append((step, did, to))
                r = rng.choice(responders)
                out.append(
                    (
                        rt + 0.1,
                        ev.ResponderCallEvent(
                            **env("ui", "tablet", rt + 0.1, rt + 0.1),
                            context=ev.Context(actor="einsatzleiter"),
                            payload=ev.ResponderCall(detection=did, responder=r, state="alerted"),
                        ),
                    )
                )
                adler_steps.append((rt + rng.uniform(20, 60), did, "call:" + r))
                adler_steps.sort()
            elif kind == "hotspots":
                n_det += 1
                did = f"hotspot-{n_det}"
                d = rng.choice(drones)
                out.append(
                    (
                        rt,
                        ev.DetectionEvent(
                            **env("video", d, rt, rt),
                            payload=ev.Detection(
                                id=did,
                                source="video",
                                category="hotspot",
                                confidence=0.7,
                                lat=clat + rng.uniform(-0.002, 0.002),
                                lon=clon + rng.uniform(-0.003, 0.003),
                                stream=d,
                                bbox=(100, 80, 40, 30),
                            ),
                        ),
                    )
                )
                to = "confirmed" if rng.random() < 0.3 else "dismissed"
                adler_steps.append((rt + rng.uniform(10, 120), did, to))
                adler_steps.sort()
            elif kind == "hazards":
                n_haz += 1
                hid = f"hazard-{n_haz}"
                out.append(
                    (
                        rt,
                        ev.HazardEvent(
                            **env("ui", "tablet", rt, rt),
                            context=ev.Context(actor="einsatzleiter"),
                            payload=ev.Hazard(
                                id=hid,
                                label="Einsturzgefahr",
                                geometry=_square(
                                    clat + rng.uniform(-0.01, 0.01),
                                    clon + rng.uniform(-0.01, 0.01),
                                    40,
                                ),
                            ),
                        ),
                    )
                )
                hazards_open.append(hid)
                if len(hazards_open) > 4:
                    out.append(
                        (
                            rt,
                            ev.HazardRemovedEvent(
                                **env("ui", "tablet", rt, rt),
                                context=ev.Context(actor="einsatzleiter"),
                                payload=ev.HazardRemoved(id=hazards_open.pop(0)),
                            ),
                        )
                    )
            elif kind == "cap":
                out.append(
                    (
                        rt,
                        ev.WarningEvent(
                            **env("cap", "dwd", rt - 30, rt),
                            payload=ev.Warning(
                                id=f"dwd-{data}",
                                sender="opendata@dwd.de",
                                identifier=f"2.49.0.0.276.0.DWD.{data}",
                                sent=_dt(rt - 30),
                                msg_type=data,
                                references=["dwd-Alert"] if data == "Update" else [],
                                event="STURMBÖEN",
                                severity="Moderate",
                                headline="Amtliche WARNUNG vor STURMBÖEN",
                                expires=_dt(T0 + sc.seconds + 3600),
                                ends=_dt(T0 + sc.seconds + 3600),
                                areas=[ev.WarningArea(name="Stadt Dortmund", geometry=None)],
                            ),
                        ),
                    )
                )

        while adler_steps and adler_steps[0][0] < base + 1:
            at, did, to = adler_steps.pop(0)
            if to.startswith("call:"):
                e = ev.ResponderCallEvent(
                    **env("adler", "platform", at, at),
                    payload=ev.ResponderCall(detection=did, responder=to[5:], state="accepted"),
                )
            else:
                e = ev.DetectionTransitionEvent(
                    **env("ui", "tablet", at, at),
                    context=ev.Context(actor="einsatzleiter"),
                    payload=ev.DetectionTransition(id=did, to=to),  # type: ignore[arg-type]
                )
            out.append((max(at, base), e))

        out.sort(key=lambda p: p[0])
        yield [e for _, e in out]


def generate(path: Path, events: int, hours: float, seed: int) -> dict[str, Any]:
    """Write the recording to `path` as the live server would; returns what was written."""
    from cockpit import events as ev
    from cockpit.events import with_seq
    from cockpit.pipeline import recorded_settings, situation_factory
    from cockpit.recorder import Recorder
    from cockpit.settings import Settings

    settings = Settings()
    params = _params(events, hours, seed)
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    sc = _Scenario(events, hours, seed)
    sit = situation_factory(settings, INCIDENT)(None)
    sit.emit = False  # as live with no browser connected: the picture is the same

    async def write() -> dict[str, Any]:
        meta = {**recorded_settings(settings), "bench": orjson.dumps(params).decode()}
        rec = Recorder(path, INCIDENT, synchronous="NORMAL", settings_meta=meta)
        await asyncio.to_thread(rec.open)
        seq = 0
        last_snap_seq, last_snap_t = 0, T0
        pending: list[Any] = []
        clocks = 0
        snapshot_s = 0.0
        try:
            for second in _generate_events(sc):
                batch = []
                for e in second:
                    seq += 1
                    batch.append(with_seq(e, seq))
                # As the live tick loop: a clock event once a deadline has passed.
                if batch:
                    now = batch[-1].received_at.timestamp()
                    deadline = sit.next_deadline()
                    if deadline is not None and now > deadline:
                        seq += 1
                        clocks += 1
                        at = _dt(now)
                        batch.append(
                            ev.ClockEvent(
                                incident=INCIDENT,
                                source=ev.Source(feed="cockpit", device="clock"),
                                observed_at=at,
                                received_at=at,
                                seq=seq,
                            )
                        )
                for e in batch:
                    sit.apply(e)
                pending.extend(batch)
                # Pipeline._maybe_snapshot, with the recording's clock.
                now = sit.received_at
                due_n = sit.seq - last_snap_seq >= settings.snapshot_every_n
                due_t = now - last_snap_t >= settings.snapshot_every_s
                if sit.seq > last_snap_seq and (due_n or due_t):
                    await rec.append(pending)
                    pending = []
                    started = time.perf_counter()
                    rec.save_snapshot(sit.seq, sit.received_at, sit.snapshot())
                    snapshot_s += time.perf_counter() - started
                    last_snap_seq, last_snap_t = sit.seq, now
                elif len(pending) >= 5000:
                    await rec.append(pending)
                    pending = []
                if seq // 200_000 != (seq - len(batch)) // 200_000:
                    _progress(f"generated {seq:,} events")
            if pending:
                await rec.append(pending)
        finally:
            await rec.close()
        if rec.error:
            raise RuntimeError(rec.error)
        return {
            "events_written": rec.events_written,
            "snapshots_written": rec.snapshots_written,
            "clock_events": clocks,
            "snapshot_copy_s": round(snapshot_s, 2),
            "alerts_in_final_picture": len(sit.alerts),
            "detections_in_final_picture": len(sit.detections),
            "journal_entries": sit.journal_count,
        }

    started = time.perf_counter()
    out = asyncio.run(write())
    out["generation_s"] = round(time.perf_counter() - started, 1)
    out["scenario"] = sc.describe()
    out["params"] = params
    return out


def _params(events: int, hours: float, seed: int) -> dict[str, Any]:
    """What makes a recording: the scenario's size and the snapshot settings in force
    (COCKPIT_SNAPSHOT_EVERY_N / _S, as for the live server)."""
    from cockpit.settings import Settings

    s = Settings()
    return {
        "events": events,
        "hours": hours,
        "seed": seed,
        "snapshot_every_n": s.snapshot_every_n,
        "snapshot_every_s": s.snapshot_every_s,
        "format": 1,
    }


def _recording_params(path: Path) -> dict[str, Any] | None:
    from cockpit.recorder import LogReader, RecorderError

    try:
        reader = LogReader(path)
    except RecorderError:
        return None
    try:
        raw = reader.meta.get("bench")
        return orjson.loads(raw) if raw else None
    finally:
        reader.close()


# --- the measurement -----------------------------------------------------------------


def _seek_parts(reader: Any, factory: Callable[[Any], Any], t: float) -> dict[str, float]:
    """`situation_at` taken apart (the same steps as `restore_from_log`), each timed."""
    p0 = time.perf_counter()
    upto = reader.seq_at(t)
    p1 = time.perf_counter()
    snap = reader.snapshot_before(upto)
    p2 = time.perf_counter()
    sit = factory(snap[1] if snap else None)
    sit.emit = False  # as situation_at folds: no deltas
    p3 = time.perf_counter()
    folded = 0
    for e in reader.iter_events(sit.seq, upto):
        sit.apply(e)
        folded += 1
    p4 = time.perf_counter()
    return {
        "seq_at_ms": (p1 - p0) * 1000,
        "snapshot_read_ms": (p2 - p1) * 1000,
        "restore_ms": (p3 - p2) * 1000,
        "fold_ms": (p4 - p3) * 1000,
        "events_folded": folded,
    }


DRAGS, DRAG_STEPS, DRAG_STEP_S = 3, 10, 2.0


async def _drag(session: Any, rng: random.Random) -> dict[str, Any]:
    """A drag along the timeline: from a random point, DRAG_STEPS seeks DRAG_STEP_S
    forward (each folds on from the picture shown), then as many back (each from the
    snapshot before it, as a random seek). Wall and CPU ms per seek, each direction."""
    span = session.t_last - session.t_first
    out: dict[str, dict[str, list[float]]] = {
        d: {"wall": [], "cpu": []} for d in ("forward", "back")
    }
    for _ in range(DRAGS):
        t = session.t_first + rng.uniform(0.1, 0.9) * span
        await session.seek(t)
        for direction, step in (("forward", DRAG_STEP_S), ("back", -DRAG_STEP_S)):
            for _ in range(DRAG_STEPS):
                t += step
                c0, p0 = time.process_time(), time.perf_counter()
                await session.seek(t)
                out[direction]["wall"].append((time.perf_counter() - p0) * 1000)
                out[direction]["cpu"].append((time.process_time() - c0) * 1000)
    return {
        "drags": DRAGS,
        "steps": DRAG_STEPS,
        "step_s": DRAG_STEP_S,
        **{
            f"{d}_{k}_ms": _pcts(v)
            for d, by in out.items()
            for k, v in (("wall", by["wall"]), ("cpu", by["cpu"]))
        },
    }


async def measure(path: Path, seeks: int, seed: int) -> dict[str, Any]:
    from cockpit.pipeline import situation_factory
    from cockpit.recorder import LogReader
    from cockpit.replay import ReplaySession, situation_at
    from cockpit.settings import Settings

    rss: dict[str, float | None] = {"after_imports": _rss_mb()}
    started = time.perf_counter()
    reader = LogReader(path)
    factory = situation_factory(Settings(), reader.incident, reader.meta)
    session = ReplaySession(reader, factory)
    await session.start()  # seeks to the first event
    open_ms = (time.perf_counter() - started) * 1000
    # As `cockpit replay` does once it has started (`cockpit.cli.tune_gc`, not imported:
    # it pulls in the web server, ~50 MB the replay does not hold): fewer, cheaper
    # collections. A seek makes ~100,000 objects decoding a snapshot; CPython's default
    # threshold of 700 ran full collections over the whole heap in the middle of it.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    rss["after_open"] = _rss_mb()
    rng = random.Random(seed)
    targets = [rng.uniform(session.t_first, session.t_last) for _ in range(seeks)]
    seek_ms: list[float] = []
    at_ms: list[float] = []
    seek_cpu: list[float] = []
    at_cpu: list[float] = []
    parts: list[dict[str, float]] = []
    try:
        for i, t in enumerate(targets):
            # CPU time beside wall time: on a shared machine the wall figure includes
            # waiting for a core; the process's CPU time says what a seek itself costs.
            c0, p0 = time.process_time(), time.perf_counter()
            await session.seek(t)
            seek_ms.append((time.perf_counter() - p0) * 1000)
            seek_cpu.append((time.process_time() - c0) * 1000)
            c0, p0 = time.process_time(), time.perf_counter()
            situation_at(reader, t, factory)
            at_ms.append((time.perf_counter() - p0) * 1000)
            at_cpu.append((time.process_time() - c0) * 1000)
            parts.append(_seek_parts(reader, factory, t))
            if (i + 1) % 10 == 0:
                _progress(f"{i + 1}/{seeks} seeks, last {seek_ms[-1]:.0f} ms")
        drag = await _drag(session, rng)
        rss["after_seeks"] = _rss_mb()
        sit = session.situation
        picture = {
            "seq": sit.seq,
            "entities": len(sit.entities),
            "track_points": sum(len(v) for v in sit.tracks.values()),
            "alerts": len(sit.alerts),
            "detections": len(sit.detections),
            "journal": len(sit.journal),
        }
        # the last picture of the recording: the largest one a seek rebuilds
        await session.seek(session.t_last)
        from cockpit.situation import encode_snapshot

        picture["snapshot_json_bytes_at_end"] = len(encode_snapshot(session.situation.snapshot()))
    finally:
        await session.close()
        reader.close()
    rss["peak"] = _rss_mb("VmHWM")
    part_keys = ("seq_at_ms", "snapshot_read_ms", "restore_ms", "fold_ms", "events_folded")
    return {
        "open_ms": round(open_ms, 1),
        "seeks": seeks,
        "seek_ms": _pcts(seek_ms),
        "seek_cpu_ms": _pcts(seek_cpu),
        "situation_at_ms": _pcts(at_ms),
        "situation_at_cpu_ms": _pcts(at_cpu),
        "parts": {k: _pcts([p[k] for p in parts]) for k in part_keys},
        "drag": drag,
        "rss_mb": rss,
        "rss_source": "/proc/self/status: VmRSS, peak VmHWM (psutil is not installed)",
        "picture_at_last_seek": picture,
    }


def _sizes(path: Path) -> dict[str, Any]:
    import sqlite3

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        n_ev, first, last = conn.execute(
            "SELECT COUNT(*), MIN(received_at), MAX(received_at) FROM events"
        ).fetchone()
        n_snap, snap_bytes = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM snapshots"
        ).fetchone()
        kinds = dict(conn.execute("SELECT kind, COUNT(*) FROM events GROUP BY kind").fetchall())
    finally:
        conn.close()
    return {
        "path": str(path),
        "file_mb": round(path.stat().st_size / 2**20, 1),
        "events": n_ev,
        "hours": round((last - first) / 3600, 3) if n_ev else 0,
        "snapshots": n_snap,
        "snapshots_mb_compressed": round(snap_bytes / 2**20, 1),
        "events_by_kind": dict(sorted(kinds.items(), key=lambda kv: -kv[1])),
    }


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=2_000_000, help="events in the recording")
    p.add_argument("--hours", type=float, default=4.0, help="server time the recording spans")
    p.add_argument("--seeks", type=int, default=50, help="random seek targets")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", type=Path, help="the recording's path (default: in the temp dir)")
    p.add_argument("--reuse", action="store_true", help="keep --out if it was made alike")
    p.add_argument("--save", action="store_true", help="write bench/results/replay_seek-*.json")
    p.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    params = _params(args.events, args.hours, args.seed)
    path: Path = args.out or Path(tempfile.gettempdir()) / (
        f"cockpit-bench-replay-{args.events}-{args.hours:g}h-{args.seed}"
        f"-snap{params['snapshot_every_n']}-{params['snapshot_every_s']:g}s.sqlite"
    )
    if args.generate_only:
        print(orjson.dumps(generate(path, args.events, args.hours, args.seed)).decode())
        return 0
    load_before = os.getloadavg()  # a shared machine: how busy it was matters
    generation: dict[str, Any]
    made_note = path.with_name(path.name + ".generation.json")  # how long it took, etc.
    if args.reuse and path.is_file() and _recording_params(path) == params:
        generation = {"reused": True}
        if made_note.is_file():
            generation["when_made"] = orjson.loads(made_note.read_bytes())
        _progress(f"reusing {path}")
    else:
        _progress(f"generating {args.events:,} events over {args.hours:g} h into {path}")
        # A child process: the measuring process then holds only what the replay holds.
        child = subprocess.run(
            [
                *(sys.executable, "-m", "bench.replay_seek", "--generate-only"),
                *("--out", str(path), "--events", str(args.events)),
                *("--hours", str(args.hours), "--seed", str(args.seed)),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            check=True,
        )
        made_note.write_bytes(child.stdout)
        generation = {"reused": False, **orjson.loads(child.stdout)}
    recording = _sizes(path)
    _progress(f"measuring {args.seeks} seeks")
    result = asyncio.run(measure(path, args.seeks, args.seed))
    seek_p95 = max(result["seek_ms"]["p95"], result["situation_at_ms"]["p95"])
    peak = result["rss_mb"]["peak"]
    out = {
        "bench": "replay_seek",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.replay_seek " + " ".join(sys.argv[1:]),
        "commit": git_commit(),
        "loadavg_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "recording": recording,
        "generation": generation,
        "results": result,
        "targets": TARGETS,
        "targets_met": {
            "seek_p95_ms": seek_p95 <= TARGETS["seek_ms"],
            "memory_peak_mb": peak is not None and peak <= TARGETS["memory_mb"],
        },
    }
    text = orjson.dumps(out, option=orjson.OPT_INDENT_2).decode()
    print(text)
    if args.save:
        tag = (out["commit"] or "unknown").replace("+", "-")
        from cockpit.settings import Settings

        defaults = tuple(
            Settings.model_fields[k].default for k in ("snapshot_every_n", "snapshot_every_s")
        )
        if (params["snapshot_every_n"], params["snapshot_every_s"]) != defaults:
            tag += f"-snap{params['snapshot_every_n']}-{params['snapshot_every_s']:g}s"
        name = f"replay_seek-{tag}.json"
        (ROOT / "bench" / "results" / name).write_text(text + "\n")
        _progress(f"saved bench/results/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
