"""Cursor-on-Target: the real ATAK/iTAK/UAS Tool samples from ../shared/data (skipped when
absent), events written exactly as CoT 2.0 says, stream framing, a real TCP server with
TAK clients, the HTTP route, and hostile input."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cockpit.auth import AuthStore
from cockpit.events import EntityRegisteredEvent, PositionEvent, StatusEvent
from feeds.cot import (
    OWN_PREFIX,
    CotError,
    CotTranslator,
    Framer,
    _sax,
    _streamed,
    entity_id,
    kind_for_type,
    parse,
    parse_auth,
    split_events,
)
from feeds.cot_out import (
    encode_delete,
    encode_detection,
    encode_entity,
    encode_hazard,
    picture_to_cot,
)
from tests.serving import Served, serve


def _shared_data() -> Path:
    env = os.environ.get("COCKPIT_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


COT_DIR = _shared_data() / "cot"
NOW = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def pli(
    uid: str = "ANDROID-0123456789abcdef",
    *,
    callsign: str = "HLF 1",
    cot_type: str = "a-f-G-U-C",
    lat: float = 51.5271,
    lon: float = 7.4446,
    now: datetime = NOW,
    stale_s: float = 120.0,
    how: str | None = "m-g",
    version: str = "2.0",
    battery: int | None = 88,
    extra: str = "",
) -> bytes:
    """A position report as ATAK sends it (CoT 2.0: event, point, detail)."""
    how_attr = f' how="{how}"' if how is not None else ""
    status = f'<status battery="{battery}"/>' if battery is not None else ""
    return (
        f'<event version="{version}" uid="{uid}" type="{cot_type}"{how_attr} '
        f'time="{_iso(now)}" start="{_iso(now)}" stale="{_iso(now + timedelta(seconds=stale_s))}">'
        f'<point lat="{lat}" lon="{lon}" hae="112.5" ce="4.9" le="9999999.0"/>'
        f'<detail><contact callsign="{callsign}" endpoint="*:-1:stcp"/>'
        '<__group name="Red" role="Team Lead"/>'
        '<takv device="Pixel 7" platform="ATAK-CIV" os="34" version="5.1.0.12"/>'
        f'<track course="271.5" speed="1.25"/>{status}{extra}</detail></event>'
    ).encode()


# --- the real samples ------------------------------------------------------------------


def _sample(name: str) -> tuple[bytes, datetime]:
    path = COT_DIR / name
    if not path.is_file():
        pytest.skip(f"{path} not present (set COCKPIT_SHARED_DATA)")
    data = path.read_bytes()
    m = re.search(rb'time="([^"]+)"', data)
    assert m is not None
    return data, datetime.fromisoformat(m.group(1).decode()) + timedelta(seconds=1)


def _only(data: bytes) -> bytes:
    frames = Framer().feed(data)
    assert len(frames) == 1
    return frames[0]


def test_atak_pli_with_point_after_detail() -> None:
    data, now = _sample("fts_atak42_pli_a-f-G-U-C.xml")
    cot = parse(_only(data), now)
    assert (cot.uid, cot.type, cot.how) == ("ANDROID-R5CN70EYKQH", "a-f-G-U-C", "h-e")
    assert (cot.lat, cot.lon) == (39.664392, -76.675505)
    assert cot.callsign == "SPAC3SLOTH"
    assert cot.course == pytest.approx(159.146, abs=1e-3) and cot.speed == 0.0
    assert cot.battery == 76 and cot.group == "Teal"
    assert cot.ce == 11.0 and cot.hae == pytest.approx(178.844, abs=1e-3)
    events = CotTranslator("inc").to_events(cot, device="tak", received_at=now)
    reg, pos, status = events
    assert isinstance(reg, EntityRegisteredEvent) and reg.payload.entity_kind == "unit"
    assert reg.payload.meta["cot_type"] == "a-f-G-U-C"
    assert isinstance(pos, PositionEvent)
    assert (pos.payload.entity, pos.payload.callsign) == ("ANDROID-R5CN70EYKQH", "SPAC3SLOTH")
    assert isinstance(status, StatusEvent) and status.payload.battery_pct == 76


def test_itak_pli() -> None:
    data, now = _sample("nodecot_itak27_pli_a-f-G-E-V-C.xml")
    cot = parse(_only(data), now)
    assert cot.callsign == "DFPC-iSchmidt"
    assert kind_for_type(cot.type) == "unit"  # a-f-G-E-V-C: a vehicle, i.e. a unit
    assert (cot.lat, cot.lon) == (41.52309645, -107.72376567)
    assert cot.course == pytest.approx(137.235, abs=1e-3) and cot.speed == 0.0
    assert cot.ce is None  # 9999999: unknown
    assert cot.platform == "iTAK 2.7.0.609" and cot.battery == 100


def test_uas_tool_drone_version_2_without_how() -> None:
    data, now = _sample("nodecot_uastool_dji_mavic2ed_a-f-A-M-H-Q.xml")
    cot = parse(_only(data), now)
    assert cot.how is None
    assert kind_for_type(cot.type) == "drone"
    assert (cot.lat, cot.lon, cot.hae) == (39.1, -108.6, 1381.333)
    assert cot.course == 140.8 and cot.speed == 0.0
    assert cot.battery == pytest.approx(60.3, abs=0.1)  # 2216 of 3672 mAh
    events = CotTranslator("inc").to_events(cot, device="tak", received_at=now)
    pos = next(e for e in events if isinstance(e, PositionEvent))
    assert pos.payload.entity_kind == "drone" and pos.payload.entity == "2983J8B001V013"


def test_the_samples_are_stale_today() -> None:
    data, _ = _sample("fts_atak42_pli_a-f-G-U-C.xml")
    with pytest.raises(CotError) as err:
        parse(_only(data), NOW)
    assert err.value.field == "event@stale" and "stale" in err.value.reason


# --- hand-made CoT 2.0 -----------------------------------------------------------------


def test_a_full_pli() -> None:
    cot = parse(pli(), NOW)
    assert cot.uid == "ANDROID-0123456789abcdef" and cot.callsign == "HLF 1"
    assert (cot.lat, cot.lon, cot.hae, cot.ce) == (51.5271, 7.4446, 112.5, 4.9)
    assert (cot.course, cot.speed, cot.battery) == (271.5, 1.25, 88)
    assert cot.platform == "ATAK-CIV 5.1.0.12" and cot.device == "Pixel 7"
    assert cot.role == "Team Lead" and cot.time == NOW


@pytest.mark.parametrize(
    ("frame", "field", "words"),
    [
        (pli().replace(b' uid="ANDROID-0123456789abcdef"', b""), "event@uid", "missing"),
        (pli().replace(b'type="a-f-G-U-C"', b'type="not a type"'), "event@type", "not a CoT"),
        (pli().replace(b'<point lat="51.5271"', b'<point lat="91.0"'), "point@lat", "range"),
        (pli().replace(b'lon="7.4446"', b'lon="east"'), "point@lon", "not a number"),
        (re.sub(rb"<point[^>]*/>", b"", pli()), "event/point", "missing"),
        (pli(stale_s=-1), "event@stale", "stale"),
        (pli(now=NOW - timedelta(days=2), stale_s=4 * 86400), "event@time", "day old"),
        (pli(now=NOW + timedelta(hours=1)), "event@time", "ahead"),
        (pli(version="3.0"), "event@version", "unsupported"),
        (pli().replace(b'time="', b'time="yesterday', 1), "event@time", "ISO 8601"),
        (pli()[:-8], "xml", "not well-formed"),
        (b"<message>hi</message>", "event", "expected <event>"),
    ],
)
def test_bad_events_name_the_attribute(frame: bytes, field: str, words: str) -> None:
    with pytest.raises(CotError) as err:
        parse(frame, NOW)
    assert err.value.field == field and words in err.value.reason


def test_how_is_optional_and_version_2_is_accepted() -> None:
    assert parse(pli(how=None, version="2"), NOW).how is None


def test_dtds_and_entities_are_refused() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE event [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>' + pli(callsign="&b;")
    )
    with pytest.raises(CotError) as err:
        parse(bomb, NOW)
    assert err.value.field == "xml" and "refused" in err.value.reason


def test_optional_values_out_of_range_are_left_unset() -> None:
    frame = pli().replace(b'course="271.5" speed="1.25"', b'course="nan" speed="-3"')
    cot = parse(frame.replace(b'battery="88"', b'battery="180"'), NOW)
    assert (cot.course, cot.speed, cot.battery) == (None, None, None)


@pytest.mark.parametrize(
    ("cot_type", "kind"),
    [
        ("a-f-G-U-C", "unit"),
        ("a-f-G-U-C-I", "unit"),
        ("a-h-G", "unit"),
        ("a-f-A-M-H-Q", "drone"),
        ("a-n-A-C-F", "drone"),
        ("a-f-G-E-V-C", "unit"),
        ("a-f-G-E-V-U-R", "robot"),
        ("a-f-G-E-S", "robot"),
        ("a-f-S-X", "unit"),
        ("b-t-f", None),
        ("t-x-c-t", None),
        ("u-d-f", None),
    ],
)
def test_type_to_kind(cot_type: str, kind: str | None) -> None:
    assert kind_for_type(cot_type) == kind


def test_uids_become_stable_ids() -> None:
    assert entity_id("ANDROID-R5CN70EYKQH") == "ANDROID-R5CN70EYKQH"
    odd = entity_id("Joe's phone #1")
    assert odd == entity_id("Joe's phone #1") and odd.startswith("cot-Joe-s-phone--1-")
    assert entity_id("Joe's phone #2") != odd
    assert entity_id("x" * 300) != entity_id("x" * 301) and len(entity_id("x" * 300)) <= 128


def test_registered_and_status_only_when_they_change() -> None:
    tr = CotTranslator("inc")
    kinds = [type(e).__name__ for e in tr.to_events(parse(pli(), NOW), device="d", received_at=NOW)]
    assert kinds == ["EntityRegisteredEvent", "PositionEvent", "StatusEvent"]
    again = tr.to_events(parse(pli(lat=51.528), NOW), device="d", received_at=NOW)
    assert [type(e).__name__ for e in again] == ["PositionEvent"]
    renamed = tr.to_events(
        parse(pli(callsign="HLF 2", battery=50), NOW), device="d", received_at=NOW
    )
    assert [type(e).__name__ for e in renamed] == [
        "EntityRegisteredEvent",
        "PositionEvent",
        "StatusEvent",
    ]


def test_auth_message() -> None:
    auth = parse_auth(b'<auth><cot username="tak1" password="s3cret" uid="ANDROID-1"/></auth>')
    assert (auth.username, auth.password, auth.uid) == ("tak1", "s3cret", "ANDROID-1")
    with pytest.raises(CotError) as err:
        parse_auth(b'<auth><cot username="tak1"/></auth>')
    assert err.value.field == "auth/cot@password"


# --- framing ---------------------------------------------------------------------------


def test_an_event_split_at_every_byte_boundary() -> None:
    one, two = pli(uid="A-1"), pli(uid="B-2")
    stream = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' + one + b"\n" + two
    for cut in range(1, len(stream)):
        framer = Framer()
        frames = framer.feed(stream[:cut]) + framer.feed(stream[cut:])
        assert frames == [one, two], cut
        assert framer.problems == [], cut


def test_an_event_fed_one_byte_at_a_time() -> None:
    framer = Framer()
    frames = [f for b in pli() for f in framer.feed(bytes([b]))]
    assert frames == [pli()] and framer.problems == []


def test_several_events_in_one_read() -> None:
    events = [pli(uid=f"U-{i}") for i in range(20)]
    framer = Framer()
    assert framer.feed(b"".join(events)) == events


def test_a_truncated_event_then_a_good_one() -> None:
    framer = Framer()
    good = pli(uid="GOOD")
    frames = framer.feed(pli(uid="CUT")[:150] + good)
    assert frames == [good]
    assert framer.problems == ["truncated event: another starts before its end"]


def test_garbage_and_prologs_between_events() -> None:
    framer = Framer()
    stream = (
        b"\xbf\x01\x02 junk <<< "
        + pli(uid="A")
        + b'<?xml version="1.0"?>\r\n'
        + pli(uid="B")
        + b"more junk"
    )
    assert framer.feed(stream) == [pli(uid="A"), pli(uid="B")]
    assert framer.problems == ["garbage between events", "garbage between events"]


def test_an_oversized_event_is_dropped_and_the_stream_goes_on() -> None:
    framer = Framer(max_bytes=2048)
    big = pli(uid="BIG", extra="<remarks>" + "x" * 10_000 + "</remarks>")
    frames = []
    for i in range(0, len(big), 1000):
        frames += framer.feed(big[i : i + 1000])
    frames += framer.feed(pli(uid="NEXT"))
    assert frames == [pli(uid="NEXT")]
    assert framer.problems == ["event too large: over 2048 bytes"]
    assert len(framer.buf) < 2048


def test_a_body_with_a_cut_event() -> None:
    frames, problems = split_events(pli() + pli()[:100])
    assert frames == [pli()] and problems == ["truncated event: the body ends inside it"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=20))
def test_random_bytes_never_break_the_framer(chunks: list[bytes]) -> None:
    framer = Framer(max_bytes=4096)
    for chunk in [*chunks, pli()]:
        for frame in framer.feed(chunk):
            assert frame.startswith((b"<event", b"<auth"))
        assert len(framer.buf) <= 4096 + 300
    # after any garbage, a good event still comes through (at worst after a resync)
    assert pli() in framer.feed(pli())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600) | st.text(max_size=300).map(str.encode))
def test_random_bytes_only_raise_cot_errors(data: bytes) -> None:
    with contextlib.suppress(CotError):  # anything else fails the test
        parse(data, NOW)


_attr = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=300, deadline=None)
@given(uid=_attr, typ=_attr, lat=_attr, lon=_attr, t=_attr, callsign=_attr, course=_attr)
def test_events_with_random_values_only_raise_cot_errors(
    uid: str, typ: str, lat: str, lon: str, t: str, callsign: str, course: str
) -> None:
    def q(v: str) -> str:
        return v.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")

    frame = (
        f'<event version="2.0" uid="{q(uid)}" type="{q(typ)}" time="{q(t)}" start="{q(t)}" '
        f'stale="{q(t)}"><point lat="{q(lat)}" lon="{q(lon)}" hae="0" ce="1" le="1"/>'
        f'<detail><contact callsign="{q(callsign)}"/><track course="{q(course)}" speed="1"/>'
        "</detail></event>"
    ).encode()
    try:
        cot = parse(frame, NOW)
    except CotError:
        return
    CotTranslator("inc").to_events(cot, device="d", received_at=NOW)  # builds valid events


# --- the long-lived parser agrees with a fresh one ---------------------------------------


def _fresh(frame: bytes) -> tuple[str, dict[str, dict[str, str]]] | CotError:
    try:
        h = _sax(frame)
    except CotError as exc:
        return exc
    return h.root, h.attrs


def _agree(frame: bytes) -> bool:
    """The long-lived parser either declines or collects what a fresh parse does; a
    frame a fresh parse refuses it always declines. True when it took the frame."""
    got = _streamed(frame)
    want = _fresh(frame)
    if got is None:
        return False
    assert not isinstance(want, CotError), f"{frame!r} taken, but a fresh parse says {want}"
    assert (got.root, got.attrs) == want
    return True


@pytest.mark.parametrize("name", sorted(p.name for p in COT_DIR.glob("*.xml")) or ["none"])
def test_the_real_samples_take_the_fast_path_and_agree(name: str) -> None:
    data, _ = _sample(name)
    assert _agree(_only(data))


def test_odd_frames_fall_back_and_the_next_frame_is_fast_again() -> None:
    good = pli()
    odd = [
        pli(callsign="A &amp; B"),  # references: the fast path takes them, as expat does
        good.replace(b"<detail>", b"<detail><!-- c -->"),  # a comment: declined
        good + b"<!-- </event>",  # would leave a comment open past the frame: declined
        good.replace(b"</event>", b"</frames></event>"),  # closes the outer element
        good.replace(b"</event>", b"</event><event></event>"),  # two roots
        good.replace(b"<detail>", b"<detail><x>"),  # left open
        good.replace(b'lat="', b'lat="1" lat="'),  # duplicate attribute
        good.replace(b"HLF 1", b"HLF \xff"),  # not UTF-8
        good.replace(b"HLF 1", b"&undefined;"),
        b'<?xml version="1.0"?>' + good,
        b"<event/>" + b"x" * 10 + b"</event>",
    ]
    for frame in odd:
        _agree(frame)
        assert _agree(good), f"the fast path did not recover after {frame!r}"
        assert parse(good, NOW).callsign == "HLF 1"


_value = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_name = st.sampled_from(
    ["event", "point", "detail", "contact", "track", "status", "uid", "__group", "x", "a:b"]
)
_piece = st.one_of(
    _value.map(lambda v: v.encode("utf-8", "surrogatepass")),
    st.sampled_from(
        [
            b"<",
            b">",
            b"/>",
            b"</",
            b'"',
            b"'",
            b"=",
            b" ",
            b"&amp;",
            b"&#60;",
            b"&x;",
            b"<!--",
            b"-->",
            b"<![CDATA[",
            b"]]>",
            b"<?p",
            b"?>",
            b"</frames>",
            b"<frames>",
            b"<!DOCTYPE event>",
            b"\r\n",
            b"\t",
            b"\x00",
            b"\xef\xbf\xbe",
        ]
    ),
    _name.map(str.encode),
)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 2000), st.lists(_piece, max_size=6)), max_size=4),
    st.lists(_piece, max_size=8),
)
def test_any_frame_the_fast_path_takes_parses_the_same_alone(
    edits: list[tuple[int, list[bytes]]], tail: list[bytes]
) -> None:
    frame = pli()
    for at, pieces in edits:  # splice markup-ish pieces into a real event
        at %= len(frame)
        frame = frame[:at] + b"".join(pieces) + frame[at:]
    frame += b"".join(tail)
    if not frame.endswith(b"</event>") and tail:
        frame += b"</event>"
    _agree(frame)
    assert _agree(pli()), f"the fast path did not recover after {frame!r}"


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["uid", "type", "how", "time", "stale", "callsign", "z"]), _value
    ),
    st.booleans(),
)
def test_generated_events_agree(attrs: dict[str, str], quote_single: bool) -> None:
    def q(v: str) -> str:
        return v.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")

    q1, q2 = ("'", "'") if quote_single else ('"', '"')
    extra = " ".join(f"{k}={q1}{q(v).replace(q1, '&apos;')}{q2}" for k, v in attrs.items())
    frame = (
        f'<event version="2.0" {extra}><point lat="1" lon="2"/>'
        f"<detail>\n  <contact {extra}/>\n  <remarks>{q(attrs.get('z', ''))}</remarks>"
        "</detail></event>"
    ).encode("utf-8", "surrogatepass")
    _agree(frame)


# --- out -------------------------------------------------------------------------------


def _entity(**kw: Any) -> dict[str, Any]:
    base = {
        "id": "uav-1",
        "kind": "drone",
        "callsign": 'Drohne "1" <Nord>',
        "meta": {},
        "lat": 51.5272,
        "lon": 7.4447,
        "alt_m": 150.0,
        "heading_deg": 90.0,
        "speed_mps": 5.0,
        "accuracy_m": None,
        "status": {"battery_pct": 64.0},
    }
    return {**base, **kw}


def test_an_entity_goes_out_as_cot_that_parses_back() -> None:
    frame = encode_entity(_entity(), NOW)
    assert frame is not None
    cot = parse(frame, NOW)
    assert cot.uid == OWN_PREFIX + "uav-1" and cot.type == "a-f-A-M-H-Q" and cot.is_echo
    assert cot.callsign == 'Drohne "1" <Nord>' and (cot.lat, cot.lon) == (51.5272, 7.4447)
    assert (cot.course, cot.speed, cot.battery, cot.hae) == (90.0, 5.0, 64.0, 150.0)
    assert (cot.stale - cot.time).total_seconds() == 15.0


@pytest.mark.parametrize(
    ("kind", "meta", "cot_type"),
    [
        ("drone", {"airframe": "fixed_wing"}, "a-f-A-M-F-Q"),
        ("robot", {}, "a-f-G-E-V-U-R"),
        ("unit", {}, "a-f-G-U-C"),
        ("unit", {"cot_type": "a-f-G-E-V-C"}, "a-f-G-E-V-C"),  # from TAK: keeps its own
    ],
)
def test_types_out(kind: str, meta: dict[str, str], cot_type: str) -> None:
    frame = encode_entity(_entity(kind=kind, meta=meta), NOW)
    assert frame is not None and parse(frame, NOW).type == cot_type
    assert kind_for_type(cot_type) == kind  # and back


def test_sensors_people_and_unplaced_entities_stay_home() -> None:
    assert encode_entity(_entity(kind="sensor"), NOW) is None
    assert encode_entity(_entity(kind="person"), NOW) is None
    assert encode_entity(_entity(lat=None, lon=None), NOW) is None


def test_detections_go_out_without_personal_data() -> None:
    det = {
        "id": "adler-17",
        "source": "adler",
        "category": "person_fall",
        "lat": 51.52,
        "lon": 7.44,
        "state": "new",
        "summary": "Frau Müller, 82, gestürzt",
        "personal": {"name": "Erika Müller", "phone": "0231 1234"},
        "snapshot": "snapshots/a.jpg",
    }
    frame = encode_detection(det, NOW)
    assert frame is not None
    assert parse(frame, NOW).type == "b-r-f-h-c"
    for secret in (b"M\xc3\xbcller", b"0231", b"82", b"snapshots"):
        assert secret not in frame
    hot = encode_detection({**det, "category": "hotspot", "source": "video"}, NOW)
    assert hot is not None and parse(hot, NOW).type == "a-h-G"
    gone = encode_detection({**det, "state": "dismissed"}, NOW)
    assert gone is not None and parse(gone, NOW).type == "t-x-d-d"


def test_hazards_go_out_as_shapes() -> None:
    ring = [[7.44, 51.52], [7.45, 51.52], [7.45, 51.53], [7.44, 51.52]]
    polygon = {"id": "hz1", "label": "Gefahrenbereich", "severity": "critical"}
    (frame,) = encode_hazard(
        {**polygon, "geometry": {"type": "Polygon", "coordinates": [ring]}}, NOW
    )
    cot = parse(frame, NOW)
    assert cot.type == "u-d-f" and cot.uid == OWN_PREFIX + "hz.hz1"
    assert frame.count(b"<link point=") == 4
    circle = {"type": "Point", "coordinates": [7.44, 51.52], "radius": 50}
    (frame,) = encode_hazard({**polygon, "geometry": circle}, NOW)
    assert parse(frame, NOW).type == "u-d-c-c" and b'major="50.0"' in frame
    assert (
        encode_hazard({**polygon, "geometry": {"type": "Polygon", "coordinates": "x"}}, NOW) == []
    )


def test_a_removal() -> None:
    frame = encode_delete("cockpit.uav-1", NOW)
    assert parse(frame, NOW).type == "t-x-d-d" and b'<link uid="cockpit.uav-1"' in frame


# --- a real server ---------------------------------------------------------------------


class Tak:
    """A TAK client on a real TCP connection: reads into a buffer, splits on </event>."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.buf = b""
        self._scanned = 0  # how far `until` has split the buffer into events
        self._events: list[bytes] = []

    @classmethod
    async def connect(cls, port: int) -> Tak:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def auth(self, device: str, token: str) -> None:
        self.send(f'<auth><cot username="{device}" password="{token}" uid="x"/></auth>'.encode())

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def until(self, needle: bytes, timeout: float = 10.0) -> bytes:
        """Read until an event containing `needle` arrived; return that event.

        Each event is looked at once as it completes: a client catching up on a backlog
        of megabytes must not rescan it on every read (that took longer than the read)."""
        deadline = time.monotonic() + timeout
        for event in self._events:
            if needle in event:
                return event
        while True:
            while (end := self.buf.find(b"</event>", self._scanned)) != -1:
                end += len(b"</event>")
                start = self.buf.rfind(b"<event", self._scanned, end)
                self._scanned = end
                if start == -1:
                    continue  # the tail of an event cut before this client joined
                event = self.buf[start:end]
                self._events.append(event)
                if needle in event:
                    return event
            left = deadline - time.monotonic()
            assert left > 0, f"no event with {needle!r}; got {self.buf[-500:]!r}"
            try:
                data = await asyncio.wait_for(self.reader.read(65536), left)
            except TimeoutError:
                continue
            assert data, f"closed by the server while waiting for {needle!r}"
            self.buf += data

    async def closed(self, timeout: float = 10.0) -> bytes:
        """Everything until the server closes the connection."""
        data = await asyncio.wait_for(self.reader.read(), timeout)
        await self.close()
        return self.buf + data

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


