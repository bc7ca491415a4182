"""Cursor-on-Target out: the cockpit's picture as CoT 2.0 events for TAK clients.

Types (see `encode_*`): drones `a-f-A-M-H-Q` (rotary UAV; `a-f-A-M-F-Q` when the
entity's meta says `airframe=fixed_wing`), robots `a-f-G-E-V-U-R`, units `a-f-G-U-C`
(an entity that came from TAK keeps its own type, from meta `cot_type`); detections of
people `b-r-f-h-c` (casualty), of fire or hotspots `a-h-G` (hostile ground: danger),
others `b-m-p-s-p-i` (point of interest); drawn hazards as `u-d-f` (closed freehand
polygon, `<link point>` vertices) or `u-d-c-c` (circle); removals as `t-x-d-d`. Stale
after `STALE_S` per kind. Never any personal data: positions, types, callsigns,
categories and hazard shapes only (no detection summary, snapshot or `personal`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cockpit.events import (
    DetectionEvent,
    DetectionTransitionEvent,
    EntityRegisteredEvent,
    EntityRemovedEvent,
    Event,
    HazardEvent,
    HazardRemovedEvent,
    PositionEvent,
    StatusEvent,
)
from feeds.cot import OWN_PREFIX, TYPE_PATTERN, kind_for_type

__all__ = [
    "STALE_S",
    "Outgoing",
    "PictureView",
    "encode_delete",
    "encode_detection",
    "encode_entity",
    "encode_hazard",
    "encode_pong",
    "picture_to_cot",
    "refresh_to_cot",
]

STALE_S: Mapping[str, float] = {
    "drone": 15.0,
    "robot": 30.0,
    "unit": 60.0,
    "detection": 600.0,
    "hazard": 600.0,
}


# --- encoding --------------------------------------------------------------------------

_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;"})
_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _q(value: object) -> str:
    """An attribute value, escaped (and control characters XML cannot carry removed)."""
    return _CTRL.sub("", str(value)).translate(_ESCAPES)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _head(uid: str, typ: str, how: str, now: datetime, stale_s: float) -> str:
    t = _iso(now)
    return (
        f'<event version="2.0" uid="{_q(uid)}" type="{_q(typ)}" how="{how}" time="{t}" '
        f'start="{t}" stale="{_iso(now + timedelta(seconds=stale_s))}">'
    )


def _point(lat: float, lon: float, hae: float | None = None, ce: float | None = None) -> str:
    hae_s = f"{hae:.1f}" if hae is not None else "9999999.0"
    ce_s = f"{ce:.1f}" if ce is not None else "9999999.0"
    return f'<point lat="{lat:.7f}" lon="{lon:.7f}" hae="{hae_s}" ce="{ce_s}" le="9999999.0"/>'


def _entity_type(kind: str, meta: Mapping[str, str]) -> str | None:
    own = meta.get("cot_type")
    if own and TYPE_PATTERN.match(own):
        return own  # came from TAK: it keeps its own symbol
    if kind == "drone":
        return "a-f-A-M-F-Q" if meta.get("airframe") == "fixed_wing" else "a-f-A-M-H-Q"
    if kind == "robot":
        return "a-f-G-E-V-U-R"
    if kind == "unit":
        return "a-f-G-U-C"
    return None  # sensors and people (responders are personal data) stay in the cockpit


def encode_entity(entity: Mapping[str, Any], now: datetime) -> bytes | None:
    """A picture entity (as `Situation.entities` holds it) as CoT; None if it has no
    position or its kind does not go out."""
    lat, lon = entity.get("lat"), entity.get("lon")
    typ = _entity_type(entity.get("kind", ""), entity.get("meta") or {})
    if lat is None or lon is None or typ is None:
        return None
    kind = kind_for_type(typ) or "unit"
    callsign = entity.get("callsign") or entity["id"]
    parts = [
        _head(OWN_PREFIX + entity["id"], typ, "m-g", now, STALE_S.get(kind, 60.0)),
        _point(lat, lon, entity.get("alt_m"), entity.get("accuracy_m")),
        f'<detail><contact callsign="{_q(callsign)}"/>',
    ]
    course, speed = entity.get("heading_deg"), entity.get("speed_mps")
    if course is not None or speed is not None:
        parts.append(f'<track course="{course or 0.0:.1f}" speed="{speed or 0.0:.2f}"/>')
    battery = (entity.get("status") or {}).get("battery_pct")
    if battery is not None:
        parts.append(f'<status battery="{round(battery)}"/>')
    parts.append('<precisionlocation geopointsrc="GPS" altsrc="GPS"/></detail></event>')
    return "".join(parts).encode()


_PEOPLE = ("person", "people", "human", "casualty", "fall", "sturz", "notfall", "emergency")
_FIRE = ("fire", "hotspot", "smoke", "brand", "feuer", "rauch", "glut")


def _detection_type(category: str) -> str:
    c = category.lower()
    if any(w in c for w in _PEOPLE):
        return "b-r-f-h-c"
    if any(w in c for w in _FIRE):
        return "a-h-G"
    return "b-m-p-s-p-i"


def encode_detection(det: Mapping[str, Any], now: datetime) -> bytes | None:
    """A detection as CoT: its place, category and state, nothing personal. None when
    it has no place; a dismissed or closed one goes out as a removal."""
    uid = f"{OWN_PREFIX}det.{det['id']}"
    if det.get("state") in ("dismissed", "closed"):
        return encode_delete(uid, now)
    lat, lon = det.get("lat"), det.get("lon")
    if lat is None or lon is None:
        return None
    category = str(det.get("category", ""))
    label = f"{category} ({det.get('state', 'new')})"
    return (
        _head(uid, _detection_type(category), "m-f", now, STALE_S["detection"])
        + _point(lat, lon)
        + f'<detail><contact callsign="{_q(label)}"/>'
        + f"<remarks>{_q(category)} {_q(det.get('source', ''))}</remarks></detail></event>"
    ).encode()


_COLOURS = {"critical": -65536, "warning": -23296, "info": -256}  # ARGB: red, orange, yellow


def _translucent(argb: int) -> int:
    """The same colour at 25 % opacity, as the signed 32-bit int TAK writes."""
    v = (argb & 0x00FFFFFF) | 0x40000000
    return v - (1 << 32) if v >= 1 << 31 else v


def encode_hazard(hazard: Mapping[str, Any], now: datetime) -> list[bytes]:
    """A drawn hazard as CoT shapes: each polygon a closed `u-d-f`, a point with a
    `radius` (metres) a `u-d-c-c` circle. Other geometries send nothing."""
    geom = hazard.get("geometry") or {}
    gtype = geom.get("type")
    coords: Any = geom.get("coordinates")
    label = _q(hazard.get("label") or "Gefahrenbereich")
    colour = _COLOURS.get(str(hazard.get("severity")), -65536)
    base = f"{OWN_PREFIX}hz.{hazard['id']}"
    out: list[bytes] = []
    try:
        if gtype == "Point" and geom.get("radius"):
            lon, lat = float(coords[0]), float(coords[1])
            r = float(geom["radius"])
            out.append(
                (
                    _head(base, "u-d-c-c", "h-e", now, STALE_S["hazard"])
                    + _point(lat, lon)
                    + f'<detail><shape><ellipse major="{r:.1f}" minor="{r:.1f}" angle="0"/>'
                    + f'</shape><contact callsign="{label}"/>'
                    + f'<strokeColor value="{colour}"/><strokeWeight value="3.0"/>'
                    + f'<fillColor value="{_translucent(colour)}"/>'
                    + "</detail></event>"
                ).encode()
            )
        elif gtype in ("Polygon", "MultiPolygon"):
            polygons = [coords] if gtype == "Polygon" else list(coords)
            for i, poly in enumerate(polygons):
                ring = [(float(p[1]), float(p[0])) for p in poly[0]]
                if len(ring) < 3:
                    continue
                if ring[0] != ring[-1]:
                    ring.append(ring[0])
                lat = sum(p[0] for p in ring[:-1]) / (len(ring) - 1)
                lon = sum(p[1] for p in ring[:-1]) / (len(ring) - 1)
                uid = base if i == 0 else f"{base}.{i}"
                links = "".join(f'<link point="{a:.7f},{b:.7f}"/>' for a, b in ring)
                out.append(
                    (
                        _head(uid, "u-d-f", "h-e", now, STALE_S["hazard"])
                        + _point(lat, lon)
                        + f'<detail>{links}<contact callsign="{label}"/>'
                        + f'<strokeColor value="{colour}"/><strokeWeight value="3.0"/>'
                        + '<labels_on value="true"/></detail></event>'
                    ).encode()
                )
    except (TypeError, ValueError, IndexError, KeyError):
        return []  # a geometry the map could not draw either
    return out


def encode_delete(uid: str, now: datetime) -> bytes:
    """TAK's removal of a marker or shape (`t-x-d-d`, linking the uid)."""
    return (
        _head(f"{uid}.delete", "t-x-d-d", "h-g-i-g-o", now, 20.0)
        + _point(0.0, 0.0)
        + f'<detail><link uid="{_q(uid)}" relation="none" type="none"/>'
        + "<__forcedelete/></detail></event>"
    ).encode()


