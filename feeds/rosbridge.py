"""Robots over rosbridge v2 (JSON over WebSocket) → events. Pure translation, no I/O.

The cockpit is the client: it subscribes to a robot's topics (`subscribe_ops`) and turns
the `publish` operations it receives into events (`RosbridgeTranslator`); the socket and
its reconnects live in `feeds.rosbridge_client`. Message shapes follow the ROS message
definitions as rosbridge renders them (ROS 1 stamps `{secs, nsecs}`, ROS 2 `{sec,
nanosec}`; rosbridge sends NaN and infinities as `null`, other bridges as bare `NaN`).
Mapping decisions, and why:

* `sensor_msgs/NavSatFix` → position. No fix (`status.status` = -1), latitude/longitude
  NaN or within 1e-4° of 0,0 (an unset receiver) is no position (skipped, not a reject:
  a robot in a hall has no fix and is not broken). Accuracy from the covariance only when
  `position_covariance_type` says it is known.
* `nav_msgs/Odometry` → position relative to the configured origin: (lat, lon, heading),
  heading being the compass bearing of the odom frame's +x axis; +y is 90° to its left
  (REP 103), so an east-north-up odom frame (REP 105) has heading 90. Heading from the
  quaternion's yaw, speed from the twist. A robot with both draws from the NavSatFix while
  it has a fix, from odometry after 5 s without one (indoors).
* `sensor_msgs/BatteryState` → status `battery_pct` = percentage × 100 (NaN/null: not
  known; outside 0..1 is a reject — a driver publishing 0..100 is misconfigured, and it
  shows on /healthz), reading `battery_v`.
* `sensor_msgs/Temperature` → reading `temperature` °C.
* Gases: any message type; the configured field (a dotted path, `data` for
  `std_msgs/Float32`) holds the value → reading under the gas's name and unit.
* `observed_at` is the header stamp when it is set and plausible: never later than the
  receive time (a robot clock ahead is clamped) and not older than `max_age_s`; else the
  receive time (a robot clock far behind would make the robot look stale).
* Rates: per topic at most one event every `throttle_ms`, the latest message wins (held
  until due, released by `due()`). rosbridge's own `throttle_rate` thins the stream
  before it is sent; this guards against servers that ignore it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import msgspec

from cockpit.events import (
    Context,
    Event,
    Position,
    PositionEvent,
    Reading,
    Readings,
    ReadingsEvent,
    Source,
    Status,
    StatusEvent,
    checked,
    new_event_id,
)
from cockpit.geo import offset, quaternion_to_euler

__all__ = [
    "MAX_FRAME_BYTES",
    "MAX_MESSAGE_BYTES",
    "BadMessage",
    "GasTopic",
    "Link",
    "Robot",
    "RosbridgeTranslator",
    "stamp_of",
    "subscribe_ops",
]

MAX_FRAME_BYTES = 256 << 10  # a frame we parse; our topics' messages are < 2 KiB
MAX_MESSAGE_BYTES = 8 << 20  # beyond this the socket itself gives up (and reconnects)
_MAX_ODOM_M = 100_000.0  # farther from the origin than that, the local plane means nothing
_FIX_WINS = timedelta(seconds=5)  # with both fix and odom, odom only after this without a fix
_UNSET_DEG = 1e-4  # |lat| and |lon| below this: a receiver's unset 0,0, not a place
Link = Literal["ok", "degraded", "lost"]


class BadMessage(ValueError):
    """A frame from the robot that is not what the protocol or the message type says."""


# --- configuration (built from the settings by the composition root) --------------------


@dataclass(frozen=True)
class GasTopic:
    topic: str
    type: str = "std_msgs/Float32"
    field: str = "data"  # dotted path into the message
    unit: str = "ppm"


@dataclass(frozen=True)
class Robot:
    entity: str
    url: str
    callsign: str | None = None
    origin: tuple[float, float, float] | None = None  # lat, lon, heading of odom +x
    throttle_ms: int = 200
    fix: str | None = None
    odom: str | None = None
    battery: str | None = None
    temperature: str | None = None
    gases: Mapping[str, GasTopic] = field(default_factory=dict)

    def topics(self) -> dict[str, tuple[str, str]]:
        """Our key per subscription → (ROS topic, ROS message type)."""
        out: dict[str, tuple[str, str]] = {}
        fixed = (
            ("fix", self.fix, "sensor_msgs/NavSatFix"),
            ("odom", self.odom, "nav_msgs/Odometry"),
            ("battery", self.battery, "sensor_msgs/BatteryState"),
            ("temperature", self.temperature, "sensor_msgs/Temperature"),
        )
        for key, topic, kind in fixed:
            if topic:
                out[key] = (topic, kind)
        for name, gas in self.gases.items():
            out[f"gas:{name}"] = (gas.topic, gas.type)
        return out


def subscribe_ops(robot: Robot) -> list[dict[str, Any]]:
    """The `subscribe` operations to send on every (re)connect, one per topic.

    Each has an id, so a topic configured for two gases (one message, two fields) is
    subscribed once per key and can be unsubscribed alone; `queue_length` 1: only the
    newest message matters when rosbridge throttles.
    """
    ops = []
    for key, (topic, kind) in robot.topics().items():
        ops.append(
            {
                "op": "subscribe",
                "id": f"cockpit:{robot.entity}:{key}",
                "topic": topic,
                "type": kind,
                "throttle_rate": robot.throttle_ms,
                "queue_length": 1,
            }
        )
    return ops


# --- ROS message shapes (only the fields we read; ROS 1 and ROS 2 spellings) ------------

_F = float | None  # rosbridge renders NaN and ±inf as null


class _Msg(msgspec.Struct, forbid_unknown_fields=False, kw_only=True):
    """ROS messages carry more fields than we read; those are ignored."""


class _Time(_Msg, kw_only=True):
    sec: int | None = None  # ROS 2
    nanosec: int | None = None
    secs: int | None = None  # ROS 1
    nsecs: int | None = None


class _Header(_Msg, kw_only=True):
    stamp: _Time | None = None
    frame_id: str = ""


class _Stamped(_Msg, kw_only=True):
    header: _Header | None = None


class _NavSatStatus(_Msg, kw_only=True):
    status: int = 0
    service: int = 0


class NavSatFix(_Stamped, kw_only=True):
    latitude: _F
    longitude: _F
    status: _NavSatStatus = msgspec.field(default_factory=_NavSatStatus)
    altitude: _F = None
    position_covariance: list[_F] = msgspec.field(default_factory=list)
    position_covariance_type: int = 0


class _Vector3(_Msg, kw_only=True):
    x: _F = 0.0
    y: _F = 0.0
    z: _F = 0.0


class _Quaternion(_Msg, kw_only=True):
    x: _F = 0.0
    y: _F = 0.0
    z: _F = 0.0
    w: _F = 1.0


class _Pose(_Msg, kw_only=True):
    position: _Vector3
    orientation: _Quaternion = msgspec.field(default_factory=_Quaternion)


class _PoseWithCovariance(_Msg, kw_only=True):
    pose: _Pose
    covariance: list[_F] = msgspec.field(default_factory=list)


class _Twist(_Msg, kw_only=True):
    linear: _Vector3 = msgspec.field(default_factory=_Vector3)
    angular: _Vector3 = msgspec.field(default_factory=_Vector3)


class _TwistWithCovariance(_Msg, kw_only=True):
    twist: _Twist = msgspec.field(default_factory=_Twist)


class Odometry(_Stamped, kw_only=True):
    pose: _PoseWithCovariance
    child_frame_id: str = ""
    twist: _TwistWithCovariance = msgspec.field(default_factory=_TwistWithCovariance)


class BatteryState(_Stamped, kw_only=True):
    voltage: _F = None
    percentage: _F = None


class Temperature(_Stamped, kw_only=True):
    temperature: _F
    variance: _F = None


def _convert(obj: Any, kind: type[_Msg], what: str) -> Any:
    try:
        return msgspec.convert(obj, kind)
    except msgspec.ValidationError as exc:
        raise BadMessage(f"{what}: {exc}") from exc


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


# --- time ------------------------------------------------------------------------------


def stamp_of(header: _Header | None) -> datetime | None:
    """The header's stamp as UTC, or None when absent or zero (ROS: "not set")."""
    if header is None or header.stamp is None:
        return None
    t = header.stamp
    sec = t.sec if t.sec is not None else t.secs
    ns = t.nanosec if t.nanosec is not None else t.nsecs
    if sec is None or sec <= 0 or not (0 <= (ns or 0) < 1_000_000_000):
        return None
    try:
        return datetime.fromtimestamp(sec, UTC) + timedelta(microseconds=(ns or 0) // 1000)
    except (OverflowError, OSError, ValueError):
        return None


# --- the translator --------------------------------------------------------------------


@dataclass
class _Slot:
    """One subscription's newest translated message, held until it is due."""

    events: list[Event] = field(default_factory=list)
    last_sent: datetime | None = None


def _decode(data: str | bytes) -> Any:
    # json, not msgspec: it takes the bare NaN/Infinity some bridges send; size is bounded
    # by the socket before this, depth by the recursion limit (caught).
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise BadMessage(f"not JSON: {str(exc)[:120]}") from exc


class RosbridgeTranslator:
    """One robot's rosbridge frames → events (see the module doc)."""

    def __init__(self, incident: str, robot: Robot, *, max_age_s: float = 10.0) -> None:
        self.incident = incident
        self.robot = robot
        self._source = Source(feed="rosbridge", device=robot.entity)
        self._context = Context(actor=f"rosbridge:{robot.entity}")
        self._max_age = timedelta(seconds=max_age_s)
        self._throttle = timedelta(milliseconds=robot.throttle_ms)
        topics = robot.topics()
        self._keys: dict[str, list[str]] = {}  # ROS topic → our keys (a topic may feed two)
        for key, (topic, _) in topics.items():
            self._keys.setdefault(topic, []).append(key)
        self._slots = {key: _Slot() for key in topics}
        self.counts: dict[str, int] = dict.fromkeys(
            ("messages", "published", "skipped", "status", "ignored"), 0
        )
        self.last_status: str | None = None  # the server's last status message (errors)
        self._fix_at: datetime | None = None  # when the last NavSatFix with a fix came

    # --- input -------------------------------------------------------------------------

    def feed(self, data: str | bytes, now: datetime) -> None:
        """Take one frame; its events wait in their slot until `due`. BadMessage if bad."""
        self.counts["messages"] += 1
        if len(data) > MAX_FRAME_BYTES:  # sized before parsing (text frames: characters)
            raise BadMessage(f"frame of {len(data)} bytes is larger than {MAX_FRAME_BYTES}")
        frame = _decode(data)
        if not isinstance(frame, dict):
            raise BadMessage(f"a frame must be a JSON object, not {type(frame).__name__}")
        op = frame.get("op")
        if not isinstance(op, str):
            raise BadMessage("op: missing or not a string")
        if op == "status":
            self._status(frame)
        elif op == "publish":
            self._publish(frame, now)
        else:  # service responses, fragments, ops of later protocol versions: not ours
            self.counts["ignored"] += 1

    def _status(self, frame: dict[str, Any]) -> None:
        level, msg = frame.get("level"), frame.get("msg")
        if not isinstance(level, str) or not isinstance(msg, str):
            raise BadMessage("status: level and msg must be strings")
        self.counts["status"] += 1
        if level in ("error", "warning"):
            self.last_status = f"{level}: {msg[:200]}"

    def _publish(self, frame: dict[str, Any], now: datetime) -> None:
        topic, msg = frame.get("topic"), frame.get("msg")
        if not isinstance(topic, str):
            raise BadMessage("publish: topic missing or not a string")
        keys = self._keys.get(topic)
        if keys is None:
            self.counts["ignored"] += 1  # after an unsubscribe, or another client's id
            return
        if not isinstance(msg, dict):
            raise BadMessage(f"{topic}: msg missing or not an object")
        # Translate every key first: a bad message changes no slot (nothing half-applied).
        out = [(key, self._translate(key, topic, msg, now)) for key in keys]
        self.counts["published"] += 1
        for key, events in out:
            if events is None:
                self.counts["skipped"] += 1
            else:
                self._slots[key].events = events

    # --- output ------------------------------------------------------------------------

    def due(self, now: datetime) -> list[Event]:
        """The held events whose topic may send again (throttle), oldest slot first."""
        out: list[Event] = []
        for slot in self._slots.values():
            if not slot.events:
                continue
            last = slot.last_sent
            # A clock that went back (now < last) restarts the interval.
            if last is not None and last <= now < last + self._throttle:
                continue
            out.extend(slot.events)
            slot.events, slot.last_sent = [], now
        return out

    def link(self, state: Link, now: datetime) -> Event:
        """The robot's link state as a status event (on connect, on loss)."""
        status = Status(
            entity=self.robot.entity,
            entity_kind="robot",
            callsign=self.robot.callsign,
            link=state,
        )
        return StatusEvent(payload=status, **self._env(now, now))

    # --- per message type ----------------------------------------------------------------

    def _env(self, observed: datetime, now: datetime) -> dict[str, Any]:
        return {
            "id": new_event_id(),
            "incident": self.incident,
            "source": self._source,
            "observed_at": observed,
            "received_at": now,
            "context": self._context,
        }

    def _observed(self, header: _Header | None, now: datetime) -> datetime:
        stamp = stamp_of(header)
        if stamp is None or now - stamp > self._max_age:
            return now
        return min(stamp, now)

    def _translate(
        self, key: str, topic: str, msg: dict[str, Any], now: datetime
    ) -> list[Event] | None:
        """Events for one message under one key; None: nothing to say (no fix)."""
        if key == "fix":
            events = self._fix(_convert(msg, NavSatFix, topic), topic, now)
            if events is not None:
                self._fix_at = now
            return events
        if key == "odom":
            m = _convert(msg, Odometry, topic)
            if self._fix_at is not None and timedelta(0) <= now - self._fix_at < _FIX_WINS:
                return None  # satellites say where the robot is; odometry drifts
            return self._odom(m, topic, now)
        if key == "battery":
            return self._battery(_convert(msg, BatteryState, topic), topic, now)
        if key == "temperature":
            t = _convert(msg, Temperature, topic)
            value = _finite(t.temperature)
            if value is None:
                return None
            if not -273.15 <= value <= 5000.0:
                raise BadMessage(f"{topic}: temperature {value!r} °C is not a temperature")
            return self._readings(topic, {"temperature": Reading(value=value, unit="°C")}, t, now)
        return self._gas(key.removeprefix("gas:"), topic, msg, now)

    def _emit(self, event: Event, topic: str) -> list[Event]:
        # Values are range-checked before building; `checked` is the last guard.
        try:
            return [checked(event)]
        except msgspec.ValidationError as exc:
            raise BadMessage(f"{topic}: {exc}") from exc

    def _position(
        self,
        topic: str,
        header: _Header | None,
        now: datetime,
        lat: float,
        lon: float,
        **extra: float | None,
    ) -> list[Event]:
        r = self.robot
        pos = Position(
            entity=r.entity, entity_kind="robot", callsign=r.callsign, lat=lat, lon=lon, **extra
        )
        return self._emit(
            PositionEvent(payload=pos, **self._env(self._observed(header, now), now)), topic
        )

    def _fix(self, m: NavSatFix, topic: str, now: datetime) -> list[Event] | None:
        lat, lon = _finite(m.latitude), _finite(m.longitude)
        if m.status.status < 0 or lat is None or lon is None:
            return None  # STATUS_NO_FIX, or a receiver that says so with NaN
        if abs(lat) < _UNSET_DEG and abs(lon) < _UNSET_DEG:
            return None
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            raise BadMessage(f"{topic}: latitude/longitude {lat!r}/{lon!r} out of range")
        alt = _finite(m.altitude)
        accuracy = None
        cov = m.position_covariance
        if m.position_covariance_type > 0 and len(cov) == 9:
            east, north = _finite(cov[0]), _finite(cov[4])
            if east is not None and north is not None and 0 < max(east, north) <= 1e10:
                accuracy = math.sqrt(max(east, north))
        return self._position(
            topic,
            m.header,
            now,
            lat,
            lon,
            alt_m=alt if alt is not None and -500.0 <= alt <= 20_000.0 else None,
            accuracy_m=accuracy,
        )

    def _odom(self, m: Odometry, topic: str, now: datetime) -> list[Event] | None:
        origin = self.robot.origin
        if origin is None:  # the settings refuse this; a guard for hand-made Robots
            raise BadMessage(f"{topic}: odometry needs an origin in the configuration")
        p = m.pose.pose.position
        x, y = _finite(p.x), _finite(p.y)
        if x is None or y is None:
            raise BadMessage(f"{topic}: pose.pose.position is not finite")
        if math.hypot(x, y) > _MAX_ODOM_M:
            raise BadMessage(
                f"{topic}: pose.pose.position is {math.hypot(x, y):.0f} m from the origin"
            )
        lat0, lon0, heading0 = origin
        h = math.radians(heading0)
        north = x * math.cos(h) + y * math.sin(h)
        east = x * math.sin(h) - y * math.cos(h)
        lat, lon = offset(lat0, lon0, north, east)
        q = m.pose.pose.orientation
        heading = None
        try:
            yaw = quaternion_to_euler((q.w, q.x, q.y, q.z))[2]  # type: ignore[arg-type]
            heading = (heading0 - yaw) % 360.0
        except (ValueError, TypeError):  # null (NaN) or zero: no orientation
            pass
        v = m.twist.twist.linear
        vx, vy = _finite(v.x), _finite(v.y)
        speed = math.hypot(vx, vy) if vx is not None and vy is not None else None
        cov = m.pose.covariance
        accuracy = None
        if len(cov) == 36:
            vxx, vyy = _finite(cov[0]), _finite(cov[7])
            if vxx is not None and vyy is not None and 0 < max(vxx, vyy) <= 1e10:
                accuracy = math.sqrt(max(vxx, vyy))
        return self._position(
            topic,
            m.header,
            now,
            lat,
            lon,
            heading_deg=heading,
            speed_mps=speed if speed is not None and speed <= 400.0 else None,
            accuracy_m=accuracy,
        )

    def _battery(self, m: BatteryState, topic: str, now: datetime) -> list[Event] | None:
        pct = _finite(m.percentage)
        if pct is not None and not 0.0 <= pct <= 1.0:
            raise BadMessage(f"{topic}: percentage {pct!r} outside 0..1")
        r = self.robot
        observed = self._observed(m.header, now)
        out: list[Event] = []
        if pct is not None:
            status = Status(
                entity=r.entity,
                entity_kind="robot",
                callsign=r.callsign,
                battery_pct=round(pct * 100.0, 1),
                link="ok",
            )
            out += self._emit(StatusEvent(payload=status, **self._env(observed, now)), topic)
        volts = _finite(m.voltage)
        if volts is not None and 0.0 <= volts <= 10_000.0:
            out += self._readings(
                topic, {"battery_v": Reading(value=round(volts, 3), unit="V")}, m, now
            )
        return out or None

    def _gas(self, name: str, topic: str, msg: dict[str, Any], now: datetime) -> list[Event] | None:
        gas = self.robot.gases[name]
        value: Any = msg
        for part in gas.field.split("."):
            if not isinstance(value, dict) or part not in value:
                raise BadMessage(f"{topic}: field {gas.field!r} missing")
            value = value[part]
        if value is None:  # NaN, as rosbridge writes it: the sensor has no reading
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadMessage(f"{topic}: {gas.field} is not a number: {str(value)[:40]!r}")
        v = float(value)
        if not math.isfinite(v):
            return None
        if v < 0.0 or v > 1e9:  # a concentration is never negative
            raise BadMessage(f"{topic}: {gas.field} = {v!r} is not a concentration")
        header = msg.get("header")
        stamped = (
            _convert({"header": header}, _Stamped, topic) if isinstance(header, dict) else None
        )
        return self._readings(
            topic, {name: Reading(value=round(v, 4), unit=gas.unit)}, stamped, now
        )

    def _readings(
        self, topic: str, values: dict[str, Reading], m: _Stamped | None, now: datetime
    ) -> list[Event]:
        r = self.robot
        readings = Readings(
            entity=r.entity, entity_kind="robot", callsign=r.callsign, values=values
        )
        observed = self._observed(m.header if m is not None else None, now)
        return self._emit(ReadingsEvent(payload=readings, **self._env(observed, now)), topic)
