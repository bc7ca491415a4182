"""A.D.Le.R. detections (automatic emergency detections in homes) -> `detection` events;
the platform's first-responder registry -> `responder` events; a responder's answer to
an alert -> `responder.call` events.

One JSON object per request, the wire format below (`AdlerDetection`, published in the
OpenAPI document). The detection's id is the gateway's: a repeated report of the same id
updates that detection in the picture and never creates a second one.

What is operational and what is personal. A crew needs the kind of emergency, the
place (lat/lon, address, floor) and how to get in (access notes: key safe, door code,
dog): these go into the `Detection` record itself and every role sees them. Everything
about the person (pseudonymous id, age group, mobility, assistance needs, medical notes,
contact) goes under `Detection.personal` only, so that hiding or purging it is one key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from cockpit.events import (
    Callsign,
    Context,
    Detection,
    DetectionEvent,
    Id,
    Lat,
    Lon,
    Name,
    Qualification,
    Responder,
    ResponderCall,
    ResponderCallEvent,
    ResponderEvent,
    Source,
    Travel,
    checked,
    decode,
    new_event_id,
)

__all__ = [
    "TYPES",
    "AdlerDetection",
    "AdlerLocation",
    "AdlerPerson",
    "AdlerResponder",
    "ResponderAnswer",
    "answer_event",
    "parse",
    "parse_answer",
    "parse_responders",
    "registry_events",
    "schema_components",
    "to_event",
]

AdlerType = Literal[
    "fall",
    "inactivity",
    "smoke_alarm",
    "co_alarm",
    "heat_alarm",
    "gas_alarm",
    "emergency_button",
    "fire",
    "water_leak",
    "other",
]
TYPES: tuple[str, ...] = AdlerType.__args__  # type: ignore[attr-defined]


def _meta(n: int, description: str) -> msgspec.Meta:
    return msgspec.Meta(max_length=n, description=description)


_Address = Annotated[str, _meta(400, "street, number, postcode, town")]
_Floor = Annotated[str, _meta(32, "floor or flat, e.g. '3. OG links'")]
_Access = Annotated[str, _meta(1000, "how to get in: key safe, door code, dog")]
_Medical = Annotated[str, _meta(2000, "medical notes")]
_Contact = Annotated[str, _meta(400, "who to call: name and phone of a relative or carer")]
_Summary = Annotated[str, _meta(400, "a short text for the map")]


class _Strict(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class AdlerLocation(_Strict, frozen=True, kw_only=True):
    """Where the emergency is. Coordinates, an address, or both (operational)."""

    lat: Lat | None = None
    lon: Lon | None = None
    address: _Address | None = None
    floor: _Floor | None = None
    access: _Access | None = None


class AdlerPerson(_Strict, frozen=True, kw_only=True):
    """The person concerned: personal data, shown only to roles that need it."""

    id: Annotated[Id, msgspec.Meta(description="pseudonymous id, never a name")]
    age_group: Literal["child", "adult", "senior", "unknown"] = "unknown"
    mobility: Literal["independent", "walking_aid", "wheelchair", "bedridden", "unknown"] = (
        "unknown"
    )
    needs: Annotated[
        list[Name],
        msgspec.Meta(max_length=16, description="assistance needs, e.g. hearing_impaired, oxygen"),
    ] = []
    medical: _Medical = ""
    contact: _Contact = ""


class AdlerDetection(_Strict, frozen=True, kw_only=True):
    """One A.D.Le.R. detection; the same `id` again updates it."""

    id: Annotated[Id, msgspec.Meta(description="the detection's id; repeats update it")]
    type: AdlerType
    confidence: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 1.0
    time: Annotated[datetime, msgspec.Meta(tz=True, description="when it was detected")]
    device: Annotated[Id, msgspec.Meta(description="the detecting device, e.g. smoke-17")]
    location: AdlerLocation
    person: AdlerPerson | None = None
    summary: _Summary = ""


_ONE: msgspec.json.Decoder[AdlerDetection] = msgspec.json.Decoder(AdlerDetection)


def parse(body: bytes) -> AdlerDetection:
    """Decode and check one detection; raises `cockpit.events.InvalidInput` naming the path."""
    d = decode(_ONE, body)
    loc = d.location
    # ValidationError (not a plain DecodeError): the errors name a field, not a byte.
    if loc.lat is not None and loc.lon is None:
        raise msgspec.ValidationError("`lon` is needed with `lat` - at `$.location.lon`")
    if loc.lon is not None and loc.lat is None:
        raise msgspec.ValidationError("`lat` is needed with `lon` - at `$.location.lat`")
    if loc.lat is None and not (loc.address or "").strip():
        raise msgspec.ValidationError(
            "a place is needed: `lat` and `lon`, or an `address` - at `$.location.address`"
        )
    return d


class AdlerResponder(_Strict, frozen=True, kw_only=True):
    """A qualified first responder as the platform's registry has them (pseudonymous)."""

    id: Annotated[Id, msgspec.Meta(description="the responder's id; positions use it too")]
    callsign: Annotated[Callsign, msgspec.Meta(min_length=1, description="shown on the map")]
    qualifications: Annotated[tuple[Qualification, ...], msgspec.Meta(min_length=1, max_length=6)]
    available: bool = True
    travel: Travel = "car"


