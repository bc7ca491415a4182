"""Cursor-on-Target (CoT 2.0 XML, TAK protocol version 0) in: framing, parsing, type
mapping, events. Pure: no sockets here (those are in `feeds.cot_server`).

In. A TCP stream carries `<event>` documents back to back, with nothing between them but
maybe whitespace and XML prologs. `Framer` cuts them out with a bytes scan (cheap: one
regex search per boundary), never parses across two events, resyncs at the next
`<event` after garbage or a truncated event, and drops an event larger than its limit
without losing the stream. Each frame is then parsed through defusedxml's SAX reader
(DTDs, entities and external references refused; 3x faster than its ElementTree
facade, which runs the pure-Python parser): the common plain frame through one
long-lived reader (`_streamed`), anything else, or in doubt, alone (`_sax`).

Mapping decisions, and why:

* An atom (`a-…`) becomes a `position` of entity `uid` (kept as is when it is a valid
  `Id`, else a stable sanitised form with a hash of the original), plus `entity.registered`
  (kind, callsign, CoT type, group, device) the first time the uid is seen or when one of
  those changes, plus a `status` with the battery when it changes.
* Kind from the type: air (`a-?-A…`) → drone; ground equipment (`a-?-G-E…`) → robot,
  except vehicles (`a-?-G-E-V…`) → unit, but `a-?-G-E-V-U-R` (a robot) → robot; anything
  else (`a-?-G-U-C…` people on foot, all others) → unit.
* callsign from `detail/contact@callsign` (else `detail/uid@Droid`), speed (m/s) and course
  from `detail/track`, battery from `detail/status@battery` (else a UAS Tool drone's
  `detail/vehicle` remaining/max capacity). `point@hae` is taken as the altitude,
  `point@ce` as the accuracy; CoT's 9999999 ("unknown") leaves them unset. Optional values
  out of range are left unset rather than failing the event.
* Rejected, with the element and attribute named: a missing or bad uid/type/time/stale or
  point; `stale` already past; `time` more than a day old or more than 10 min ahead.
* `how` is optional (UAS Tool sends none); `version` must be 2.x when present.
* `t-x-c-t` (a ping) is answered with `t-x-c-t-r`; other non-atoms (chat, drawings,
  deletions) are not used.
* The cockpit's own events, coming back through a TAK server, carry uids with
  `OWN_PREFIX` and are ignored (no loop).

Out (the picture as CoT): `feeds.cot_out`.
"""

from __future__ import annotations

import hashlib
import math
import pyexpat
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import msgspec
from defusedxml import expatreader  # type: ignore[import-untyped]
from defusedxml.common import DefusedXmlException  # type: ignore[import-untyped]

from cockpit.events import (
    Context,
    EntityKind,
    EntityRegistered,
    EntityRegisteredEvent,
    Event,
    Position,
    PositionEvent,
    Source,
    Status,
    StatusEvent,
    new_event_id,
)

__all__ = [
    "MAX_EVENT_BYTES",
    "OWN_PREFIX",
    "TYPE_PATTERN",
    "Auth",
    "CotError",
    "CotEvent",
    "CotTranslator",
    "Framer",
    "entity_id",
    "kind_for_type",
    "parse",
    "parse_auth",
    "split_events",
]

MAX_EVENT_BYTES = 64 * 1024  # ATAK's largest common events (routes, shapes) stay far below
OWN_PREFIX = "cockpit."  # uids of what the cockpit sends; coming back, they are an echo
MAX_AGE = timedelta(days=1)
MAX_AHEAD = timedelta(minutes=10)
UNKNOWN = 9_999_999.0  # CoT's "not known" for hae, ce, le


