"""The one vocabulary: the event envelope and every typed payload.

Every feed turns what it hears into these events; every other module speaks only
these types. JSON round-trips exactly (`Event -> to_json -> parse_event -> Event`).

The records are msgspec Structs, not pydantic models: the ingest hot path builds several
events per message, and a Struct costs a tenth of a model to build, stamp and encode
(`bench/ingest_steps.py`). Decoding JSON validates every constraint below; calling a class
does not, so code that builds events from input nobody validated uses `checked()`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import msgspec
from msgspec import field

__all__ = [
    "ENTITY_KINDS",
    "FEEDS",
    "AccuracyM",
    "AckEvent",
    "Acknowledgement",
    "Alert",
    "AlertEvent",
    "AltitudeM",
    "Callsign",
    "ClockEvent",
    "Context",
    "Detection",
    "DetectionEvent",
    "DetectionPurged",
    "DetectionPurgedEvent",
    "DetectionState",
    "DetectionTransition",
    "DetectionTransitionEvent",
    "EntityKind",
    "EntityRegistered",
    "EntityRegisteredEvent",
    "EntityRemoved",
    "EntityRemovedEvent",
    "Event",
    "EventKind",
    "Feed",
    "Hazard",
    "HazardEvent",
    "HazardRemoved",
    "HazardRemovedEvent",
    "HeadingDeg",
    "Id",
    "InvalidInput",
    "JournalEntry",
    "JournalEvent",
    "Lat",
    "Lon",
    "Meta",
    "Name",
    "Percent",
    "Position",
    "PositionEvent",
    "Qualification",
    "Reading",
    "Readings",
    "ReadingsEvent",
    "Responder",
    "ResponderCall",
    "ResponderCallEvent",
    "ResponderCallState",
    "ResponderEvent",
    "Source",
    "SpeedMps",
    "Status",
    "StatusEvent",
    "Tick",
    "Travel",
    "VideoCodec",
    "VideoSegment",
    "VideoSegmentEvent",
    "VideoStream",
    "VideoStreamEvent",
    "Warning",
    "WarningArea",
    "WarningEvent",
    "WarningInfo",
    "WeatherEvent",
    "WeatherObservation",
    "checked",
    "decode",
    "dump_events",
    "event_to_json",
    "new_event_id",
    "parse_event",
    "parse_events",
    "to_plain",
    "utcnow",
    "with_seq",
]

EntityKind = Literal["unit", "drone", "robot", "sensor", "person"]
ENTITY_KINDS: tuple[EntityKind, ...] = ("unit", "drone", "robot", "sensor", "person")
Feed = Literal[
    "telemetry",
    "video",
    "adler",
    "ttn",
    "cap",
    "cot",
    "mavlink",
    "rosbridge",
    "ui",
    "sim",
    "cockpit",
]
FEEDS: tuple[str, ...] = Feed.__args__  # type: ignore[attr-defined]
_Aware = Annotated[datetime, msgspec.Meta(tz=True)]  # a time without zone is refused

Severity = Literal["info", "warning", "critical"]

# Constrained types shared by every model that accepts outside input (feeds reuse them).
# msgspec matches with re.search, where `$` also matches before a final newline: the
# `(?!\n)` keeps `robot-1\n` from passing as an id that looks like `robot-1`.
Id = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/-]*$(?!\n)"),
]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$(?!\n)")]
Callsign = Annotated[str, msgspec.Meta(max_length=64)]
Lat = Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)]
Lon = Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)]
AltitudeM = Annotated[float, msgspec.Meta(ge=-500.0, le=20000.0)]
HeadingDeg = Annotated[float, msgspec.Meta(ge=0.0, le=360.0)]
SpeedMps = Annotated[float, msgspec.Meta(ge=0.0, le=400.0)]
AccuracyM = Annotated[float, msgspec.Meta(ge=0.0, le=100000.0)]
Percent = Annotated[float, msgspec.Meta(ge=0.0, le=100.0)]
Meta = Annotated[
    dict[Name, Annotated[str, msgspec.Meta(max_length=200)]], msgspec.Meta(max_length=32)
]
_Text = Annotated[str, msgspec.Meta(max_length=4000)]
# Bounds no finite float breaks: NaN and infinities fail them.
_Finite = Annotated[float, msgspec.Meta(ge=-sys.float_info.max, le=sys.float_info.max)]


def utcnow() -> datetime:
    """The server clock. Only composition code calls it; the fold never does."""
    return datetime.now(UTC)


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]  # 10 bits -> 2 characters
_ulid_last_ms = -1
_ulid_random = 0
_ulid_head = ""  # the time and the upper 60 random bits, encoded: changes rarely
_ulid_head_key = -1


def new_event_id() -> str:
    """A time-sortable id in ULID form (48-bit ms time + 80 random bits, Crockford base32).

    Written here rather than taken from python-ulid because it sits on the ingest hot
    path: 0.4 µs instead of 4.4 µs per event. Within one millisecond the random part
    counts up, so ids of one process also sort in creation order; only its last 20 bits
    are encoded per call.
    """
    global _ulid_last_ms, _ulid_random, _ulid_head, _ulid_head_key
    # A clock stepped back must not make ids sort before earlier ones.
    ms = max(time.time_ns() // 1_000_000, _ulid_last_ms)
    if ms != _ulid_last_ms:
        _ulid_last_ms = ms
        _ulid_random = int.from_bytes(os.urandom(10)) >> 1  # headroom to count up
        _ulid_head_key = -1
    else:
        _ulid_random += 1
    r = _ulid_random
    p = _PAIRS
    if r >> 20 != _ulid_head_key:
        _ulid_head_key = r >> 20
        _ulid_head = "".join(p[ms >> s & 1023] for s in (40, 30, 20, 10, 0)) + "".join(
            p[r >> s & 1023] for s in (70, 60, 50, 40, 30, 20)
        )
    return _ulid_head + p[r >> 10 & 1023] + p[r & 1023]


class _Model(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Immutable and closed. Decoding validates every constraint; calling the class neither
    validates nor coerces (an int stays an int): it is the fast path for input a decoder
    already checked. Anything else goes through `checked()`.

    `kw_only` and `frozen` are repeated on every subclass: msgspec applies `kw_only` per
    class, and mypy wants `frozen` spelled out."""


