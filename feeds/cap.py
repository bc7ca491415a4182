"""OASIS CAP 1.2 (Common Alerting Protocol) warnings, as DWD and MoWaS/NINA send them → events.

Pure translation: XML bytes in, a `Warning` (and its `WarningEvent`) out, or `CapError`
naming the element path and the reason (`alert/info[2]/severity: 'Huge' is not one of
Extreme, Severe, Moderate, Minor, Unknown`). Nothing else is ever raised. Decisions, and why:

* XML goes only through defusedxml with DTDs forbidden (no entity expansion, no network),
  after the caller bounded its size. CAP 1.2's namespace is expected; CAP 1.1's is
  accepted too (its elements are a subset that reads the same).
* Required per the standard, else an error: alert/identifier, sender, sent, status,
  msgType, scope; info/category, event, urgency, severity, certainty; area/areaDesc; each
  geocode/eventCode/parameter's valueName and value. Enumerations are checked. Times must
  carry their offset (CAP forbids "Z"; it is accepted, a time without zone is not).
* `msgType` Ack and Error answer other messages and are no warnings: refused, with reason.
* `status` is kept. Actual and Exercise are shown (Exercise marked as such by the UI);
  System, Test and Draft are recorded but the picture never shows them, so a test message
  can neither raise nor cancel a real warning.
* A polygon is "lat,lon lat,lon …", a closed ring of ≥ 4 pairs → GeoJSON [lon, lat]; a
  circle "lat,lon radius_km" → a 48-sided polygon (radius 0: a 10 m one, a point the map
  can still show). An area's polygons and circles become one Polygon or MultiPolygon. An
  area with geocodes only (WARNCELLID, ARS, SHN …) keeps its name and codes, no geometry.
* A CAP identifier is unique only per sender, so the warning id is `cap-` and a hash of
  sender and identifier together (both stay in the record as they were sent).
  `references` is "sender,identifier,sent" triples; each becomes the id of the warning
  it names, derived the same way, so another sender cannot replace or cancel it.
* `to_event` sets `ends`, when the picture lets the warning go: its `expires`, else
  `sent` plus a maximum age (sources such as DWD's status zips drop an ended warning
  without a Cancel; without an end it would stay forever).
* The primary info, repeated at the top level, is the German one (language de or de-*),
  else the first. The warning expires with its last info (never, if one has no expires).
* Free text (headline, description, instruction, names) longer than the model allows is
  cut with "…"; lists over their bound are an error (a cut list would misplace a warning).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from xml.etree.ElementTree import Element, ParseError

import msgspec
from defusedxml import DefusedXmlException  # type: ignore[import-untyped]
from defusedxml.ElementTree import fromstring  # type: ignore[import-untyped]

from cockpit.events import (
    Source,
    Warning,
    WarningArea,
    WarningEvent,
    WarningInfo,
    checked,
    new_event_id,
)

__all__ = [
    "CAP11_NS",
    "CAP12_NS",
    "MAX_AGE_S",
    "CapError",
    "parse_alert",
    "parse_many",
    "to_event",
    "warning_id",
]

CAP12_NS: Final = "urn:oasis:names:tc:emergency:cap:1.2"
CAP11_NS: Final = "urn:oasis:names:tc:emergency:cap:1.1"

STATUS = ("Actual", "Exercise", "System", "Test", "Draft")
MSG_TYPES = ("Alert", "Update", "Cancel", "Ack", "Error")
SCOPES = ("Public", "Restricted", "Private")
CATEGORIES = (
    "Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra",
    "CBRNE", "Other",
)  # fmt: skip
URGENCY = ("Immediate", "Expected", "Future", "Past", "Unknown")
SEVERITY = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
CERTAINTY = ("Observed", "Likely", "Possible", "Unlikely", "Unknown")

# Bounds (the model's, checked here to name the element).
MAX_INFOS = 16
MAX_AREAS = 2000
MAX_SHAPES = 64  # polygons + circles per area
MAX_POINTS = 20_000  # pairs per polygon
MAX_CODES = 2000  # values per geocode name
MAX_REFERENCES = 500
CIRCLE_SIDES = 48
MAX_RADIUS_KM = 5000.0
EARTH_RADIUS_KM = 6371.0088
MAX_AGE_S = 86_400.0  # a warning without expires leaves the picture a day after it was sent

_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?([+-]\d\d:\d\d|Z)")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


class CapError(ValueError):
    """A message that is not well-formed XML or not valid CAP: `path` names the element,
    `reason` says what is wrong; `malformed` when the XML itself is broken."""

    def __init__(self, path: str, reason: str, *, malformed: bool = False) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
        self.malformed = malformed


def warning_id(sender: str, identifier: str) -> str:
    """The picture's id for a CAP sender and identifier (the same for the warning and for
    references to it). CAP forbids commas in both, so the pair joined by one is unambiguous."""
    return "cap-" + hashlib.sha256(f"{sender},{identifier}".encode()).hexdigest()[:40]


# --- XML helpers ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Node:
    """An element and its path for error messages, with CAP's namespace applied."""

    el: Element
    path: str
    ns: str

    def children(self, name: str) -> list[_Node]:
        tag = f"{{{self.ns}}}{name}"
        found = [c for c in self.el if c.tag == tag]
        if len(found) == 1:
            return [_Node(found[0], f"{self.path}/{name}", self.ns)]
        return [_Node(c, f"{self.path}/{name}[{i}]", self.ns) for i, c in enumerate(found, 1)]

    def text(self, name: str, *, required: bool = False) -> str | None:
        found = self.children(name)
        if not found:
            if required:
                raise CapError(f"{self.path}/{name}", "required element is missing")
            return None
        value = (found[0].el.text or "").strip()
        if required and not value:
            raise CapError(found[0].path, "required element is empty")
        return value

    def required(self, name: str) -> str:
        value = self.text(name, required=True)
        assert value is not None
        return value

    def texts(self, name: str) -> list[tuple[str, str]]:
        return [(n.path, (n.el.text or "").strip()) for n in self.children(name)]


