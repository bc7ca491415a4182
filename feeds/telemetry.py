"""The cockpit's own JSON telemetry (robots, drones, units), over HTTP and WebSocket.

Pure translation: a validated message becomes position / readings / status /
entity.registered events. The wire format is the contract in DESIGN.md; extend, don't
break.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

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
)

__all__ = [
    "TelemetryBatch",
    "TelemetryMessage",
    "TelemetryPosition",
    "TelemetryStatus",
    "parse_body",
    "to_events",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TelemetryPosition(_Strict):
    lat: Lat
    lon: Lon
    alt_m: AltitudeM | None = None
    heading_deg: HeadingDeg | None = None
    speed_mps: SpeedMps | None = None
    accuracy_m: AccuracyM | None = None


class TelemetryStatus(_Strict):
    battery_pct: Percent | None = None
    link: Literal["ok", "degraded", "lost"] | None = None
    mode: Annotated[str, Field(max_length=64)] | None = None


class TelemetryMessage(_Strict):
    """One report about one entity, as robots, drones and units send it."""

    entity: Id
    kind: EntityKind
    callsign: Callsign | None = None
    observed_at: AwareDatetime
    position: TelemetryPosition | None = None
    readings: Annotated[dict[Name, Reading], Field(max_length=64)] | None = None
    status: TelemetryStatus | None = None
    meta: Meta | None = None


TelemetryBatch = TelemetryMessage | list[TelemetryMessage]
_ONE: TypeAdapter[TelemetryMessage] = TypeAdapter(TelemetryMessage)
_MANY: TypeAdapter[list[TelemetryMessage]] = TypeAdapter(list[TelemetryMessage])


def parse_body(body: bytes | str) -> list[TelemetryMessage]:
    """One object or a list of objects; raises pydantic.ValidationError naming the field.

    The shape is decided by the first character, so errors name the field in the shape
    that was sent (`1.position.lat`), not in both branches of a union.
    """
    raw = body.encode() if isinstance(body, str) else body
    if raw.lstrip()[:1] == b"[":
        return _MANY.validate_json(raw)
    return [_ONE.validate_json(raw)]


def to_events(
    msg: TelemetryMessage, *, incident: str, device: str, received_at: datetime
) -> list[Event]:
    """Translate one message; every part becomes its own typed event."""
    src = Source(feed="telemetry", device=device)
    ctx = Context(actor=f"device:{device}")
    common = {
        "incident": incident,
        "source": src,
        "observed_at": msg.observed_at,
        "received_at": received_at,
        "context": ctx,
    }
    who: dict[str, str | EntityKind | None] = {
        "entity": msg.entity,
        "entity_kind": msg.kind,
        "callsign": msg.callsign,
    }
    out: list[Event] = []
    if msg.meta is not None or (msg.position is None and not msg.readings and msg.status is None):
        out.append(
            EntityRegisteredEvent(
                **common,
                payload=EntityRegistered(
                    entity=msg.entity,
                    entity_kind=msg.kind,
                    callsign=msg.callsign,
                    meta=msg.meta or {},
                ),
            )
        )
    if msg.position is not None:
        out.append(PositionEvent(**common, payload=Position(**who, **msg.position.model_dump())))
    if msg.readings:
        out.append(ReadingsEvent(**common, payload=Readings(**who, values=msg.readings)))
    if msg.status is not None:
        out.append(StatusEvent(**common, payload=Status(**who, **msg.status.model_dump())))
    return out