# --- payloads -------------------------------------------------------------------------


class EntityRegistered(_Model, frozen=True, kw_only=True):
    """An entity announces itself (or is announced) with its kind and callsign."""

    entity: Id
    entity_kind: EntityKind
    callsign: Callsign | None = None
    # e.g. {"vehicle": "HLF 20", "organisation": "FW Dortmund"}; shown, never interpreted.
    meta: Meta = field(default_factory=dict)


class EntityRemoved(_Model, frozen=True, kw_only=True):
    entity: Id
    reason: _Text = ""


class Position(_Model, frozen=True, kw_only=True):
    entity: Id
    entity_kind: EntityKind
    callsign: Callsign | None = None
    lat: Lat
    lon: Lon
    alt_m: AltitudeM | None = None
    heading_deg: HeadingDeg | None = None
    speed_mps: SpeedMps | None = None
    accuracy_m: AccuracyM | None = None


class Reading(_Model, frozen=True, kw_only=True):
    value: _Finite
    unit: Annotated[str, msgspec.Meta(max_length=16)] = ""


class Readings(_Model, frozen=True, kw_only=True):
    entity: Id
    entity_kind: EntityKind
    callsign: Callsign | None = None
    values: Annotated[dict[Name, Reading], msgspec.Meta(min_length=1, max_length=64)]


class Status(_Model, frozen=True, kw_only=True):
    entity: Id
    entity_kind: EntityKind
    callsign: Callsign | None = None
    battery_pct: Percent | None = None
    link: Literal["ok", "degraded", "lost"] | None = None
    mode: Annotated[str, msgspec.Meta(max_length=64)] | None = None


DetectionState = Literal["new", "confirmed", "dismissed", "dispatched", "on_scene", "closed"]