class CotError(ValueError):
    """A CoT message that cannot be used; `field` names the element/attribute."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    def summary(self) -> str:
        """The message without the values in it: a key for counting rejects by kind."""
        return f"{self.field}: {_VALUES.sub('…', self.reason)}"


# quoted values, times and numbers, as the reasons above quote them
_VALUES = re.compile(r"'[^']*'|\"[^\"]*\"|\S*\d{4}-\d\d-\d\dT\S*|-?\b\d+(?:\.\d+)?\b")


# --- framing ---------------------------------------------------------------------------

_START = re.compile(rb"<(event|auth)[\s>/]")
_END = {b"event": re.compile(rb"</event\s*>"), b"auth": re.compile(rb"</auth\s*>")}
_PROLOG = re.compile(rb"<\?xml[^>]*\?>")
_TAIL = 8  # len(b"</event>"): an end tag cut at the end of a read


class Framer:
    """Incremental framing of one stream: bytes in, whole `<event>`/`<auth>` frames out.

    `feed()` returns the complete frames of what arrived so far; `problems` collects
    one reason per stretch of garbage, truncated event or oversized event, for the
    caller to count. Memory is bounded by `max_bytes` (plus one read).
    """

    def __init__(self, max_bytes: int = MAX_EVENT_BYTES) -> None:
        self.max_bytes = max_bytes
        self.buf = b""
        self.problems: list[str] = []
        self._skip_to: re.Pattern[bytes] | None = None  # inside an oversized frame
        self._garbage = False  # the current stretch of garbage is already counted

    def feed(self, data: bytes) -> list[bytes]:
        buf = self.buf + data if self.buf else data
        frames: list[bytes] = []
        pos, n = 0, len(buf)
        while pos < n:
            if self._skip_to is not None:
                start = _START.search(buf, pos)
                end = self._skip_to.search(buf, pos)
                if end is not None and (start is None or end.start() < start.start()):
                    pos, self._skip_to = end.end(), None
                    continue
                if start is None:
                    pos = max(pos, n - _TAIL)
                    break
                pos, self._skip_to = start.start(), None  # a new event begins: resync
            m = _START.search(buf, pos)
            if m is None:
                # keep what may begin a start tag or a prolog cut off by this read
                keep = buf.rfind(b"<", max(pos, n - self.max_bytes))
                keep = n if keep < 0 else keep
                self._junk(buf[pos:keep])
                pos = keep
                break
            j = m.start()
            if j > pos:
                self._junk(buf[pos:j])
            self._garbage = False
            kind = m.group(1)
            end = _END[kind].search(buf, m.end())
            nxt = _START.search(buf, m.end(), end.start() if end is not None else n)
            if nxt is not None:  # another event starts before this one ended
                self.problems.append(f"truncated {kind.decode()}: another starts before its end")
                pos = nxt.start()
                continue
            if end is None:
                if n - j > self.max_bytes:
                    self.problems.append(f"{kind.decode()} too large: over {self.max_bytes} bytes")
                    self._skip_to = _END[kind]
                    pos = n
                else:
                    pos = j
                break
            if end.end() - j > self.max_bytes:
                self.problems.append(f"{kind.decode()} too large: over {self.max_bytes} bytes")
            else:
                frames.append(buf[j : end.end()])
            pos = end.end()
        self.buf = buf[pos:] if pos < n else b""
        return frames

    def _junk(self, chunk: bytes) -> None:
        if self._garbage or not _PROLOG.sub(b"", chunk).strip():
            return
        self._garbage = True
        self.problems.append("garbage between events")


def split_events(body: bytes, max_bytes: int = MAX_EVENT_BYTES) -> tuple[list[bytes], list[str]]:
    """All frames of a complete body (an HTTP POST), and what was wrong around them."""
    framer = Framer(max_bytes)
    frames = framer.feed(body)
    if framer.buf.strip() and not framer._garbage:
        framer.problems.append("truncated event: the body ends inside it")
    return frames, framer.problems


# --- parsing ---------------------------------------------------------------------------

# Detail children whose attributes are read; everything else is skipped unread.
_DETAIL = frozenset({"contact", "track", "status", "__group", "takv", "uid", "vehicle"})


_TOP = frozenset({"point", "cot"})


class _Collect:
    """Attributes of the root, its `point` and the detail children above."""

    __slots__ = ("_parent", "attrs", "depth", "root", "roots")

    def __init__(self) -> None:
        self.depth = 0
        self.root = ""
        self.roots = 0  # elements at depth 1: more than one is not a document
        self.attrs: dict[str, dict[str, str]] = {}
        self._parent = ""

    def start(self, name: str, attrs: dict[str, str]) -> None:
        self.depth += 1
        depth = self.depth
        if depth == 2:
            self._parent = name
            if name in _TOP and name not in self.attrs:
                self.attrs[name] = attrs
        elif depth == 3:
            if self._parent == "detail" and name in _DETAIL and name not in self.attrs:
                self.attrs[name] = attrs
        elif depth == 1:
            self.roots += 1
            if self.roots == 1:
                self.root = name
                self.attrs[""] = attrs

    def end(self, name: str) -> None:
        self.depth -= 1


_local = threading.local()


def _sax(frame: bytes) -> _Collect:
    """Parse with defusedxml's expat reader (DTDs, entities and external references
    refused by its handlers), our element handlers set on its expat parser directly:
    the SAX layer's per-element wrapping cost a third of the parse."""
    handler = _Collect()
    reader = getattr(_local, "reader", None)
    if reader is None:  # one per thread, reused: making one costs as much as a parse
        reader = _local.reader = expatreader.create_parser()
        reader.forbid_dtd = True  # CoT has no DTD: one is an attack or a mistake
    reader.reset()  # a fresh expat parser with the defusing handlers installed
    expat = reader._parser
    expat.StartElementHandler = handler.start
    expat.EndElementHandler = handler.end
    try:
        expat.Parse(frame, True)
    except DefusedXmlException as exc:
        raise CotError("xml", f"refused: {type(exc).__name__}") from exc
    except pyexpat.ExpatError as exc:
        raise CotError("xml", f"not well-formed: {pyexpat.ErrorString(exc.code)}") from exc
    except (ValueError, UnicodeError) as exc:
        raise CotError("xml", f"not well-formed: {exc}") from exc
    return handler


