"""CAP 1.2 feed: messages shaped as OASIS CAP 1.2 says, the real DWD warning from
../shared/data (skipped when absent), the real route on a started server, the folder and
URL pollers against a real folder and a real HTTP server, and hostile input."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import subprocess
import threading
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cockpit.events import (
    ClockEvent,
    Source,
    Warning,
    WarningEvent,
    event_to_json,
    parse_event,
    with_seq,
)
from cockpit.geo import distance_m
from cockpit.situation import Situation, encode_snapshot
from feeds.cap import (
    CAP11_NS,
    CAP12_NS,
    CapError,
    parse_alert,
    parse_many,
    to_event,
    warning_id,
)
from feeds.cap_poll import (
    MAX_ENTRIES,
    MAX_UNPACKED_BYTES,
    CapPoller,
    FolderScan,
    read_archive,
)
from tests.serving import Served, serve, serve_in_thread

ROOT = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    env = os.environ.get("COCKPIT_SHARED_DATA")
    if env:
        return Path(env)
    return ROOT.parent / "shared" / "data"


DWD_DIR = _shared_data() / "cap"
DWD_IDENT = "2.49.0.0.276.0.DWD.PVW.1687511640000.0d1a4fb5-251a-46fc-aae3-a688d2021e71.MUL"
DWD_REF = "2.49.0.0.276.0.DWD.PVW.1687503060000.fc4f7fd9-80e7-4d71-969a-254be3e27e83.MUL"
DWD_ID = warning_id("opendata@dwd.de", DWD_IDENT)


def _dwd() -> bytes:
    files = sorted(DWD_DIR.glob("*.xml")) if DWD_DIR.is_dir() else []
    if not files:
        pytest.skip(f"the real DWD CAP sample is not in {DWD_DIR}")
    return files[0].read_bytes()


def cap_time(t: datetime) -> str:
    """CAP 1.2 dateTime: offset always given, "-00:00" for UTC (no "Z")."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S-00:00")


NOW = datetime.now(UTC).replace(microsecond=0)
POLYGON = "51.52,7.43 51.52,7.46 51.535,7.46 51.535,7.43 51.52,7.43"


def cap(
    identifier: str = "DE-NW-DO-W-001",
    *,
    msg_type: str = "Alert",
    status: str = "Actual",
    sender: str = "opendata@dwd.de",
    references: str = "",
    sent: datetime | None = None,
    expires: datetime | None = None,
    infos: str | None = None,
    ns: str = CAP12_NS,
) -> str:
    """An alert element by element in the order CAP 1.2 (section 3.2) gives."""
    sent = sent or NOW - timedelta(minutes=5)
    expires = expires or NOW + timedelta(hours=3)
    refs = f"<references>{references}</references>" if references else ""
    if infos is None:
        infos = info("de-DE", "STURMBÖEN", "Amtliche WARNUNG vor STURMBÖEN", expires=expires)
        infos += info("en-GB", "gusts", "Official WARNING of GUSTS", expires=expires)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="{ns}">
  <identifier>{identifier}</identifier>
  <sender>{sender}</sender>
  <sent>{cap_time(sent)}</sent>
  <status>{status}</status>
  <msgType>{msg_type}</msgType>
  <scope>Public</scope>
  {refs}
  {infos}
