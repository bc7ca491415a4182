"""The cockpit's own JSON telemetry (robots, drones, units), over HTTP and WebSocket.

Pure translation: a validated message becomes position / readings / status /
entity.registered events. The wire format is the contract in DESIGN.md; extend, don't
break.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

import msgspec

from cockpit.events import (
    AccuracyM,
    AltitudeM,
    Callsign,
    Context,
    EntityKind,
    EntityRegistered,
    EntityRegisteredEvent,
    Event,
    HeadingDeg,
    Id,
    Lat,
    Lon,
    Meta,
    Name,
    Percent,
    Position,
    PositionEvent,
    Reading,
    Readings,
    ReadingsEvent,
    Source,
    SpeedMps,
    Status,
    StatusEvent,
    decode,
    new_event_id,
)

__all__ = [
    "TelemetryMessage",
    "TelemetryPosition",
    "TelemetryStatus",
    "parse_body",
    "schema_components",
    "to_events",
]

_Aware = Annotated[datetime, msgspec.Meta(tz=True)]


class _Strict(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class TelemetryPosition(_Strict, frozen=True, kw_only=True):
    lat: Lat
    lon: Lon
    alt_m: AltitudeM | None = None
    heading_deg: HeadingDeg | None = None
    speed_mps: SpeedMps | None = None
    accuracy_m: AccuracyM | None = None


class TelemetryStatus(_Strict, frozen=True, kw_only=True):
    battery_pct: Percent | None = None
    link: Literal["ok", "degraded", "lost"] | None = None
    mode: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class TelemetryMessage(_Strict, frozen=True, kw_only=True):
    """One report about one entity, as robots, drones and units send it."""

    entity: Id
    kind: EntityKind
    callsign: Callsign | None = None
    observed_at: _Aware
    position: TelemetryPosition | None = None
    readings: Annotated[dict[Name, Reading], msgspec.Meta(max_length=64)] | None = None
    status: TelemetryStatus | None = None
    meta: Meta | None = None


_ONE: msgspec.json.Decoder[TelemetryMessage] = msgspec.json.Decoder(TelemetryMessage)
_MANY: msgspec.json.Decoder[list[TelemetryMessage]] = msgspec.json.Decoder(list[TelemetryMessage])


def parse_body(body: bytes | str) -> list[TelemetryMessage]:
    """One object or a list of objects; raises `cockpit.events.InvalidInput` naming the path.

    The shape is decided by the first character, so errors name the field in the shape
    that was sent (`$[1].position.lat`), not in both branches of a union.
    """
    raw = body.encode() if isinstance(body, str) else body
    if raw.lstrip()[:1] == b"[":
        return decode(_MANY, raw)
    return [decode(_ONE, raw)]


def schema_components() -> dict[str, object]:
    """JSON Schemas of the wire format, for the OpenAPI document's components."""
    (_,), defs = msgspec.json.schema_components(
        [TelemetryMessage], ref_template="#/components/schemas/{name}"
    )
    return defs


@lru_cache(maxsize=1024)
def _origin(device: str) -> tuple[Source, Context]:
    # Shared by every event of a device: records are immutable, so one copy serves all.
    return Source(feed="telemetry", device=device), Context(actor=f"device:{device}")


def to_events(
    msg: TelemetryMessage, *, incident: str, device: str, received_at: datetime
) -> list[Event]:
    """Translate one message; every part becomes its own typed event.

    The message was validated when decoded and the events' fields carry the same
    constraints, so the events are built without validating again.
    """
    src, ctx = _origin(device)
    env: dict[str, Any] = {
        "incident": incident,
        "source": src,
        "observed_at": msg.observed_at,
        "received_at": received_at,
        "context": ctx,
    }
    out: list[Event] = []
    if msg.meta is not None or (msg.position is None and not msg.readings and msg.status is None):
        reg = EntityRegistered(
            entity=msg.entity, entity_kind=msg.kind, callsign=msg.callsign, meta=msg.meta or {}
        )
        out.append(EntityRegisteredEvent(id=new_event_id(), payload=reg, **env))
    p = msg.position
    if p is not None:
        pos = Position(
            entity=msg.entity,
            entity_kind=msg.kind,
            callsign=msg.callsign,
            lat=p.lat,
            lon=p.lon,
            alt_m=p.alt_m,
            heading_deg=p.heading_deg,
            speed_mps=p.speed_mps,
            accuracy_m=p.accuracy_m,
        )
        out.append(PositionEvent(id=new_event_id(), payload=pos, **env))
    if msg.readings:
        values = Readings(
            entity=msg.entity, entity_kind=msg.kind, callsign=msg.callsign, values=msg.readings
        )
        out.append(ReadingsEvent(id=new_event_id(), payload=values, **env))
    s = msg.status
    if s is not None:
        st = Status(
            entity=msg.entity,
            entity_kind=msg.kind,
            callsign=msg.callsign,
            battery_pct=s.battery_pct,
            link=s.link,
            mode=s.mode,
        )
        out.append(StatusEvent(id=new_event_id(), payload=st, **env))
    return out
