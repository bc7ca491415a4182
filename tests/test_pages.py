"""The browser pages from the server's side: who gets in, in which language, which tiles.

The page itself is tested in a real browser (tests/test_ui.py); here: the gate in front of
Dash, the layout's hand-over to the page scripts, the stream's first message, MBTiles.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import orjson
import pytest

from cockpit.i18n import STRINGS
from feeds.sim.scenario import harbour_fire
from tests.serving import Served, serve


@pytest.fixture
async def served(tmp_path: Path) -> Any:
    async with serve(tmp_path / "data") as s:
        yield s


@contextlib.asynccontextmanager
async def client(s: Served, user: str | None = "el", **kw: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=s.url, timeout=10, **kw) as c:
        if user:
            await s.login(c, user)
        yield c


def _config(layout: dict[str, Any]) -> dict[str, Any]:
    """The page scripts' configuration, as the layout hands it over (data-config)."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            props = node.get("props", {})
            if props.get("id") == "ui-config":
                found.append(json.loads(props["data-config"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(layout)
    assert len(found) == 1
    return found[0]


async def test_pages_assets_and_dash_routes_need_a_log_in(served: Served) -> None:
    async with client(served, user=None) as c:
        r = await c.get("/")
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/"
        for path in (
            "/_dash-layout",
            "/_dash-dependencies",
            "/assets/stream.js",
            "/assets/symbols/hlf.svg",
            "/assets/basemap/dortmund-hafen.geojson",
            "/tiles/15/17000/10900",
            "/anything/else",
        ):
            r = await c.get(path)
            assert r.status_code == 401, path
            assert r.json()["errors"][0]["field"] == "session"
        r = await c.post("/_dash-update-component", content=b"{}")
        assert r.status_code == 401
        # The log-in page asks for nothing that needs a log-in (its icon is inline).
        login = (await c.get("/login")).text
        assert not re.findall(r'(?:src|href)="/(?!login)', login), login


async def test_the_layout_speaks_the_chosen_language_and_knows_the_user(served: Served) -> None:
    async with client(served) as c:
        page = await c.get("/")
        assert page.status_code == 200 and "_dash-renderer" in page.text
        de = _config((await c.get("/_dash-layout")).json())
        assert de["lang"] == "de" and de["user"] == "el" and de["role"] == "commander"
        assert de["can_write"] is True and de["incident"] == "test-incident"
        assert de["strings"]["conn.lost"].startswith("Verbindung unterbrochen")
        assert de["symbols"]["HLF 20"] == "hlf.svg" and de["tiles"] is None
        c.cookies.set("cockpit_lang", "en")
        layout = (await c.get("/_dash-layout")).json()
        en = _config(layout)
        assert en["lang"] == "en" and en["strings"]["alerts"] == "Alerts"
        assert "Incident log" in orjson.dumps(layout).decode()
    async with client(served, user="viewer") as c:
        viewer = _config((await c.get("/_dash-layout")).json())
        assert viewer["can_write"] is False  # no journal form, no acknowledge buttons
        # and no "Personendaten" button on an A.D.Le.R. detection
        assert viewer["personal_data"] is False and de["personal_data"] is True


def test_every_browser_string_exists_in_both_languages() -> None:
    for key, texts in STRINGS.items():
        assert texts.get("de") and texts.get("en"), key
        fields = lambda s: sorted(re.findall(r"\{(\w+)\}", s))  # noqa: E731
        assert fields(texts["de"]) == fields(texts["en"]), key


def test_every_string_the_page_scripts_ask_for_is_in_the_table() -> None:
    """Literal keys in assets/*.js, and the words for every A.D.Le.R. category, detection
    state, call state, qualification and way of travel the backend can send (a new one
    without its German word would show as a code on the commander's tablet)."""
    from typing import get_args

    from cockpit.events import DetectionState, Qualification, ResponderCallState, Travel
    from feeds.adler import TYPES

    assets = Path(__file__).resolve().parent.parent / "assets"
    asked = set()
    for script in assets.glob("*.js"):
        text = script.read_text()
        asked |= set(re.findall(r"\bt\(\s*\"([a-z_][a-z0-9_.]*[a-z0-9_])\"\s*[,)]", text))
        # whole keys kept in tables (the step buttons' labels)
        asked |= set(re.findall(r"\"(adler\.[a-z0-9_]+)\"", text))
    assert {"adler.confirm", "adler.dispatch", "adler.personal", "conn.live"} <= asked
    asked |= {f"adler.cat.{c}" for c in TYPES}
    asked |= {f"adler.state.{s}" for s in get_args(DetectionState)}
    asked |= {f"call.{s}" for s in get_args(ResponderCallState)}
    asked |= {f"qual.{q}" for q in get_args(Qualification)}
    asked |= {f"travel.{m}" for m in get_args(Travel)}
    missing = sorted(k for k in asked if f"ui.{k}" not in STRINGS)
    assert missing == []


async def test_symbols_exist_for_every_mapped_vehicle_and_kind() -> None:
    assets = Path(__file__).resolve().parent.parent / "assets" / "symbols"
    index = json.loads((assets / "index.json").read_text())
    for name, file in index.items():
        svg = (assets / file).read_text()
        root = ElementTree.fromstring(svg)
        assert root.tag.endswith("svg") and root.get("viewBox"), name
        assert "http://" not in svg.replace("http://www.w3.org", ""), name  # nothing fetched
    for vehicle in harbour_fire().vehicles:
        assert vehicle.vehicle in index, vehicle.vehicle
    for kind in ("unit", "drone", "robot", "sensor", "person"):
        assert kind in index


async def test_the_stream_starts_with_the_live_state_on_the_server_clock(served: Served) -> None:
    msg = {
        "entity": "robot-1",
        "kind": "robot",
        "observed_at": "2026-11-26T10:00:00Z",
        "position": {"lat": 51.5, "lon": 7.4},
    }
    async with client(served) as c:
        r = await c.post("/api/v1/ingest/telemetry", json=msg, headers=served.device())
        assert r.status_code == 202
        async with c.stream("GET", "/api/v1/stream") as stream:
            lines = stream.aiter_lines()
            assert await anext(lines) == "event: snapshot"
            snap = orjson.loads((await anext(lines)).removeprefix("data: "))
            assert snap["seq"] == 1 and isinstance(snap["now"], float)
            robot = snap["entities"][0]
            # Epoch seconds, like the deltas: the page computes ages on the server clock.
            assert robot["id"] == "robot-1" and robot["observed_at"] == 1795687200.0
            assert snap["stale_after"]["robot"] > 0 and snap["tracks"]["robot-1"]
            # Silence is noticed by a heartbeat event, not a comment pages cannot see.
            while await anext(lines) != "event: hb":
                pass
            hb = orjson.loads((await anext(lines)).removeprefix("data: "))
            # (seq 2 if a clock event came first: the robot has long been silent)
            assert hb["seq"] in (1, 2) and hb["now"] >= snap["now"]


def _mbtiles(path: Path) -> bytes:
    png = b"\x89PNG\r\n\x1a\n" + b"tile-15-17000-10900"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(
            "CREATE TABLE metadata (name TEXT, value TEXT);"
            "CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER,"
            " tile_data BLOB);"
        )
        db.executemany("INSERT INTO metadata VALUES (?, ?)", [("name", "test"), ("format", "png")])
        # MBTiles rows count from the south (TMS): y 10900 at zoom 15 is row 2^15-1-10900.
        db.execute("INSERT INTO tiles VALUES (15, 17000, ?, ?)", ((1 << 15) - 1 - 10900, png))
        db.commit()
    return png


async def test_tiles_come_from_the_configured_mbtiles_file(tmp_path: Path) -> None:
    png = _mbtiles(tmp_path / "region.mbtiles")
    data = tmp_path / "data"
    async with serve(data, map_mbtiles=tmp_path / "region.mbtiles") as s, client(s) as c:
        r = await c.get("/tiles/15/17000/10900")
        assert r.status_code == 200 and r.content == png
        assert r.headers["content-type"] == "image/png"
        assert (await c.get("/tiles/15/17001/10900")).status_code == 204  # not in the file
        assert (await c.get("/tiles/3/9/1")).status_code == 404  # not on the globe
        assert _config((await c.get("/_dash-layout")).json())["tiles"] == "/tiles/{z}/{x}/{y}"


async def test_an_entitys_recent_readings_come_from_the_log(served: Served) -> None:
    def msg(t: int, co: float, entity: str = "robot-1") -> dict[str, Any]:
        return {
            "entity": entity,
            "kind": "robot",
            "observed_at": f"2026-11-26T10:00:{t:02d}Z",
            "readings": {"co": {"value": co, "unit": "ppm"}, "o2": {"value": 20.9}},
        }

    batch = [msg(t, 10.0 + t) for t in range(5)] + [msg(9, 99.0, entity="robot-10")]
    async with client(served) as c:
        r = await c.post("/api/v1/ingest/telemetry", json=batch, headers=served.device())
        assert r.status_code == 202
        body = (await c.get("/api/v1/entities/robot-1/readings")).json()
        # The reports are hours old: the recorder's clock may tick (stale) right after them.
        assert body["entity"] == "robot-1" and body["seq"] >= 6
        start = 1795687200.0  # 2026-11-26T10:00:00Z
        assert body["series"]["co"] == [[start + t, 10.0 + t] for t in range(5)]
        assert len(body["series"]["o2"]) == 5  # robot-10's readings are not robot-1's
        empty = (await c.get("/api/v1/entities/nobody/readings")).json()
        assert empty["series"] == {}
    async with client(served, user=None) as c:
        assert (await c.get("/api/v1/entities/robot-1/readings")).status_code == 401