def now_pli(uid: str, **kw: Any) -> bytes:
    return pli(uid, now=datetime.now(UTC), **kw)


@pytest.fixture
async def tak_server(tmp_path: Path) -> AsyncIterator[tuple[Served, int, dict[str, str]]]:
    async with serve(tmp_path / "data", cot_listen="tcp:127.0.0.1:0") as served:
        with AuthStore(served.settings.data_dir / "auth.sqlite") as auth:
            tokens = {
                "tak-a": auth.add_device("tak-a", ["cot"]),
                "tak-b": auth.add_device("tak-b", ["cot"]),
                "telemetry-only": auth.add_device("telemetry-only", ["telemetry"]),
            }
        port = int((await _health(served))["cot"]["listening"].rsplit(":", 1)[1])
        yield served, port, tokens


async def _health(served: Served) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=served.url) as c:
        return dict((await c.get("/healthz")).json())


async def _situation(served: Served) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=served.url) as c:
        await served.login(c)
        return dict((await c.get("/api/v1/situation")).json())


async def _wait_for(cond: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await cond()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_two_tak_clients_see_each_other_and_the_cockpit_sees_them(
    tak_server: tuple[Served, int, dict[str, str]],
) -> None:
    served, port, tokens = tak_server
    a, b = await Tak.connect(port), await Tak.connect(port)
    await a.auth("tak-a", tokens["tak-a"])
    await b.auth("tak-b", tokens["tak-b"])
    await _wait_for(lambda: _clients(served, 2))
    a.send(b'<?xml version="1.0" encoding="UTF-8"?>' + now_pli("ANDROID-aaaa", callsign="Trupp 1"))
    got = await b.until(b'uid="ANDROID-aaaa"')
    assert b'callsign="Trupp 1"' in got
    b.send(now_pli("ANDROID-bbbb", callsign="Trupp 2"))
    await a.until(b'uid="ANDROID-bbbb"')
    assert b"ANDROID-aaaa" not in a.buf  # a TAK server does not echo a client's own report

    async def unit_shown() -> dict[str, Any] | None:
        ents = {e["id"]: e for e in (await _situation(served))["entities"]}
        return ents.get("ANDROID-aaaa")

    unit = await _wait_for(unit_shown)
    assert unit["kind"] == "unit" and unit["callsign"] == "Trupp 1"
    assert (unit["lat"], unit["lon"]) == (51.5271, 7.4446)
    feed = (await _health(served))["feeds"]["cot"]
    assert feed["state"] == "listening" and feed["accepted"] == 2 and feed["rejected"] == 0
    assert feed["last_message_at"] is not None and feed["connections"] == 2
    # a late joiner gets the current picture at once
    c = await Tak.connect(port)
    await c.auth("tak-a", tokens["tak-a"])
    await c.until(b'uid="ANDROID-aaaa"')
    await c.until(b'uid="ANDROID-bbbb"')
    for t in (a, b, c):
        await t.close()


async def _clients(served: Served, n: int) -> bool:
    return bool((await _health(served))["cot"]["clients"] == n)


async def test_a_drone_from_native_telemetry_goes_out_as_cot(
    tak_server: tuple[Served, int, dict[str, str]],
) -> None:
    served, port, tokens = tak_server
    tak = await Tak.connect(port)
    await tak.auth("tak-a", tokens["tak-a"])
    await _wait_for(lambda: _clients(served, 1))
    message = {
        "entity": "uav-3",
        "kind": "drone",
        "callsign": "Drohne 3",
        "observed_at": datetime.now(UTC).isoformat(),
        "position": {"lat": 51.5281, "lon": 7.4432, "alt_m": 80.0, "heading_deg": 45.0},
        "status": {"battery_pct": 71},
    }
    async with httpx.AsyncClient(base_url=served.url) as c:
        r = await c.post("/api/v1/ingest/telemetry", json=message, headers=served.device())
        assert r.status_code == 202, r.text
    frame = await tak.until(b'uid="cockpit.uav-3"')
    cot = parse(frame, datetime.now(UTC))
    assert cot.type == "a-f-A-M-H-Q" and cot.callsign == "Drohne 3"
    assert (cot.lat, cot.lon, cot.course) == (51.5281, 7.4432, 45.0)
    await tak.close()


async def test_without_auth_nothing_goes_in_or_out(
    tak_server: tuple[Served, int, dict[str, str]],
) -> None:
    served, port, tokens = tak_server
    good = await Tak.connect(port)
    await good.auth("tak-a", tokens["tak-a"])
    good.send(now_pli("ANDROID-known"))
    await _wait_for(lambda: _clients(served, 1))
    anon = await Tak.connect(port)
    anon.send(now_pli("ANDROID-intruder"))
    assert await anon.closed() == b""  # nothing out, then closed
    for device, token in (
        ("tak-a", "cockpit-dev-wrong"),  # a bad token
        ("tak-b", tokens["tak-a"]),  # another device's token
        ("telemetry-only", tokens["telemetry-only"]),  # a token without feed cot
    ):
        bad = await Tak.connect(port)
        await bad.auth(device, token)
        bad.send(now_pli("ANDROID-intruder"))
        assert await bad.closed() == b""
    sit = await _situation(served)
    assert "ANDROID-intruder" not in {e["id"] for e in sit["entities"]}
    feed = (await _health(served))["feeds"]["cot"]
    assert feed["rejected"] == 4
    assert feed["reject_reasons"]["not authenticated: send <auth> first"] == 1
    await good.close()


async def test_a_trusted_network_needs_no_auth(tmp_path: Path) -> None:
    async with serve(
        tmp_path / "data", cot_listen="tcp:127.0.0.1:0", cot_trusted_networks=["127.0.0.0/8"]
    ) as served:
        port = int((await _health(served))["cot"]["listening"].rsplit(":", 1)[1])
        a, b = await Tak.connect(port), await Tak.connect(port)
        await _wait_for(lambda: _clients(served, 2))
        a.send(now_pli("ANDROID-trusted"))
        await b.until(b"ANDROID-trusted")
        await a.close()
        await b.close()


async def test_pings_echoes_garbage_and_giants_do_not_end_a_connection(
    tak_server: tuple[Served, int, dict[str, str]],
) -> None:
    served, port, tokens = tak_server
    tak = await Tak.connect(port)
    await tak.auth("tak-a", tokens["tak-a"])
    ping = now_pli("ANDROID-x-ping", cot_type="t-x-c-t", battery=None)
    tak.send(ping)
    await tak.until(b'type="t-x-c-t-r"')
    tak.send(b"\xbf\x01garbage" + now_pli("cockpit.uav-9"))  # garbage, then our own echo
    tak.send(now_pli("ANDROID-stale", stale_s=-5))
    tak.send(now_pli("ANDROID-giant", extra="<remarks>" + "x" * 70_000 + "</remarks>"))
    tak.send(now_pli("ANDROID-after"))
    await _wait_for(lambda: _has_entity(served, "ANDROID-after"))
    ids = {e["id"] for e in (await _situation(served))["entities"]}
    assert not ids & {"cockpit.uav-9", "uav-9", "ANDROID-stale", "ANDROID-giant"}
    health = await _health(served)
    reasons = health["feeds"]["cot"]["reject_reasons"]
    assert reasons["garbage between events"] == 1
    assert reasons["event too large: over 65536 bytes"] == 1
    assert any("stale" in r for r in reasons)
    assert health["cot"]["echoes"] == 1 and health["cot"]["pings"] == 1
    await tak.close()


async def _has_entity(served: Served, entity: str) -> bool:
    return entity in {e["id"] for e in (await _situation(served))["entities"]}


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(noise=st.lists(st.binary(min_size=1, max_size=2000), min_size=1, max_size=5))
def test_no_input_stops_the_listener(noise: list[bytes], cot_port: tuple[int, str]) -> None:
    port, token = cot_port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f'<auth><cot username="tak-h" password="{token}"/></auth>'.encode())
        for chunk in noise:
            try:
                s.sendall(chunk)
            except OSError:
                break  # the server may close a connection that sent nonsense
    # the listener still takes a good client
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f'<auth><cot username="tak-h" password="{token}"/></auth>'.encode())
        s.sendall(pli("ANDROID-ping", cot_type="t-x-c-t", now=datetime.now(UTC)))
        got = b""
        while b"t-x-c-t-r" not in got:
            data = s.recv(65536)
            assert data, "closed"
            got += data


