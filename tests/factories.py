"""Small builders of events for tests (envelope boilerplate in one place)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cockpit.events import (
    AckEvent,
    Acknowledgement,
    Context,
    EntityRemoved,
    EntityRemovedEvent,
    Event,
    JournalEntry,
    JournalEvent,
    Position,
    PositionEvent,
    Reading,
    Readings,
    ReadingsEvent,
    Source,
    Status,
    StatusEvent,
    with_seq,
)

T0 = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _env(
    t: float, seq: int | None, received: float | None = None, actor: str | None = None
) -> dict[str, Any]:
    return {
        "incident": "test",
        "source": Source(feed="telemetry", device="dev-1"),
        "observed_at": at(t),
        "received_at": at(t if received is None else received),
        "seq": seq,
        "context": Context(actor=actor),
    }


def position(
    entity: str,
    lat: float,
    lon: float,
    t: float,
    seq: int | None = None,
    kind: str = "unit",
    **kw: Any,
) -> Event:
    return PositionEvent(
        **_env(t, seq, kw.pop("received", None)),
        payload=Position(entity=entity, entity_kind=kind, lat=lat, lon=lon, **kw),  # type: ignore[arg-type]
    )


def readings(
    entity: str, t: float, seq: int | None = None, kind: str = "robot", **values: float
) -> Event:
    return ReadingsEvent(
        **_env(t, seq),
        payload=Readings(
            entity=entity,
            entity_kind=kind,  # type: ignore[arg-type]
            values={
                k: Reading(value=v, unit="ppm" if k != "battery" else "%")
                for k, v in values.items()
            },
        ),
    )


def status(entity: str, t: float, seq: int | None = None, battery: float | None = None) -> Event:
    return StatusEvent(
        **_env(t, seq), payload=Status(entity=entity, entity_kind="drone", battery_pct=battery)
    )


def removed(entity: str, t: float, seq: int | None = None) -> Event:
    return EntityRemovedEvent(**_env(t, seq), payload=EntityRemoved(entity=entity))


def journal(text: str, t: float, seq: int | None = None, actor: str = "el") -> Event:
    return JournalEvent(**_env(t, seq, actor=actor), payload=JournalEntry(text=text))


def ack(alert: str, t: float, seq: int | None = None, actor: str = "el") -> Event:
    return AckEvent(**_env(t, seq, actor=actor), payload=Acknowledgement(alert=alert))


def numbered(events: list[Event]) -> list[Event]:
    return [with_seq(e, i) for i, e in enumerate(events, 1)]