# Making the defused expat parser for each frame was a fifth of `_sax` in the profile at
# 5,000 events/s (~10 % alone). So the common frame goes through one long-lived parser
# instead, as a child of an element that is opened once and never closed: the same
# expat with the same defusing handlers, only no DTD can ever come (one is not allowed
# inside an element). It is trusted only when it is sure to agree with a parse of the
# frame alone: no `<!` or `<?` at all (no DTD, comment, CDATA or processing instruction
# that could stay open past the frame's end), exactly one root (`_Collect.roots`), the
# frame begins with the root's "<" and ends with an end tag that left no element open,
# i.e. the root's. Any error or doubt drops that parser and the frame goes through
# `_sax`, which gives the verdict.
_WRAPPER = b"<frames>"
_REUSE = 10_000  # frames per long-lived parser: expat's counters and buffers stay small
_ENDS = (b"</event>", b"</auth>")


class _Stream:
    __slots__ = ("expat", "used")

    def __init__(self) -> None:
        reader = expatreader.create_parser()
        reader.forbid_dtd = True
        reader.reset()
        self.expat = reader._parser
        # text is never read: no Python call per piece of text
        self.expat.CharacterDataHandler = None
        self.expat.Parse(_WRAPPER, False)
        self.used = 0


def _streamed(frame: bytes) -> _Collect | None:
    """What `_sax` would collect, or None: then ask `_sax`."""
    if not frame.startswith((b"<event", b"<auth")) or not frame.endswith(_ENDS):
        return None
    if b"<!" in frame or b"<?" in frame:
        return None
    stream: _Stream | None = getattr(_local, "stream", None)
    if stream is None or stream.used >= _REUSE:
        stream = _local.stream = _Stream()
    stream.used += 1
    handler = _Collect()
    expat = stream.expat
    expat.StartElementHandler = handler.start
    expat.EndElementHandler = handler.end
    try:
        expat.Parse(frame, False)
    except Exception:  # any doubt: this parser is spent, the full parse decides
        _local.stream = None
        return None
    if handler.depth != 0 or handler.roots != 1:
        _local.stream = None  # e.g. it closed the wrapper, or left an element open
        return None
    return handler


def _collect(frame: bytes) -> _Collect:
    return _streamed(frame) or _sax(frame)


@dataclass(frozen=True, slots=True)
class Auth:
    """TAK's auth message: `<auth><cot username password uid/></auth>`."""

    username: str
    password: str
    uid: str


def parse_auth(frame: bytes) -> Auth:
    h = _collect(frame)
    if h.root != "auth":
        raise CotError("auth", f"expected <auth>, got <{h.root}>")
    cot = h.attrs.get("cot")
    if cot is None:
        raise CotError("auth/cot", "missing")
    for name in ("username", "password"):
        if not cot.get(name):
            raise CotError(f"auth/cot@{name}", "missing")
    return Auth(cot["username"], cot["password"], cot.get("uid", ""))


class CotEvent(msgspec.Struct, frozen=True, kw_only=True):
    """What the cockpit uses of one CoT event (validated). A Struct, not a frozen
    dataclass: built once per message, and a frozen dataclass's `__init__` cost a
    fifth of the whole parse."""

    uid: str
    type: str
    how: str | None
    time: datetime
    start: datetime
    stale: datetime
    lat: float
    lon: float
    hae: float | None = None
    ce: float | None = None
    callsign: str | None = None
    course: float | None = None
    speed: float | None = None
    battery: float | None = None
    group: str | None = None
    role: str | None = None
    platform: str | None = None
    device: str | None = None

    @property
    def is_ping(self) -> bool:
        return self.type == "t-x-c-t"

    @property
    def is_echo(self) -> bool:
        return self.uid.startswith(OWN_PREFIX)