def _one_of(path: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise CapError(path, f"{_quote(value)} is not one of {', '.join(allowed)}")
    return value


def _enum(node: _Node, name: str, allowed: tuple[str, ...]) -> str:
    return _one_of(f"{node.path}/{name}", node.required(name), allowed)


def _quote(value: str, limit: int = 60) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "…")


def _cut(value: str | None, limit: int) -> str:
    if not value:
        return ""
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _time(path: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    if not _TIME.fullmatch(value):
        raise CapError(
            path, f"{_quote(value)} is not a time with offset (2023-06-23T11:14:00+02:00)"
        )
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise CapError(path, f"{_quote(value)} is not a valid time: {exc}") from None


def _pairs(node: _Node, name: str, limit: int) -> dict[str, list[str]]:
    """`geocode`/`eventCode`/`parameter` children as {valueName: [values]}."""
    out: dict[str, list[str]] = {}
    for child in node.children(name):
        key = child.required("valueName")
        value = child.text("value")  # required, but may be empty (an unknown code)
        if value is None:
            raise CapError(f"{child.path}/value", "required element is missing")
        if len(key) > 64 or len(value) > 200:
            raise CapError(child.path, "valueName over 64 or value over 200 characters")
        values = out.setdefault(key, [])
        if len(out) > 32 or len(values) >= limit:
            raise CapError(child.path, f"more than 32 names or {limit} values of one name")
        values.append(value)
    return out


# --- geometry ---------------------------------------------------------------------------


def _point(path: str, pair: str) -> tuple[float, float]:
    lat_s, sep, lon_s = pair.partition(",")
    if not sep or not _NUMBER.fullmatch(lat_s) or not _NUMBER.fullmatch(lon_s):
        raise CapError(path, f"{_quote(pair)} is not a 'lat,lon' pair")
    lat, lon = float(lat_s), float(lon_s)
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise CapError(path, f"{_quote(pair)} is outside WGS 84 (lat ±90, lon ±180)")
    return lat, lon


def _polygon(path: str, text: str) -> list[list[float]]:
    """A CAP polygon → a GeoJSON ring ([lon, lat] pairs)."""
    pairs = text.split()
    if len(pairs) > MAX_POINTS:
        raise CapError(path, f"{len(pairs)} pairs; at most {MAX_POINTS}")
    if len(pairs) < 4:
        raise CapError(path, f"{len(pairs)} pairs; a polygon needs at least 4")
    points = [_point(path, pair) for pair in pairs]
    if points[0] != points[-1]:
        raise CapError(path, "the first and last pairs differ (a polygon must be closed)")
    return [[lon, lat] for lat, lon in points]


def _circle(path: str, text: str) -> list[list[float]]:
    """A CAP circle "lat,lon radius_km" → a ring approximating it (spherical earth)."""
    centre, _, radius_s = text.strip().partition(" ")
    radius_s = radius_s.strip()
    if not _NUMBER.fullmatch(radius_s):
        raise CapError(path, f"{_quote(text)} is not 'lat,lon radius_km'")
    lat, lon = _point(path, centre)
    radius = float(radius_s)
    if not 0.0 <= radius <= MAX_RADIUS_KM:
        raise CapError(path, f"radius {radius_s} km is not within 0 … {MAX_RADIUS_KM:g} km")
    d = max(radius, 0.01) / EARTH_RADIUS_KM  # angular distance; 0 km still shows
    la, lo = math.radians(lat), math.radians(lon)
    ring: list[list[float]] = []
    for i in range(CIRCLE_SIDES):
        b = 2 * math.pi * i / CIRCLE_SIDES
        lat2 = math.asin(math.sin(la) * math.cos(d) + math.cos(la) * math.sin(d) * math.cos(b))
        lon2 = lo + math.atan2(
            math.sin(b) * math.sin(d) * math.cos(la), math.cos(d) - math.sin(la) * math.sin(lat2)
        )
        lon_deg = (math.degrees(lon2) + 540.0) % 360.0 - 180.0
        ring.append([round(lon_deg, 6), round(math.degrees(lat2), 6)])
    ring.append(ring[0])
    return ring


def _area(node: _Node) -> WarningArea:
    name = node.required("areaDesc")
    rings = [_polygon(p, t) for p, t in node.texts("polygon")]
    rings += [_circle(p, t) for p, t in node.texts("circle")]
    if len(rings) > MAX_SHAPES:
        raise CapError(node.path, f"{len(rings)} polygons and circles; at most {MAX_SHAPES}")
    geometry: dict[str, Any] | None = None
    if len(rings) == 1:
        geometry = {"type": "Polygon", "coordinates": rings}
    elif rings:
        geometry = {"type": "MultiPolygon", "coordinates": [[r] for r in rings]}
    return WarningArea(
        name=_cut(name, 400), geometry=geometry, geocodes=_pairs(node, "geocode", MAX_CODES)
    )


# --- info and alert ---------------------------------------------------------------------


def _info(node: _Node) -> WarningInfo:
    categories = [_one_of(p, t, CATEGORIES) for p, t in node.texts("category")]
    if not categories:
        raise CapError(f"{node.path}/category", "required element is missing")
    if len(categories) > 12:
        raise CapError(f"{node.path}/category", "more than 12 categories")
    areas = node.children("area")
    if len(areas) > MAX_AREAS:
        raise CapError(f"{node.path}/area", f"{len(areas)} areas; at most {MAX_AREAS}")
    return WarningInfo(
        language=_cut(node.text("language") or "en-US", 35),
        category=categories,  # type: ignore[arg-type]  # checked against CATEGORIES
        event=_cut(node.required("event"), 400),
        urgency=_enum(node, "urgency", URGENCY),  # type: ignore[arg-type]
        severity=_enum(node, "severity", SEVERITY),  # type: ignore[arg-type]
        certainty=_enum(node, "certainty", CERTAINTY),  # type: ignore[arg-type]
        effective=_time(f"{node.path}/effective", node.text("effective")),
        onset=_time(f"{node.path}/onset", node.text("onset")),
        expires=_time(f"{node.path}/expires", node.text("expires")),
        sender_name=_cut(node.text("senderName"), 400),
        headline=_cut(node.text("headline"), 400),
        description=_cut(node.text("description"), 4000),
        instruction=_cut(node.text("instruction"), 4000),
        web=_cut(node.text("web"), 400),
        event_codes={k: v[-1] for k, v in _pairs(node, "eventCode", 64).items()},
        parameters={k: v[-1] for k, v in _pairs(node, "parameter", 64).items()},
        areas=[_area(a) for a in areas],
    )


def _references(path: str, text: str | None) -> list[str]:
    if not text:
        return []
    out: list[str] = []
    for triple in text.split():
        parts = triple.split(",")
        if len(parts) != 3 or not parts[0] or not parts[1]:
            raise CapError(path, f"{_quote(triple)} is not 'sender,identifier,sent'")
        ref = warning_id(parts[0], parts[1])
        if ref not in out:
            out.append(ref)
    if len(out) > MAX_REFERENCES:
        raise CapError(path, f"{len(out)} references; at most {MAX_REFERENCES}")
    return out


def _root(data: bytes | str) -> _Node:
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ParseError, DefusedXmlException) as exc:
        raise CapError("alert", f"not well-formed XML: {exc}", malformed=True) from None
    except (ValueError, LookupError, UnicodeError, TypeError) as exc:  # odd encodings
        raise CapError("alert", f"not readable XML: {exc}", malformed=True) from None
    tag = root.tag if isinstance(root.tag, str) else ""
    for ns in (CAP12_NS, CAP11_NS):
        if tag == f"{{{ns}}}alert":
            return _Node(root, "alert", ns)
    raise CapError("alert", f"the root element is {_quote(tag)}, not a CAP 1.2 alert ({CAP12_NS})")