class Detection(_Model, frozen=True, kw_only=True):
    """Something found: by A.D.Le.R., by video analysis, by a person."""

    id: Id
    source: Literal["adler", "video", "manual"]
    category: Name
    confidence: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 1.0
    lat: Lat | None = None
    lon: Lon | None = None
    state: DetectionState = "new"
    summary: _Text = ""
    # A.D.Le.R.: the reporting device (a smoke alarm, a fall sensor; the envelope names
    # the gateway that posted it) and where to go. Address, floor and access notes are
    # operational: a crew needs them to get in. Who lives there is `personal`.
    device: Id | None = None
    address: _Text | None = None
    floor: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    access: _Text | None = None
    # From video: which stream, where in the frame (x, y, w, h pixels), the JPEG of the
    # frame (path relative to the incident folder). A picture of a person is personal
    # data and goes under `personal` instead.
    stream: Id | None = None
    bbox: (
        tuple[
            Annotated[int, msgspec.Meta(ge=0)],
            Annotated[int, msgspec.Meta(ge=0)],
            Annotated[int, msgspec.Meta(ge=0)],
            Annotated[int, msgspec.Meta(ge=0)],
        ]
        | None
    ) = None
    snapshot: Annotated[str, msgspec.Meta(max_length=400)] | None = None
    # Personal data is kept apart so that redaction is one key, not a search.
    personal: dict[Name, Any] | None = None


class DetectionTransition(_Model, frozen=True, kw_only=True):
    """A person moves a detection on in its review (the actor is in the context)."""

    id: Id
    to: DetectionState
    note: _Text = ""


class DetectionPurged(_Model, frozen=True, kw_only=True):
    """The personal part of these detections is erased (retention over, see
    `cockpit.privacy`); everything operational about them stays."""

    ids: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=1000)]
    # Reports up to this seq are purged; a detection reported again after it (the same
    # person fell again while the purge ran) keeps its new personal data.
    upto: Annotated[int, msgspec.Meta(ge=0)] | None = None


# Qualified first responders (A.D.Le.R.): volunteers alerted to emergencies near them.
Qualification = Literal[
    "first_aid", "paramedic", "emergency_paramedic", "doctor", "nurse", "firefighter"
]
Travel = Literal["foot", "bike", "car"]
ResponderCallState = Literal["alerted", "accepted", "declined", "arrived", "released"]


class Responder(_Model, frozen=True, kw_only=True):
    """A registry entry (an upsert). The position is not here: the responder's phone
    reports it as an entity of kind `person` with the same id."""

    id: Id
    callsign: Callsign
    qualifications: Annotated[tuple[Qualification, ...], msgspec.Meta(min_length=1, max_length=6)]
    available: bool = True
    travel: Travel = "car"


class ResponderCall(_Model, frozen=True, kw_only=True):
    """A step of one responder's call to one detection: alerted and released by people,
    accepted, declined and arrived from the responder (through the A.D.Le.R. platform)."""

    detection: Id
    responder: Id
    state: ResponderCallState
    note: _Text = ""


# CAP (OASIS Common Alerting Protocol 1.2) warnings. Every list and string is bounded:
# the values come from outside (DWD, MoWaS) and every browser receives them.
_CapText = Annotated[str, msgspec.Meta(max_length=400)]
_CapCode = Annotated[str, msgspec.Meta(max_length=200)]
_CapCodes = Annotated[
    dict[
        Annotated[str, msgspec.Meta(max_length=64)],
        Annotated[list[_CapCode], msgspec.Meta(max_length=2000)],
    ],
    msgspec.Meta(max_length=32),
]
_CapPairs = Annotated[
    dict[Annotated[str, msgspec.Meta(max_length=64)], _CapCode], msgspec.Meta(max_length=64)
]
CapStatus = Literal["Actual", "Exercise", "System", "Test", "Draft"]
CapCategory = Literal[
    "Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra",
    "CBRNE", "Other",
]  # fmt: skip
CapSeverity = Literal["Extreme", "Severe", "Moderate", "Minor", "Unknown"]
CapUrgency = Literal["Immediate", "Expected", "Future", "Past", "Unknown"]
CapCertainty = Literal["Observed", "Likely", "Possible", "Unlikely", "Unknown"]


class WarningArea(_Model, frozen=True, kw_only=True):
    """A CAP `area`: its name, its polygons and circles as one GeoJSON geometry (None when
    only geocodes place it, e.g. a DWD WARNCELLID or a MoWaS ARS), its geocodes."""

    name: Annotated[str, msgspec.Meta(max_length=400)] = ""
    geometry: dict[str, Any] | None = None
    geocodes: _CapCodes = field(default_factory=dict)