def _time(attrs: Mapping[str, str], name: str) -> datetime:
    raw = attrs.get(name)
    if not raw:
        raise CotError(f"event@{name}", "missing")
    try:
        t = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise CotError(f"event@{name}", f"{raw[:40]!r} is not an ISO 8601 time") from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t  # CoT times are UTC


def _num(attrs: Mapping[str, str], element: str, name: str) -> float | None:
    """An optional number; None when absent, not a number, or CoT's "unknown"."""
    raw = attrs.get(name)
    if raw is None:
        return None
    try:
        v = float(raw)
    except ValueError:
        return None
    return v if math.isfinite(v) and v != UNKNOWN else None


def _within(v: float | None, lo: float, hi: float) -> float | None:
    return v if v is not None and lo <= v <= hi else None


def _required(attrs: Mapping[str, str], element: str, name: str, lo: float, hi: float) -> float:
    raw = attrs.get(name)
    if raw is None:
        raise CotError(f"{element}@{name}", "missing")
    try:
        v = float(raw)
    except ValueError:
        raise CotError(f"{element}@{name}", f"{raw[:40]!r} is not a number") from None
    if not (lo <= v <= hi):  # also NaN
        raise CotError(f"{element}@{name}", f"{raw[:40]!r} is out of range ({lo:g} to {hi:g})")
    return v


def _text(v: str | None, limit: int = 64) -> str | None:
    v = (v or "").strip()
    return v[:limit] if v else None


TYPE_PATTERN = re.compile(r"^[a-z](-[A-Za-z0-9.]{1,8}){0,12}$")


def parse(frame: bytes, now: datetime) -> CotEvent:
    """One `<event>` frame → `CotEvent`; raises `CotError` naming the element/attribute.

    `now` is the server clock: a stale event and absurd times are refused.
    """
    h = _collect(frame)
    if h.root != "event":
        raise CotError("event", f"expected <event>, got <{h.root}>")
    ev = h.attrs[""]
    version = ev.get("version")
    if version is not None and not (version == "2" or version.startswith("2.")):
        raise CotError("event@version", f"{version[:20]!r} unsupported (2.0 expected)")
    uid = (ev.get("uid") or "").strip()
    if not uid or len(uid) > 256:
        raise CotError("event@uid", "missing" if not uid else "longer than 256 characters")
    typ = ev.get("type") or ""
    if not TYPE_PATTERN.match(typ):
        raise CotError("event@type", f"{typ[:40]!r} is not a CoT type" if typ else "missing")
    time, stale = _time(ev, "time"), _time(ev, "stale")
    start = _time(ev, "start") if ev.get("start", ev["time"]) != ev["time"] else time
    if stale < now:
        raise CotError("event@stale", f"{ev['stale']} is already past: stale")
    if time < now - MAX_AGE:
        raise CotError("event@time", f"{ev['time']} is more than a day old")
    if time > now + MAX_AHEAD:
        raise CotError("event@time", f"{ev['time']} is more than 10 min ahead of the server")
    point = h.attrs.get("point")
    if point is None:
        raise CotError("event/point", "missing")
    lat = _required(point, "point", "lat", -90.0, 90.0)
    lon = _required(point, "point", "lon", -180.0, 180.0)
    contact = h.attrs.get("contact", {})
    track = h.attrs.get("track", {})
    group = h.attrs.get("__group", {})
    takv = h.attrs.get("takv", {})
    battery = _within(_num(h.attrs.get("status", {}), "status", "battery"), 0.0, 100.0)
    if battery is None and "vehicle" in h.attrs:  # UAS Tool: remaining / max capacity
        veh = h.attrs["vehicle"]
        rest = _num(veh, "vehicle", "batteryRemainingCapacity")
        full = _num(veh, "vehicle", "batteryMaxCapacity")
        if rest is not None and full:
            battery = _within(round(100.0 * rest / full, 1), 0.0, 100.0)
    course = _num(track, "track", "course")
    platform = " ".join(p for p in (takv.get("platform"), takv.get("version")) if p)
    return CotEvent(
        uid=uid,
        type=typ,
        how=_text(ev.get("how"), 16),
        time=time,
        start=start,
        stale=stale,
        lat=lat,
        lon=lon,
        hae=_within(_num(point, "point", "hae"), -500.0, 20000.0),
        ce=_within(_num(point, "point", "ce"), 0.0, 100000.0),
        callsign=_text(contact.get("callsign")) or _text(h.attrs.get("uid", {}).get("Droid")),
        course=None if course is None else _within(course % 360.0, 0.0, 360.0),
        speed=_within(_num(track, "track", "speed"), 0.0, 400.0),
        battery=battery,
        group=_text(group.get("name"), 32),
        role=_text(group.get("role"), 32),
        platform=_text(platform, 100),
        device=_text(takv.get("device"), 100),
    )


