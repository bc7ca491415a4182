"""A recorded incident from the past, written with the real recorder, for the exercise
tests: units driving east, a robot measuring CO over the limit, an A.D.Le.R. fall with
the person's data, and what people decided then (a journal entry, an acknowledgement)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cockpit.events import (
    AckEvent,
    Acknowledgement,
    ClockEvent,
    Context,
    Detection,
    DetectionEvent,
    EntityRegistered,
    EntityRegisteredEvent,
    Event,
    JournalEntry,
    JournalEvent,
    Position,
    PositionEvent,
    Reading,
    Readings,
    ReadingsEvent,
    Responder,
    ResponderEvent,
    Source,
    with_seq,
)
from cockpit.recorder import Recorder

RECORDED = "brand-hafen-2025"
T0 = datetime(2025, 3, 14, 9, 0, 0, tzinfo=UTC)  # long ago: the exercise must say "now"
UNITS = ("hlf-1", "hlf-2", "dlk-1")
STEP_S = 0.5
LON0 = 7.44
LON_STEP = 1e-4  # per report (0.5 s): the units drive east at about 50 km/h
PERSONAL = "Marcumar"
JOURNAL_THEN = "Lage 2025: zwei Trupps unter PA vorgehend"
RESPONDER = "helfer-7"  # a volunteer: registry entry and phone (personal data)


def lon_at(step: int) -> float:
    return LON0 + step * LON_STEP


async def write_recording(path: Path, seconds: float = 120.0) -> Path:
    """The log of a past incident, `seconds` long, at `path`."""

    def env(t: float, feed: str = "telemetry", actor: str | None = None) -> dict[str, object]:
        when = T0 + timedelta(seconds=t)
        return {
            "incident": RECORDED,
            "source": Source(feed=feed, device="gw-1"),  # type: ignore[arg-type]
            "observed_at": when,
            "received_at": when,
            "context": Context(actor=actor),
        }

    events: list[Event] = [
        EntityRegisteredEvent(
            **env(0.0),  # type: ignore[arg-type]
            payload=EntityRegistered(
                entity=u, entity_kind="unit", callsign=f"Florian Hafen {i + 1}/46-1"
            ),
        )
        for i, u in enumerate(UNITS)
    ]
    events.append(
        ResponderEvent(
            **env(0.0, "adler"),  # type: ignore[arg-type]
            payload=Responder(id=RESPONDER, callsign="Anna K.", qualifications=("first_aid",)),
        )
    )
    steps = int(seconds / STEP_S)
    for step in range(steps):
        t = step * STEP_S
        for i, unit in enumerate(UNITS):
            events.append(
                PositionEvent(
                    **env(t),  # type: ignore[arg-type]
                    payload=Position(
                        entity=unit, entity_kind="unit", lat=51.525 + i * 2e-3, lon=lon_at(step)
                    ),
                )
            )
        if step % 4 == 0:  # the volunteer's phone
            events.append(
                PositionEvent(
                    **env(t, "adler"),  # type: ignore[arg-type]
                    payload=Position(entity=RESPONDER, entity_kind="person", lat=51.53, lon=7.45),
                )
            )
        if step == 10:  # what the commander wrote then: the crew writes their own
            events.append(
                JournalEvent(**env(t, "ui", "el"), payload=JournalEntry(text=JOURNAL_THEN))  # type: ignore[arg-type]
            )
        if step == 16:  # a robot measures CO over the limit: the fold raises an alert
            events.append(
                ReadingsEvent(
                    **env(t),  # type: ignore[arg-type]
                    payload=Readings(
                        entity="robot-1",
                        entity_kind="robot",
                        values={"co": Reading(value=250.0, unit="ppm")},
                    ),
                )
            )
        if step == 20:  # an A.D.Le.R. fall, with the person's data
            events.append(
                DetectionEvent(
                    **env(t, "adler"),  # type: ignore[arg-type]
                    payload=Detection(
                        id="adler-1",
                        source="adler",
                        category="fall",
                        lat=51.527,
                        lon=7.442,
                        address="Kanalstraße 3",
                        personal={"person": {"id": "p-8c1f", "medical": PERSONAL}},
                    ),
                )
            )
        if step == 30:  # the commander acknowledged the alert then
            events.append(
                AckEvent(
                    **env(t, "ui", "el"),  # type: ignore[arg-type]
                    payload=Acknowledgement(alert="gas_threshold:robot-1:co"),
                )
            )
        if step % 20 == 5:
            events.append(ClockEvent(**env(t, "cockpit")))  # type: ignore[arg-type]
    rec = Recorder(path, RECORDED)
    rec.open()
    try:
        await rec.append([with_seq(ev, i + 1) for i, ev in enumerate(events)])
    finally:
        await rec.close()
    return path