@pytest.fixture(scope="module")
def cot_port(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.serving import serve_in_thread

    data = tmp_path_factory.mktemp("hypo") / "data"
    with serve_in_thread(data, cot_listen="tcp:127.0.0.1:0") as served:
        with AuthStore(served.settings.data_dir / "auth.sqlite") as auth:
            token = auth.add_device("tak-h", ["cot"])
        port = int(httpx.get(served.url + "/healthz").json()["cot"]["listening"].rsplit(":", 1)[1])
        yield port, token


# --- HTTP ------------------------------------------------------------------------------


async def test_http_ingest(tak_server: tuple[Served, int, dict[str, str]]) -> None:
    served, port, tokens = tak_server
    tak = await Tak.connect(port)
    await tak.auth("tak-b", tokens["tak-b"])
    await _wait_for(lambda: _clients(served, 1))
    auth = {"Authorization": f"Bearer {tokens['tak-a']}", "Content-Type": "application/xml"}
    async with httpx.AsyncClient(base_url=served.url) as c:
        body = now_pli("GW-1", callsign="ELW 1") + now_pli("GW-2", cot_type="a-f-A-M-H-Q")
        r = await c.post("/api/v1/ingest/cot", content=body, headers=auth)
        assert r.status_code == 202, r.text
        assert len(r.json()["seq"]) == 6  # registered, position, status each
        ents = {e["id"]: e for e in (await _situation(served))["entities"]}
        assert ents["GW-1"]["callsign"] == "ELW 1" and ents["GW-2"]["kind"] == "drone"
        # posted units go out to TAK clients too, with their own type
        frame = await tak.until(b'uid="cockpit.GW-1"')
        assert b'type="a-f-G-U-C"' in frame

        # all or nothing: the second event is stale, so the first is not applied either
        bad = now_pli("GW-3") + now_pli("GW-4", stale_s=-1)
        r = await c.post("/api/v1/ingest/cot", content=bad, headers=auth)
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "event[1]/event@stale"
        r = await c.post("/api/v1/ingest/cot", content=now_pli("GW-5")[:-3], headers=auth)
        assert r.status_code == 400 and "truncated" in r.json()["errors"][0]["reason"]
        r = await c.post(
            "/api/v1/ingest/cot",
            content=now_pli("GW-5").replace(b"<point", b"<point <"),
            headers=auth,
        )
        assert r.status_code == 400 and r.json()["errors"][0]["field"] == "event[0]/xml"
        json_auth = {**auth, "Content-Type": "application/json"}
        r = await c.post("/api/v1/ingest/cot", content=now_pli("GW-6"), headers=json_auth)
        assert r.status_code == 415
        r = await c.post("/api/v1/ingest/cot", content=now_pli("GW-7"))
        assert r.status_code == 401
        other = {**auth, "Authorization": f"Bearer {tokens['telemetry-only']}"}
        r = await c.post("/api/v1/ingest/cot", content=now_pli("GW-8"), headers=other)
        assert r.status_code == 403
        ids = {e["id"] for e in (await _situation(served))["entities"]}
        assert not ids & {"GW-3", "GW-4", "GW-5", "GW-6", "GW-7", "GW-8"}
        feed = (await _health(served))["feeds"]["cot"]
        assert feed["accepted"] == 2 and feed["rejected"] == 6
    await tak.close()


def test_the_settings_refuse_a_bad_network() -> None:
    from cockpit.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="cot_trusted_networks"):
        load_settings(None, cot_trusted_networks=["not-a-net"])
    with pytest.raises(SettingsError, match="cot_listen"):
        load_settings(None, cot_listen="udp:127.0.0.1:8087")