# --- type mapping ----------------------------------------------------------------------


def kind_for_type(cot_type: str) -> EntityKind | None:
    """The entity kind of an atom's type; None for anything that is not an atom."""
    parts = cot_type.split("-")
    if parts[0] != "a" or len(parts) < 3:
        return None
    dim, rest = parts[2], parts[3:]
    if dim == "A":
        return "drone"
    if dim == "G" and rest[:1] == ["E"]:
        if rest[1:2] == ["V"]:
            return "robot" if rest[2:4] == ["U", "R"] else "unit"
        return "robot"
    return "unit"


_ID_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$")
_ID_BAD = re.compile(r"[^A-Za-z0-9._:@/-]")


@lru_cache(maxsize=16384)
def entity_id(uid: str) -> str:
    """The entity id of a CoT uid: itself when it is a valid id, else a stable
    sanitised form that two different uids never share (a hash of the original)."""
    if _ID_OK.match(uid) and not uid.endswith("\n"):
        return uid
    digest = hashlib.sha256(uid.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"cot-{_ID_BAD.sub('-', uid)[:100]}-{digest}"


# --- translation -----------------------------------------------------------------------


_RegKey = tuple[str, str | None, str, str | None, str | None, str | None, str | None]


@dataclass
class _Known:
    registered: _RegKey
    battery: float | None = None


@lru_cache(maxsize=1024)
def _origin(device: str) -> tuple[Source, Context]:
    # Shared by every event of a device: records are immutable, so one copy serves all.
    return Source(feed="cot", device=device), Context(actor=f"device:{device}")


@dataclass
class CotTranslator:
    """CoT events → cockpit events. Remembers per uid what it announced (bounded), so
    `entity.registered` and `status` go out only when something changed."""

    incident: str
    max_known: int = 10_000
    _known: OrderedDict[str, _Known] = field(default_factory=OrderedDict)

    def to_events(self, cot: CotEvent, *, device: str, received_at: datetime) -> list[Event]:
        kind = kind_for_type(cot.type)
        if kind is None:
            return []
        entity = entity_id(cot.uid)
        src, ctx = _origin(device)
        incident, observed = self.incident, cot.time
        reg_key = (kind, cot.callsign, cot.type, cot.group, cot.role, cot.platform, cot.device)
        known = self._known.get(entity)
        out: list[Event] = []
        if known is None or known.registered != reg_key:
            reg = EntityRegistered(
                entity=entity, entity_kind=kind, callsign=cot.callsign, meta=_meta(cot, entity)
            )
            out.append(
                EntityRegisteredEvent(
                    id=new_event_id(),
                    incident=incident,
                    source=src,
                    observed_at=observed,
                    received_at=received_at,
                    context=ctx,
                    payload=reg,
                )
            )
            if known is None:
                known = _Known(reg_key)
                self._known[entity] = known
                if len(self._known) > self.max_known:
                    self._known.popitem(last=False)
            known.registered = reg_key
        else:
            self._known.move_to_end(entity)
        pos = Position(
            entity=entity,
            entity_kind=kind,
            callsign=cot.callsign,
            lat=cot.lat,
            lon=cot.lon,
            alt_m=cot.hae,
            heading_deg=cot.course,
            speed_mps=cot.speed,
            accuracy_m=cot.ce,
        )
        out.append(
            PositionEvent(
                id=new_event_id(),
                incident=incident,
                source=src,
                observed_at=observed,
                received_at=received_at,
                context=ctx,
                payload=pos,
            )
        )
        if cot.battery is not None and cot.battery != known.battery:
            known.battery = cot.battery
            st = Status(
                entity=entity, entity_kind=kind, callsign=cot.callsign, battery_pct=cot.battery
            )
            out.append(
                StatusEvent(
                    id=new_event_id(),
                    incident=incident,
                    source=src,
                    observed_at=observed,
                    received_at=received_at,
                    context=ctx,
                    payload=st,
                )
            )
        return out


def _meta(cot: CotEvent, entity: str) -> dict[str, str]:
    meta = {"cot_type": cot.type}
    if cot.uid != entity:
        meta["cot_uid"] = cot.uid[:200]
    for key, value in (
        ("group", cot.group),
        ("role", cot.role),
        ("platform", cot.platform),
        ("device", cot.device),
    ):
        if value:
            meta[key] = value
    return meta
