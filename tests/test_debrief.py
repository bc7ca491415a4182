"""The trainer's debrief export: one self-contained HTML file of a recording, through the
real server (`GET /api/v1/replay/debrief`) and the real `cockpit debrief` command,
printed to PDF by Chromium; without personal data, and bounded on large recordings."""

from __future__ import annotations

import base64
import math
import re
import subprocess
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from cockpit.debrief import build_debrief
from cockpit.debrief.series import BUCKETS
from cockpit.events import (
    Alert,
    AlertEvent,
    Context,
    Detection,
    DetectionEvent,
    DetectionTransition,
    DetectionTransitionEvent,
    Event,
    Hazard,
    HazardEvent,
    Source,
)
from cockpit.settings import load_settings
from cockpit.situation import Situation
from tests.factories import T0, ack, journal, numbered, position, readings
from tests.procs import clean_env, cockpit_command
from tests.serving import Served, serve, serve_in_thread
from tests.test_trainer_api import PERSON, record
from tests.test_ui_trainer import CHROMIUM, _page, _ready

SECONDS = 120.0
CO_PEAK, CO_DIP = 250.0, 0.25  # the highest and the lowest CO reading
JPEG_HOT = b"\xff\xd8\xff\xe0 thermal hotspot frame \xff\xd9"
JPEG_PERSON = b"\xff\xd8\xff\xe0 a person's face \xff\xd9"
JOURNAL_TEXTS = (
    "Lage: Dachstuhlbrand, zwei Trupps unter PA",
    "Nachforderung: DLK <23/12> & RTW",
    "Feuer aus",
)
BOOKMARK_NOTE = "Warum kam der Rückzug erst nach zwei Minuten?"


def _env(t: float, feed: str, actor: str) -> dict[str, Any]:
    at = T0 + timedelta(seconds=t)
    return {
        "incident": "test",
        "source": Source(feed=feed, device=actor),  # type: ignore[arg-type]
        "observed_at": at,
        "received_at": at,
        "context": Context(actor=actor),
    }


def _co(i: int) -> float:
    """A CO curve under the warning level, one peak over the critical one, one dip."""
    if i == 700:
        return CO_PEAK
    if i == 900:
        return CO_DIP
    return round(12.0 + 10.0 * math.sin(i / 40.0), 3)


def _events(co_readings: int = 1500, positions: int = 600) -> list[Event]:
    timed: list[tuple[float, Event]] = []
    for i in range(positions):
        t = i * SECONDS / positions
        timed.append((t, position(f"u{i % 5}", 51.5 + i * 1e-6, 7.4 + (i % 5) * 1e-3, t)))
    for i in range(co_readings):
        t = 0.05 + i * (SECONDS - 1) / co_readings
        timed.append((t, readings("gas-1", t, co=_co(i))))
    for t, text in zip((10.0, 45.0, 100.0), JOURNAL_TEXTS, strict=True):
        timed.append((t, journal(text, t)))
    fall = Detection(
        id="adler-1",
        source="adler",
        category="fall",
        lat=51.501,
        lon=7.402,
        summary="Sturz in Wohnung",
        personal=PERSON,
    )
    hot = Detection(
        id="hot-1",
        source="video",
        category="hotspot",
        lat=51.5005,
        lon=7.401,
        summary="Hotspot 12×9 px",
        stream="cam1",
        snapshot="snapshots/cam1/hot-1-35000.jpg",
    )
    person = Detection(
        id="vid-person-1",
        source="video",
        category="person",
        lat=51.5006,
        lon=7.4012,
        stream="cam1",
        personal={"snapshot": "snapshots/cam1/vid-person-1-36000.jpg"},
    )
    area = {
        "type": "Polygon",
        "coordinates": [[[7.400, 51.500], [7.402, 51.500], [7.402, 51.501], [7.400, 51.500]]],
    }
    timed += [
        (30.0, DetectionEvent(**_env(30.0, "adler", "adler-gw"), payload=fall)),
        (35.0, DetectionEvent(**_env(35.0, "video", "cam1"), payload=hot)),
        (36.0, DetectionEvent(**_env(36.0, "video", "cam1"), payload=person)),
        (40.0, _step(40.0, "confirmed")),
        (50.0, _step(50.0, "dispatched")),
        (
            70.0,
            AlertEvent(
                **_env(70.0, "ui", "trainer"),
                payload=Alert(id="inject-1", severity="critical", text="Atemschutznotfall"),
            ),
        ),
        (75.0, ack("inject-1", 75.0, actor="el")),
        (
            80.0,
            HazardEvent(
                **_env(80.0, "ui", "el"),
                payload=Hazard(id="hz-1", label="Trümmerschatten", geometry=area),
            ),
        ),
    ]
    timed.sort(key=lambda p: p[0])
    return numbered([e for _, e in timed])