async def test_the_simulated_atak_users_walk_near_the_fire(
    tak_server: tuple[Served, int, dict[str, str]],
) -> None:
    from feeds.sim.cot import TAK_USERS, run_tak_users
    from feeds.sim.geo import haversine_m
    from feeds.sim.scenario import FIRE

    served, port, tokens = tak_server
    watcher = await Tak.connect(port)
    await watcher.auth("tak-b", tokens["tak-b"])
    sim = asyncio.create_task(run_tak_users("127.0.0.1", port, "tak-a", tokens["tak-a"]))
    try:
        for user in TAK_USERS:
            frame = await watcher.until(f'uid="{user.uid}"'.encode())
            assert parse(frame, datetime.now(UTC)).callsign == user.callsign

        async def both() -> list[dict[str, Any]]:
            ents = {e["id"]: e for e in (await _situation(served))["entities"]}
            return [ents[u.uid] for u in TAK_USERS if u.uid in ents]

        async def both_there() -> list[dict[str, Any]] | None:
            found = await both()
            return found if len(found) == 2 else None

        for ent, user in zip(await _wait_for(both_there), TAK_USERS, strict=True):
            assert ent["kind"] == "unit" and ent["callsign"] == user.callsign
            assert haversine_m(FIRE, (ent["lat"], ent["lon"])) == pytest.approx(
                user.radius_m, abs=1
            )
            assert ent["status"]["battery_pct"] == 100
    finally:
        sim.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sim
        await watcher.close()