def encode_pong(now: datetime) -> bytes:
    """The answer to a client's `t-x-c-t` ping."""
    return (
        _head("cockpit-pong", "t-x-c-t-r", "h-g-i-g-o", now, 20.0)
        + _point(0.0, 0.0)
        + "<detail/></event>"
    ).encode()


# --- the picture out -------------------------------------------------------------------


class PictureView(Protocol):
    """The parts of the picture that go out (`cockpit.situation.Situation` has them)."""

    @property
    def entities(self) -> Mapping[str, Mapping[str, Any]]: ...
    @property
    def detections(self) -> Mapping[str, Mapping[str, Any]]: ...
    @property
    def hazards(self) -> Mapping[str, Mapping[str, Any]]: ...


Outgoing = tuple[str, float | None, bytes]  # uid, stale at (None: a removal), the frame


def _uid_of(frame: bytes) -> str:
    start = frame.index(b'uid="') + 5
    return frame[start : frame.index(b'"', start)].decode()


def _items(frames: Iterable[bytes], stale_at: float) -> list[Outgoing]:
    return [(_uid_of(f), stale_at, f) for f in frames]


def picture_to_cot(
    events: Iterable[Event],
    picture: PictureView,
    now: datetime,
    relayed: Callable[[str], bool] = lambda entity: False,
) -> list[Outgoing]:
    """What a folded batch changes for TAK clients, as CoT frames.

    Entities whose CoT frames were relayed as they came (`relayed(entity)`) are not sent
    again. Each entity, detection and hazard goes out at most once per batch, as it is now.
    """
    entities: dict[str, None] = {}
    detections: dict[str, None] = {}
    out: list[Outgoing] = []
    ts = now.timestamp()
    for ev in events:
        if isinstance(ev, PositionEvent | StatusEvent | EntityRegisteredEvent):
            if ev.source.feed != "cot" or not relayed(ev.payload.entity):
                entities[ev.payload.entity] = None
        elif isinstance(ev, EntityRemovedEvent):
            entities.pop(ev.payload.entity, None)
            uid = OWN_PREFIX + ev.payload.entity
            out.append((uid, None, encode_delete(uid, now)))
        elif isinstance(ev, DetectionEvent | DetectionTransitionEvent):
            detections[ev.payload.id] = None  # a review step changes what TAK shows
        elif isinstance(ev, HazardEvent):
            hz = picture.hazards.get(ev.payload.id)
            if hz is not None:
                out.extend(_items(encode_hazard(hz, now), ts + STALE_S["hazard"]))
        elif isinstance(ev, HazardRemovedEvent):
            uid = f"{OWN_PREFIX}hz.{ev.payload.id}"
            out.append((uid, None, encode_delete(uid, now)))
    for entity in entities:
        ent = picture.entities.get(entity)
        if ent is None:
            continue
        frame = encode_entity(ent, now)
        if frame is not None:
            kind = kind_for_type(_entity_type(ent["kind"], ent.get("meta") or {}) or "") or "unit"
            out.append((OWN_PREFIX + entity, ts + STALE_S.get(kind, 60.0), frame))
    for det_id in detections:
        det = picture.detections.get(det_id)
        frame = encode_detection(det, now) if det is not None else None
        if frame is not None and det is not None:
            uid = f"{OWN_PREFIX}det.{det_id}"
            removed = det.get("state") in ("dismissed", "closed")
            out.append((uid, None if removed else ts + STALE_S["detection"], frame))
    return out


def refresh_to_cot(picture: PictureView, now: datetime) -> list[Outgoing]:
    """Hazards and detections again with fresh times (they change rarely, and TAK
    clients drop what passed its stale time)."""
    ts = now.timestamp()
    out: list[Outgoing] = []
    for hz in picture.hazards.values():
        out.extend(_items(encode_hazard(hz, now), ts + STALE_S["hazard"]))
    for det_id, det in picture.detections.items():
        if det.get("state") in ("dismissed", "closed"):
            continue
        frame = encode_detection(det, now)
        if frame is not None:
            out.append((f"{OWN_PREFIX}det.{det_id}", ts + STALE_S["detection"], frame))
    return out