</alert>"""


def info(
    language: str,
    event: str,
    headline: str,
    *,
    severity: str = "Moderate",
    expires: datetime | None = None,
    areas: str | None = None,
) -> str:
    expires = expires or NOW + timedelta(hours=3)
    if areas is None:
        areas = f"""<area><areaDesc>Dortmund Hafen</areaDesc><polygon>{POLYGON}</polygon></area>
    <area><areaDesc>Stadt Dortmund</areaDesc>
      <geocode><valueName>WARNCELLID</valueName><value>105913000</value></geocode></area>"""
    return f"""<info>
    <language>{language}</language>
    <category>Met</category>
    <event>{event}</event>
    <urgency>Immediate</urgency>
    <severity>{severity}</severity>
    <certainty>Likely</certainty>
    <eventCode><valueName>II</valueName><value>52</value></eventCode>
    <onset>{cap_time(NOW - timedelta(minutes=5))}</onset>
    <expires>{cap_time(expires)}</expires>
    <senderName>Deutscher Wetterdienst</senderName>
    <headline>{headline}</headline>
    <description>Es treten Sturmböen auf.</description>
    {areas}
  </info>"""


def ref(identifier: str) -> str:
    return f"opendata@dwd.de,{identifier},{cap_time(NOW - timedelta(minutes=5))}"


def error_of(xml: str | bytes) -> CapError:
    with pytest.raises(CapError) as caught:
        parse_alert(xml)
    return caught.value


# --- the real DWD warning -------------------------------------------------------------


def test_real_dwd_warning_keeps_every_language_its_polygon_and_named_cells() -> None:
    w = parse_alert(_dwd())
    assert w.identifier == DWD_IDENT and w.sender == "opendata@dwd.de" and w.status == "Actual"
    assert w.id == DWD_ID and w.id.startswith("cap-")
    assert w.msg_type == "Update" and w.references == [warning_id("opendata@dwd.de", DWD_REF)]
    assert [i.language for i in w.infos] == ["de-DE", "en", "fr", "es", "ar", "ru", "tr", "pl"]
    # German by default at the top level ...
    assert (w.language, w.event, w.headline) == (
        "de-DE",
        "STARKREGEN",
        "Amtliche WARNUNG vor STARKREGEN",
    )
    assert (w.severity, w.urgency, w.certainty) == ("Moderate", "Immediate", "Likely")
    assert w.onset == datetime.fromisoformat("2023-06-23T11:14:00+02:00")
    assert w.expires == datetime.fromisoformat("2023-06-23T15:00:00+02:00")
    # ... and English where asked.
    en = w.infos[1]
    assert en.headline == "Official WARNING of HEAVY RAIN" and en.event == "heavy rain"
    assert en.category == ["Met"] and en.sender_name == "Deutscher Wetterdienst"
    assert en.event_codes["II"] == "61" and en.parameters["precipitation"] == "20-30 [l/m² in 6h]"
    assert all(len(i.areas) == 4 for i in w.infos)
    polygon, *cells = w.areas
    assert polygon.name == "polygonal event area" and polygon.geometry is not None
    ring = polygon.geometry["coordinates"][0]
    assert polygon.geometry["type"] == "Polygon" and len(ring) == 72  # as sent
    assert ring[0] == [12.172358, 52.625569] == ring[-1]  # GeoJSON: lon, lat
    assert [(a.name, a.geometry, a.geocodes) for a in cells] == [
        ("Stadt Havelsee", None, {"WARNCELLID": ["812069270"]}),
        ("Gemeinde Milower Land", None, {"WARNCELLID": ["812063189"]}),
        ("Gemeinde Beetzsee", None, {"WARNCELLID": ["812069018"]}),
    ]


def test_real_dwd_warning_round_trips_as_an_event() -> None:
    w = parse_alert(_dwd())
    event = to_event(w, incident="test", device="dwd", received_at=NOW)
    raw = event_to_json(event)
    again = parse_event(raw)
    assert again == event and event_to_json(again) == raw
    assert event.observed_at == w.sent


def test_page_shows_the_info_in_its_language_and_names_geocode_only_areas() -> None:
    """assets/stream.js's own warning list, run in node with the real DWD warning."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    w = parse_alert(_dwd())
    picture = json.loads(event_to_json(to_event(w, incident="t", device="d", received_at=NOW)))
    script = """
const fs = require("fs");
globalThis.window = { cockpitLive: { POINT_LAYERS: [], DOTS_ABOVE: 0 } };
globalThis.document = { readyState: "loading", addEventListener() {} };
eval(fs.readFileSync(process.argv[1], "utf8"));
const C = window.cockpit;
const w = JSON.parse(process.argv[2]);
C.picture = { warnings: new Map([[w.id, w]]) };
const out = {};
for (const lang of ["de", "en", "fr", "it"]) {
  C.cfg = { lang: lang, strings: { "warning.exercise": "EXERCISE" } };
  out[lang] = C.warnings(Date.parse("2023-06-23T12:00:00+02:00") / 1000);
}
out.expired = C.warnings(Date.parse("2023-06-23T15:00:01+02:00") / 1000);
console.log(JSON.stringify(out));
"""
    result = subprocess.run(
        [node, "-e", script, str(ROOT / "assets" / "stream.js"), json.dumps(picture["payload"])],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    shown = json.loads(result.stdout)
    assert shown["de"][0]["label"] == "Amtliche WARNUNG vor STARKREGEN"
    assert shown["en"][0]["label"] == "Official WARNING of HEAVY RAIN"
    assert shown["fr"][0]["event"] == "fortes pluies"
    assert shown["it"][0]["label"] == "Amtliche WARNUNG vor STARKREGEN"  # no Italian: German
    assert shown["en"][0]["places"] == [
        "Stadt Havelsee",
        "Gemeinde Milower Land",
        "Gemeinde Beetzsee",
    ]
    assert shown["expired"] == []


def test_page_drops_a_warning_without_expires_at_its_maximum_age() -> None:
    """assets/stream.js by its own clock: a warning without expires leaves at `ends`."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    sent = NOW - timedelta(minutes=5)
    body = info("de-DE", "STURMBÖEN", "Warnung").replace(
        f"<expires>{cap_time(NOW + timedelta(hours=3))}</expires>", ""
    )
    w = parse_alert(cap("W-1", sent=sent, infos=body))
    ev = to_event(w, incident="t", device="d", received_at=NOW, max_age_s=3600)
    payload = json.loads(event_to_json(ev))["payload"]
    assert payload["expires"] is None
    ends = (sent + timedelta(hours=1)).timestamp()
    script = """
const fs = require("fs");
globalThis.window = { cockpitLive: { POINT_LAYERS: [], DOTS_ABOVE: 0 } };
globalThis.document = { readyState: "loading", addEventListener() {} };
eval(fs.readFileSync(process.argv[1], "utf8"));
const C = window.cockpit;
const w = JSON.parse(process.argv[2]);
const ends = Number(process.argv[3]);
C.picture = { warnings: new Map([[w.id, w]]) };
C.cfg = { lang: "de", strings: {} };
console.log(JSON.stringify([C.warnings(ends - 1).length, C.warnings(ends).length]));
"""
    result = subprocess.run(
        [node, "-e", script, str(ROOT / "assets" / "stream.js"), json.dumps(payload), str(ends)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(result.stdout) == [1, 0]


# --- messages as CAP 1.2 says ---------------------------------------------------------


def test_a_hand_made_alert_parses_with_its_codes_and_a_circle() -> None:
    circle = """<area><areaDesc>Umkreis Hafen</areaDesc><circle>51.527,7.4445 2.5</circle>
      <geocode><valueName>ARS</valueName><value>059130000000</value></geocode>
      <geocode><valueName>ARS</valueName><value>059540000000</value></geocode></area>"""
    w = parse_alert(cap(infos=info("de-DE", "STURMBÖEN", "Warnung", areas=circle)))
    (area,) = w.areas
    assert area.geocodes == {"ARS": ["059130000000", "059540000000"]}
    assert area.geometry is not None and area.geometry["type"] == "Polygon"
    ring = area.geometry["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) == 49
    # Every vertex is 2.5 km from the centre (the project's own geodesy, another earth model).
    assert all(abs(distance_m((51.527, 7.4445), (lat, lon)) - 2500) < 10 for lon, lat in ring)


def test_cap_11_namespace_is_read_too() -> None:
    assert parse_alert(cap(ns=CAP11_NS)).event == "STURMBÖEN"


def test_the_first_info_leads_when_none_is_german() -> None:
    w = parse_alert(cap(infos=info("en-US", "gusts", "Gusts") + info("fr", "rafales", "Rafales")))
    assert (w.language, w.event) == ("en-US", "gusts")


def test_several_polygons_make_one_multipolygon_and_update_expiry_is_the_last() -> None:
    shape = f"<polygon>{POLYGON}</polygon>"
    two = f"<area><areaDesc>Zwei</areaDesc>{shape}{shape}</area>"
    late = NOW + timedelta(hours=9)
    w = parse_alert(
        cap(infos=info("de-DE", "A", "A", areas=two) + info("en", "A", "A", expires=late))
    )
    assert w.areas[0].geometry is not None and w.areas[0].geometry["type"] == "MultiPolygon"
    assert w.expires == late


def _without(element: str) -> str:
    return cap(infos=info("de-DE", "A", "A").replace(element, ""))


def _one_area(inner: str) -> str:
    return cap(infos=info("de-DE", "A", "A", areas=f"<area><areaDesc>x</areaDesc>{inner}</area>"))


SEVERITIES = "Extreme, Severe, Moderate, Minor, Unknown"
MISSING = "required element is missing"
BAD = [
    (cap().replace("<sender>opendata@dwd.de</sender>", ""), "alert/sender", MISSING),
    (
        cap().replace("<scope>Public</scope>", "<scope>Everyone</scope>"),
        "alert/scope",
        "'Everyone' is not one of Public, Restricted, Private",
    ),
    (cap(status="Real"), "alert/status", "'Real' is not one of Actual, Exercise"),
    (cap(msg_type="Ack"), "alert/msgType", "no warning"),
    (cap().replace("-00:00</sent>", "</sent>"), "alert/sent", "not a time with offset"),
    (
        cap(infos=info("de-DE", "A", "A") + info("en", "A", "A", severity="Huge")),
        "alert/info[2]/severity",
        f"'Huge' is not one of {SEVERITIES}",
    ),
    (_without("<category>Met</category>"), "alert/info/category", MISSING),
    (_without("<urgency>Immediate</urgency>"), "alert/info/urgency", MISSING),
    (_without("<areaDesc>Dortmund Hafen</areaDesc>"), "alert/info/area[1]/areaDesc", MISSING),
    (_one_area("<polygon>51,7 52,7 52,8 51,7.5</polygon>"), "alert/info/area/polygon", "closed"),
    (_one_area("<polygon>51,7 52,7 51,7</polygon>"), "alert/info/area/polygon", "at least 4"),
    (_one_area("<polygon>51,7 95,7 52,8 51,7</polygon>"), "alert/info/area/polygon", "WGS 84"),
    (_one_area("<circle>51,7</circle>"), "alert/info/area/circle", "'lat,lon radius_km'"),
    (cap(references="just-an-id"), "alert/references", "not 'sender,identifier,sent'"),
    (cap(ns="urn:oasis:names:tc:emergency:cap:9"), "alert", "not a CAP 1.2 alert"),
    ("<alert><unclosed></alert>", "alert", "not well-formed XML"),
]


@pytest.mark.parametrize(("xml", "path", "reason"), BAD)
def test_a_missing_or_invalid_element_is_named_with_the_reason(
    xml: str, path: str, reason: str
) -> None:
    exc = error_of(xml)
    assert exc.path == path and reason in exc.reason, (exc.path, exc.reason)


def test_entities_dtds_and_external_references_are_refused() -> None:
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        f'<alert xmlns="{CAP12_NS}"><identifier>&lol2;</identifier></alert>'
    )
    external = (
        '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        f'<alert xmlns="{CAP12_NS}"><identifier>&x;</identifier></alert>'
    )
    for xml in (laughs, external):
        exc = error_of(xml)
        assert exc.malformed and exc.path == "alert"


# --- the fold ------------------------------------------------------------------------


def _event(xml: str, received: datetime = NOW) -> WarningEvent:
    return to_event(parse_alert(xml), incident="test", device="dwd", received_at=received)


def _fold(*xmls: str) -> Situation:
    sit = Situation("test")
    for seq, xml in enumerate(xmls, 1):
        sit.apply(with_seq(_event(xml), seq))
    return sit


def _shown(sit: Situation) -> list[str]:
    return [w["identifier"] for w in sit.view(NOW.timestamp())["warnings"]]


def test_test_and_draft_messages_never_show_nor_cancel_a_real_warning() -> None:
    sit = _fold(
        cap("real"),
        cap("probe", status="Test"),
        cap("draft", status="Draft"),
        cap("cancel-test", status="Test", msg_type="Cancel", references=ref("real")),
        cap("drill", status="Exercise"),
    )
    assert _shown(sit) == ["real", "drill"]
    assert sit.view(NOW.timestamp())["warnings"][1]["status"] == "Exercise"


def test_an_update_that_expired_before_it_arrived_leaves_nothing_behind() -> None:
    past = NOW - timedelta(minutes=1)
    sit = _fold(cap("w1"), cap("w2", msg_type="Update", references=ref("w1"), expires=past))
    assert _shown(sit) == [] and sit.warnings == {}


def _ref(sender: str, identifier: str) -> str:
    return f"{sender},{identifier},{cap_time(NOW - timedelta(minutes=5))}"


def _keys(sit: Situation) -> list[tuple[str, str, str]]:
    return [
        (w["sender"], w["identifier"], w["status"]) for w in sit.view(NOW.timestamp())["warnings"]
    ]


def test_another_sender_and_an_exercise_cannot_touch_a_real_warning() -> None:
    dwd, drill = "opendata@dwd.de", "drill@other.example"
    sit = _fold(
        cap("W-1"),
        # The same identifier from another sender is another warning ...
        cap("W-1", sender=drill, status="Exercise"),
        # ... and its Cancel (naming its own W-1) leaves DWD's standing.
        cap(
            "C-1",
            sender=drill,
            status="Exercise",
            msg_type="Cancel",
            references=_ref(drill, "W-1"),
            infos="",
        ),
        # An exercise never touches a real warning, even from the same sender ...
        cap("C-2", status="Exercise", msg_type="Cancel", references=_ref(dwd, "W-1"), infos=""),
        cap("U-2", status="Exercise", msg_type="Update", references=_ref(dwd, "W-1")),
        # ... nor does an Exercise message that reuses a real warning's identifier.
        cap("W-1", status="Exercise", msg_type="Update"),
        # Another sender's Actual Cancel naming its own W-1 does not match DWD's W-1.
        cap("C-3", sender=drill, msg_type="Cancel", references=_ref(drill, "W-1"), infos=""),
    )
    assert _keys(sit) == [(dwd, "W-1", "Actual"), (dwd, "U-2", "Exercise")]
    (real,) = [w for w in sit.warnings.values() if w["status"] == "Actual"]
    assert real["msg_type"] == "Alert"
    # An exercise is cancelled by an exercise.
    sit.apply(
        with_seq(
            _event(
                cap(
                    "C-4",
                    status="Exercise",
                    msg_type="Cancel",
                    references=_ref(dwd, "U-2"),
                    infos="",
                )
            ),
            99,
        )
    )
    assert _keys(sit) == [(dwd, "W-1", "Actual")]


def test_a_cancelled_or_replaced_warning_delivered_again_stays_gone() -> None:
    """A folder and a URL, or a lagging status zip, deliver the Alert once more after its
    Cancel or Update: it must not come back, also after a snapshot and restore."""
    alert, update = cap("W-1"), cap("W-2", msg_type="Update", references=ref("W-1"))
    cancel = cap("C-1", msg_type="Cancel", references=ref("W-2"), infos="")
    sit = _fold(alert, update, alert)
    assert _shown(sit) == ["W-2"]
    sit = _fold(alert, update, cancel, alert, update)
    assert _shown(sit) == []
    half = _fold(alert, cancel.replace(ref("W-2"), ref("W-1")))
    snap = json.loads(encode_snapshot(half.snapshot()))
    again = Situation.restore(snap)
    again.apply(with_seq(_event(alert), 3))
    assert _shown(again) == [] and again.warnings_retired == half.warnings_retired
    # A snapshot from before this memory restores with none.
    del snap["warnings_retired"]
    assert Situation.restore(snap).warnings_retired == {}


def test_the_memory_of_replaced_warnings_ends_with_them() -> None:
    """Held until the replaced warning ends (else 48 h), so it stays bounded."""
    sit = _fold(cap("W-1"), cap("C-1", msg_type="Cancel", references=ref("W-1"), infos=""))
    (until,) = sit.warnings_retired.values()
    assert until == (NOW + timedelta(hours=3)).timestamp()  # W-1's expires
    sit.apply(
        with_seq(_event(cap("C-2", msg_type="Cancel", references=ref("never-seen"), infos="")), 3)
    )
    assert max(sit.warnings_retired.values()) == NOW.timestamp() + 48 * 3600
    later = NOW + timedelta(hours=49)
    sit.apply(
        with_seq(_event(cap("W-9", sent=later, expires=later + timedelta(hours=1)), later), 4)
    )
    assert sit.warnings_retired == {}


def _no_expiry(identifier: str, sent: datetime) -> str:
    body = info("de-DE", "STURMBÖEN", "Warnung").replace(
        f"<expires>{cap_time(NOW + timedelta(hours=3))}</expires>", ""
    )
    assert "<expires>" not in body
    return cap(identifier, sent=sent, infos=body)


def test_a_warning_without_expires_leaves_after_the_maximum_age() -> None:
    """DWD's status zips drop an ended warning without a Cancel: without expires it
    would stay forever. It leaves `max_age_s` after it was sent, in the view and by the
    clock (the fold's deadline), and an old one never shows."""
    sent = NOW - timedelta(minutes=5)
    w = parse_alert(_no_expiry("W-1", sent))
    assert w.expires is None
    ev = to_event(w, incident="test", device="dwd", received_at=NOW, max_age_s=3600)
    assert ev.payload.ends == sent + timedelta(hours=1)
    with_expiry = to_event(parse_alert(cap("W-2")), incident="t", device="d", received_at=NOW)
    assert with_expiry.payload.ends == with_expiry.payload.expires
    sit = Situation("test")
    sit.apply(with_seq(ev, 1))
    assert _shown(sit) == ["W-1"]
    ends = (sent + timedelta(hours=1)).timestamp()
    assert sit.next_deadline() == ends
    assert sit.view(ends - 1)["warnings"] != [] and sit.view(ends)["warnings"] == []
    tick = ClockEvent(
        incident="test",
        source=Source(feed="cockpit", device="clock"),
        observed_at=datetime.fromtimestamp(ends, UTC),
        received_at=datetime.fromtimestamp(ends, UTC),
    )
    sit.apply(with_seq(tick, 2))
    assert sit.warnings == {} and sit.next_deadline() is None
    # Sent longer ago than the maximum age: never shown.
    old = to_event(
        parse_alert(_no_expiry("W-3", NOW - timedelta(hours=2))),
        incident="t",
        device="d",
        received_at=NOW,
        max_age_s=3600,
    )
    sit.apply(with_seq(old, 3))
    assert sit.warnings == {}


# --- the route on a started server ----------------------------------------------------


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async with serve(tmp_path / "data", max_body_bytes=64 * 1024) as s:
        yield s


@contextlib.asynccontextmanager
async def logged_in(s: Served) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=s.url, timeout=20) as c:
        await s.login(c)
        yield c


XML = {"Content-Type": "application/cap+xml"}


async def post(c: httpx.AsyncClient, s: Served, xml: str | bytes, **headers: str) -> httpx.Response:
    return await c.post(
        "/api/v1/ingest/cap", content=xml, headers={**XML, **s.device("weather"), **headers}
    )


async def shown(c: httpx.AsyncClient) -> list[dict[str, Any]]:
    r = await c.get("/api/v1/situation")
    assert r.status_code == 200
    warnings: list[dict[str, Any]] = r.json()["warnings"]
    return warnings


async def cap_health(c: httpx.AsyncClient) -> dict[str, Any]:
    feeds: dict[str, Any] = (await c.get("/healthz")).json()["feeds"]
    return feeds.get("cap", {})


async def test_alert_then_update_then_cancel_through_the_route(served: Served) -> None:
    async with logged_in(served) as c:
        r = await post(c, served, cap("w1"))
        assert r.status_code == 202, r.text
        assert r.json()["identifier"] == "w1" and len(r.json()["seq"]) == 1
        (w,) = await shown(c)
        assert w["id"] == r.json()["id"] == warning_id("opendata@dwd.de", "w1")
        assert (w["identifier"], w["sender"]) == ("w1", "opendata@dwd.de")
        assert (w["event"], w["severity"]) == ("STURMBÖEN", "Moderate")
        assert w["headline"] == "Amtliche WARNUNG vor STURMBÖEN"
        assert [a["name"] for a in w["areas"]] == ["Dortmund Hafen", "Stadt Dortmund"]
        assert w["areas"][0]["geometry"]["coordinates"][0][0] == [7.43, 51.52]
        assert w["areas"][1] == {
            "name": "Stadt Dortmund",
            "geometry": None,
            "geocodes": {"WARNCELLID": ["105913000"]},
        }
        assert [i["language"] for i in w["infos"]] == ["de-DE", "en-GB"]

        update = cap(
            "w2",
            msg_type="Update",
            references=ref("w1"),
            infos=info(
                "de-DE", "ORKANBÖEN", "Amtliche UNWETTERWARNUNG vor ORKANBÖEN", severity="Extreme"
            ),
        )
        assert (await post(c, served, update, **{"Content-Type": "text/xml"})).status_code == 202
        assert [(w["identifier"], w["severity"]) for w in await shown(c)] == [("w2", "Extreme")]

        cancel = cap("w3", msg_type="Cancel", references=ref("w2"), infos="")
        assert (
            await post(c, served, cancel, **{"Content-Type": "application/xml"})
        ).status_code == 202
        assert await shown(c) == []

        health = await cap_health(c)
        assert health["accepted"] == 3 and health["rejected"] == 0
        assert health["state"] == "idle" and health["last_message_at"] is not None


async def test_an_expired_warning_is_not_in_the_situation(served: Served) -> None:
    old = cap("old", sent=NOW - timedelta(hours=5), expires=NOW - timedelta(hours=1))
    async with logged_in(served) as c:
        assert (await post(c, served, old)).status_code == 202
        assert (await post(c, served, cap("fresh"))).status_code == 202
        assert [w["identifier"] for w in await shown(c)] == ["fresh"]


async def test_bad_requests_are_named_counted_and_change_nothing(served: Served) -> None:
    async with logged_in(served) as c:
        bad_info = info("de-DE", "A", "A") + info("en", "A", "A", severity="Huge")
        r = await post(c, served, cap("x1", infos=bad_info))
        assert r.status_code == 422
        assert r.json()["errors"] == [
            {
                "field": "alert/info[2]/severity",
                "reason": "'Huge' is not one of Extreme, Severe, Moderate, Minor, Unknown",
            }
        ]
        r = await post(c, served, cap("x2").replace("<identifier>x2</identifier>", ""))
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "alert/identifier"
        r = await post(c, served, "<alert>")
        assert r.status_code == 400 and r.json()["errors"][0]["field"] == "alert"
        r = await post(c, served, cap("x3"), **{"Content-Type": "application/json"})
        assert r.status_code == 415 and r.json()["errors"][0]["field"] == "content-type"
        r = await post(c, served, cap("x4") + " " * 70_000)
        assert r.status_code == 413
        r = await c.post("/api/v1/ingest/cap", content=cap("x5"), headers=XML)
        assert r.status_code == 401
        r = await c.post(
            "/api/v1/ingest/cap", content=cap("x6"), headers={**XML, **served.device("robot")}
        )
        assert r.status_code == 403
        assert await shown(c) == []
        health = await cap_health(c)
        assert health["accepted"] == 0 and health["rejected"] == 7
        assert health["reject_reasons"]["invalid CAP: alert/info[2]/severity"] == 1
        # ... and the feed goes on.
        assert (await post(c, served, cap("ok"))).status_code == 202
        assert [w["identifier"] for w in await shown(c)] == ["ok"]


async def test_the_real_dwd_warning_through_the_route(served: Served) -> None:
    data = _dwd()
    async with logged_in(served) as c:
        r = await post(c, served, data)
        assert r.status_code == 202 and r.json()["id"] == DWD_ID
        # It expired in 2023: recorded, but not in today's picture.
        assert await shown(c) == []
        events = (await c.get("/api/v1/events", params={"since": 0})).json()
        kinds = [e for e in (events["events"] if isinstance(events, dict) else events)]
        assert any(e["payload"].get("id") == DWD_ID for e in kinds if e["kind"] == "warning")


async def test_the_demo_simulator_posts_a_warning_and_its_update(served: Served) -> None:
    from feeds.sim.cap import run_cap_warnings

    await run_cap_warnings(
        served.url, served.tokens["weather"], first_after_s=0, update_after_s=0.01
    )
    async with logged_in(served) as c:
        (w,) = await shown(c)
        assert w["severity"] == "Severe" and w["msg_type"] == "Update"
        assert w["event"] == "SCHWERE STURMBÖEN" and len(w["references"]) == 1
        assert [a["name"] for a in w["areas"]] == ["polygonal event area", "Stadt Dortmund"]
        assert (await cap_health(c))["accepted"] == 2


# --- the folder and the URL -----------------------------------------------------------


async def wait_for(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll `check` (sync or async) until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def _zip(entries: dict[str, str | bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _scan(scan: FolderScan) -> tuple[list[tuple[str, bytes]], list[str]]:
    """One scan whose documents were delivered."""
    found = scan()
    scan.commit()
    return found


def test_folder_scan_reads_each_file_and_zip_entry_once(tmp_path: Path) -> None:
    scan = FolderScan(tmp_path, 64 * 1024)
    (tmp_path / "a.xml").write_text(cap("a"))
    (tmp_path / "notes.txt").write_text("not CAP")
    docs, bad = _scan(scan)
    assert [o for o, _ in docs] == ["a.xml"] and bad == []
    assert _scan(scan) == ([], [])
    (tmp_path / "dwd.zip").write_bytes(_zip({"b.xml": cap("b"), "c.xml": cap("c")}))
    docs, _ = _scan(scan)
    assert sorted(o for o, _ in docs) == ["dwd.zip/b.xml", "dwd.zip/c.xml"]
    assert _scan(scan) == ([], [])  # an unchanged zip keeps what was read of it
    # The next status zip: one entry kept, one new; only the new one is read.
    os.utime(tmp_path / "dwd.zip", ns=(1, 1))
    (tmp_path / "dwd.zip").write_bytes(_zip({"c.xml": cap("c"), "d.xml": cap("d")}))
    docs, _ = _scan(scan)
    assert [o for o, _ in docs] == ["dwd.zip/d.xml"]
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really")
    docs, bad = _scan(scan)
    assert docs == [] and len(bad) == 1 and "broken.zip" in bad[0]
    assert _scan(scan) == ([], [])


def test_a_scan_not_committed_is_read_again(tmp_path: Path) -> None:
    scan = FolderScan(tmp_path, 64 * 1024)
    (tmp_path / "a.xml").write_text(cap("a"))
    (tmp_path / "dwd.zip").write_bytes(_zip({"b.xml": cap("b")}))
    first = scan()  # delivery failed: no commit
    assert sorted(o for o, _ in first[0]) == ["a.xml", "dwd.zip/b.xml"]
    assert _scan(scan) == first
    assert _scan(scan) == ([], [])


def test_a_zip_bomb_is_bounded_in_total_not_only_per_entry(tmp_path: Path) -> None:
    """Many entries each just under the per-document bound: more than MAX_UNPACKED_BYTES
    together is never held; what fits is read, the rest is a reject."""
    big = b"<a>" + b" " * (1 << 20) + b"</a>"  # 1 MiB of spaces deflates to ~1 KiB
    entries = {f"{i:03}.xml": big for i in range(80)}  # 80 MiB unpacked
    (tmp_path / "bomb.zip").write_bytes(_zip(entries))
    assert (tmp_path / "bomb.zip").stat().st_size < 1 << 20
    docs, bad = FolderScan(tmp_path, 2 << 20)()
    assert sum(len(d) for _, d in docs) <= MAX_UNPACKED_BYTES
    assert 0 < len(docs) < 80
    assert any("bytes unpacked" in b for b in bad)


def test_too_many_entries_are_refused_before_zipfile_lists_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """zipfile holds every entry of the central directory; a 64 MiB zip of empty entries
    would be over a million of them. The count is checked before."""
    many = _zip({f"{i}.xml": b"" for i in range(MAX_ENTRIES + 1)})
    commented = io.BytesIO()
    with zipfile.ZipFile(commented, "w") as zf:
        zf.writestr("a.xml", cap("a"))
        zf.comment = b"Deutscher Wetterdienst"  # the end record is then not the last bytes
    (tmp_path / "many.zip").write_bytes(many)
    (tmp_path / "commented.zip").write_bytes(commented.getvalue())
    docs, bad = FolderScan(tmp_path, 65536)()
    assert [o for o, _ in docs] == ["commented.zip/a.xml"]
    assert bad == [f"many.zip: {MAX_ENTRIES + 1} entries; at most {MAX_ENTRIES}"]

    def listing(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("zipfile listed the entries")

    monkeypatch.setattr(zipfile, "ZipFile", listing)
    assert read_archive("many.zip", many, 65536, set(), set()) == ([], bad)


def test_a_file_that_grows_after_stat_is_not_read_unbounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """stat() saw a small file; by the time it is read it is far bigger."""
    path = tmp_path / "a.xml"
    path.write_bytes(b"<alert>" + b" " * (4 << 20))
    real_stat = Path.stat

    def small_stat(self: Path, **kwargs: Any) -> os.stat_result:
        st = real_stat(self, **kwargs)
        if self != path:
            return st
        fields = list(st)
        fields[6] = 100  # st_size as it was a moment ago
        return os.stat_result(fields)

    monkeypatch.setattr(Path, "stat", small_stat)
    docs, bad = FolderScan(tmp_path, 65536)()
    assert docs == [] and bad == ["a.xml: more than 65536 bytes"]


async def test_folder_poll_picks_up_a_new_file_once_and_a_bad_file_is_a_reject(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "cap"
    folder.mkdir()
    async with (
        serve(tmp_path / "data", cap_folder=folder, cap_poll_s=0.1) as s,
        logged_in(s) as c,
    ):
        assert (await cap_health(c))["state"] in ("idle", "listening")
        (folder / "w1.xml").write_text(cap("w1"))
        await wait_for(lambda: _ids(c, ["w1"]))
        (folder / "bad.xml").write_text(cap("bad").replace("<scope>Public</scope>", ""))
        await wait_for(lambda: _health_is(c, rejected=1))
        # Further polls went by: neither file was read again.
        (folder / "w2.xml").write_text(cap("w2", msg_type="Update", references=ref("w1")))
        await wait_for(lambda: _ids(c, ["w2"]))
        # The picture shows a warning before its commit is counted.
        await wait_for(lambda: _health_is(c, accepted=2))
        health = await cap_health(c)
        assert health["accepted"] == 2 and health["rejected"] == 1
        assert health["state"] == "listening" and health["links"] == {"folder": "listening"}
        assert health["reject_reasons"] == {"invalid CAP: alert/scope": 1}


async def test_a_missing_folder_shows_as_down_until_it_appears(tmp_path: Path) -> None:
    folder = tmp_path / "not-yet"
    async with (
        serve(tmp_path / "data", cap_folder=folder, cap_poll_s=0.1) as s,
        logged_in(s) as c,
    ):
        await wait_for(lambda: _health_is(c, state="down", links={"folder": "down"}))
        folder.mkdir()
        (folder / "w1.xml").write_text(cap("w1"))
        await wait_for(lambda: _ids(c, ["w1"]))
        assert (await cap_health(c))["state"] == "listening"


async def _ids(c: httpx.AsyncClient, ids: list[str]) -> bool:
    return [w["identifier"] for w in await shown(c)] == ids


async def _health_is(c: httpx.AsyncClient, **want: Any) -> bool:
    health = await cap_health(c)
    return all(health.get(k) == v for k, v in want.items())


class CapServer:
    """A real HTTP server on a free port answering a CAP document with an ETag."""

    def __init__(self) -> None:
        self.body = b""
        self.etag = '"0"'
        self.gets = 0
        self.not_modified = 0
        self.status = 200
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.gets += 1
                if owner.status != 200:
                    self.send_response(owner.status)
                    self.end_headers()
                    return
                if self.headers.get("If-None-Match") == owner.etag:
                    owner.not_modified += 1
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("ETag", owner.etag)
                self.send_header("Content-Length", str(len(owner.body)))
                self.end_headers()
                self.wfile.write(owner.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/warnings.zip"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def publish(self, body: bytes) -> None:
        self.body = body
        self.etag = f'"{int(self.etag.strip(chr(34))) + 1}"'

    def __enter__(self) -> CapServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def cap_server() -> Iterator[CapServer]:
    with CapServer() as server:
        yield server


async def test_url_poll_reads_a_zip_conditionally_and_reports_failures(
    tmp_path: Path, cap_server: CapServer
) -> None:
    cap_server.publish(_zip({"w1.xml": cap("w1"), "broken.xml": "<alert"}))
    async with (
        serve(tmp_path / "data", cap_url=cap_server.url, cap_poll_s=0.1) as s,
        logged_in(s) as c,
    ):
        await wait_for(lambda: _ids(c, ["w1"]))
        await wait_for(lambda: cap_server.not_modified >= 2)  # conditional GET: 304s
        health = await cap_health(c)
        assert health["state"] == "connected" and health["links"] == {"url": "connected"}
        assert health["accepted"] == 1 and health["rejected"] == 1
        # One XML instead of a zip; the replaced warning leaves.
        cap_server.publish(cap("w2", msg_type="Update", references=ref("w1")).encode())
        await wait_for(lambda: _ids(c, ["w2"]))
        cap_server.status = 500
        await wait_for(lambda: _health_is(c, state="down"))
        cap_server.status = 200
        await wait_for(lambda: _health_is(c, state="connected"))
        assert (await cap_health(c))["accepted"] == 2


async def test_poller_survives_a_deliver_that_fails(tmp_path: Path) -> None:
    """A failure downstream (not committed, a bug) is logged; the next poll still happens
    and reads the documents that were not delivered again."""
    calls: list[list[str]] = []

    async def deliver(device: str, docs: list[tuple[str, bytes]]) -> None:
        calls.append(sorted(origin for origin, _ in docs))
        raise RuntimeError("boom")

    (tmp_path / "a.xml").write_text(cap("a"))
    poller = CapPoller(
        folder=tmp_path,
        url=None,
        every_s=0.05,
        max_bytes=65536,
        deliver=deliver,
        on_state=lambda source, state: None,
        on_reject=lambda reason: None,
    )
    poller.start()
    try:
        await wait_for(lambda: calls)
        await wait_for(lambda: len(calls) >= 2)
        assert calls[1] == ["a.xml"]  # not delivered: read again
        (tmp_path / "b.xml").write_text(cap("b"))
        await wait_for(lambda: calls[-1] == ["a.xml", "b.xml"])
    finally:
        await poller.aclose()


async def test_url_documents_are_fetched_again_until_delivered(cap_server: CapServer) -> None:
    """A failed delivery keeps neither the read entries nor the ETag: the next GET is
    unconditional and the same warnings are delivered again."""
    cap_server.publish(_zip({"w1.xml": cap("w1")}))
    calls: list[list[str]] = []
    fail = [True]

    async def deliver(device: str, docs: list[tuple[str, bytes]]) -> None:
        calls.append([origin for origin, _ in docs])
        if fail[0]:
            raise RuntimeError("not committed")

    poller = CapPoller(
        folder=None,
        url=cap_server.url,
        every_s=0.05,
        max_bytes=65536,
        deliver=deliver,
        on_state=lambda source, state: None,
        on_reject=lambda reason: None,
    )
    poller.start()
    try:
        await wait_for(lambda: len(calls) >= 2)
        assert calls[:2] == [["url/w1.xml"], ["url/w1.xml"]] and cap_server.not_modified == 0
        fail[0] = False
        await wait_for(lambda: cap_server.not_modified >= 2)  # delivered: now conditional
        assert calls[-1] == ["url/w1.xml"] and len(calls) >= 3
        settled = len(calls)
        await wait_for(lambda: cap_server.not_modified >= 4)
        assert len(calls) == settled
    finally:
        await poller.aclose()


# --- hostile input --------------------------------------------------------------------

VALID = cap("fuzz").encode()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=2000), st.text(max_size=2000).map(str.encode)))
def test_random_bytes_only_ever_raise_cap_error(data: bytes) -> None:
    with contextlib.suppress(CapError):
        parse_alert(data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(VALID)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["cut", "insert", "replace", "truncate"]))
        if op == "cut":
            del data[i : i + draw(st.integers(1, 40))]
        elif op == "insert":
            data[i:i] = draw(
                st.sampled_from(
                    [
                        b"<",
                        b">",
                        b"&",
                        b"<info>",
                        b"</area>",
                        b",",
                        b" ",
                        b"-1e999",
                        b"\x00",
                        b"\xff",
                        b"NaN",
                    ]
                )
                | st.binary(max_size=8)
            )
        elif op == "replace":
            data[i : i + 1] = draw(st.binary(min_size=1, max_size=2))
        else:
            del data[i:]
    return bytes(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_valid_cap_is_a_warning_or_a_cap_error(data: bytes) -> None:
    try:
        w = parse_alert(data)
    except CapError as exc:
        assert exc.path.startswith("alert") and exc.reason
        return
    assert isinstance(w, Warning)
    event = to_event(w, incident="t", device="d", received_at=NOW)
    assert parse_event(event_to_json(event)) == event  # what parses is a valid event


@st.composite
def element_values(draw: st.DrawFn) -> str:
    """Valid structure, hostile values: any text in any element CAP defines."""
    xml = cap("fuzz", references=ref("earlier"))
    tags = ["identifier", "sent", "status", "msgType", "language", "severity", "onset"]
    tags += ["polygon", "value", "areaDesc", "headline", "references"]
    for tag in draw(st.lists(st.sampled_from(tags), min_size=1, max_size=3)):
        text = draw(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=50))
        text = text.replace("&", "&amp;").replace("<", "&lt;")
        if f"<{tag}>" not in xml:
            continue
        start = xml.index(f"<{tag}>") + len(tag) + 2
        xml = xml[:start] + text + xml[xml.index(f"</{tag}>", start) :]
    return xml


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(element_values())
def test_hostile_element_values_are_a_warning_or_a_cap_error(xml: str) -> None:
    try:
        w = parse_alert(xml)
    except CapError:
        return
    parse_event(event_to_json(to_event(w, incident="t", device="d", received_at=NOW)))


def test_parse_many_orders_by_sent_and_keeps_going() -> None:
    later = cap("w2", msg_type="Update", references=ref("w1"), sent=NOW - timedelta(minutes=1))
    good, bad = parse_many(
        [("b.xml", later.encode()), ("x.xml", b"junk"), ("a.xml", cap("w1").encode())]
    )
    assert [w.identifier for w in good] == ["w1", "w2"]
    assert [(origin, e.path) for origin, e in bad] == [("x.xml", "alert")]


def test_identifiers_that_are_no_ids_map_the_same_in_references() -> None:
    odd = "urn:oid:2.49.0.1.276#1"
    first = parse_alert(cap(odd))
    update = parse_alert(cap("next", msg_type="Update", references=ref(odd)))
    assert first.id.startswith("cap-") and update.references == [first.id]
    sit = Situation("test")
    for seq, w in enumerate((first, update), 1):
        sit.apply(with_seq(to_event(w, incident="test", device="d", received_at=NOW), seq))
    assert _shown(sit) == ["next"]


def test_source_feed_is_cap() -> None:
    ev = to_event(parse_alert(cap()), incident="t", device="dwd", received_at=NOW)
    assert ev.source == Source(feed="cap", device="dwd")


@pytest.fixture(scope="module")
def served_thread(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve_in_thread(tmp_path_factory.mktemp("capfuzz")) as s:
        yield s


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(mutated(), element_values().map(str.encode), st.binary(max_size=300)))
def test_the_route_answers_any_body_with_a_named_4xx_or_202(
    served_thread: Served, body: bytes
) -> None:
    with httpx.Client(base_url=served_thread.url, timeout=20) as c:
        r = c.post(
            "/api/v1/ingest/cap", content=body, headers={**XML, **served_thread.device("weather")}
        )
        assert r.status_code in (202, 400, 422), r.text
        if r.status_code != 202:
            (err,) = r.json()["errors"]
            assert err["field"].startswith("alert") and err["reason"]
        # ... and the feed still takes a valid warning.
        r = c.post(
            "/api/v1/ingest/cap", content=VALID, headers={**XML, **served_thread.device("weather")}
        )
        assert r.status_code == 202


@st.composite
def damaged_zips(draw: st.DrawFn) -> bytes:
    """A real zip of CAP documents with some bytes overwritten, cut or inserted."""
    data = bytearray(_zip({"a.xml": cap("a"), "b.xml": cap("b") * 3}))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data) - 1))
        how = draw(st.sampled_from(["set", "cut", "insert"]))
        if how == "set":
            data[at] = draw(st.integers(0, 255))
        elif how == "cut":
            del data[at : at + draw(st.integers(1, 40))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=40))
        if not data:
            break
    return bytes(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(damaged_zips(), st.binary(max_size=400).map(lambda b: b"PK\x03\x04" + b)))
def test_a_damaged_zip_is_a_reject_never_an_exception(data: bytes) -> None:
    """Nothing in a zip may stop the poll (it would stop the URL's polls too)."""
    docs, bad = read_archive("x.zip", data, 65536, set(), set())
    assert all(origin.startswith("x.zip/") for origin, _ in docs)
    assert all(reason.startswith("x.zip") for reason in bad)