class ResponderAnswer(_Strict, frozen=True, kw_only=True):
    """A responder's answer to an alert, relayed by the platform."""

    detection: Id
    responder: Id
    answer: Literal["accepted", "declined", "arrived"]
    observed_at: Annotated[datetime, msgspec.Meta(tz=True, description="when they answered")]
    note: Annotated[str, _meta(400, "e.g. 'in 5 min'")] = ""


_REGISTRY: msgspec.json.Decoder[AdlerResponder | list[AdlerResponder]] = msgspec.json.Decoder(
    AdlerResponder | list[AdlerResponder]
)
_ANSWER: msgspec.json.Decoder[ResponderAnswer] = msgspec.json.Decoder(ResponderAnswer)
MAX_REGISTRY = 5000  # a city's whole pool in one sync


def parse_responders(body: bytes) -> list[AdlerResponder]:
    """One registry entry or a list of them; raises `InvalidInput` naming the path."""
    got = decode(_REGISTRY, body)
    entries = got if isinstance(got, list) else [got]
    if len(entries) > MAX_REGISTRY:
        raise msgspec.ValidationError(f"at most {MAX_REGISTRY} responders per request - at `$`")
    return entries


def parse_answer(body: bytes) -> ResponderAnswer:
    return decode(_ANSWER, body)


def _envelope(device: str, received_at: datetime, observed_at: datetime) -> dict[str, Any]:
    return {
        "id": new_event_id(),
        "source": Source(feed="adler", device=device),
        "observed_at": min(observed_at, received_at),
        "received_at": received_at,
        "context": Context(actor=f"device:{device}"),
    }


def registry_events(
    entries: list[AdlerResponder], *, incident: str, device: str, received_at: datetime
) -> list[ResponderEvent]:
    return [
        checked(
            ResponderEvent(
                **_envelope(device, received_at, received_at),
                incident=incident,
                payload=Responder(
                    id=e.id,
                    callsign=e.callsign,
                    qualifications=e.qualifications,
                    available=e.available,
                    travel=e.travel,
                ),
            )
        )
        for e in entries
    ]


def answer_event(
    a: ResponderAnswer, *, incident: str, device: str, received_at: datetime
) -> ResponderCallEvent:
    return checked(
        ResponderCallEvent(
            **_envelope(device, received_at, a.observed_at),
            incident=incident,
            payload=ResponderCall(
                detection=a.detection, responder=a.responder, state=a.answer, note=a.note
            ),
        )
    )


def schema_components() -> dict[str, object]:
    """JSON Schemas of the wire formats, for the OpenAPI document's components."""
    _, defs = msgspec.json.schema_components(
        [AdlerDetection, AdlerResponder, ResponderAnswer],
        ref_template="#/components/schemas/{name}",
    )
    return defs


def _personal(p: AdlerPerson | None) -> dict[str, Any] | None:
    return None if p is None else {"person": msgspec.to_builtins(p)}


def to_event(
    d: AdlerDetection, *, incident: str, device: str, received_at: datetime
) -> DetectionEvent:
    """The `detection` event of a report. A device never sets the review state: it is
    always reported "new", and the picture keeps whatever people decided since."""
    loc = d.location
    return checked(
        DetectionEvent(
            id=new_event_id(),
            incident=incident,
            source=Source(feed="adler", device=device),
            observed_at=min(d.time, received_at),  # a clock ahead is capped at arrival
            received_at=received_at,
            context=Context(actor=f"device:{device}"),
            payload=Detection(
                id=d.id,
                source="adler",
                category=d.type,
                confidence=d.confidence,
                lat=loc.lat,
                lon=loc.lon,
                summary=d.summary,
                device=d.device,
                address=loc.address,
                floor=loc.floor,
                access=loc.access,
                personal=_personal(d.person),
            ),
        )
    )