def _primary(infos: list[WarningInfo]) -> WarningInfo | None:
    for info in infos:
        lang = info.language.lower()
        if lang == "de" or lang.startswith("de-"):
            return info
    return infos[0] if infos else None


def parse_alert(data: bytes | str) -> Warning:
    """One CAP alert → a checked `Warning`; anything else → `CapError`."""
    alert = _root(data)
    identifier = alert.required("identifier")
    if any(c in identifier for c in " ,&<") or len(identifier) > 400:
        raise CapError("alert/identifier", f"{_quote(identifier)} has a space, comma, & or <")
    sender = alert.required("sender")
    if any(c in sender for c in " ,&<"):
        raise CapError("alert/sender", f"{_quote(sender)} has a space, comma, & or <")
    sent = _time("alert/sent", alert.required("sent"))
    status = _enum(alert, "status", STATUS)
    msg_type = _enum(alert, "msgType", MSG_TYPES)
    _enum(alert, "scope", SCOPES)
    if msg_type in ("Ack", "Error"):
        raise CapError("alert/msgType", f"{msg_type!r} answers a message; it is no warning")
    references = _references("alert/references", alert.text("references"))
    info_nodes = alert.children("info")
    if len(info_nodes) > MAX_INFOS:
        raise CapError("alert/info", f"{len(info_nodes)} info blocks; at most {MAX_INFOS}")
    infos = [_info(n) for n in info_nodes]
    main = _primary(infos) or WarningInfo(language="de-DE")
    ends = [i.expires for i in infos]
    expires = None if not ends or None in ends else max(e for e in ends if e is not None)
    warning = Warning(
        id=warning_id(sender, identifier),
        sender=_cut(sender, 200),
        identifier=identifier,
        sent=sent,
        status=status,  # type: ignore[arg-type]  # checked against STATUS
        msg_type=msg_type,  # type: ignore[arg-type]
        references=references,
        event=_cut(main.event, 200),
        severity=main.severity,
        urgency=main.urgency,
        certainty=main.certainty,
        onset=main.onset or main.effective,
        expires=expires,
        headline=main.headline,
        description=main.description,
        language=main.language,
        areas=main.areas,
        infos=infos,
    )
    try:
        return checked(warning)
    except msgspec.ValidationError as exc:  # a bound this module missed: still an answer
        raise CapError("alert", f"not representable: {exc}") from None


def parse_many(
    docs: Iterable[tuple[str, bytes]],
) -> tuple[list[Warning], list[tuple[str, CapError]]]:
    """Several documents (a folder, a zip): the valid warnings oldest first (an Update
    then follows the warning it replaces), and each error with its document's origin."""
    good: list[Warning] = []
    bad: list[tuple[str, CapError]] = []
    for origin, data in docs:
        try:
            good.append(parse_alert(data))
        except CapError as exc:
            bad.append((origin, exc))
    good.sort(key=lambda w: w.sent.timestamp() if w.sent else 0.0)
    return good, bad


def to_event(
    warning: Warning,
    *,
    incident: str,
    device: str,
    received_at: datetime,
    max_age_s: float = MAX_AGE_S,
) -> WarningEvent:
    """The warning as an event; it was observed when it was sent. It ends when it
    expires, else `max_age_s` after it was sent (decided here, so a replay is the same)."""
    ends = warning.expires or (warning.sent or received_at) + timedelta(seconds=max_age_s)
    return WarningEvent(
        id=new_event_id(),
        incident=incident,
        source=Source(feed="cap", device=device),
        observed_at=warning.sent or received_at,
        received_at=received_at,
        payload=msgspec.structs.replace(warning, ends=ends),
    )