class WarningInfo(_Model, frozen=True, kw_only=True):
    """One CAP `info` block: the warning in one language (DWD sends eight)."""

    language: Annotated[str, msgspec.Meta(max_length=35)] = "en-US"  # CAP's default
    category: Annotated[list[CapCategory], msgspec.Meta(max_length=12)] = field(
        default_factory=list
    )
    event: _CapText = ""
    urgency: CapUrgency = "Unknown"
    severity: CapSeverity = "Unknown"
    certainty: CapCertainty = "Unknown"
    effective: _Aware | None = None
    onset: _Aware | None = None
    expires: _Aware | None = None
    sender_name: _CapText = ""
    headline: _CapText = ""
    description: _Text = ""
    instruction: _Text = ""
    web: _CapText = ""
    event_codes: _CapPairs = field(default_factory=dict)
    parameters: _CapPairs = field(default_factory=dict)
    areas: Annotated[list[WarningArea], msgspec.Meta(max_length=2000)] = field(default_factory=list)


class Warning(_Model, frozen=True, kw_only=True):
    """A CAP alert. The top-level fields repeat its primary info (German if there is one,
    else the first), so a reader that knows one language needs nothing else; `infos`
    holds every info block. `id` is derived from `sender` and `identifier` together (a
    CAP identifier is unique only per sender); `references` are the ids, derived the same
    way, of the warnings an Update or Cancel replaces. `ends` is when the picture lets it
    go: `expires`, else `sent` plus the feed's maximum age (None: only a Cancel or an
    Update removes it)."""

    id: Id
    sender: Annotated[str, msgspec.Meta(max_length=200)]
    identifier: Annotated[str, msgspec.Meta(max_length=400)] = ""
    sent: _Aware | None = None
    status: CapStatus = "Actual"
    msg_type: Literal["Alert", "Update", "Cancel"] = "Alert"
    references: Annotated[list[Id], msgspec.Meta(max_length=500)] = field(default_factory=list)
    event: Annotated[str, msgspec.Meta(max_length=200)] = ""
    severity: CapSeverity = "Unknown"
    urgency: CapUrgency = "Unknown"
    certainty: CapCertainty = "Unknown"
    onset: _Aware | None = None
    expires: _Aware | None = None
    ends: _Aware | None = None
    headline: _Text = ""
    description: _Text = ""
    language: Annotated[str, msgspec.Meta(max_length=35)] = "de-DE"
    areas: Annotated[list[WarningArea], msgspec.Meta(max_length=2000)] = field(default_factory=list)
    infos: Annotated[list[WarningInfo], msgspec.Meta(max_length=16)] = field(default_factory=list)


class WeatherObservation(_Model, frozen=True, kw_only=True):
    station: Id
    callsign: Callsign | None = None
    lat: Lat | None = None
    lon: Lon | None = None
    wind_speed_mps: Annotated[float, msgspec.Meta(ge=0.0, le=120.0)] | None = None
    wind_dir_deg: Annotated[float, msgspec.Meta(ge=0.0, le=360.0)] | None = None
    gust_mps: Annotated[float, msgspec.Meta(ge=0.0, le=150.0)] | None = None
    temperature_c: Annotated[float, msgspec.Meta(ge=-90.0, le=70.0)] | None = None
    humidity_pct: Annotated[float, msgspec.Meta(ge=0.0, le=100.0)] | None = None
    pressure_hpa: Annotated[float, msgspec.Meta(ge=800.0, le=1100.0)] | None = None
    precipitation_mm: Annotated[float, msgspec.Meta(ge=0.0, le=500.0)] | None = None


class JournalEntry(_Model, frozen=True, kw_only=True):
    """A line in the Einsatztagebuch; the author is the event's context actor."""

    text: Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]
    category: Annotated[str, msgspec.Meta(max_length=32)] = "note"


class Acknowledgement(_Model, frozen=True, kw_only=True):
    alert: Id


class Alert(_Model, frozen=True, kw_only=True):
    """An alert raised from outside the fold (a trainer's injection, an operator)."""

    id: Id
    rule: Name = "manual"
    severity: Severity = "warning"
    entity: Id | None = None
    text: _Text


