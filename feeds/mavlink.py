"""MAVLink v2 from drones and robots (UDP, several system ids on one port) → events.

Pure translation plus one small UDP listener. Framing is ours (a UDP datagram holds whole
frames, so a frame cut off at the end of a datagram is dropped, never glued to the next
sender's bytes); decoding and the CRC check are pymavlink's (`ardupilotmega` dialect, which
includes `common`). Mapping decisions, and why:

* System id N → entity `uav-N`, but only once N sent an autopilot HEARTBEAT (autopilot ≠
  INVALID, type not GCS/camera/gimbal/companion …): that heartbeat tells the kind, so an
  entity never appears as a drone and turns into a robot, and a GCS (sysid 255) or a
  companion computer never becomes an entity. The heartbeat's component is the vehicle's
  voice: flight state (position, attitude, GPS, SYS_STATUS) from other components of the
  system is ignored; BATTERY_STATUS and gimbal messages are taken from any component.
* Rovers, boats, submarines (an ArduSub ROV) and legged robots are `robot`; everything else
  that flies is `drone`. Callsigns come from the configuration, else "UAV N" ("ROV N",
  "UGV N", "USV N" for the robots).
* A position is drawn only while the latest GPS_RAW_INT (at most `fix_timeout_s` old) has
  fix_type ≥ 2 (2D), and never within 1e-4° of 0,0 (an unset estimate). A system that sends
  no GPS_RAW_INT is never drawn: an EKF's dead-reckoning without GPS can be far off.
* Rates are bounded per system: positions at most `positions_hz` (5 Hz), measured on the
  vehicle's own `time_boot_ms` so that a replay over UDP draws exactly the positions an
  import draws; readings (attitude, gimbal, armed, fix, voltage) at most `readings_hz`
  (2 Hz; ATTITUDE comes at 10–50 Hz), each value sent once per change of message; status
  (mode + armed, battery) at once when the mode text changes, else at most every
  `status_every_s` (5 s) or at `readings_hz` when only the battery changed.
* Gimbal yaw is reported relative to north (the vehicle's yaw added when the gimbal reports
  it in the vehicle frame); a retracted mount (MOUNT_STATUS mode RETRACT) reports nothing.
* `observed_at` is what the caller says (a tlog's timestamp) or the receive time:
  `time_boot_ms` is not wall time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import socket
import struct
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, cast

import msgspec
from pymavlink.dialects.v20 import ardupilotmega as _mav

from cockpit.events import (
    Context,
    EntityKind,
    EntityRegistered,
    EntityRegisteredEvent,
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
    utcnow,
)

__all__ = [
    "BadFrame",
    "MavMessage",
    "MavlinkTranslator",
    "MavlinkUdp",
    "decode_frame",
    "frame_length",
    "listen_udp",
    "mode_name",
    "parse_datagram",
    "parse_udp_addr",
    "split_frames",
]

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]

# --- frames ----------------------------------------------------------------------------

STX_V2, STX_V1 = 0xFD, 0xFE
_MARKER = re.compile(rb"[\xfd\xfe]")
_DECODER = _mav.MAVLink(None)  # decode() keeps no parse state; signatures are not checked


class MavMessage(Protocol):
    """The part of a pymavlink message object this module relies on (fields via getattr)."""

    def get_type(self) -> str: ...
    def get_srcSystem(self) -> int: ...  # pymavlink's names
    def get_srcComponent(self) -> int: ...


class BadFrame(ValueError):
    """A frame that fails its CRC, length or payload checks."""


def frame_length(buf: bytes, i: int) -> int | None:
    """Length of the frame whose marker is at `buf[i]`; None while its header is cut off."""
    rest = len(buf) - i
    if buf[i] == STX_V2:  # 10-byte header, payload, CRC, 13-byte signature if flagged
        return None if rest < 3 else 12 + buf[i + 1] + (13 if buf[i + 2] & 0x01 else 0)
    return None if rest < 2 else 8 + buf[i + 1]  # v1: 6-byte header, payload, CRC


def split_frames(data: bytes) -> tuple[list[bytes], int]:
    """The frames of one datagram and the number of junk stretches between them.

    A marker whose frame does not fit is junk (resync at the next byte); each stretch of
    junk counts once, so a corrupted datagram is one bad, not one per stray 0xFD.
    """
    frames: list[bytes] = []
    bad, i, junk, n = 0, 0, False, len(data)
    while i < n:
        m = _MARKER.search(data, i)
        if m is None:
            bad += not junk
            break
        j = m.start()
        if j > i and not junk:
            bad, junk = bad + 1, True
        length = frame_length(data, j)
        if length is None or j + length > n:
            bad += not junk
            junk, i = True, j + 1
            continue
        frames.append(data[j : j + length])
        i, junk = j + length, False
    return frames, bad


def decode_frame(frame: bytes) -> MavMessage:
    """One frame → pymavlink message (unknown ids give type `UNKNOWN_<id>`); else BadFrame."""
    try:
        msg: MavMessage = _DECODER.decode(bytearray(frame))
    except (_mav.MAVError, struct.error, ValueError, IndexError) as exc:
        raise BadFrame(str(exc)) from exc
    return msg


def parse_datagram(data: bytes) -> tuple[list[MavMessage], int]:
    """Messages in one datagram, and how many frames or junk stretches were bad."""
    frames, bad = split_frames(data)
    out: list[MavMessage] = []
    for frame in frames:
        try:
            out.append(decode_frame(frame))
        except BadFrame:
            bad += 1
    return out, bad


# --- mapping tables --------------------------------------------------------------------

_ROBOT_LABELS = {10: "UGV", 11: "USV", 12: "ROV", 46: "UGV"}  # rover, boat, sub, quadruped
# MAV_TYPEs that are parts or peers of a vehicle, never a vehicle on the map.
_NOT_VEHICLES = frozenset({5, 6, 18, 26, 27, *range(30, 35), *range(36, 43), 44, 45, 48})
_AUTOPILOT_INVALID, _AUTOPILOT_ARDUPILOT, _AUTOPILOT_PX4 = 8, 3, 12
_ARMED, _CUSTOM_MODE = 128, 1  # MAV_MODE_FLAG bits
# Messages a vehicle's other components (smart battery, gimbal) send on its behalf.
_FROM_ANY_COMPONENT = frozenset({"BATTERY_STATUS", "GIMBAL_DEVICE_ATTITUDE_STATUS", "MOUNT_STATUS"})
_UNSET_E7 = 1000  # |lat| and |lon| below 1e-4° (≈ 11 m): an unset position, not a place
_U16_MAX = 65535

# ArduPilot's custom modes per vehicle family, from the dialect's own enums.
_AP_MODE_ENUM = {
    **dict.fromkeys((2, 3, 4, 13, 14, 15, 29, 35, 43), "COPTER_MODE"),
    **dict.fromkeys((1, 19, 20, 21, 22, 23, 24, 25), "PLANE_MODE"),
    10: "ROVER_MODE",
    11: "ROVER_MODE",
    12: "SUB_MODE",
}
_PX4_MAIN = {1: "MANUAL", 2: "ALTCTL", 3: "POSCTL", 5: "ACRO", 6: "OFFBOARD", 7: "STABILIZED"}
_PX4_AUTO = {1: "READY", 2: "TAKEOFF", 3: "LOITER", 4: "MISSION", 5: "RTL", 6: "LAND"}
# MAV_MODE_FLAG bits without a custom mode, the most specific first.
_BASE_MODES = ((4, "AUTO"), (8, "GUIDED"), (16, "STABILIZE"), (64, "MANUAL"))
_STATES = {5: "CRITICAL", 6: "EMERGENCY", 7: "POWEROFF", 8: "TERMINATION"}  # MAV_STATE


def _enum_name(enum: str, value: int) -> str:
    entry = _mav.enums.get(enum, {}).get(value)
    if entry is None:
        return str(value)
    name: str = entry.name
    return name.removeprefix(enum + "_")


def mode_name(autopilot: int, mav_type: int, base_mode: int, custom_mode: int) -> str:
    """A human-readable flight mode ("MANUAL", "LOITER", "Mode(21)")."""
    if autopilot == _AUTOPILOT_PX4:
        main, sub = (custom_mode >> 16) & 0xFF, (custom_mode >> 24) & 0xFF
        if main == 4:
            return "AUTO " + _PX4_AUTO.get(sub, str(sub))
        return _PX4_MAIN.get(main, f"Mode({custom_mode})")
    if base_mode & _CUSTOM_MODE:
        enum = _AP_MODE_ENUM.get(mav_type) if autopilot == _AUTOPILOT_ARDUPILOT else None
        if enum is not None and custom_mode in _mav.enums[enum]:
            return _enum_name(enum, custom_mode)
        return f"Mode({custom_mode})"
    return next((name for flag, name in _BASE_MODES if base_mode & flag), "UNKNOWN")


def _f(msg: MavMessage, name: str) -> float:
    return float(getattr(msg, name))


def _i(msg: MavMessage, name: str) -> int:
    return int(getattr(msg, name))


def _due(last: float, now: float, interval: float) -> bool:
    # A clock that went back (a reboot, another log) restarts the interval.
    return now - last >= interval or now < last


def _deg360(rad: float) -> float:
    return math.degrees(rad) % 360.0


# --- translator ------------------------------------------------------------------------


@dataclass
class _System:
    """What one system id said so far: protocol state of this feed, not the picture."""

    sysid: int
    compid: int  # the component whose autopilot heartbeat we took
    kind: EntityKind
    callsign: str
    mode: str | None = None
    battery_pct: float | None = None
    fix_type: int = 0
    fix_t: float = -math.inf
    accuracy_m: float | None = None
    yaw_deg: float | None = None
    pending: dict[str, Reading] = field(default_factory=dict)  # new since the last event
    readings_t: float = -math.inf
    status_key: tuple[str | None, float | None] | None = None
    status_t: float = -math.inf
    position_ms: float = -math.inf  # time_boot_ms of the last position sent

    @property
    def entity(self) -> str:
        return f"uav-{self.sysid}"


class MavlinkTranslator:
    """Turns pymavlink messages of any number of systems into events (see module doc)."""

    def __init__(
        self,
        incident: str,
        device: str,
        clock: Clock = utcnow,
        *,
        callsigns: Mapping[int, str] | None = None,
        positions_hz: float = 5.0,
        readings_hz: float = 2.0,
        status_every_s: float = 5.0,
        fix_timeout_s: float = 5.0,
    ) -> None:
        self.incident = incident
        self._source = Source(feed="mavlink", device=device)
        self._context = Context(actor=f"device:{device}")
        self._clock = clock
        self._callsigns = {k: v[:64] for k, v in (callsigns or {}).items()}
        self._position_ms = 1000.0 / positions_hz
        self._readings_s = 1.0 / readings_hz
        self._status_s = status_every_s
        self._fix_timeout_s = fix_timeout_s
        self.systems: dict[int, _System] = {}
        self.invalid = 0  # events refused by validation (a value out of range slipped by)
        self._handlers: dict[str, Callable[[_System, MavMessage, float], None]] = {
            "GPS_RAW_INT": self._gps,
            "GLOBAL_POSITION_INT": self._position,
            "ATTITUDE": self._attitude,
            "GIMBAL_DEVICE_ATTITUDE_STATUS": self._gimbal_device,
            "MOUNT_STATUS": self._mount,
            "SYS_STATUS": self._sys_status,
            "BATTERY_STATUS": self._battery,
        }
        # The message being translated: its events, observed and received times.
        self._out: list[Event] = []
        self._at = self._received = datetime.fromtimestamp(0, UTC)

    def feed(self, msg: MavMessage, observed_at: datetime | None = None) -> list[Event]:
        """Events for one message; `observed_at` defaults to now (the receive time)."""
        kind = msg.get_type()
        if kind != "HEARTBEAT" and kind not in self._handlers:
            return []
        sysid, compid = msg.get_srcSystem(), msg.get_srcComponent()
        if sysid == 0:  # 0 is the broadcast address, never a sender
            return []
        self._received = self._clock()
        self._at = observed_at or self._received
        self._out = []
        t = self._at.timestamp()
        if kind == "HEARTBEAT":
            self._heartbeat(sysid, compid, msg, t)
        else:
            system = self.systems.get(sysid)
            if system is None:
                return []
            if compid != system.compid and kind not in _FROM_ANY_COMPONENT:
                return []
            self._handlers[kind](system, msg, t)
            self._flush_readings(system, t)
        out, self._out = self._out, []
        return out

    # --- building events ---------------------------------------------------------------

    def _env(self) -> dict[str, Any]:
        """The envelope fields of an event about the message being translated."""
        return {
            "id": new_event_id(),
            "incident": self.incident,
            "source": self._source,
            "observed_at": self._at,
            "received_at": self._received,
            "context": self._context,
        }

    def _emit(self, event: Event) -> None:
        # Values are range-checked before building; `checked` is the last guard, so that
        # a slip costs one event, not the feed.
        try:
            self._out.append(checked(event))
        except msgspec.ValidationError as exc:
            self.invalid += 1
            log.debug("mavlink event refused: %s", exc)

    def _flush_readings(self, s: _System, t: float) -> None:
        if not s.pending or not _due(s.readings_t, t, self._readings_s):
            return
        values, s.pending, s.readings_t = s.pending, {}, t
        readings = Readings(entity=s.entity, entity_kind=s.kind, callsign=s.callsign, values=values)
        self._emit(ReadingsEvent(payload=readings, **self._env()))

    def _status(self, s: _System, t: float, *, urgent: bool) -> None:
        key = (s.mode, s.battery_pct)
        if key == s.status_key and not _due(s.status_t, t, self._status_s):
            return
        if key != s.status_key and not urgent and not _due(s.status_t, t, self._readings_s):
            return  # a battery that flickers between two percentages
        s.status_key, s.status_t = key, t
        status = Status(
            entity=s.entity,
            entity_kind=s.kind,
            callsign=s.callsign,
            battery_pct=s.battery_pct,
            link="ok",
            mode=s.mode,
        )
        self._emit(StatusEvent(payload=status, **self._env()))

    def _read(self, s: _System, name: str, value: float, unit: str = "") -> None:
        if math.isfinite(value):
            s.pending[name] = Reading(value=round(value, 3), unit=unit)

    # --- handlers ----------------------------------------------------------------------

    def _heartbeat(self, sysid: int, compid: int, msg: MavMessage, t: float) -> None:
        autopilot, mav_type = _i(msg, "autopilot"), _i(msg, "type")
        if autopilot == _AUTOPILOT_INVALID or mav_type in _NOT_VEHICLES:
            return  # a GCS, camera, gimbal or companion computer: not the vehicle
        s = self.systems.get(sysid)
        if s is not None and compid != s.compid:
            return  # a second autopilot component: the first one speaks for the vehicle
        label = _ROBOT_LABELS.get(mav_type)
        kind: EntityKind = "drone" if label is None else "robot"
        if s is None or s.kind != kind:
            callsign = self._callsigns.get(sysid, f"{label or 'UAV'} {sysid}")
            if s is None:
                s = self.systems[sysid] = _System(sysid, compid, kind, callsign)
            s.kind, s.callsign = kind, callsign
            meta = {
                "mavlink_sysid": str(sysid),
                "mav_type": _enum_name("MAV_TYPE", mav_type),
                "autopilot": _enum_name("MAV_AUTOPILOT", autopilot),
            }
            reg = EntityRegistered(entity=s.entity, entity_kind=kind, callsign=callsign, meta=meta)
            self._emit(EntityRegisteredEvent(payload=reg, **self._env()))
        base_mode = _i(msg, "base_mode")
        armed = bool(base_mode & _ARMED)
        parts = [mode_name(autopilot, mav_type, base_mode, _i(msg, "custom_mode"))]
        parts.append("armed" if armed else "disarmed")
        state = _STATES.get(_i(msg, "system_status"))
        if state is not None:
            parts.append(state)
        mode = ", ".join(parts)[:64]
        changed, s.mode = mode != s.mode, mode
        self._read(s, "armed", float(armed))
        self._status(s, t, urgent=changed)
        self._flush_readings(s, t)

    def _gps(self, s: _System, msg: MavMessage, t: float) -> None:
        s.fix_type, s.fix_t = _i(msg, "fix_type"), t
        h_acc = _i(msg, "h_acc")  # mm; 0 when the receiver does not say
        s.accuracy_m = h_acc / 1000.0 if 0 < h_acc <= 100_000_000 else None
        self._read(s, "gps_fix", float(s.fix_type))

    def _position(self, s: _System, msg: MavMessage, t: float) -> None:
        if s.fix_type < 2 or t - s.fix_t > self._fix_timeout_s or t < s.fix_t:
            return  # no fix, or no word about the fix lately
        lat_e7, lon_e7 = _i(msg, "lat"), _i(msg, "lon")
        if abs(lat_e7) < _UNSET_E7 and abs(lon_e7) < _UNSET_E7:
            return
        if abs(lat_e7) > 900_000_000 or abs(lon_e7) > 1_800_000_000:
            return
        boot_ms = _f(msg, "time_boot_ms")
        if not _due(s.position_ms, boot_ms, self._position_ms):
            return
        s.position_ms = boot_ms
        alt = _i(msg, "relative_alt") / 1000.0
        hdg = _i(msg, "hdg")
        speed = math.hypot(_i(msg, "vx"), _i(msg, "vy")) / 100.0
        position = Position(
            entity=s.entity,
            entity_kind=s.kind,
            callsign=s.callsign,
            lat=lat_e7 / 1e7,
            lon=lon_e7 / 1e7,
            alt_m=alt if -500.0 <= alt <= 20_000.0 else None,
            heading_deg=hdg / 100.0 if hdg <= 36_000 else None,  # UINT16_MAX: unknown
            speed_mps=speed if speed <= 400.0 else None,
            accuracy_m=s.accuracy_m,
        )
        self._emit(PositionEvent(payload=position, **self._env()))

    def _attitude(self, s: _System, msg: MavMessage, t: float) -> None:
        roll, pitch, yaw = _f(msg, "roll"), _f(msg, "pitch"), _f(msg, "yaw")
        self._read(s, "roll_deg", math.degrees(roll), "deg")
        self._read(s, "pitch_deg", math.degrees(pitch), "deg")
        if math.isfinite(yaw):
            s.yaw_deg = _deg360(yaw)
            self._read(s, "yaw_deg", s.yaw_deg, "deg")

    def _gimbal(self, s: _System, pitch_deg: float, yaw_deg: float, earth: bool) -> None:
        self._read(s, "gimbal_pitch_deg", pitch_deg, "deg")
        if not earth:
            if s.yaw_deg is None:
                return  # relative to a heading we do not know yet
            yaw_deg += s.yaw_deg
        self._read(s, "gimbal_yaw_deg", yaw_deg % 360.0, "deg")

    def _gimbal_device(self, s: _System, msg: MavMessage, t: float) -> None:
        w, x, y, z = (float(v) for v in getattr(msg, "q"))  # noqa: B009 - `q` is a field
        if not all(math.isfinite(v) for v in (w, x, y, z)) or w * w + x * x + y * y + z * z < 0.5:
            return  # NaN: the gimbal does not know its attitude
        pitch = math.degrees(math.asin(max(-1.0, min(1.0, 2.0 * (w * y - z * x)))))
        yaw = math.degrees(math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z)))
        flags = _i(msg, "flags")
        # Earth frame when flagged so; with neither frame flag, YAW_LOCK means earth frame.
        earth = bool(flags & 64) or (bool(flags & 16) and not flags & 32)
        self._gimbal(s, pitch, yaw, earth)

    def _mount(self, s: _System, msg: MavMessage, t: float) -> None:
        if _i(msg, "mount_mode") == 0:
            return  # MAV_MOUNT_MODE_RETRACT: stowed, pointing nowhere
        # ArduPilot reports pitch and body-frame yaw in centidegrees.
        self._gimbal(s, _i(msg, "pointing_a") / 100.0, _i(msg, "pointing_c") / 100.0, False)

    def _sys_status(self, s: _System, msg: MavMessage, t: float) -> None:
        volts = _i(msg, "voltage_battery")
        if volts != _U16_MAX:
            self._read(s, "battery_v", volts / 1000.0, "V")
        self._battery_pct(s, _i(msg, "battery_remaining"), t)

    def _battery(self, s: _System, msg: MavMessage, t: float) -> None:
        if _i(msg, "id") == 0:  # the main battery; others would fight over one percentage
            self._battery_pct(s, _i(msg, "battery_remaining"), t)

    def _battery_pct(self, s: _System, remaining: int, t: float) -> None:
        if 0 <= remaining <= 100:  # -1: the autopilot does not know
            s.battery_pct = float(remaining)
        self._status(s, t, urgent=False)


# --- UDP -------------------------------------------------------------------------------


def parse_udp_addr(addr: str) -> tuple[str, int]:
    """`udp:HOST:PORT`, `udpin:HOST:PORT` or `HOST:PORT` (IPv6 in brackets) → (host, port)."""
    rest = addr.split(":", 1)[1] if addr.startswith(("udp:", "udpin:")) else addr
    host, sep, port = rest.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    if not (sep and port.isdigit() and int(port) <= 65535 and host) or (
        ":" in host and not bracketed
    ):
        raise ValueError(f"not a UDP address (udp:HOST:PORT): {addr!r}")
    return host.strip("[]"), int(port)


@dataclass
class _SystemStats:
    frames: int = 0
    last_seen: float = 0.0


class MavlinkUdp(asyncio.DatagramProtocol):
    """One UDP port, any number of systems; events go out in batches of ~`batch_s`.

    The queue of undelivered events is bounded (`max_pending`): when the consumer stalls,
    the oldest events are dropped and counted — MAVLink over UDP is lossy anyway, and
    newer telemetry supersedes older.
    """

    def __init__(
        self,
        translator: MavlinkTranslator,
        on_events: Callable[[list[Event]], Awaitable[None]],
        *,
        clock: Clock = utcnow,
        batch_s: float = 0.05,
        max_pending: int = 10_000,
    ) -> None:
        self.translator = translator
        self._on_events = on_events
        self._clock = clock
        self._batch_s = batch_s
        self._max_pending = max_pending
        self._pending: list[Event] = []
        self._wake = asyncio.Event()
        self._transport: asyncio.DatagramTransport | None = None
        self._task: asyncio.Task[None] | None = None
        self._counts = dict.fromkeys(
            (
                "datagrams",
                "frames",
                "bad",
                "unknown",
                "errors",
                "events",
                "dropped",
                "delivery_errors",
            ),
            0,
        )
        self._systems: dict[int, _SystemStats] = {}

    # asyncio.DatagramProtocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's UDP transport does not subclass DatagramTransport.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        now = self._clock()
        messages, bad = parse_datagram(data)
        c = self._counts
        c["datagrams"] += 1
        c["bad"] += bad
        c["frames"] += len(messages)
        t = now.timestamp()
        for msg in messages:
            if msg.get_type().startswith("UNKNOWN_"):
                c["unknown"] += 1
            sysid = msg.get_srcSystem()
            seen = self._systems.get(sysid)
            if seen is None:
                seen = self._systems[sysid] = _SystemStats()
            seen.frames += 1
            seen.last_seen = t
            try:
                self._pending.extend(self.translator.feed(msg, now))
            except Exception:  # a raise here would make asyncio close the socket for good
                c["errors"] += 1
                log.exception("mavlink udp: translating %s failed", msg.get_type())
        if len(self._pending) > self._max_pending:
            excess = len(self._pending) - self._max_pending
            del self._pending[:excess]
            c["dropped"] += excess
        if self._pending:
            self._wake.set()

    def error_received(self, exc: Exception) -> None:
        log.warning("mavlink udp: %s", exc)

    # the batcher
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mavlink-udp")

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self._batch_s)  # gather what arrives in the next ~50 ms
            self._wake.clear()
            await self._deliver()

    async def _deliver(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        # Stamped as one batch just before hand-over, so received_at grows with the order
        # in which the consumer publishes.
        received = self._clock()
        batch = [msgspec.structs.replace(e, received_at=received) for e in batch]
        self._counts["events"] += len(batch)
        try:
            await self._on_events(batch)
        except Exception:
            self._counts["delivery_errors"] += 1
            log.exception("mavlink udp: delivering %d events failed", len(batch))

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port): useful after binding port 0."""
        assert self._transport is not None
        host, port = self._transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def stats(self) -> dict[str, Any]:
        """Counters for health pages: frames, bad frames, events, and per system id the
        frame count and last time heard (epoch seconds) and its entity, if any."""
        systems = {
            str(sysid): {  # string keys: the view goes out as JSON
                "frames": s.frames,
                "last_seen": s.last_seen,
                "entity": f"uav-{sysid}" if sysid in self.translator.systems else None,
            }
            for sysid, s in sorted(self._systems.items())
        }
        return {**self._counts, "invalid": self.translator.invalid, "systems": systems}

    async def aclose(self) -> None:
        """Stop listening and hand over what is still queued."""
        if self._transport is not None:
            self._transport.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._deliver()

    async def __aenter__(self) -> MavlinkUdp:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def listen_udp(
    addr: str,
    on_events: Callable[[list[Event]], Awaitable[None]],
    *,
    incident: str,
    device: str = "mavlink",
    callsigns: Mapping[int, str] | None = None,
    clock: Clock = utcnow,
    batch_s: float = 0.05,
) -> MavlinkUdp:
    """Bind `addr` (e.g. `udp:127.0.0.1:14550`) and start translating; the caller owns the
    returned feed (`stats()`, `aclose()`, or `async with`)."""
    host, port = parse_udp_addr(addr)
    loop = asyncio.get_running_loop()
    translator = MavlinkTranslator(incident, device, clock, callsigns=callsigns)
    feed = MavlinkUdp(translator, on_events, clock=clock, batch_s=batch_s)
    transport, _ = await loop.create_datagram_endpoint(lambda: feed, local_addr=(host, port))
    sock = transport.get_extra_info("socket")
    try:  # bursts of several drones: a larger buffer if the kernel allows it
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    except OSError:
        log.debug("mavlink udp: SO_RCVBUF not raised")
    feed.start()
    return feed
