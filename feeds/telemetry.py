"""The cockpit's own JSON telemetry (robots, drones, units), over HTTP and WebSocket.

Pure translation: a validated message becomes position / readings / status /
entity.registered events. The wire format is the contract in DESIGN.md; extend, don't
break.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

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
)

__all__ = [
    "TelemetryBatch",
    "TelemetryMessage",
    "TelemetryPosition",
    "TelemetryStatus",
    "parse_body",
    "to_events",
]

_ID = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/-]*$")
]
_Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TelemetryPosition(_Strict):
    lat: Annotated[float, Field(ge=-90.0, le=90.0, allow_inf_nan=False)]
    lon: Annotated[float, Field(ge=-180.0, le=180.0, allow_inf_nan=False)]
    alt_m: Annotated[float, Field(ge=-500.0, le=20000.0, allow_inf_nan=False)] | None = None
    heading_deg: Annotated[float, Field(ge=0.0, le=360.0, allow_inf_nan=False)] | None = None
    speed_mps: Annotated[float, Field(ge=0.0, le=400.0, allow_inf_nan=False)] | None = None
    accuracy_m: Annotated[float, Field(ge=0.0, le=100000.0, allow_inf_nan=False)] | None = None


class TelemetryStatus(_Strict):
    battery_pct: Annotated[float, Field(ge=0.0, le=100.0, allow_inf_nan=False)] | None = None
    link: Annotated[str, Field(pattern="^(ok|degraded|lost)$")] | None = None
    mode: Annotated[str, Field(max_length=64)] | None = None


class TelemetryMessage(_Strict):
    """One report about one entity, as robots, drones and units send it."""

    entity: _ID
    kind: EntityKind
    callsign: Annotated[str, Field(max_length=64)] | None = None
    observed_at: AwareDatetime
    position: TelemetryPosition | None = None
    readings: Annotated[dict[_Name, Reading], Field(max_length=64)] | None = None
    status: TelemetryStatus | None = None
    meta: (
        Annotated[dict[_Name, Annotated[str, Field(max_length=200)]], Field(max_length=32)] | None
    ) = None


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
