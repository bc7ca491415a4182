"""The wall display (`/wall`) in a real browser, at a control room's two screen sizes.

One `cockpit demo` (drones with video, weather stations over LoRaWAN, units, a CAP
warning) and the test's own telemetry through the real ingest route: a robot whose CO
reading crosses the threshold while the wall is open must appear in the ticker. The wall
is read from 5 m: its type is measured, not only looked at (tests/artifacts/wall-*.png).
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.procs import Procs, free_port
from tests.serving import prepare
from tests.test_ui import Cockpit, _free_udp, robot

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
# What a control room's wall needs: a line of the ticker at least this tall on a 1920 screen.
TICKER_PX_1920 = 28.0
CLOCK_PX_1920 = 64.0
CONTROLS = "button, input, select, textarea, [role=button], [contenteditable=true]"


@dataclass
class Demo(Cockpit):
    passwords: dict[str, str] = field(default_factory=dict)  # user -> password


@contextmanager
def demo(work: Path) -> Iterator[Demo]:
    """`cockpit demo` on free ports with users of every role (tests/serving.prepare)."""
    data_dir = work / "data"
    tokens, passwords = prepare(data_dir)
    procs = Procs(work / "procs")
    app = Demo(procs, data_dir, free_port(), tokens["robot"], passwords["el"], tokens, _free_udp())
    app.passwords = passwords
    try:
        app.start()
        yield app
    finally:
        procs.close()


def new_page(browser: Any, app: Cockpit, width: int, height: int, user: str = "el") -> Any:
    """A logged-in page (the log-in form, as a person does it), recording errors and
    every request it makes (the wall must never ask for personal data)."""
    context = browser.new_context(
        viewport={"width": width, "height": height}, locale="de-DE", timezone_id="Europe/Berlin"
    )
    pg = context.new_page()
    pg.errors = []  # type: ignore[attr-defined]
    pg.requests = []  # type: ignore[attr-defined]
    pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
    pg.on("request", lambda req: pg.requests.append(req.url))
    pg.goto(app.url + "/login")
    pg.fill("#u", user)
    pg.fill("#p", app.passwords.get(user, app.password) if isinstance(app, Demo) else app.password)
    pg.click("button[type=submit]")
    pg.wait_for_url(app.url + "/")
    return pg


@pytest.fixture(scope="module")
def cockpit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cockpit]:
    with demo(tmp_path_factory.mktemp("wall")) as app:
        yield app


@pytest.fixture(scope="module")
def wall(browser: Any, cockpit: Cockpit) -> Iterator[Any]:
    pg = new_page(browser, cockpit, 1920, 1080)
    pg.goto(cockpit.url + "/wall")
    pg.wait_for_function("window.cockpit && window.cockpit.connected", timeout=20000)
    try:
        yield pg
    finally:
        pg.context.close()


def _px(page: Any, selector: str) -> float:
    # One call: wall.js redraws the ticker and the weather each second (a handle goes stale).
    size: str = page.evaluate(
        "(s) => getComputedStyle(document.querySelector(s)).fontSize", selector
    )
    return float(size.removesuffix("px"))


def _visible(page: Any, selector: str) -> bool:
    box: dict[str, float] | None = page.evaluate(
        "(s) => { const r = document.querySelector(s)?.getBoundingClientRect();"
        " return r ? {width: r.width, height: r.height} : null; }",
        selector,
    )
    return bool(box and box["width"] > 0 and box["height"] > 0)


def test_the_wall_shows_map_ticker_wind_rose_and_clock_in_large_type(
    cockpit: Cockpit, wall: Any
) -> None:
    # The demo's units on the map, framed by the page itself.
    wall.wait_for_function(
        "document.querySelectorAll('.wall-map .sym-unit').length >= 4", timeout=20000
    )
    # A reading crosses its threshold now: the ticker shows it, in words and colour, with its age.
    cockpit.post(robot(51.5286, 7.4443, readings={"co": {"value": 20.0, "unit": "ppm"}}))
    cockpit.post(robot(51.5286, 7.4443, readings={"co": {"value": 60.0, "unit": "ppm"}}))
    alert = wall.locator(".wall-alert", has_text="Robo 7")
    alert.first.wait_for(timeout=10000)
    sev = alert.first.locator(".sev").inner_text()
    assert sev.upper() in ("KRITISCH", "WARNUNG", "HINWEIS"), sev
    assert re.fullmatch(r"vor .+|jetzt", alert.first.locator(".age").inner_text()), (
        alert.first.inner_text()
    )
    colour = wall.eval_on_selector(".wall-alert", "el => getComputedStyle(el).borderLeftColor")
    assert colour not in ("rgba(0, 0, 0, 0)", "rgb(0, 0, 0)")
    # Weather: a rose with the nearest station's wind, and the stations' readings with ages.
    wall.locator("svg.wall-rose line.near, svg.wall-rose line.stale").first.wait_for(
        state="attached", timeout=20000
    )
    label = wall.locator("svg.wall-rose").get_attribute("aria-label") or ""
    assert label.startswith("Windrose:") and "m/s" in label, label
    assert wall.locator(".wall-readings tbody tr").count() >= 1
    # The clock runs; the incident's id is up.
    wall.wait_for_function(
        "/^\\d\\d:\\d\\d:\\d\\d$/.test(document.getElementById('clock').textContent)",
        timeout=3000,
    )
    assert wall.locator("#wall-incident").inner_text().strip() != ""
    for part in (".wall-map .leaflet-container", ".wall-ticker", "svg.wall-rose", "#clock"):
        assert _visible(wall, part), part
    # Large enough to read from across the room.
    assert _px(wall, ".wall-alert .text") >= TICKER_PX_1920
    assert _px(wall, "#clock") >= CLOCK_PX_1920
    assert _px(wall, ".wall-readings td") >= 22  # the readings: second in line, still large
    # The picture as the room sees it: the drones' video playing.
    wall.locator(".wall-tiles .video-tile.live").first.wait_for(timeout=30000)
    wall.wait_for_timeout(500)
    wall.screenshot(path=str(ARTIFACTS / "wall-1920.png"))
    assert wall.errors == []


def test_the_wall_plays_the_drones_video(wall: Any) -> None:
    for name in ("Drohne 1", "Drohne 2 (IR)"):
        wall.locator(".wall-tiles .video-tile.live", has_text=name).wait_for(timeout=30000)
    assert _visible(wall, ".wall-tiles .video-tile")


def test_more_videos_than_fit_take_turns(wall: Any) -> None:
    # Four more tiles beside the drones' two (whep.js keeps only its own players, so
    # these stay): six tiles, four slots, the rest shown on the next turn.
    wall.evaluate(
        """() => { const box = document.getElementById('video-tiles');
        for (let i = 1; i <= 4; i++) {
          const f = document.createElement('figure');
          f.className = 'video-tile extra'; f.dataset.stream = 'extra-' + i;
          f.innerHTML = '<figcaption><span class="name">Extra ' + i + '</span></figcaption>';
          box.append(f);
        } }"""
    )
    shown = "Array.from(document.querySelectorAll('#video-tiles > figure')).filter(f => !f.hidden)"
    pages = ("Video 1–4 von 6", "Video 5–6 von 6")
    wall.wait_for_function(
        "(pages) => pages.includes(document.getElementById('wall-video-note').textContent)",
        arg=list(pages),
        timeout=3000,
    )
    note = wall.locator("#wall-video-note")
    now_page = note.inner_text()
    first = wall.evaluate(f"{shown}.map(f => f.dataset.stream)")
    assert len(first) == (4 if now_page == pages[0] else 2), (now_page, first)
    other = pages[1] if now_page == pages[0] else pages[0]
    note.filter(has_text=other).wait_for(timeout=12000)  # about 10 s per turn
    second = wall.evaluate(f"{shown}.map(f => f.dataset.stream)")
    assert len(first) + len(second) == 6 and not set(first) & set(second), (first, second)
    wall.evaluate(
        "() => document.querySelectorAll('#video-tiles > .extra').forEach(f => f.remove())"
    )


def test_nothing_on_the_wall_takes_input(wall: Any) -> None:
    controls = wall.eval_on_selector_all(
        CONTROLS,
        "els => els.filter(e => e.getClientRects().length).map(e => e.outerHTML.slice(0, 80))",
    )
    assert controls == []
    for leaflet in (".leaflet-control-zoom", ".leaflet-control-layers", ".leaflet-interactive"):
        assert wall.locator(leaflet).count() == 0, leaflet
    # The commander's log-in on the wall writes nothing and is offered nothing personal.
    assert wall.evaluate("[window.cockpit.cfg.can_write, window.cockpit.cfg.personal_data]") == [
        False,
        False,
    ]
    # No personal data: the wall never asks for it.
    assert not [u for u in wall.requests if "/personal" in u]


def test_the_same_wall_at_3840_scales_its_type(browser: Any, cockpit: Cockpit) -> None:
    pg = new_page(browser, cockpit, 3840, 2160)
    try:
        pg.goto(cockpit.url + "/wall")
        pg.wait_for_function(
            "document.querySelectorAll('.wall-map .sym-unit').length >= 4", timeout=20000
        )
        pg.locator(".wall-alert", has_text="Robo 7").first.wait_for(timeout=10000)
        # (a vertical line has no width: attached, not "visible", is what can be waited for)
        pg.locator("svg.wall-rose line.near, svg.wall-rose line.stale").first.wait_for(
            state="attached", timeout=10000
        )
        assert _visible(pg, "svg.wall-rose")
        pg.locator(".wall-tiles .video-tile.live").first.wait_for(timeout=30000)
        pg.wait_for_timeout(1000)
        pg.screenshot(path=str(ARTIFACTS / "wall-3840.png"))
        assert _px(pg, ".wall-alert .text") >= 1.8 * TICKER_PX_1920  # twice the pixels, same look
        assert _px(pg, "#clock") >= 1.8 * CLOCK_PX_1920
        assert pg.errors == []
    finally:
        pg.context.close()


def test_the_wall_speaks_english_when_its_link_says_so(browser: Any, cockpit: Cockpit) -> None:
    pg = new_page(browser, cockpit, 1920, 1080)
    try:
        pg.goto(cockpit.url + "/wall?lang=en")
        pg.locator(".wall-ticker h2", has_text="Alerts").wait_for(timeout=15000)
        pg.locator(".wall-alert", has_text="Robo 7").first.wait_for(timeout=10000)
        assert pg.locator(".wall-alert .sev").first.inner_text().upper() in (
            "CRITICAL",
            "WARNING",
            "INFO",
        )
        assert pg.locator(".wall-weather h2").inner_text().upper() == "WEATHER"
        assert pg.evaluate("document.documentElement.lang") == "en"
        label = pg.locator("svg.wall-rose").get_attribute("aria-label") or ""
        assert label.startswith("Wind rose:"), label
    finally:
        pg.context.close()


def test_a_viewer_sees_the_same_wall_and_it_writes_nothing(browser: Any, cockpit: Cockpit) -> None:
    pg = new_page(browser, cockpit, 1920, 1080, user="viewer")
    try:
        pg.goto(cockpit.url + "/wall")
        pg.locator(".wall-alert", has_text="Robo 7").first.wait_for(timeout=15000)
        config = pg.evaluate("window.cockpit.cfg")
        assert config["role"] == "viewer" and config["can_write"] is False
        assert config["personal_data"] is False
    finally:
        pg.context.close()


def test_a_stranger_is_sent_to_log_in_first(cockpit: Cockpit) -> None:
    r = httpx.get(cockpit.url + "/wall", follow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/wall"


def test_a_lost_connection_veils_the_wall_and_it_comes_back_by_itself(
    cockpit: Cockpit, wall: Any
) -> None:
    assert cockpit.proc is not None
    cockpit.proc.send(signal.SIGKILL)
    cockpit.proc.wait(10)
    gone = time.monotonic()
    veil = wall.locator("#wall-lost")
    veil.wait_for(state="visible", timeout=4000)
    assert time.monotonic() - gone < 4.0
    assert veil.inner_text().upper().startswith("VERBINDUNG VERLOREN SEIT ")
    # Dimmed as a whole, so it shows from the back of the room.
    assert "grayscale" in wall.eval_on_selector(".wall-body", "el => getComputedStyle(el).filter")
    wall.screenshot(path=str(ARTIFACTS / "wall-lost.png"))
    cockpit.start()
    veil.wait_for(state="hidden", timeout=20000)
    assert wall.locator("#conn-state").inner_text() == "Live"