def _step(t: float, to: str) -> Event:
    return DetectionTransitionEvent(
        **_env(t, "ui", "el"),
        payload=DetectionTransition(id="adler-1", to=to),  # type: ignore[arg-type]
    )


def _clock(t: float) -> str:
    return datetime.fromtimestamp(t).astimezone().strftime("%H:%M:%S")


def _since(t: float) -> str:
    """Whole seconds since the first event (at T0), as +h:mm:ss."""
    s = math.floor(t - T0.timestamp())
    return f"+{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


# --- a small DOM from the stdlib parser -------------------------------------------


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    def all_text(self) -> str:
        return "".join([*self.text, *(c.all_text() for c in self.children)])

    def walk(self) -> Iterator[Node]:
        yield self
        for c in self.children:
            yield from c.walk()

    def find(self, tag: str, cls: str | None = None, **attrs: str) -> list[Node]:
        return [
            n
            for n in self.walk()
            if n.tag == tag
            and (cls is None or cls in n.attrs.get("class", "").split())
            and all(n.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]


_VOID = {"meta", "br", "img", "link", "input", "hr"}


class _Tree(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.root = Node("root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].text.append(data)


def parse(text: str) -> Node:
    tree = _Tree()
    tree.feed(text)
    tree.close()
    assert tree.stack == [tree.root], "unclosed elements"
    return tree.root


# --- fixtures ----------------------------------------------------------------------


@pytest.fixture
async def recording(tmp_path: Path) -> Path:
    path = tmp_path / "archive" / "test.sqlite"
    await record(path, _events())
    # The incident folder beside the log: the hotspot's frame and a person's picture.
    cam = path.with_suffix("") / "snapshots" / "cam1"
    cam.mkdir(parents=True)
    (cam / "hot-1-35000.jpg").write_bytes(JPEG_HOT)
    (cam / "vid-person-1-36000.jpg").write_bytes(JPEG_PERSON)
    return path


@pytest.fixture
async def served(tmp_path: Path, recording: Path) -> AsyncIterator[Served]:
    async with serve(tmp_path / "data", replay=recording) as s:
        async with httpx.AsyncClient(base_url=s.url, timeout=30) as c:
            await s.login(c, "trainer")
            r = await c.post(
                "/api/v1/replay/bookmarks",
                json={"t": T0.timestamp() + 61.0, "title": "CO-Spitze", "note": BOOKMARK_NOTE},
            )
            assert r.status_code == 201, r.text
        yield s


def _recorded_co() -> list[tuple[float, float]]:
    return [
        (e.observed_at.timestamp(), e.payload.values["co"].value)  # type: ignore[union-attr]
        for e in _events()
        if e.kind == "readings"
    ]


def _no_personal_data(text: str) -> None:
    for value in (*PERSON["person"].values(), "Erika", "person-1-36000"):
        assert value not in text, value
    assert base64.b64encode(JPEG_PERSON).decode() not in text


def _check_debrief(text: str, lang: str) -> Node:
    """What a trainer relies on in the file, in either language."""
    dom = parse(text)
    assert re.search(r"https?://", text) is None  # loads nothing from anywhere
    assert "<script" not in text.lower() and "@import" not in text
    # The Einsatztagebuch: every entry, in order, with its time and author.
    sit = Situation(incident="test")
    sit.apply_all(_events())
    expected = [(_clock(j["t"]), _since(j["t"]), j["author"] or "", j["text"]) for j in sit.journal]
    assert all(any(line in e[3] for e in expected) for line in JOURNAL_TEXTS)
    [table] = dom.find("table", "journal")
    rows = [[td.all_text() for td in tr.find("td")] for tr in table.find("tbody")[0].find("tr")]
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == expected
    assert table.find("thead")  # repeated on every printed page
    # The CO plot: every point a recorded reading; the peak and the dip kept.
    [fig] = dom.find("figure", data_entity="gas-1", data_reading="co")
    [line] = fig.find("polyline", "series")
    ts = [float(v) for v in line.attrs["data-t"].split(",")]
    vs = [float(v) for v in line.attrs["data-v"].split(",")]
    recorded = _recorded_co()
    assert len(vs) <= 2 * BUCKETS < len(recorded)  # downsampled
    assert set(zip(ts, vs, strict=True)) <= set(recorded)
    assert max(vs) == CO_PEAK and min(vs) == CO_DIP
    assert ts == sorted(ts)
    limits = {float(n.attrs["data-value"]) for n in fig.find("line", "threshold")}
    assert limits == {33.0, 200.0}  # CO warning and critical (vfdb 10/01)
    # The bookmark: its note and the map of that moment with the units on it.
    [shot] = [f for f in dom.find("figure", "snapshot") if "CO-Spitze" in f.all_text()]
    assert BOOKMARK_NOTE in shot.all_text()
    [svg] = shot.find("svg", "map")
    units = {g.find("text", "label")[0].all_text() for g in svg.find("g", "item-unit")}
    assert units == {f"u{i}" for i in range(5)}
    # The hotspot's frame is there; no picture of a person is.
    assert base64.b64encode(JPEG_HOT).decode() in text
    _no_personal_data(text)
    # Alerts: the injected one, acknowledged by el; the CO alert the fold raised.
    [alerts] = dom.find("table", "alerts")
    alert_rows = {tr.find("td")[3].all_text(): tr for tr in alerts.find("tbody")[0].find("tr")}
    assert "el" in alert_rows["Atemschutznotfall"].find("td")[4].all_text()
    assert _clock(T0.timestamp() + 75.0) in alert_rows["Atemschutznotfall"].all_text()
    assert any(k.startswith("CO 250") for k in alert_rows)
    assert dom.find("html")[0].attrs["lang"] == lang
    return dom


# --- the route -------------------------------------------------------------------


async def test_the_route_exports_the_debrief_without_personal_data(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url, timeout=60) as c:
        await served.login(c, "trainer")
        r = await c.get("/api/v1/replay/debrief", params={"lang": "de"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/html")
        disposition = r.headers["content-disposition"]
        name = r'attachment; filename="nachbesprechung-test-\d{8}-\d{4}\.html"'
        assert re.fullmatch(name, disposition), disposition
        dom = _check_debrief(r.text, "de")
        assert "Einsatztagebuch" in r.text and "Erstellt" in r.text and "von trainer" in r.text
        assert dom.find("svg", "timeline")

        r = await c.get("/api/v1/replay/debrief", params={"lang": "en"})
        assert r.status_code == 200 and "Operations journal" in r.text
        _check_debrief(r.text, "en")
        r = await c.get("/api/v1/replay/debrief", params={"lang": "fr"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "lang"

    async with httpx.AsyncClient(base_url=served.url, timeout=10) as c:
        assert (await c.get("/api/v1/replay/debrief")).status_code == 401
        await served.login(c, "viewer")
        r = await c.get("/api/v1/replay/debrief")
        assert r.status_code == 403 and r.json()["errors"][0]["field"] == "role"


async def test_a_live_server_exports_its_own_log(tmp_path: Path) -> None:
    async with (
        serve(tmp_path / "data", incident="live-1") as s,
        httpx.AsyncClient(base_url=s.url, timeout=30) as c,
    ):
        await s.login(c, "el")
        r = await c.post("/api/v1/journal", json={"text": "Erkundung abgeschlossen"})
        assert r.status_code == 201, r.text
        r = await c.get("/api/v1/replay/debrief")
        assert r.status_code == 200, r.text
    assert "Erkundung abgeschlossen" in r.text and "live-1" in r.headers["content-disposition"]


# --- the command and the printout ---------------------------------------------------


async def test_the_command_writes_the_same_debrief(
    served: Served, recording: Path, tmp_path: Path
) -> None:
    out = tmp_path / "debrief-en.html"
    done = subprocess.run(
        [
            *cockpit_command(),
            "debrief",
            str(recording),
            "-o",
            str(out),
            "--lang",
            "en",
            "--data-dir",
            str(tmp_path / "cli-data"),
        ],
        env=clean_env(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    text = out.read_text(encoding="utf-8")
    _check_debrief(text, "en")
    assert "by os:" in text  # who made it: the OS user
    assert not out.with_name(out.name + ".part").exists()
    done = subprocess.run(
        [*cockpit_command(), "debrief", str(tmp_path / "missing.sqlite")],
        env=clean_env(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0 and b"no such recording" in done.stderr


def test_it_prints_to_a_pdf_of_several_pages(tmp_path: Path, recording: Path) -> None:
    from playwright import sync_api

    settings = load_settings(None, data_dir=tmp_path / "data", port=0, incident="x")
    page_file = tmp_path / "debrief.html"
    page_file.write_text(build_debrief(recording, settings, user="trainer"), encoding="utf-8")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            asked: list[str] = []
            page.on("request", lambda req: asked.append(req.url))
            page.goto(page_file.as_uri())
            page.emulate_media(media="print")
            # Light paper: nothing dark behind the text.
            background = page.evaluate("getComputedStyle(document.body).backgroundColor")
            pdf = page.pdf(format="A4", print_background=True)
        finally:
            browser.close()
    assert background == "rgb(255, 255, 255)"
    assert [u for u in asked if not u.startswith(("file:", "data:"))] == []
    assert pdf.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf))
    assert pages > 1, pages
    (tmp_path / "debrief.pdf").write_bytes(pdf)


def test_the_trainer_page_offers_the_debrief_to_those_who_may_have_it(
    tmp_path: Path, recording: Path
) -> None:
    from playwright import sync_api

    with (
        serve_in_thread(tmp_path / "ui", replay=recording) as s,
        sync_api.sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = _page(browser, s, "trainer")
            _ready(page)
            link = page.locator("#tr-debrief")
            assert link.inner_text() == "Nachbesprechung exportieren"
            with page.expect_download() as info:
                link.click()
            download = info.value
            assert re.fullmatch(
                r"nachbesprechung-test-\d{8}-\d{4}\.html", download.suggested_filename
            )
            text = Path(download.path()).read_text(encoding="utf-8")
            assert "Einsatztagebuch" in text and JOURNAL_TEXTS[2] in text
            _no_personal_data(text)
            assert page.errors == [] and page.outside == []
            page.context.close()

            page = _page(browser, s, "trainer", lang="en")
            _ready(page)
            assert page.locator("#tr-debrief").inner_text() == "Export debrief"
            assert page.locator("#tr-debrief").get_attribute("href").endswith("lang=en")
            page.context.close()

            page = _page(browser, s, "viewer")  # watches; the export is not theirs
            _ready(page)
            assert page.locator("#tr-debrief").count() == 0
            page.context.close()
        finally:
            browser.close()


# --- large recordings -----------------------------------------------------------


async def test_ten_times_the_events_do_not_take_ten_times_the_memory(tmp_path: Path) -> None:
    settings = load_settings(None, data_dir=tmp_path / "data", port=0, incident="x")

    async def peak(co_readings: int, positions: int) -> tuple[int, int, str]:
        path = tmp_path / f"scale-{co_readings}" / "test.sqlite"
        await record(path, _events(co_readings, positions))
        tracemalloc.start()
        try:
            text = build_debrief(path, settings, user="trainer")
            _, top = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return top, len(text), text

    small, small_len, _ = await peak(2_000, 1_000)
    large, large_len, text = await peak(20_000, 10_000)
    # Ten times the readings and positions: the picture and the plots stay the same
    # size, and the readings are read as a stream, never held.
    assert large < 2.0 * small, (small, large)
    assert large_len < 1.3 * small_len, (small_len, large_len)
    [fig] = parse(text).find("figure", data_entity="gas-1", data_reading="co")
    vs = [float(v) for v in fig.find("polyline", "series")[0].attrs["data-v"].split(",")]
    assert max(vs) == CO_PEAK and min(vs) == CO_DIP


async def test_an_empty_recording_says_so(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite"
    assert await record(path, []) == 0
    settings = load_settings(None, data_dir=tmp_path / "data", port=0, incident="x")
    text = build_debrief(path, settings, lang="de", user="trainer")
    assert "Die Aufzeichnung ist leer." in text
    parse(text)  # still a well-formed page


async def test_a_volunteer_in_a_hazard_area_is_not_named_and_their_phone_not_plotted(
    tmp_path: Path,
) -> None:
    """A responder's phone is a `person` entity: an alert about it names no one, and its
    battery is no key reading."""
    from cockpit.events import EntityRegistered, EntityRegisteredEvent, Status, StatusEvent

    def env(t: float) -> dict[str, Any]:
        when = T0 + timedelta(seconds=t)
        return {
            "incident": "test",
            "source": Source(feed="telemetry", device="phone"),
            "observed_at": when,
            "received_at": when,
        }

    events: list[Event] = [
        EntityRegisteredEvent(
            **env(0),
            payload=EntityRegistered(entity="helfer-7", entity_kind="person", callsign="Anna K."),
        ),
        position("helfer-7", 51.5, 7.4, 1.0, kind="person"),
        StatusEvent(
            **env(2), payload=Status(entity="helfer-7", entity_kind="person", battery_pct=40.0)
        ),
        AlertEvent(
            **env(3),
            context=Context(actor="trainer"),
            payload=Alert(id="a-1", entity="helfer-7", text="Im Gefahrenbereich"),
        ),
        readings("gas-1", 4.0, co=12.0),
    ]
    path = tmp_path / "volunteer.sqlite"
    await record(path, numbered(events))
    settings = load_settings(None, data_dir=tmp_path / "data", port=0, incident="x")
    text = build_debrief(path, settings, lang="de", user="trainer")
    assert "Im Gefahrenbereich" in text and "eine Person" in text
    assert "Anna K." not in text
    assert "Akku" not in text.split("Messwerte", 1)[1]  # no battery series at all