class Hazard(_Model, frozen=True, kw_only=True):
    """A hand-drawn hazard area (Gefahrenbereich)."""

    id: Id
    label: Annotated[str, msgspec.Meta(max_length=200)] = ""
    severity: Severity = "warning"
    geometry: dict[str, Any]


class HazardRemoved(_Model, frozen=True, kw_only=True):
    id: Id


VideoCodec = Literal["VP8", "H264"]


class VideoStream(_Model, frozen=True, kw_only=True):
    """A video stream went live or ended; players find streams through the picture."""

    stream: Id
    entity: Id | None = None  # whose camera (by convention the stream name)
    state: Literal["live", "ended"]
    codec: VideoCodec | None = None


class VideoSegment(_Model, frozen=True, kw_only=True):
    """A closed recording segment: the stream's packets from start to end, unchanged."""

    stream: Id
    path: Annotated[str, msgspec.Meta(max_length=400)]  # relative to the incident folder
    start: _Aware
    end: _Aware
    codec: VideoCodec
    frames: Annotated[int, msgspec.Meta(ge=0)] = 0
    bytes: Annotated[int, msgspec.Meta(ge=0)] = 0


class Tick(_Model, frozen=True, kw_only=True):
    """The server's clock, recorded. Rules about silence (a robot that stopped reporting)
    need time to pass when no event arrives, and a replay must see the same alerts."""


# --- envelope -------------------------------------------------------------------------


class Source(_Model, frozen=True, kw_only=True):
    feed: Feed
    device: Id


class Context(_Model, frozen=True, kw_only=True):
    """Who caused this event (a user or device) and what it answers (an event id)."""

    actor: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    parent: Id | None = None


class _Envelope(_Model, tag_field="kind", frozen=True, kw_only=True):
    id: str = field(default_factory=new_event_id)
    incident: Id
    source: Source
    observed_at: _Aware
    received_at: _Aware
    seq: int | None = None
    context: Context = field(default_factory=Context)


class EntityRegisteredEvent(_Envelope, tag="entity.registered", frozen=True, kw_only=True):
    kind: ClassVar[Literal["entity.registered"]] = "entity.registered"
    payload: EntityRegistered


class EntityRemovedEvent(_Envelope, tag="entity.removed", frozen=True, kw_only=True):
    kind: ClassVar[Literal["entity.removed"]] = "entity.removed"
    payload: EntityRemoved


class PositionEvent(_Envelope, tag="position", frozen=True, kw_only=True):
    kind: ClassVar[Literal["position"]] = "position"
    payload: Position


class ReadingsEvent(_Envelope, tag="readings", frozen=True, kw_only=True):
    kind: ClassVar[Literal["readings"]] = "readings"
    payload: Readings


class StatusEvent(_Envelope, tag="status", frozen=True, kw_only=True):
    kind: ClassVar[Literal["status"]] = "status"
    payload: Status


class DetectionEvent(_Envelope, tag="detection", frozen=True, kw_only=True):
    kind: ClassVar[Literal["detection"]] = "detection"
    payload: Detection


class DetectionTransitionEvent(_Envelope, tag="detection.transition", frozen=True, kw_only=True):
    kind: ClassVar[Literal["detection.transition"]] = "detection.transition"
    payload: DetectionTransition


class DetectionPurgedEvent(_Envelope, tag="detection.purged", frozen=True, kw_only=True):
    kind: ClassVar[Literal["detection.purged"]] = "detection.purged"
    payload: DetectionPurged


class ResponderEvent(_Envelope, tag="responder", frozen=True, kw_only=True):
    kind: ClassVar[Literal["responder"]] = "responder"
    payload: Responder


class ResponderCallEvent(_Envelope, tag="responder.call", frozen=True, kw_only=True):
    kind: ClassVar[Literal["responder.call"]] = "responder.call"
    payload: ResponderCall


class WarningEvent(_Envelope, tag="warning", frozen=True, kw_only=True):
    kind: ClassVar[Literal["warning"]] = "warning"
    payload: Warning


class WeatherEvent(_Envelope, tag="weather", frozen=True, kw_only=True):
    kind: ClassVar[Literal["weather"]] = "weather"
    payload: WeatherObservation


