"""A.D.Le.R. on the commander layout, in a real browser (Debian's Chromium via Playwright).

One `cockpit serve` process (no demo: its own emergencies would queue before ours), three
Helfer registered over the A.D.Le.R. route with positions over the native telemetry route
at known distances from a fall, and the pop-up a commander meets: it opens by itself with
the address, Bestätigen, Entsenden, and the nearest Helfer is alarmiert in the panel, on
the map and in the picture the server keeps. A step someone else took first is said in
words; a viewer sees the pop-up but neither the buttons nor the personal data.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from cockpit.auth import AuthStore
from tests.procs import Procs, free_port, wait_healthy
from tests.serving import prepare

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("COCKPIT_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
PLACE = (51.5270, 7.4445)  # the map's default centre: the fall happens in view
M_PER_DEG_LAT = 111_320.0

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if not Path(CHROMIUM).is_file():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


def _iso(t: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if t is None else t, UTC).isoformat()


def _offset(north_m: float, east_m: float) -> tuple[float, float]:
    lat = PLACE[0] + north_m / M_PER_DEG_LAT
    lon = PLACE[1] + east_m / (M_PER_DEG_LAT * math.cos(math.radians(PLACE[0])))
    return lat, lon


# Three Helfer: 150 m north, 450 m east, 1.5 km south. Two are alerted per dispatch
# (settings.responders_per_dispatch): the first two; the third stays free.
HELFER = [
    ("h-anna", "Helferin Anna", ["emergency_paramedic"], (150.0, 0.0)),
    ("h-bernd", "Helfer Bernd", ["first_aid"], (0.0, 450.0)),
    ("h-carla", "Helferin Carla", ["doctor"], (-1500.0, 0.0)),
]


def fall(det_id: str, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": det_id,
        "type": "fall",
        "confidence": 0.92,
        "time": _iso(),
        "device": "fall-sensor-17",
        "location": {
            "lat": PLACE[0],
            "lon": PLACE[1],
            "address": "Speicherstraße 7, 44147 Dortmund",
            "floor": "3. OG links",
            "access": "Schlüsseltresor am Hauseingang",
        },
        "person": {
            "id": "p-8c1f",
            "age_group": "senior",
            "mobility": "wheelchair",
            "needs": ["hearing_impaired"],
            "medical": "Marcumar",
            "contact": "Tochter 0231 555 0123",
        },
        "summary": "Sturz im Bad",
    }
    body.update(over)
    return body


@dataclass
class Server:
    url: str
    tokens: dict[str, str]
    passwords: dict[str, str]

    def device(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def detection(self, body: dict[str, Any]) -> None:
        r = httpx.post(
            self.url + "/api/v1/ingest/adler", json=body, headers=self.device("adler"), timeout=15
        )
        assert r.status_code == 202, r.text

    def session(self, user: str = "el") -> httpx.Client:
        c = httpx.Client(base_url=self.url, timeout=15)
        r = c.post("/api/v1/session", json={"username": user, "password": self.passwords[user]})
        assert r.status_code == 200, r.text
        return c


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    import asyncio

    work = tmp_path_factory.mktemp("ui-adler")
    data_dir = work / "data"
    tokens, passwords = prepare(data_dir)
    with AuthStore(data_dir / "auth.sqlite") as auth:
        tokens["adler"] = auth.add_device("adler-gw", ["adler"])
    procs = Procs(work / "procs")
    try:
        proc = procs.start("serve", "--data-dir", str(data_dir), port=free_port())
        asyncio.run(wait_healthy(proc, 30))
        yield Server(proc.url, tokens, passwords)
    finally:
        procs.close()


def _page(browser: Any, server: Server, user: str) -> Any:
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, locale="de-DE", timezone_id="Europe/Berlin"
    )
    pg = context.new_page()
    pg.errors = []  # type: ignore[attr-defined]
    pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
    pg.goto(server.url + "/login")
    pg.fill("#u", user)
    pg.fill("#p", server.passwords[user])
    pg.click("button[type=submit]")
    pg.wait_for_url(server.url + "/")
    pg.wait_for_function("window.cockpit && window.cockpit.connected", timeout=15000)
    return pg


@pytest.fixture(scope="module")
def page(browser: Any, server: Server) -> Iterator[Any]:
    pg = _page(browser, server, "el")
    try:
        yield pg
    finally:
        pg.context.close()


def _register_helfer(server: Server) -> None:
    r = httpx.post(
        server.url + "/api/v1/ingest/adler/responders",
        json=[
            {"id": rid, "callsign": name, "qualifications": quals, "available": True}
            for rid, name, quals, _ in HELFER
        ],
        headers=server.device("adler"),
        timeout=15,
    )
    assert r.status_code == 202, r.text
    positions = []
    for rid, name, _, (north, east) in HELFER:
        lat, lon = _offset(north, east)
        positions.append(
            {
                "entity": rid,
                "kind": "person",
                "callsign": name,
                "observed_at": _iso(),
                "position": {"lat": lat, "lon": lon},
            }
        )
    r = httpx.post(
        server.url + "/api/v1/ingest/telemetry",
        json=positions,
        headers=server.device("robot"),
        timeout=15,
    )
    assert r.status_code == 202, r.text


def test_a_new_fall_pops_up_and_two_taps_send_the_nearest_helfer(server: Server, page: Any) -> None:
    _register_helfer(server)
    panel = page.locator("#responders-list")
    for _, name, _, _ in HELFER:
        panel.locator(".responder", has_text=name).wait_for(timeout=5000)
    assert panel.locator(".responder", has_text="Helferin Anna").inner_text().count("verfügbar")
    # their own symbol, not a person's
    page.wait_for_function("document.querySelectorAll('.sym-responder').length === 3", timeout=3000)
    assert page.locator(".sym-person").count() == 0
    assert page.locator("#sound-toggle").inner_text().endswith("Ton aus")  # off by default

    server.detection(fall("adler-1"))
    popup = page.locator("#detection-popup")
    popup.wait_for(timeout=5000)
    assert "Speicherstraße 7, 44147 Dortmund" in popup.locator(".address").inner_text()
    text = popup.inner_text()
    for expected in ("Sturz", "NEU", "3. OG links", "Schlüsseltresor", "92 %", "fall-sensor-17"):
        assert expected in text, (expected, text)
    page.wait_for_function(
        "/vor \\d+ s/.test(document.querySelector('#detection-popup').innerText)", timeout=3000
    )
    # The nearest free Helfer, nearest first, with distance and ETA.
    rows = popup.locator(".candidates tbody tr")
    rows.first.wait_for(timeout=5000)
    first = rows.first.inner_text()
    assert "Helferin Anna" in first and "150 m" in first and "min" in first, first
    assert "Notfallsanitäter" in first
    assert page.locator(".adler-det.state-new .ring").count() == 1  # pulsing on the map

    page.screenshot(path=str(ARTIFACTS / "commander-adler-new.png"))
    # Two taps, on buttons a gloved finger hits, in view without scrolling.
    for button in popup.locator("button").all():
        b = button.bounding_box()
        assert b is not None and b["height"] >= 44 and b["width"] >= 44, b
    b = popup.locator("button.to-confirmed").bounding_box()
    assert b is not None and b["y"] + b["height"] <= 800, b
    popup.locator("button.to-confirmed", has_text="Bestätigen").click()
    popup.locator(".state-badge", has_text="bestätigt").wait_for(timeout=5000)
    popup.locator("button.to-dispatched", has_text="Entsenden").click()
    popup.locator(".state-badge", has_text="entsandt").wait_for(timeout=5000)
    anna = popup.locator(".calls li[data-responder='h-anna']")
    anna.wait_for(timeout=5000)
    assert "alarmiert" in anna.inner_text()
    assert popup.locator(".calls li[data-responder='h-carla']").count() == 0

    # The panel and the map say so too, in words; Carla, farthest, stays free.
    row = panel.locator(".responder[data-responder='h-anna']")
    page.wait_for_function(
        "document.querySelector(\".responder[data-responder='h-anna']\")"
        ".innerText.includes('alarmiert')",
        timeout=5000,
    )
    assert "call-alerted" in (row.get_attribute("class") or "")
    carla = panel.locator(".responder[data-responder='h-carla']").inner_text()
    assert "verfügbar" in carla and "alarmiert" not in carla
    marker = page.locator(".sym-responder", has_text="Helferin Anna")
    marker.locator(".call", has_text="alarmiert").wait_for(timeout=3000)
    # dashed lines from the two alerted to the fall
    page.wait_for_function("window.cockpitLive.groups.calls.getLayers().length === 2", timeout=3000)
    item = page.locator("#adler-list .adler-item[data-detection='adler-1']")
    item.locator(".call-row", has_text="Helferin Anna: alarmiert").wait_for(timeout=3000)
    assert "entsandt" in item.inner_text()

    with contextlib.closing(server.session()) as c:
        det = next(
            d for d in c.get("/api/v1/situation").json()["detections"] if d["id"] == "adler-1"
        )
    assert det["state"] == "dispatched"
    assert det["calls"]["h-anna"]["state"] == "alerted"
    assert "h-carla" not in det["calls"]

    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / "commander-adler.png"))

    # Their answers come from the platform: Anna accepts (zugesagt), Bernd declines
    # (abgesagt). Words change, and only Anna's line to the fall stays.
    for rid, answer in (("h-anna", "accepted"), ("h-bernd", "declined")):
        r = httpx.post(
            server.url + "/api/v1/ingest/adler/answer",
            json={
                "detection": "adler-1",
                "responder": rid,
                "answer": answer,
                "observed_at": _iso(),
            },
            headers=server.device("adler"),
            timeout=15,
        )
        assert r.status_code == 202, r.text
    popup.locator(".calls li[data-responder='h-anna'] .call", has_text="zugesagt").wait_for(
        timeout=5000
    )
    popup.locator(".calls li[data-responder='h-bernd'] .call", has_text="abgesagt").wait_for(
        timeout=5000
    )
    panel.locator(".responder.call-accepted", has_text="Helferin Anna").wait_for(timeout=5000)
    page.wait_for_function("window.cockpitLive.groups.calls.getLayers().length === 1", timeout=3000)
    # Bernd said no: one tap alerts Carla, the next nearest free one.
    popup.locator(".candidates tr[data-responder='h-carla'] button", has_text="Alarmieren").click()
    popup.locator(".calls li[data-responder='h-carla'] .call", has_text="alarmiert").wait_for(
        timeout=5000
    )
    popup.locator(".status", has_text="Alarmiert: Helferin Carla").wait_for(timeout=5000)

    # Personal data only on a tap, and gone when the pop-up closes.
    assert popup.locator(".personal-box.shown").count() == 0
    popup.locator("button.personal", has_text="Personendaten").click()
    box = popup.locator(".personal-box.shown")
    box.wait_for(timeout=5000)
    for expected in ("Senior/in", "Rollstuhl", "hörgeschädigt", "Marcumar", "Tochter"):
        assert expected in box.inner_text(), expected
    popup.locator("button.close").click()
    popup.wait_for(state="detached", timeout=3000)
    # Reopened from the list: the step is there, the personal data is not.
    item.click()
    popup.wait_for(timeout=3000)
    assert "entsandt" in popup.inner_text()
    assert popup.locator(".personal-box.shown").count() == 0
    popup.locator("button.close").click()
    popup.wait_for(state="detached", timeout=3000)
    # and from its marker on the map (no longer pulsing: it has been reviewed)
    marker = page.locator(".adler-det[data-detection='adler-1']")
    assert "state-dispatched" in (marker.get_attribute("class") or "")
    assert marker.locator(".ring").is_hidden()
    marker.dispatch_event("click")  # (a Helfer's label may lie over it)
    popup.wait_for(timeout=3000)
    popup.locator("button.close").click()
    assert page.errors == []


def test_a_step_someone_else_took_first_is_said_not_crashed(server: Server, page: Any) -> None:
    """Two new ones queue ("1 von 2"); while this commander taps Bestätigen on the first,
    another has just confirmed it: the 409 is said in words, and the next step offered."""
    server.detection(fall("adler-2", type="co_alarm", person=None))
    server.detection(fall("adler-3", type="smoke_alarm", person=None))
    popup = page.locator("#detection-popup[data-detection='adler-2']")
    popup.wait_for(timeout=5000)
    assert "1 von 2" in popup.locator(".nav").inner_text()
    assert "CO-Melder" in popup.inner_text()

    other = server.session()

    def first_someone_else(route: Any) -> None:
        r = other.post("/api/v1/detections/adler-2/transition", json={"to": "confirmed"})
        assert r.status_code == 201, r.text
        route.continue_()

    page.route("**/api/v1/detections/adler-2/transition", first_someone_else)
    try:
        popup.locator("button.to-confirmed").click()
        status = popup.locator(".status.error")
        status.wait_for(timeout=5000)
    finally:
        page.unroute("**/api/v1/detections/adler-2/transition")
        other.close()
    assert "Schon bestätigt – jemand anderes war schneller" in status.inner_text()
    popup.locator(".state-badge", has_text="bestätigt").wait_for(timeout=5000)
    assert popup.locator("button.to-dispatched", has_text="Entsenden").count() == 1
    popup.locator("button[data-act='next']").click()
    page.locator("#detection-popup[data-detection='adler-3']").wait_for(timeout=3000)
    assert page.errors == []


def test_the_tone_is_off_by_default_and_plays_for_a_new_one_once_on(
    server: Server, page: Any
) -> None:
    assert page.evaluate("window.cockpitAdler.beeps") == 0
    page.click("#sound-toggle")  # on: one tone, to hear what it sounds like
    assert page.locator("#sound-toggle").inner_text().endswith("Ton an")
    assert page.evaluate("localStorage.getItem('cockpit.adler.sound')") == "on"
    server.detection(fall("adler-4", type="emergency_button", person=None))
    page.wait_for_function("window.cockpitAdler.beeps === 2", timeout=5000)
    page.click("#sound-toggle")
    assert page.locator("#sound-toggle").inner_text().endswith("Ton aus")
    assert page.errors == []


def test_a_viewer_sees_an_unreviewed_detection_but_no_personal_data_or_buttons(
    server: Server, browser: Any
) -> None:
    pg = _page(browser, server, "viewer")
    try:
        # adler-3 and adler-4 were new before this page opened: shown, they are unreviewed.
        popup = pg.locator("#detection-popup")
        popup.wait_for(timeout=5000)
        assert "von 2" in popup.locator(".nav").inner_text()
        assert pg.locator("button.personal").count() == 0
        assert popup.locator("button.step").count() == 0
        assert "Nur Lesen" in popup.inner_text()
        assert pg.errors == []
    finally:
        pg.context.close()
