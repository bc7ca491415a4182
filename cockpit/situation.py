"""The situation picture (Lagebild) as a pure fold over events.

`Situation.apply(event)` changes the picture and returns the deltas it caused; it does
no I/O and never reads a clock. Ages and staleness are computed in `view(now)` from
the time each value was observed, so the same events always give the same picture,
live or replayed. `snapshot()`/`restore()` make seeking fast.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from cockpit.detection_flow import (
    CALL_LABEL_DE,
    LABEL_DE,
    QUALIFICATION_DE,
    allowed,
    call_allowed,
)
from cockpit.events import (
    AckEvent,
    AlertEvent,
    ClockEvent,
    DetectionEvent,
    DetectionPurgedEvent,
    DetectionTransitionEvent,
    EntityKind,
    EntityRegisteredEvent,
    EntityRemovedEvent,
    Event,
    HazardEvent,
    HazardRemovedEvent,
    JournalEvent,
    PositionEvent,
    ReadingsEvent,
    ResponderCallEvent,
    ResponderEvent,
    StatusEvent,
    VideoSegmentEvent,
    VideoStreamEvent,
    WarningEvent,
    WeatherEvent,
    to_plain,
)
from cockpit.geo import distance_m
from cockpit.rules import links, responders, thresholds, water, wind, zones
from cockpit.rules.config import RuleConfig
from cockpit.rules.footprint import DEFAULT_CAMERA, footprint_of
from cockpit.rules.wish import AlertWish

__all__ = [
    "DEFAULT_STALE_AFTER",
    "Delta",
    "Layer",
    "Situation",
    "iso",
    "reading_entity",
    "reading_values",
    "without_personal",
]

FOOTPRINT_EVERY_S = 0.5  # a drone's footprint is recomputed at most this often

Layer = Literal[
    "entities",
    "detections",
    "responders",
    "alerts",
    "hazards",
    "warnings",
    "journal",
    "videos",
    "meta",
]

# Seconds without a report after which a value is shown as stale, per entity kind.
# Vehicles report every few seconds, drones several times a second, LoRaWAN sensors
# every few minutes.
DEFAULT_STALE_AFTER: Mapping[str, float] = {
    "unit": 30.0,
    "drone": 5.0,
    "robot": 10.0,
    "sensor": 900.0,
    "person": 60.0,
}

SNAPSHOT_VERSION = 1

# Rule families settled whenever an entity's readings or status change.
_ENTITY_FAMILIES = frozenset({"gas_threshold", "battery_low", "link_lost", "water", "stale"})
_STALE = frozenset({"stale"})
_IN_ZONE = frozenset({"in_zone"})
REOPEN_WITHIN_S = 300.0  # a cleared, unacknowledged alert that comes back within this
_WIND = frozenset({"wind_shift"})
_FEED = frozenset({"feed_stale"})

_WEATHER_READINGS: tuple[tuple[str, str, str], ...] = (
    ("wind_speed_mps", "wind_speed", "m/s"),
    ("wind_dir_deg", "wind_dir", "°"),
    ("gust_mps", "gust", "m/s"),
    ("temperature_c", "temperature", "°C"),
    ("humidity_pct", "humidity", "%"),
    ("pressure_hpa", "pressure", "hPa"),
    ("precipitation_mm", "precipitation", "mm"),
)


def reading_entity(event: Event) -> str | None:
    """The entity whose readings `event` carries (readings and weather events), else None."""
    if isinstance(event, ReadingsEvent):
        return event.payload.entity
    if isinstance(event, WeatherEvent):
        return event.payload.station
    return None


def reading_values(event: Event) -> list[tuple[str, float]]:
    """(name, value) of every reading in `event`, named as the picture names them."""
    if isinstance(event, ReadingsEvent):
        return [(name, r.value) for name, r in event.payload.values.items()]
    if isinstance(event, WeatherEvent):
        p = event.payload
        return [
            (name, float(v))
            for attr, name, _ in _WEATHER_READINGS
            if (v := getattr(p, attr)) is not None
        ]
    return []


def iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class Delta:
    """One change to the picture. `data` is the new state of the item on "upsert", None
    on "remove", and on "patch" (entities) only the fields that changed, with `whole` the
    new state: for a client that skipped earlier deltas and needs all of it."""

    layer: Layer
    op: Literal["upsert", "remove", "patch"]
    id: str
    seq: int
    data: dict[str, Any] | None = None
    whole: dict[str, Any] | None = None


def _new_entity(entity_id: str, kind: EntityKind, t: float) -> dict[str, Any]:
    return {
        "id": entity_id,
        "kind": kind,
        "callsign": None,
        "meta": {},
        "lat": None,
        "lon": None,
        "alt_m": None,
        "heading_deg": None,
        "speed_mps": None,
        "accuracy_m": None,
        "observed_at": None,  # time of the latest position
        "last_reported": t,  # any report at all: alive
        "last_changed": t,  # any value changed
        "readings": {},
        "status": {},
        "footprint": None,  # drones: the ground the camera sees, [[lat, lon], …]
    }


@dataclass
class Situation:
    incident: str = ""
    track_len: int = 200
    journal_len: int = 10_000
    stale_after: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_STALE_AFTER))
    seq: int = 0
    received_at: float = 0.0  # server time of the last event folded
    entities: dict[str, dict[str, Any]] = field(default_factory=dict)
    tracks: dict[str, deque[tuple[float, float, float]]] = field(default_factory=dict)
    detections: dict[str, dict[str, Any]] = field(default_factory=dict)
    # First responders' registry entries by id (their positions are entities, same id).
    responders: dict[str, dict[str, Any]] = field(default_factory=dict)
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)
    hazards: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: dict[str, dict[str, Any]] = field(default_factory=dict)
    # CAP warnings an Update or Cancel replaced ("status:id" -> until when, epoch s): a
    # late re-delivery of one (a lagging status zip, a folder and a URL) is ignored.
    warnings_retired: dict[str, float] = field(default_factory=dict)
    journal: deque[dict[str, Any]] = field(default_factory=deque)
    videos: dict[str, dict[str, Any]] = field(default_factory=dict)  # by stream name
    journal_count: int = 0  # entries ever written; gives stable ids after trimming
    # Camera field of view (hfov, vfov degrees) per drone entity id, and for all others.
    cameras: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    default_camera: tuple[float, float] | None = DEFAULT_CAMERA
    # False while nobody watches: entity deltas (a copy of the entity per event) are then
    # not made. The picture is the same either way; only what apply() returns differs.
    emit: bool = True
    rules: RuleConfig = field(default_factory=RuleConfig)
    # Per weather station: (time, wind from °, m/s) within the wind-shift window.
    wind_history: dict[str, deque[tuple[float, float, float]]] = field(default_factory=dict)
    # Per watched feed: when it last delivered (feed-stale rule).
    feeds_last: dict[str, float] = field(default_factory=dict)
    # subject (entity id or "feed:NAME") -> rule -> id of the alert raised for it
    _active: dict[str, dict[str, str]] = field(default_factory=dict)
    # ... and of the alert last cleared for it (reopened if it comes back soon)
    _cleared: dict[str, dict[str, str]] = field(default_factory=dict)
    # The derived hazard zones with their bounding boxes, for the in-zone rule.
    _zones: list[dict[str, Any]] = field(default_factory=list)
    # ... the same made ready for point tests (`zones.zone_tests`)
    _zone_tests: list[zones.ZoneTest] = field(default_factory=list)
    # Each entity as its last delta carried it: the next delta sends what differs.
    _sent: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Ids of review steps the fold refused lately (the alerts sent with them are refused).
    _refused: deque[str] = field(default_factory=lambda: deque(maxlen=256))

    # --- the fold -----------------------------------------------------------------

    def apply(self, event: Event) -> list[Delta]:
        """Fold one event (with its seq set) into the picture."""
        seq = event.seq if event.seq is not None else self.seq + 1
        if seq <= self.seq:
            return []  # already folded: a redelivery must not change the picture
        self.seq = seq
        received = event.received_at.timestamp()
        self.received_at = received
        # Never trust a source clock that runs ahead of ours: a value cannot have been
        # observed after it arrived.
        t = min(event.observed_at.timestamp(), received)
        handler = _HANDLERS.get(type(event))
        if handler is None:  # pragma: no cover - every kind has a handler
            return []
        feed = event.source.feed
        if feed in self.rules.feed_stale_s:
            self.feeds_last[feed] = received
            if "feed:" + feed in self._active:  # it delivers again
                return [*handler(self, event, t, seq), *self._feed_back(feed, received, seq)]
        return handler(self, event, t, seq)

    def apply_all(self, events: Iterable[Event]) -> list[Delta]:
        out: list[Delta] = []
        for event in events:
            out.extend(self.apply(event))
        return out

    def _entity(
        self,
        entity_id: str,
        kind: EntityKind,
        callsign: str | None,
        t: float,
        report: bool = True,
    ) -> dict[str, Any]:
        ent = self.entities.get(entity_id)
        if ent is None:
            ent = _new_entity(entity_id, kind, t)
            self.entities[entity_id] = ent
        if callsign is not None and ent["callsign"] != callsign:
            ent["callsign"] = callsign
            ent["last_changed"] = max(ent["last_changed"], t)
        if report and t > ent["last_reported"]:
            ent["last_reported"] = t
        return ent

    def _entity_delta(self, ent: dict[str, Any], seq: int) -> Delta:
        """The entity's change as a patch: a position report changes 5 of its 16 fields,
        and every browser parses each delta (half the bytes at 2,000 reports a second)."""
        if not self.emit:
            return _UNSENT
        data = dict(ent)
        data["readings"] = dict(ent["readings"])
        data["status"] = dict(ent["status"])
        before = self._sent.get(ent["id"])
        self._sent[ent["id"]] = data
        patch = _patch(before, data) if before is not None else None
        if patch is None:
            return Delta("entities", "upsert", ent["id"], seq, data)
        return Delta("entities", "patch", ent["id"], seq, patch, data)

    def _on_registered(self, ev: EntityRegisteredEvent, t: float, seq: int) -> list[Delta]:
        p = ev.payload
        ent = self._entity(p.entity, p.entity_kind, p.callsign, t)
        if p.meta and ent["meta"] != p.meta:
            ent["meta"] = dict(p.meta)
            ent["last_changed"] = max(ent["last_changed"], t)
        if ent["kind"] != p.entity_kind:
            ent["kind"] = p.entity_kind
        return [self._entity_delta(ent, seq)]

    def _on_removed(self, ev: EntityRemovedEvent, t: float, seq: int) -> list[Delta]:
        entity_id = ev.payload.entity
        self._sent.pop(entity_id, None)
        if self.entities.pop(entity_id, None) is None:
            return []
        self.tracks.pop(entity_id, None)
        was_station = self.wind_history.pop(entity_id, None) is not None
        deltas = [Delta("entities", "remove", entity_id, seq)]
        active = self._active.get(entity_id)
        if active:  # nothing is left to clear them later
            families = frozenset(r.split(".", 1)[0] for r in active)
            deltas.extend(self._settle(entity_id, entity_id, families, (), t, seq))
        if was_station:  # the sectors take the next station's wind
            deltas.extend(self._refresh_zones(t, seq))
        return deltas

    def _on_position(self, ev: PositionEvent, t: float, seq: int) -> list[Delta]:
        p = ev.payload
        ent = self._entity(p.entity, p.entity_kind, p.callsign, t)
        last = ent["observed_at"]
        if last is not None and t < last:
            return [self._entity_delta(ent, seq)]  # late report: alive, but not newer
        moved = ent["lat"] != p.lat or ent["lon"] != p.lon
        ent["lat"], ent["lon"] = p.lat, p.lon
        ent["alt_m"], ent["heading_deg"] = p.alt_m, p.heading_deg
        ent["speed_mps"], ent["accuracy_m"] = p.speed_mps, p.accuracy_m
        ent["observed_at"] = t
        if moved:
            ent["last_changed"] = max(ent["last_changed"], t)
            track = self.tracks.get(p.entity)
            if track is None:
                track = self.tracks[p.entity] = deque(maxlen=self.track_len)
            track.append((t, p.lat, p.lon))
        if ent["kind"] == "drone":
            self._aim(ent, t)
        deltas = [self._entity_delta(ent, seq)]
        if self._has_active(p.entity, _STALE):
            deltas.extend(self._settle(p.entity, p.entity, _STALE, (), t, seq))
        if moved:
            deltas.extend(self._zone_check(ent, t, seq))
            if p.entity in self.responders:
                deltas.extend(self._responder_moved(p.entity, t, seq))
        return deltas

    def _aim(self, ent: dict[str, Any], t: float) -> None:
        """A drone's camera footprint, from its pose and its camera (or the default).

        At most every FOOTPRINT_EVERY_S of the drone's own time: the geometry costs ~45 µs,
        drones report attitude many times a second, and a map needs no more. Event time,
        not the clock, keeps the fold deterministic.
        """
        if t - ent.get("footprint_at", -math.inf) < FOOTPRINT_EVERY_S:
            return
        fov = self.cameras.get(ent["id"], self.default_camera)
        ent["footprint"] = footprint_of(ent, fov) if fov is not None else None
        if ent["footprint"] is not None:  # none yet (e.g. no gimbal): try on the next report
            ent["footprint_at"] = t

    def _set_readings(
        self, ent: dict[str, Any], values: Iterable[tuple[str, float, str]], t: float
    ) -> None:
        readings = ent["readings"]
        for name, value, unit in values:
            old = readings.get(name)
            if old is not None and t < old["observed_at"]:
                continue
            if old is None or old["value"] != value or old["unit"] != unit:
                ent["last_changed"] = max(ent["last_changed"], t)
            readings[name] = {"value": value, "unit": unit, "observed_at": t}

    def _on_readings(self, ev: ReadingsEvent, t: float, seq: int) -> list[Delta]:
        p = ev.payload
        ent = self._entity(p.entity, p.entity_kind, p.callsign, t)
        self._set_readings(ent, ((n, r.value, r.unit) for n, r in p.values.items()), t)
        if ent["kind"] == "drone":
            self._aim(ent, t)
        deltas = [self._entity_delta(ent, seq), *self._evaluate_rules(ent, t, seq)]
        direction, speed = p.values.get("wind_dir"), p.values.get("wind_speed")
        if direction is not None and speed is not None:  # a station on native telemetry
            mps = zones.mps(speed.value, speed.unit)
            if mps is not None:  # a speed in a unit we do not know draws no sector
                deltas.extend(self._wind(p.entity, direction.value % 360.0, mps, t, seq))
        return deltas

    def _on_status(self, ev: StatusEvent, t: float, seq: int) -> list[Delta]:
        p = ev.payload
        # A link state alone is what the cockpit's end of a connection saw (a rosbridge
        # socket closing), not word from the device: it must not make it look alive.
        link_only = p.link is not None and p.battery_pct is None and p.mode is None
        ent = self._entity(p.entity, p.entity_kind, p.callsign, t, report=not link_only)
        status = ent["status"]
        if status.get("observed_at", t) <= t:
            new = {"battery_pct": p.battery_pct, "link": p.link, "mode": p.mode}
            new = {k: v for k, v in new.items() if v is not None}
            if any(status.get(k) != v for k, v in new.items()):
                ent["last_changed"] = max(ent["last_changed"], t)
            status.update(new)
            status["observed_at"] = t
        return [self._entity_delta(ent, seq), *self._evaluate_rules(ent, t, seq)]

    def _on_weather(self, ev: WeatherEvent, t: float, seq: int) -> list[Delta]:
        p = ev.payload
        ent = self._entity(p.station, "sensor", p.callsign, t)
        if p.lat is not None and p.lon is not None and ent["lat"] is None:
            ent["lat"], ent["lon"], ent["observed_at"] = p.lat, p.lon, t
        values = [
            (name, float(v), unit)
            for attr, name, unit in _WEATHER_READINGS
            if (v := getattr(p, attr)) is not None
        ]
        self._set_readings(ent, values, t)
        deltas = [self._entity_delta(ent, seq)]
        if p.wind_dir_deg is not None and p.wind_speed_mps is not None:
            deltas.extend(self._wind(p.station, p.wind_dir_deg, p.wind_speed_mps, t, seq))
        return deltas

    def _wind(self, station: str, dir_deg: float, speed: float, t: float, seq: int) -> list[Delta]:
        """A station's wind: its history for the shift rule, and the zones that follow it."""
        history = self.wind_history.get(station)
        if history is None:
            history = self.wind_history[station] = deque(maxlen=256)
        if not history or history[-1][0] <= t:
            history.append((t, dir_deg, speed))
        while history and t - history[0][0] > self.rules.wind_shift_window_s:
            history.popleft()
        shift = wind.wind_shift(history, t, self.rules)
        return [
            *self._settle(station, station, _WIND, shift, t, seq),
            *self._refresh_zones(t, seq),
        ]

    def _evaluate_rules(self, ent: dict[str, Any], t: float, seq: int) -> list[Delta]:
        """Settle the rules over the entity's readings and status (and its silence)."""
        cfg = self.rules
        wishes = [
            *thresholds.gas_threshold(ent, cfg),
            *thresholds.battery_low(ent, cfg),
            *links.link_lost(ent, cfg),
            *water.water(ent, cfg),
            *links.stale(ent, t, self.stale_after, cfg),
        ]
        return self._settle(ent["id"], ent["id"], _ENTITY_FAMILIES, wishes, t, seq)

    def _settle(
        self,
        subject: str,
        entity_id: str | None,
        families: frozenset[str],
        wishes: Iterable[AlertWish],
        t: float,
        seq: int,
    ) -> list[Delta]:
        """Make the active alerts of `subject` in `families` what `wishes` say: raise the
        new, update or escalate the changed, clear the ones no longer wanted."""
        deltas: list[Delta] = []
        active = self._active.get(subject)
        wanted = {w.rule: w for w in wishes}
        for rule, wish in wanted.items():
            alert_id = active.get(rule) if active else None
            alert = self.alerts.get(alert_id) if alert_id else None
            if alert is None:
                reopened = self._reopen(subject, rule, wish, t, seq)
                if reopened is not None:
                    deltas.append(reopened)
                    active = self._active[subject]
                    continue
                alert_id = f"{rule}:{subject}:{seq}"
                alert = {
                    "id": alert_id,
                    "rule": wish.family,
                    "detail": rule,
                    "severity": wish.severity,
                    "entity": entity_id,
                    "raised_at": t,
                    "updated_at": t,
                    "cleared_at": None,
                    "active": True,
                    "acknowledged_by": None,
                    "acknowledged_at": None,
                    "text": wish.text,
                    "params": dict(wish.params),
                }
                self.alerts[alert_id] = alert
                active = self._active.setdefault(subject, {})
                active[rule] = alert_id
                deltas.append(Delta("alerts", "upsert", alert_id, seq, dict(alert)))
                deltas.append(self._journal(seq, t, None, "alert", wish.text, entity_id, alert_id))
            elif alert["severity"] != wish.severity or alert["text"] != wish.text:
                escalated = wish.severity == "critical" and alert["severity"] != "critical"
                alert.update(severity=wish.severity, text=wish.text, updated_at=t)
                alert["params"] = dict(wish.params)
                if escalated:
                    # Worse than what was acknowledged: it must be seen again.
                    alert.update(acknowledged_by=None, acknowledged_at=None)
                deltas.append(Delta("alerts", "upsert", alert["id"], seq, dict(alert)))
                if escalated:
                    deltas.append(
                        self._journal(seq, t, None, "alert", wish.text, entity_id, alert["id"])
                    )
        if not active:
            return deltas
        for rule, alert_id in list(active.items()):
            if rule in wanted or rule.split(".", 1)[0] not in families:
                continue
            del active[rule]
            alert = self.alerts[alert_id]
            alert.update(active=False, cleared_at=t, updated_at=t)
            self._cleared.setdefault(subject, {})[rule] = alert_id
            deltas.append(Delta("alerts", "upsert", alert_id, seq, dict(alert)))
        if not active:
            del self._active[subject]
        return deltas

    def _reopen(self, subject: str, rule: str, wish: AlertWish, t: float, seq: int) -> Delta | None:
        """The same alert again, if it cleared a moment ago and nobody acknowledged it
        yet: a crew at the edge of a sector in a wobbling wind, or a flapping link, is
        one alert going on and off, not a new alert and journal line each time."""
        alert_id = self._cleared.get(subject, {}).pop(rule, None)
        alert = self.alerts.get(alert_id) if alert_id else None
        if (
            alert is None
            or alert["acknowledged_by"] is not None
            or t - alert["cleared_at"] > REOPEN_WITHIN_S
        ):
            return None
        alert.update(active=True, cleared_at=None, updated_at=t)
        alert.update(severity=wish.severity, text=wish.text, params=dict(wish.params))
        self._active.setdefault(subject, {})[rule] = alert["id"]
        return Delta("alerts", "upsert", alert["id"], seq, dict(alert))

    def _has_active(self, subject: str, families: frozenset[str]) -> bool:
        active = self._active.get(subject)
        return active is not None and any(r.split(".", 1)[0] in families for r in active)

    def _zone_check(self, ent: dict[str, Any], t: float, seq: int) -> list[Delta]:
        """Settle the in-zone rule for one entity (only kinds that raise it)."""
        if ent["kind"] not in self.rules.zone_kinds:
            return []
        if not self._zones and not self._has_active(ent["id"], _IN_ZONE):
            return []
        wishes = zones.wishes_in_zones(ent, self._zone_tests, self.rules)
        return self._settle(ent["id"], ent["id"], _IN_ZONE, wishes, t, seq)

    def _refresh_zones(self, t: float, seq: int) -> list[Delta]:
        """The danger areas and downwind sectors as the sources and the wind are now;
        when one moved, who stands in which zone is settled again for everyone."""
        cfg = self.rules
        stations = [self.entities[i] for i in self._stations() if i in self.entities]
        stale_s = self.stale_after.get("sensor", 900.0)
        want: dict[str, dict[str, Any]] = {}
        for src in zones.sources(self.hazards, self.detections, cfg):
            wind_now = zones.nearest_wind(stations, src["lat"], src["lon"], t, stale_s)
            for z in zones.zones_for(src, wind_now, cfg):
                want[z["id"]] = z
        deltas: list[Delta] = []
        moved = False
        for hid in [h for h, v in self.hazards.items() if v.get("derived") and h not in want]:
            del self.hazards[hid]
            deltas.append(Delta("hazards", "remove", hid, seq))
            moved = True
        for zid, z in want.items():
            old = self.hazards.get(zid)
            if old is not None and all(old.get(k) == v for k, v in z.items()):
                continue
            if old is None or old["geometry"] != z["geometry"]:
                moved = True
            z.update(derived=True, drawn_at=t, author=None)
            self.hazards[zid] = z
            deltas.append(Delta("hazards", "upsert", zid, seq, dict(z)))
        if deltas:
            self._zones = _zone_index(self.hazards, self._zones)
            self._zone_tests = zones.zone_tests(self._zones)
        if moved:
            for ent in self.entities.values():
                if ent["lat"] is not None:
                    deltas.extend(self._zone_check(ent, t, seq))
        return deltas

    def _stations(self) -> list[str]:
        """Entities that report wind (weather stations)."""
        return [i for i in self.wind_history if i in self.entities]

    def _feed_back(self, feed: str, t: float, seq: int) -> list[Delta]:
        return self._settle("feed:" + feed, None, _FEED, (), t, seq)

    def next_deadline(self) -> float | None:
        """The earliest time at which time alone changes the picture: an entity or feed
        turning stale, a warning expiring, the wind under a sector growing old. The
        clock event is due only then, so an idle incident's log stays quiet."""
        cfg = self.rules
        due: list[float] = []
        watched = cfg.stale_kinds
        for ent in self.entities.values():
            if ent["kind"] in watched and not self._has_active(ent["id"], _STALE):
                due.append(ent["last_reported"] + self.stale_after.get(ent["kind"], 60.0))
        for feed, last in self.feeds_last.items():
            if "feed:" + feed not in self._active:
                due.append(last + cfg.feed_stale_s.get(feed, math.inf))
        for w in self.warnings.values():
            if ends := _warning_ends(w):
                due.append(datetime.fromisoformat(ends).timestamp())
        for station, history in self.wind_history.items():
            if history and self._has_active(station, _WIND):
                # when the next reading leaves the window: the turn may be over then
                leaving = [
                    ts + cfg.wind_shift_window_s
                    for ts, _, _ in history
                    if ts + cfg.wind_shift_window_s > self.received_at
                ]
                due.extend(leaving[:1])
        wind_stale_s = self.stale_after.get("sensor", 900.0)
        for z in self._zones:
            if z.get("wind") and not z["wind"]["stale"]:
                due.append(z["wind"]["observed_at"] + wind_stale_s)
        return min(due, default=None)

    def _on_clock(self, ev: ClockEvent, t: float, seq: int) -> list[Delta]:
        """Time passed with nothing to say: settle what silence decides (stale robots
        and drones, silent feeds), retire expired warnings, re-judge stale winds."""
        deltas: list[Delta] = []
        cfg = self.rules
        watched = cfg.stale_kinds
        for ent in self.entities.values():
            if ent["kind"] in watched:
                wishes = links.stale(ent, t, self.stale_after, cfg)
                if wishes or self._has_active(ent["id"], _STALE):
                    deltas.extend(self._settle(ent["id"], ent["id"], _STALE, wishes, t, seq))
        for station, history in self.wind_history.items():
            if self._has_active(station, _WIND):  # a silent station's turn grows old
                shift = wind.wind_shift(history, t, cfg)
                deltas.extend(self._settle(station, station, _WIND, shift, t, seq))
        silent = links.feed_stale(self.feeds_last, t, cfg)
        for feed in self.feeds_last:
            subject = "feed:" + feed
            wish = silent.get(feed)
            if wish is not None or subject in self._active:
                deltas.extend(self._settle(subject, None, _FEED, [wish] if wish else [], t, seq))
        for wid in [w for w, v in self.warnings.items() if _expired(_warning_ends(v), t)]:
            del self.warnings[wid]
            deltas.append(Delta("warnings", "remove", wid, seq))
        deltas.extend(self._refresh_zones(t, seq))
        return deltas

    def _journal(
        self,
        seq: int,
        t: float,
        author: str | None,
        category: str,
        text: str,
        entity: str | None = None,
        ref: str | None = None,
    ) -> Delta:
        entry_id = f"j{self.journal_count + 1}"
        entry: dict[str, Any] = {
            "id": entry_id,
            "seq": seq,
            "t": t,
            "author": author,
            "category": category,
            "text": text,
            "entity": entity,
            "ref": ref,
        }
        self.journal_count += 1
        self.journal.append(entry)
        while len(self.journal) > self.journal_len:
            self.journal.popleft()
        return Delta("journal", "upsert", entry_id, seq, dict(entry))

    def _on_journal(self, ev: JournalEvent, t: float, seq: int) -> list[Delta]:
        p = ev.payload
        return [self._journal(seq, t, ev.context.actor, p.category, p.text)]

    def _on_alert(self, ev: AlertEvent, t: float, seq: int) -> list[Delta]:
        p = ev.payload
        alert: dict[str, Any] = {
            "id": p.id,
            "rule": p.rule,
            "detail": p.rule,
            "severity": p.severity,
            "entity": p.entity,
            "raised_at": t,
            "updated_at": t,
            "cleared_at": None,
            "active": True,
            "acknowledged_by": None,
            "acknowledged_at": None,
            "text": p.text,
            "params": {},
        }
        self.alerts[p.id] = alert
        journal = self._journal(seq, t, ev.context.actor, "alert", p.text, p.entity, p.id)
        return [Delta("alerts", "upsert", p.id, seq, dict(alert)), journal]

    def _on_ack(self, ev: AckEvent, t: float, seq: int) -> list[Delta]:
        alert = self.alerts.get(ev.payload.alert)
        if alert is None or alert["acknowledged_by"] is not None:
            return []
        alert["acknowledged_by"] = ev.context.actor or ev.source.device
        alert["acknowledged_at"] = t
        text = f"Quittiert: {alert['text']}"
        journal = self._journal(
            seq, t, alert["acknowledged_by"], "ack", text, alert["entity"], alert["id"]
        )
        return [Delta("alerts", "upsert", alert["id"], seq, dict(alert)), journal]

    def _on_detection(self, ev: DetectionEvent, t: float, seq: int) -> list[Delta]:
        """A report, new or repeated (same id: the same detection, updated). Its state is
        taken only when the detection is new to the picture or the state is an allowed
        next step from the current one: a device re-reporting "new" never undoes what a
        person decided, and the state only ever moves along the review."""
        p = ev.payload
        old = self.detections.get(p.id)
        det = to_plain(p)
        det["first_seen"] = old["first_seen"] if old else t
        det["updated_at"] = t
        det["reports"] = (old.get("reports", 1) + 1) if old else 1
        det["reported_seq"] = seq
        det["history"] = old.get("history", []) if old else []
        if old is not None and det["personal"] is None:
            det["personal"] = old.get("personal")  # a short repeat does not forget the person
        if old is not None and p.state != old["state"] and not allowed(old["state"], p.state):
            det["state"] = old["state"]
        det["calls"] = old.get("calls", {}) if old else {}
        det["candidates"] = old.get("candidates", []) if old else []
        self.detections[p.id] = det
        others = self._reoffer(t, seq, p.id)
        det = self.detections[p.id]
        deltas = [Delta("detections", "upsert", p.id, seq, without_personal(det)), *others]
        if old is None:
            text = f"Meldung {p.category}" + (f": {p.summary}" if p.summary else "")
            deltas.append(self._journal(seq, t, ev.context.actor, "detection", text, None, p.id))
        elif det["state"] != old["state"]:
            deltas.append(self._detection_step(det, old["state"], ev.context.actor, "", t, seq))
        if p.category in self.rules.fire_categories or (
            old is not None and old.get("category") in self.rules.fire_categories
        ):
            deltas.extend(self._refresh_zones(t, seq))  # a fire confirmed is a hazard source
        return deltas

    def _on_detection_transition(
        self, ev: DetectionTransitionEvent, t: float, seq: int
    ) -> list[Delta]:
        """A person's review step. One that is no longer allowed when it is folded (two
        people confirmed at once: the first wins) changes nothing."""
        p = ev.payload
        old = self.detections.get(p.id)
        if old is None or not allowed(old["state"], p.to):
            # The alerts sent with a refused dispatch must not ring anyone either.
            self._refused.append(ev.id)
            return []
        det = dict(old, state=p.to, updated_at=t)
        actor = ev.context.actor or ev.source.device
        journal = self._detection_step(det, old["state"], actor, p.note, t, seq)
        released: list[str] = []
        if p.to in ("closed", "dismissed"):  # whoever was called is stood down
            calls = dict(det.get("calls") or {})
            for rid, call in calls.items():
                if call["state"] in responders.ENGAGED:
                    calls[rid] = dict(call, state="released", at=t, by=actor, seq=seq)
                    released.append(rid)
            det["calls"] = calls
        self.detections[p.id] = det
        others = self._reoffer(t, seq, p.id)  # closed or dismissed: its responders are free
        det = self.detections[p.id]
        deltas = [Delta("detections", "upsert", p.id, seq, without_personal(det)), journal]
        if released:
            names = ", ".join(
                self.responders[r]["callsign"] for r in released if r in self.responders
            )
            deltas.append(
                self._journal(seq, t, actor, "responder", f"Helfer entlassen: {names}", None, p.id)
            )
            deltas.extend(self._responder_delta(r, seq) for r in released if r in self.responders)
        deltas.extend(others)
        if det.get("category") in self.rules.fire_categories:
            deltas.extend(self._refresh_zones(t, seq))  # confirmed or closed: zones follow
        return deltas

    def _on_detection_purged(self, ev: DetectionPurgedEvent, t: float, seq: int) -> list[Delta]:
        """The retention of the personal part is over: it leaves the picture, nothing
        else changes (not even `updated_at`: no one reported anything)."""
        deltas = []
        upto = ev.payload.upto
        for det_id in ev.payload.ids:
            old = self.detections.get(det_id)
            if old is None or old.get("personal") is None:
                continue
            if upto is not None and old.get("reported_seq", 0) > upto:
                continue  # reported again since the purge began: a fresh retention
            det = dict(old, personal=None)
            self.detections[det_id] = det
            deltas.append(Delta("detections", "upsert", det_id, seq, without_personal(det)))
        return deltas

    def _detection_step(
        self, det: dict[str, Any], was: str, actor: str | None, note: str, t: float, seq: int
    ) -> Delta:
        """Record a state change on the detection (a new history list: snapshots share
        the old one) and write it into the Einsatztagebuch."""
        step: dict[str, Any] = {
            "from": was,
            "to": det["state"],
            "actor": actor,
            "at": iso(t),
            "seq": seq,
        }
        if note:
            step["note"] = note
        det["history"] = [*det.get("history", []), step]
        text = f"Meldung {det['category']}: {LABEL_DE[det['state']]}" + (
            f" – {note}" if note else ""
        )
        return self._journal(seq, t, actor, "detection", text, None, det["id"])

    # --- first responders (A.D.Le.R.) ---------------------------------------------

    def _on_responder(self, ev: ResponderEvent, t: float, seq: int) -> list[Delta]:
        """A registry entry, new or changed (availability, qualifications, travel)."""
        p = ev.payload
        old = self.responders.get(p.id)
        self.responders[p.id] = {
            "id": p.id,
            "callsign": p.callsign,
            "qualifications": list(p.qualifications),
            "available": p.available,
            "travel": p.travel,
            "registered_at": old["registered_at"] if old else t,
            "updated_at": t,
        }
        return [self._responder_delta(p.id, seq), *self._reoffer(t, seq, only=p.id)]

    def _on_responder_call(self, ev: ResponderCallEvent, t: float, seq: int) -> list[Delta]:
        """One step of a responder's call. Steps out of order (an answer to no alert, an
        alert of a responder engaged elsewhere or unavailable: two people at once) are
        ignored: the route has told the sender so already."""
        p = ev.payload
        det = self.detections.get(p.detection)
        r = self.responders.get(p.responder)
        if det is None or r is None or det["state"] not in responders.OPEN_STATES:
            return []
        current = (det.get("calls") or {}).get(p.responder, {}).get("state")
        if not call_allowed(current, p.state):
            return []
        if p.state == "alerted":
            if ev.context.parent is not None and ev.context.parent in self._refused:
                return []  # sent with a dispatch that was refused
            engaged = responders.busy_of(self.detections.values()).get(p.responder)
            if not r["available"] or engaged not in (None, p.detection):
                return []
        by = ev.context.actor or ev.source.device
        return self._call_step(det, r, p.state, by, p.note, t, seq)

    def _call_step(
        self,
        det: dict[str, Any],
        r: Mapping[str, Any],
        state: str,
        by: str | None,
        note: str,
        t: float,
        seq: int,
    ) -> list[Delta]:
        calls = dict(det.get("calls") or {})
        before = calls.get(r["id"]) or {}
        # The seq of each step, and of the alert that began the call: the outgoing alert
        # goes to the platform only for the alert event the fold took.
        alerted_seq = seq if state == "alerted" else before.get("alerted_seq")
        calls[r["id"]] = {"state": state, "at": t, "by": by, "seq": seq, "alerted_seq": alerted_seq}
        det = dict(det, calls=calls, updated_at=t)
        quals = ", ".join(QUALIFICATION_DE.get(q, q) for q in r["qualifications"])
        text = f"{r['callsign']} ({quals}) {CALL_LABEL_DE[state]} – Meldung {det['category']}"
        deltas = [
            self._journal(
                seq, t, by, "responder", text + (f" – {note}" if note else ""), None, det["id"]
            )
        ]
        if state == "arrived" and det["state"] == "dispatched":
            det["state"] = "on_scene"  # the first one there: help is on scene
            deltas.append(self._detection_step(det, "dispatched", by, "", t, seq))
        self.detections[det["id"]] = det
        others = self._reoffer(t, seq, det["id"])
        det = self.detections[det["id"]]
        return [
            Delta("detections", "upsert", det["id"], seq, without_personal(det)),
            *deltas,
            self._responder_delta(r["id"], seq),
            *others,
        ]

    def _responder_moved(self, rid: str, t: float, seq: int) -> list[Delta]:
        """A responder's new position: arrived where it was accepted? The offers follow."""
        ent = self.entities[rid]
        here = (ent["lat"], ent["lon"])
        for det in self.detections.values():
            call = (det.get("calls") or {}).get(rid)
            if (
                call is not None
                and call["state"] == "accepted"
                and det["state"] in responders.OPEN_STATES
                and det.get("lat") is not None
                and distance_m(here, (det["lat"], det["lon"])) <= self.rules.responder_arrival_m
            ):
                return self._call_step(det, self.responders[rid], "arrived", rid, "", t, seq)
        return [self._responder_delta(rid, seq), *self._reoffer(t, seq, only=rid)]

    def _reoffer(
        self, t: float, seq: int, skip: str | None = None, only: str | None = None
    ) -> list[Delta]:
        """Recompute the responders offered to every A.D.Le.R. detection; deltas for those
        whose offer changed (except `skip`, whose caller sends its own). With `only` (one
        responder moved or changed) a detection is re-ranked only where that responder is
        offered or could now be: hundreds of phones reporting every few seconds must not
        each re-rank every offer."""
        if not self.responders:
            return []
        busy = responders.busy_of(self.detections.values())
        out: list[Delta] = []
        for det_id, det in self.detections.items():
            if det.get("source") != "adler":
                continue
            if only is not None and not self._may_change_offer(det, only):
                continue
            new = responders.candidates(det, self.responders, self.entities, busy, t, self.rules)
            old = det.get("candidates") or []
            changed = _offer_key(old) != _offer_key(new)
            if not changed and old == new:
                continue
            det = dict(det, candidates=new)
            self.detections[det_id] = det
            if changed and det_id != skip:
                out.append(Delta("detections", "upsert", det_id, seq, without_personal(det)))
        return out

    def _may_change_offer(self, det: Mapping[str, Any], rid: str) -> bool:
        if det["state"] not in responders.OFFER_STATES or det.get("lat") is None:
            return bool(det.get("candidates"))  # an old offer to clear
        offer = det.get("candidates") or []
        if len(offer) < self.rules.responder_candidates:
            return True
        if any(c["responder"] == rid for c in offer):
            return True
        ent = self.entities.get(rid)
        if ent is None or ent["lat"] is None:
            return False
        d = distance_m((det["lat"], det["lon"]), (ent["lat"], ent["lon"]))
        return bool(d <= offer[-1]["distance_m"] + 10.0)  # it may now rank among the offered

    def _responder_delta(self, rid: str, seq: int) -> Delta:
        r = self.responders[rid]
        ent = self.entities.get(rid)
        busy = responders.busy_of(self.detections.values()).get(rid)
        return Delta("responders", "upsert", rid, seq, _responder_live(r, ent, busy))

    def _on_warning(self, ev: WarningEvent, t: float, seq: int) -> list[Delta]:
        """CAP: an Update replaces and a Cancel removes the warnings it references, of its
        own status only (an Exercise never touches an Actual warning, nor the reverse).
        Test, Draft and System messages never show nor touch a real warning (they are in
        the log only). What was replaced is remembered until it ends (else 48 h), so its
        re-delivery does not bring it back; one that had already ended when it arrived
        leaves nothing behind."""
        p = ev.payload
        deltas: list[Delta] = []
        if p.status not in ("Actual", "Exercise"):
            return deltas
        now = ev.received_at.timestamp()
        retired = self.warnings_retired
        for key in [k for k, until in retired.items() if until <= now]:
            del retired[key]
        held = self.warnings.get(p.id)
        if f"{p.status}:{p.id}" in retired or (held is not None and held["status"] != p.status):
            return deltas
        if p.msg_type in ("Update", "Cancel"):
            for ref in p.references:
                old = self.warnings.get(ref)
                if old is not None and old["status"] != p.status:
                    continue
                ends = _warning_ends(old) if old is not None else None
                until = datetime.fromisoformat(ends).timestamp() if ends else now + _RETIRED_S
                retired[f"{p.status}:{ref}"] = max(until, now + 1.0)
                if old is not None:
                    del self.warnings[ref]
                    deltas.append(Delta("warnings", "remove", ref, seq))
            while len(retired) > _RETIRED_MAX:  # the soonest to end goes first
                del retired[min(retired, key=retired.__getitem__)]
        ends_at = p.ends or p.expires
        gone = ends_at is not None and ends_at <= ev.received_at
        if gone and self.warnings.pop(p.id, None) is not None:
            deltas.append(Delta("warnings", "remove", p.id, seq))
        if p.msg_type != "Cancel" and not gone:
            w = to_plain(p)
            w["received"] = t
            self.warnings[p.id] = w
            deltas.append(Delta("warnings", "upsert", p.id, seq, dict(w)))
        return deltas

    def _on_hazard(self, ev: HazardEvent, t: float, seq: int) -> list[Delta]:
        p = ev.payload
        hazard = {
            "id": p.id,
            "kind": "drawn",
            "label": p.label,
            "severity": p.severity,
            "geometry": p.geometry,
            "author": ev.context.actor,
            "drawn_at": t,
        }
        old = self.hazards.get(p.id)
        if old is not None and old.get("derived"):
            return []  # a zone follows its source; it is not drawn over
        self.hazards[p.id] = hazard
        deltas = [Delta("hazards", "upsert", p.id, seq, dict(hazard))]
        if old is None:
            text = "Gefahrenbereich festgelegt" + (f": {p.label}" if p.label else "")
            deltas.append(self._journal(seq, t, ev.context.actor, "hazard", text, None, p.id))
        return deltas + self._refresh_zones(t, seq)

    def _on_hazard_removed(self, ev: HazardRemovedEvent, t: float, seq: int) -> list[Delta]:
        old = self.hazards.get(ev.payload.id)
        if old is None or old.get("derived"):
            return []
        del self.hazards[ev.payload.id]
        text = "Gefahrenbereich aufgehoben" + (f": {old['label']}" if old.get("label") else "")
        journal = self._journal(seq, t, ev.context.actor, "hazard", text, None, ev.payload.id)
        return [
            Delta("hazards", "remove", ev.payload.id, seq),
            journal,
            *self._refresh_zones(t, seq),
        ]

    def _video(self, stream: str, t: float) -> dict[str, Any]:
        v = self.videos.get(stream)
        if v is None:
            v = self.videos[stream] = {
                "stream": stream,
                "entity": stream,
                "live": False,
                "codec": None,
                "since": t,
                "ended_at": None,
                "segments": [],
            }
        return v

    def _on_video_stream(self, ev: VideoStreamEvent, t: float, seq: int) -> list[Delta]:
        p = ev.payload
        v = self._video(p.stream, t)
        v["entity"] = p.entity or p.stream
        if p.codec is not None:
            v["codec"] = p.codec
        if p.state == "live":
            if not v["live"]:
                v["since"] = t
            v["live"], v["ended_at"] = True, None
        else:
            v["live"], v["ended_at"] = False, t
        return [Delta("videos", "upsert", p.stream, seq, _copy_video(v))]

    def _on_video_segment(self, ev: VideoSegmentEvent, t: float, seq: int) -> list[Delta]:
        p = ev.payload
        v = self._video(p.stream, t)
        v["codec"] = v["codec"] or p.codec
        v["segments"].append(
            {
                "path": p.path,
                "start": p.start.timestamp(),
                "end": p.end.timestamp(),
                "codec": p.codec,
                "frames": p.frames,
                "bytes": p.bytes,
            }
        )
        return [Delta("videos", "upsert", p.stream, seq, _copy_video(v))]

    # --- reading the picture --------------------------------------------------------

    def live_state(self) -> dict[str, Any]:
        """The picture in the form the push deltas carry (times as epoch seconds), for a
        browser that computes ages itself: what `/api/v1/stream` sends first.

        The next delta of each entity is then whole again: a patch against the state of
        an earlier delta could miss a field that changed and changed back since.
        """
        self._sent.clear()
        return {
            "incident": self.incident,
            "seq": self.seq,
            "stale_after": dict(self.stale_after),
            "entities": [_copy_entity(e) for e in self.entities.values()],
            "tracks": {k: list(v) for k, v in self.tracks.items()},
            "detections": [without_personal(d) for d in self.detections.values()],
            "responders": self._responders_live(),
            "alerts": [dict(a, params=dict(a["params"])) for a in self.alerts.values()],
            "hazards": [dict(h) for h in self.hazards.values()],
            "warnings": [dict(w) for w in self.warnings.values()],
            "journal": [dict(j) for j in self.journal],
            "videos": [_copy_video(v) for v in self.videos.values()],
        }

    def view(self, now: float, *, tracks: bool = True) -> dict[str, Any]:
        """The picture as the API and the UI show it, with ages relative to `now`."""
        entities = [self._entity_view(e, now, tracks) for e in self.entities.values()]
        entities.sort(key=lambda e: (e["kind"], e["id"]))
        warnings = [
            _warning_view(w, now)
            for w in self.warnings.values()
            if not _expired(_warning_ends(w), now)
        ]
        alerts = [
            _alert_view(a, now)
            for a in self.alerts.values()
            if a["active"] or a["acknowledged_by"] is None
        ]
        alerts.sort(key=lambda a: (a["severity"] != "critical", a["raised_at"]))
        detections = [self._detection_view(d, now) for d in self.detections.values()]
        busy = responders.busy_of(self.detections.values())
        person_stale = self.stale_after.get("person", 60.0)
        return {
            "at": iso(now),
            "incident": self.incident,
            "seq": self.seq,
            "entities": entities,
            "detections": detections,
            "responders": [
                _responder_view(r, self.entities.get(k), busy.get(k), now, person_stale)
                for k, r in sorted(self.responders.items())
            ],
            "alerts": alerts,
            "hazards": [
                _hazard_view(h, now, self.stale_after.get("sensor", 900.0))
                for h in self.hazards.values()
            ],
            "warnings": warnings,
            "journal": [_journal_view(j) for j in self.journal],
            "videos": [_video_view(v, now) for v in self.videos.values()],
        }

    def _entity_view(self, e: dict[str, Any], now: float, tracks: bool) -> dict[str, Any]:
        threshold = self.stale_after.get(e["kind"], 60.0)
        last = e["last_reported"]
        age = max(0.0, now - last)
        out = {
            "id": e["id"],
            "kind": e["kind"],
            "callsign": e["callsign"],
            "meta": dict(e["meta"]),
            "lat": e["lat"],
            "lon": e["lon"],
            "alt_m": e["alt_m"],
            "heading_deg": e["heading_deg"],
            "speed_mps": e["speed_mps"],
            "accuracy_m": e["accuracy_m"],
            "observed_at": iso(e["observed_at"]),
            "last_reported": iso(last),
            "last_changed": iso(e["last_changed"]),
            "age_s": round(age, 3),
            "stale": age > threshold,
            "readings": {
                name: {
                    "value": r["value"],
                    "unit": r["unit"],
                    "observed_at": iso(r["observed_at"]),
                    "age_s": round(max(0.0, now - r["observed_at"]), 3),
                    "stale": now - r["observed_at"] > threshold,
                }
                for name, r in e["readings"].items()
            },
            "footprint": e.get("footprint"),
            "status": {k: (iso(v) if k == "observed_at" else v) for k, v in e["status"].items()},
        }
        if tracks:
            out["track"] = [[lat, lon] for _, lat, lon in self.tracks.get(e["id"], ())]
        return out

    def fresh_candidates(self, det: Mapping[str, Any], now: float) -> list[dict[str, Any]]:
        """The offered responders whose phone reported within the limit by `now` (the
        offer is ranked when someone moves; a phone gone quiet drops out here)."""
        limit = self.rules.responder_position_max_age_s
        out = []
        for c in det.get("candidates") or []:
            ent = self.entities.get(c["responder"])
            seen = max(c["position_at"], (ent or {}).get("observed_at") or 0.0)
            if now - seen <= limit:
                out.append(dict(c, position_at=seen))
        return out

    def _detection_view(self, d: Mapping[str, Any], now: float) -> dict[str, Any]:
        out = _timed(d, now, d["updated_at"], ("first_seen", "updated_at"))
        out["calls"] = {k: dict(c, at=iso(c["at"])) for k, c in (d.get("calls") or {}).items()}
        out["candidates"] = [
            dict(
                c,
                position_at=iso(c["position_at"]),
                age_s=round(max(0.0, now - c["position_at"]), 3),
            )
            for c in self.fresh_candidates(d, now)
        ]
        return out

    def _responders_live(self) -> list[dict[str, Any]]:
        busy = responders.busy_of(self.detections.values())
        return [
            _responder_live(r, self.entities.get(k), busy.get(k))
            for k, r in self.responders.items()
        ]

    # --- snapshot / restore ---------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything the fold knows, as plain JSON-able data (track points stay tuples:
        they are immutable, and a list per point made a 2,000-entity snapshot block the
        loop for 0.4 s)."""
        return {
            "version": SNAPSHOT_VERSION,
            "incident": self.incident,
            "seq": self.seq,
            "received_at": self.received_at,
            "entities": {k: _copy_entity(v) for k, v in self.entities.items()},
            "tracks": {k: list(v) for k, v in self.tracks.items()},
            "detections": {k: dict(v) for k, v in self.detections.items()},
            "responders": {k: dict(v) for k, v in self.responders.items()},
            "alerts": {k: dict(v, params=dict(v["params"])) for k, v in self.alerts.items()},
            "hazards": {k: dict(v) for k, v in self.hazards.items()},
            "warnings": {k: dict(v) for k, v in self.warnings.items()},
            "warnings_retired": dict(self.warnings_retired),
            "journal": [dict(j) for j in self.journal],
            "journal_count": self.journal_count,
            "videos": {k: _copy_video(v) for k, v in self.videos.items()},
            "active": [[r, e, a] for e, rules in self._active.items() for r, a in rules.items()],
            "cleared": [[r, e, a] for e, rules in self._cleared.items() for r, a in rules.items()],
            "wind_history": {k: list(v) for k, v in self.wind_history.items()},
            "feeds_last": dict(self.feeds_last),
            "refused": list(self._refused),
        }

    @classmethod
    def restore(
        cls,
        data: Mapping[str, Any],
        *,
        track_len: int = 200,
        journal_len: int = 10_000,
        stale_after: Mapping[str, float] | None = None,
        cameras: Mapping[str, tuple[float, float]] | None = None,
        default_camera: tuple[float, float] | None = DEFAULT_CAMERA,
        rules: RuleConfig | None = None,
    ) -> Situation:
        if data.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"snapshot version {data.get('version')!r} is not {SNAPSHOT_VERSION}")
        sit = cls(
            incident=data["incident"],
            track_len=track_len,
            journal_len=journal_len,
            cameras=dict(cameras or {}),
            default_camera=default_camera,
            stale_after=dict(stale_after or DEFAULT_STALE_AFTER),
            seq=data["seq"],
            received_at=data["received_at"],
            rules=rules or RuleConfig(),
        )
        sit.entities = {k: _copy_entity(v) for k, v in data["entities"].items()}
        sit.tracks = {k: deque(map(tuple, v), maxlen=track_len) for k, v in data["tracks"].items()}
        sit.detections = {k: dict(v) for k, v in data["detections"].items()}
        sit.responders = {k: dict(v) for k, v in data.get("responders", {}).items()}
        sit.alerts = {k: dict(v, params=dict(v["params"])) for k, v in data["alerts"].items()}
        sit.hazards = {k: dict(v) for k, v in data["hazards"].items()}
        sit.warnings = {k: dict(v) for k, v in data["warnings"].items()}
        sit.warnings_retired = dict(data.get("warnings_retired", {}))  # older snapshots: none
        sit.journal = deque(dict(j) for j in data["journal"])
        sit.journal_count = data["journal_count"]
        sit.videos = {k: _copy_video(v) for k, v in data.get("videos", {}).items()}
        for r, e, a in data["active"]:
            sit._active.setdefault(e, {})[r] = a
        for r, e, a in data.get("cleared", []):
            sit._cleared.setdefault(e, {})[r] = a
        sit.wind_history = {
            k: deque(((t, d, v_) for t, d, v_ in v), maxlen=256)
            for k, v in data.get("wind_history", {}).items()
        }
        sit.feeds_last = dict(data.get("feeds_last", {}))
        sit._refused.extend(data.get("refused", []))
        sit._zones = _zone_index(sit.hazards)
        sit._zone_tests = zones.zone_tests(sit._zones)
        return sit


_UNSENT = Delta("entities", "upsert", "", 0)  # stands for an entity delta nobody wants


def _zone_index(
    hazards: Mapping[str, Mapping[str, Any]], before: Iterable[Mapping[str, Any]] = ()
) -> list[dict[str, Any]]:
    """The derived zones with bounding boxes (the in-zone test skips most at a glance) and
    their rings prepared for point tests (the rest cost a few edges, not the ring). A zone
    whose geometry is as `before` had it keeps what was worked out for it then."""
    old = {z["id"]: z for z in before}
    out: list[dict[str, Any]] = []
    for h in hazards.values():
        if not h.get("derived") or h["geometry"].get("type") != "Polygon":
            continue
        was = old.get(h["id"])
        if was is not None and was["geometry"] == h["geometry"]:
            box, prepared = was["bbox"], was["prepared"]
        else:
            box, prepared = zones.bbox(h["geometry"]), zones.prepare(h["geometry"])
        out.append({**h, "bbox": box, "prepared": prepared})
    return out


def without_personal(d: Mapping[str, Any]) -> dict[str, Any]:
    """A detection as the push stream and the roles without personal-data rights get it:
    `personal` emptied, `personal_held` saying whether there is any (asked for on its own
    route, by the roles that may)."""
    out = dict(d)
    out["personal_held"] = bool(d.get("personal"))
    out["personal"] = None
    return out


def _copy_video(v: Mapping[str, Any]) -> dict[str, Any]:
    return dict(v, segments=[dict(s) for s in v["segments"]])


def encode_snapshot(snapshot: Mapping[str, Any]) -> bytes:
    """A snapshot (or the live state) as JSON, made in pieces: orjson holds the GIL for
    the whole of one call, ~0.1 s for 2,000 entities with their tracks; between pieces a
    thread lets the event loop run (longest pause measured: 15 ms)."""
    parts: list[bytes] = []
    for key, value in snapshot.items():
        if isinstance(value, Mapping) and len(value) > 100:
            body = b",".join(orjson.dumps(k) + b":" + orjson.dumps(v) for k, v in value.items())
            parts.append(orjson.dumps(key) + b":{" + body + b"}")
        elif isinstance(value, list) and len(value) > 100:
            parts.append(orjson.dumps(key) + b":[" + b",".join(map(orjson.dumps, value)) + b"]")
        else:
            parts.append(orjson.dumps(key) + b":" + orjson.dumps(value))
    return b"{" + b",".join(parts) + b"}"


def _patch(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any] | None:
    """The fields of `after` that differ from `before`; readings and status by name.
    None when a patch cannot say it (a field or a name went away): send it whole."""
    if before.keys() - after.keys():
        return None
    out: dict[str, Any] = {}
    for key, value in after.items():
        old = before.get(key, _NOTHING)
        if key == "readings" or key == "status":
            if old.keys() - value.keys():
                return None
            changed = {n: v for n, v in value.items() if old.get(n, _NOTHING) != v}
            if changed:
                out[key] = changed
        elif old != value:
            out[key] = value
    return out


_NOTHING = object()


def _copy_entity(e: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(e)
    out["meta"] = dict(e["meta"])
    out["readings"] = {k: dict(v) for k, v in e["readings"].items()}
    out["status"] = dict(e["status"])
    out.setdefault("footprint", None)  # snapshots from before footprints
    return out


def _expired(expires: str | None, now: float) -> bool:
    if not expires:
        return False
    return datetime.fromisoformat(expires).timestamp() <= now


def _timed(
    item: Mapping[str, Any], now: float, age_from: float, times: tuple[str, ...]
) -> dict[str, Any]:
    """A copy of `item` with its times as ISO 8601 and its age (from its last update):
    every item of the view says how old it is, as entities do."""
    out = dict(item)
    for key in times:
        out[key] = iso(item[key])
    out["age_s"] = round(max(0.0, now - age_from), 3)
    return out


def _alert_view(a: Mapping[str, Any], now: float) -> dict[str, Any]:
    times = ("raised_at", "updated_at", "cleared_at", "acknowledged_at")
    return _timed(a, now, a["raised_at"], times)


def _hazard_view(h: Mapping[str, Any], now: float, wind_stale_s: float) -> dict[str, Any]:
    out = _timed(h, now, h["drawn_at"], ("drawn_at",))
    wind_ = h.get("wind")
    if wind_ is not None:  # a sector is as old as the wind it follows
        age = max(0.0, now - wind_["observed_at"])
        out["wind"] = dict(
            wind_,
            observed_at=iso(wind_["observed_at"]),
            age_s=round(age, 3),
            stale=age > wind_stale_s,
        )
    return out


def _offer_key(offer: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    return [(c["responder"], c["distance_m"], c["eta_s"]) for c in offer]


def _responder_live(
    r: Mapping[str, Any], ent: Mapping[str, Any] | None, busy: str | None
) -> dict[str, Any]:
    """A responder as the push stream carries it: the registry entry, where it was last
    seen (epoch seconds) and the detection it is engaged with."""
    out = dict(r, qualifications=list(r["qualifications"]), busy=busy)
    out["lat"] = ent["lat"] if ent else None
    out["lon"] = ent["lon"] if ent else None
    out["observed_at"] = ent["observed_at"] if ent else None
    return out


def _responder_view(
    r: Mapping[str, Any],
    ent: Mapping[str, Any] | None,
    busy: str | None,
    now: float,
    stale_after: float,
) -> dict[str, Any]:
    out = _responder_live(r, ent, busy)
    seen = out["observed_at"]
    out["age_s"] = round(max(0.0, now - seen), 3) if seen is not None else None
    out["stale"] = seen is None or now - seen > stale_after
    for key in ("observed_at", "registered_at", "updated_at"):
        out[key] = iso(out[key])
    return out


_RETIRED_S = 48 * 3600.0  # how long a replaced warning without an end is remembered
_RETIRED_MAX = 20_000  # replaced warnings remembered at most (all of Germany's: a few hundred)


def _warning_ends(w: Mapping[str, Any]) -> str | None:
    """When a warning leaves the picture: `ends` (expires, else the feed's maximum age
    after it was sent); `expires` for warnings folded before `ends` existed."""
    ends: str | None = w.get("ends") or w.get("expires")
    return ends


def _warning_view(w: Mapping[str, Any], now: float) -> dict[str, Any]:
    return _timed(w, now, w["received"], ("received",))


def _video_view(v: Mapping[str, Any], now: float) -> dict[str, Any]:
    out = _timed(_copy_video(v), now, v["ended_at"] or v["since"], ("since", "ended_at"))
    for s in out["segments"]:
        s["start"], s["end"] = iso(s["start"]), iso(s["end"])
    return out


def _journal_view(j: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(j)
    out["t"] = iso(j["t"])
    return out


_Handler = Callable[[Situation, Any, float, int], list[Delta]]
_HANDLERS: dict[type, _Handler] = {
    EntityRegisteredEvent: Situation._on_registered,
    EntityRemovedEvent: Situation._on_removed,
    PositionEvent: Situation._on_position,
    ReadingsEvent: Situation._on_readings,
    StatusEvent: Situation._on_status,
    WeatherEvent: Situation._on_weather,
    JournalEvent: Situation._on_journal,
    AlertEvent: Situation._on_alert,
    AckEvent: Situation._on_ack,
    DetectionEvent: Situation._on_detection,
    DetectionTransitionEvent: Situation._on_detection_transition,
    ResponderEvent: Situation._on_responder,
    ResponderCallEvent: Situation._on_responder_call,
    DetectionPurgedEvent: Situation._on_detection_purged,
    WarningEvent: Situation._on_warning,
    HazardEvent: Situation._on_hazard,
    HazardRemovedEvent: Situation._on_hazard_removed,
    VideoStreamEvent: Situation._on_video_stream,
    VideoSegmentEvent: Situation._on_video_segment,
    ClockEvent: Situation._on_clock,
}