class JournalEvent(_Envelope, tag="journal", frozen=True, kw_only=True):
    kind: ClassVar[Literal["journal"]] = "journal"
    payload: JournalEntry


class AckEvent(_Envelope, tag="ack", frozen=True, kw_only=True):
    kind: ClassVar[Literal["ack"]] = "ack"
    payload: Acknowledgement


class AlertEvent(_Envelope, tag="alert", frozen=True, kw_only=True):
    kind: ClassVar[Literal["alert"]] = "alert"
    payload: Alert


class HazardEvent(_Envelope, tag="hazard.drawn", frozen=True, kw_only=True):
    kind: ClassVar[Literal["hazard.drawn"]] = "hazard.drawn"
    payload: Hazard


class HazardRemovedEvent(_Envelope, tag="hazard.removed", frozen=True, kw_only=True):
    kind: ClassVar[Literal["hazard.removed"]] = "hazard.removed"
    payload: HazardRemoved


class VideoStreamEvent(_Envelope, tag="video.stream", frozen=True, kw_only=True):
    kind: ClassVar[Literal["video.stream"]] = "video.stream"
    payload: VideoStream


class VideoSegmentEvent(_Envelope, tag="video.segment", frozen=True, kw_only=True):
    kind: ClassVar[Literal["video.segment"]] = "video.segment"
    payload: VideoSegment


class ClockEvent(_Envelope, tag="clock", frozen=True, kw_only=True):
    kind: ClassVar[Literal["clock"]] = "clock"
    payload: Tick = field(default_factory=Tick)


Event = (
    EntityRegisteredEvent
    | EntityRemovedEvent
    | PositionEvent
    | ReadingsEvent
    | StatusEvent
    | DetectionEvent
    | DetectionTransitionEvent
    | DetectionPurgedEvent
    | ResponderEvent
    | ResponderCallEvent
    | WarningEvent
    | WeatherEvent
    | JournalEvent
    | AckEvent
    | AlertEvent
    | HazardEvent
    | HazardRemovedEvent
    | VideoStreamEvent
    | VideoSegmentEvent
    | ClockEvent
)
EventKind = Literal[
    "entity.registered",
    "entity.removed",
    "position",
    "readings",
    "status",
    "detection",
    "detection.transition",
    "detection.purged",
    "responder",
    "responder.call",
    "warning",
    "weather",
    "journal",
    "ack",
    "alert",
    "hazard.drawn",
    "hazard.removed",
    "video.stream",
    "video.segment",
    "clock",
]

_ENCODER = msgspec.json.Encoder()
_ONE: msgspec.json.Decoder[Event] = msgspec.json.Decoder(Event)
_MANY: msgspec.json.Decoder[list[Event]] = msgspec.json.Decoder(list[Event])

InvalidInput = msgspec.DecodeError  # what every parser raises: malformed or invalid
_E = TypeVar("_E", bound=_Model)
_T = TypeVar("_T")


def decode(decoder: msgspec.json.Decoder[_T], data: str | bytes) -> _T:
    """`decoder.decode`, with broken UTF-8 reported as `InvalidInput` like any bad input."""
    try:
        return decoder.decode(data)
    except UnicodeDecodeError as exc:
        raise msgspec.DecodeError("JSON is malformed: a string is not valid UTF-8") from exc


def parse_event(data: str | bytes) -> Event:
    """Decode and validate one event (raises `InvalidInput` naming the path)."""
    return decode(_ONE, data)


def parse_events(data: str | bytes) -> list[Event]:
    return decode(_MANY, data)


def event_to_json(event: Event) -> bytes:
    return _ENCODER.encode(event)


def dump_events(events: Sequence[Event]) -> bytes:
    return _ENCODER.encode(events)


def with_seq(event: _E, seq: int | None) -> _E:
    """The same event with its log position (what the bus stamps)."""
    return msgspec.structs.replace(event, seq=seq)


def checked(record: _E) -> _E:
    """`record`, validated against its constraints as decoding would.

    For code that builds events from input no decoder has validated (the fast path,
    calling the class, does not check).
    """
    return msgspec.convert(msgspec.to_builtins(record), type(record))


def to_plain(record: msgspec.Struct) -> Any:
    """JSON-ready builtins (datetimes as RFC 3339 strings)."""
    return msgspec.to_builtins(record)