async def test_the_link_to_a_tak_server_reconnects_and_carries_both_ways(tmp_path: Path) -> None:
    """A stand-in TAK server on a free port: the cockpit connects out, sends its picture,
    takes the server's users, and comes back after the server drops the link."""
    conns: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def accept(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await conns.put((r, w))

    tak_server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = tak_server.sockets[0].getsockname()[1]
    try:
        async with serve(tmp_path / "data", cot_send_to=f"tcp:127.0.0.1:{port}") as served:
            link = f"tcp:127.0.0.1:{port}"
            reader, writer = await asyncio.wait_for(conns.get(), 10)
            remote = Tak(reader, writer)
            assert (await _health(served))["feeds"]["cot"]["links"][link] == "connected"
            remote.send(now_pli("ANDROID-remote", callsign="Fremd 1"))
            await _wait_for(lambda: _has_entity(served, "ANDROID-remote"))
            message = {
                "entity": "robot-7",
                "kind": "robot",
                "observed_at": datetime.now(UTC).isoformat(),
                "position": {"lat": 51.5275, "lon": 7.4450},
            }
            async with httpx.AsyncClient(base_url=served.url) as c:
                r = await c.post("/api/v1/ingest/telemetry", json=message, headers=served.device())
                assert r.status_code == 202
            frame = await remote.until(b'uid="cockpit.robot-7"')
            assert b'type="a-f-G-E-V-U-R"' in frame
            await remote.close()  # the TAK server drops the link: the cockpit comes back

            async def state() -> str:
                return str((await _health(served))["feeds"]["cot"]["links"][link])

            reader, writer = await asyncio.wait_for(conns.get(), 15)
            await _wait_for(lambda: _is(state, "connected"))
            again = Tak(reader, writer)
            await again.until(b'uid="cockpit.robot-7"')  # the picture again, at once
            await again.close()
    finally:
        tak_server.close()
        while not conns.empty():  # the cockpit may have come back once more meanwhile
            await Tak(*conns.get_nowait()).close()
        await tak_server.wait_closed()


async def _is(get: Any, value: str) -> bool:
    return bool(await get() == value)


async def test_a_client_that_does_not_read_stalls_nobody_and_catches_up_later() -> None:
    """The CoT service alone (no cockpit): a bus stand-in, a tight client buffer."""
    from cockpit.health import FeedHealth
    from feeds.cot_server import CotServer, parse_networks

    published: list[int] = []

    async def publish(events: list[Any]) -> list[int]:
        published.extend(range(len(published) + 1, len(published) + len(events) + 1))
        return published[-len(events) :]

    async def committed(seq: int) -> bool:
        return True

    health = FeedHealth()
    server = CotServer(
        incident="inc",
        authenticate=lambda user, password: None,
        publish=publish,
        wait_committed=committed,
        health=health,
        trusted=parse_networks(["127.0.0.1/32"]),
        max_client_buffer=64 * 1024,
    )
    host, port = await server.listen("127.0.0.1", 0)
    try:
        slow_sock = socket.socket()
        slow_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow_sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(slow_sock, (host, port))
        fast, sender = await Tak.connect(port), await Tak.connect(port)
        await _until(lambda: len(server.clients) == 3)

        async def keep_reading() -> None:
            while data := await fast.reader.read(65536):
                fast.buf += data

        reading = asyncio.create_task(keep_reading())
        # more than the kernel's send buffer (up to 4 MiB on loopback) plus ours
        padding = "<remarks>" + "x" * 16_000 + "</remarks>"
        n = 600
        for i in range(n):
            sender.send(now_pli("ANDROID-sender", lat=51.0 + i / 10_000, extra=padding))
            if i % 20 == 0:
                await asyncio.sleep(0.02)  # several batches
        last = f'lat="{51.0 + (n - 1) / 10_000}"'.encode()
        await _until(lambda: last in fast.buf)  # the reader got everything
        reading.cancel()
        assert len(re.findall(rb"<event ", fast.buf)) == n
        assert server.stats.lagging >= 1 and server.stats.skipped_writes > 0
        assert server.stats.dropped_clients == 0
        # the slow one reads at last: it catches up to the newest position
        slow_r, slow_w = await asyncio.open_connection(sock=slow_sock)
        slow = Tak(slow_r, slow_w)
        sender.send(now_pli("ANDROID-sender", lat=52.5))
        # It first reads its backlog (what the kernel held for it): give it time on a busy box.
        await slow.until(b'lat="52.5"', timeout=30.0)
        for t in (fast, sender, slow):
            await t.close()
    finally:
        await server.aclose()


async def _until(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_a_connection_that_never_authenticates_is_closed() -> None:
    from cockpit.health import FeedHealth
    from feeds.cot_server import CotServer

    async def publish(events: list[Any]) -> list[int]:
        raise AssertionError("nothing may be published")

    async def committed(seq: int) -> bool:
        return True

    health = FeedHealth()
    server = CotServer(
        incident="inc",
        authenticate=lambda user, password: None,
        publish=publish,
        wait_committed=committed,
        health=health,
        auth_timeout_s=0.3,
    )
    _, port = await server.listen("127.0.0.1", 0)
    try:
        silent = await Tak.connect(port)
        silent.send(b"<?xml version='1.0'?>")  # a prolog, then nothing
        assert await silent.closed() == b""
        assert health.reasons["auth: none within the time allowed"] == 1
        assert health.connections == 0 and health.accepted == 0
    finally:
        await server.aclose()


def test_a_review_step_reaches_tak_clients() -> None:
    """A detection dismissed by a person leaves the TAK clients' maps at once, not at its
    device's next report."""
    from cockpit.events import Context, DetectionTransition, DetectionTransitionEvent, Source
    from cockpit.situation import Situation

    sit = Situation(incident="t")
    det = {"id": "det-1", "source": "adler", "category": "fall", "lat": 51.52, "lon": 7.44}
    sit.detections["det-1"] = {**det, "state": "dismissed"}
    step = DetectionTransitionEvent(
        incident="t",
        source=Source(feed="ui", device="el"),
        observed_at=NOW,
        received_at=NOW,
        context=Context(actor="el"),
        payload=DetectionTransition(id="det-1", to="dismissed"),
    )
    out = picture_to_cot([step], sit, NOW)
    assert len(out) == 1 and b'type="t-x-d-d"' in out[0][2]
