"""The commander layout in a real browser (Debian's Chromium through Playwright).

One `cockpit demo` process with a prepared data dir (users of every role, a device token
for the test's own telemetry) and one browser page, used in order by the tests below, as
a commander would: log in, see the demo's units, watch a robot move and go stale,
acknowledge an alert, switch the language, lose the server and get it back.

The only timings asserted are the issue's promises: a marker moves within 1 s of the
202, the banner appears within 2 s of the server going away.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.procs import Proc, Procs, free_port
from tests.serving import prepare
from tests.whip import Publisher

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("COCKPIT_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
START_TIMEOUT_S = 30.0
ROBOT_STALE_S = 4.0
# Requests that are not the network: plotly.js probes for Node modules at load time.
_HARMLESS = ("node:",)

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if not Path(CHROMIUM).is_file():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


def _iso(t: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if t is None else t, UTC).isoformat()


@dataclass
class Cockpit:
    procs: Procs
    data_dir: Path
    port: int
    token: str
    password: str
    tokens: dict[str, str]
    mavlink_port: int = 0
    proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {
            "COCKPIT_STALE_AFTER_S": f'{{"robot": {ROBOT_STALE_S}}}',
            # Its own MAVLink port: the default 14550 may be another demo's.
            "COCKPIT_MAVLINK_LISTEN": f"udp:127.0.0.1:{self.mavlink_port}",
        }
        self.proc = self.procs.start(
            "demo", "--no-browser", "--data-dir", str(self.data_dir), port=self.port, env=env
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc.alive(), self.proc.tail()
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"cockpit did not answer in {START_TIMEOUT_S} s\n{self.proc.tail()}")

    def post(self, *messages: dict[str, Any]) -> float:
        """Post telemetry; returns the time the 202 arrived."""
        r = httpx.post(
            self.url + "/api/v1/ingest/telemetry",
            json=list(messages),
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=15,
        )
        assert r.status_code == 202, r.text
        return time.monotonic()


def _free_udp() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def robot(lat: float, lon: float, **extra: Any) -> dict[str, Any]:
    return {
        "entity": "robot-7",
        "kind": "robot",
        "callsign": "Robo 7",
        "observed_at": _iso(),
        "position": {"lat": lat, "lon": lon},
        **extra,
    }


@pytest.fixture(scope="module")
def cockpit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cockpit]:
    work = tmp_path_factory.mktemp("ui")
    data_dir = work / "data"
    tokens, passwords = prepare(data_dir)
    procs = Procs(work / "procs")
    app = Cockpit(
        procs, data_dir, free_port(), tokens["robot"], passwords["el"], tokens, _free_udp()
    )
    try:
        app.start()
        yield app
    finally:
        procs.close()


@pytest.fixture(scope="module")
def page(cockpit: Cockpit) -> Iterator[Any]:
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(
            viewport={"width": 1280, "height": 800}, locale="de-DE", timezone_id="Europe/Berlin"
        )
        pg = context.new_page()
        pg.errors = []  # type: ignore[attr-defined]
        pg.outside = []  # type: ignore[attr-defined]
        pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
        pg.on(
            "request",
            lambda req: (
                None
                if req.url.startswith((cockpit.url, "data:", "blob:", *_HARMLESS))
                else pg.outside.append(req.url)
            ),
        )
        try:
            yield pg
        finally:
            context.close()
            browser.close()


def _wait(page: Any, js: str, timeout_s: float, arg: Any = None) -> None:
    page.wait_for_function(js, arg=arg, timeout=timeout_s * 1000, polling=20)


def _no_popup(page: Any) -> None:
    """Close the A.D.Le.R. pop-ups the demo's own emergencies open (tests/test_ui_adler.py
    is about those): a tap on the map below must reach the map."""
    for _ in range(10):
        close = page.locator("#detection-popup button.close")
        if close.count() == 0:
            return
        close.click()
    raise AssertionError("the A.D.Le.R. pop-up does not close")


def _marker_box(page: Any, label: str) -> dict[str, float] | None:
    loc = page.locator(".sym", has_text=label)
    if loc.count() == 0:
        return None
    box: dict[str, float] | None = loc.first.bounding_box()
    return box


# --- the tests, in the order a commander meets them -------------------------------------


def test_log_in_and_see_the_demo_units_on_the_map(cockpit: Cockpit, page: Any) -> None:
    page.goto(cockpit.url + "/")
    assert "/login" in page.url  # no session: the log-in page, nothing else
    page.fill("#u", "el")
    page.fill("#p", cockpit.password)
    page.click("button[type=submit]")
    page.wait_for_url(cockpit.url + "/")
    _wait(page, "document.querySelectorAll('.sym-unit').length >= 8", 20)
    labels = page.locator(".sym-unit .lbl").all_inner_texts()
    assert any("HLF" in text for text in labels), labels
    assert page.locator("#conn-state").inner_text() == "Live"
    assert page.errors == [] and page.outside == []


def test_a_telemetry_post_moves_the_marker_within_a_second(cockpit: Cockpit, page: Any) -> None:
    cockpit.post(robot(51.5280, 7.4430))
    _wait(
        page,
        "[...document.querySelectorAll('.sym-robot')].some(e => e.textContent.includes('Robo 7'))",
        5,
    )
    before = _marker_box(page, "Robo 7")
    assert before is not None
    acked = cockpit.post(robot(51.5285, 7.4440))  # ~80 m north-east: tens of pixels at zoom 15
    page.wait_for_function(
        """([x, y]) => {
            const el = [...document.querySelectorAll('.sym-robot')]
                .find(e => e.textContent.includes('Robo 7'));
            if (!el) return false;
            const r = el.getBoundingClientRect();
            return Math.abs(r.x - x) > 5 || Math.abs(r.y - y) > 5;
        }""",
        arg=[before["x"], before["y"]],
        timeout=1000,
        polling="raf",
    )
    moved_after = time.monotonic() - acked
    after = _marker_box(page, "Robo 7")
    assert after is not None and after["y"] < before["y"] and after["x"] > before["x"]
    assert moved_after < 1.0


def test_a_robot_that_stops_reporting_turns_stale_after_its_threshold(
    cockpit: Cockpit, page: Any
) -> None:
    sent = cockpit.post(robot(51.5286, 7.4441))
    robot_el = ".sym-robot:has-text('Robo 7')"
    _wait(page, 'document.querySelector(".sym-robot:not(.stale)") !== null', 2)
    page.wait_for_selector(f"{robot_el}.stale", timeout=(ROBOT_STALE_S + 4) * 1000)
    turned = time.monotonic() - sent
    assert turned >= ROBOT_STALE_S - 0.5  # not before its threshold
    label = page.locator(f"{robot_el} .age").inner_text()
    assert label.endswith(" s") and int(label.split()[0]) >= ROBOT_STALE_S - 1
    # Reporting again brings it back.
    cockpit.post(robot(51.5286, 7.4442))
    page.wait_for_selector(f"{robot_el}:not(.stale)", timeout=3000)
    # Its marker is still a button after all that restyling: tapping it shows the robot.
    # (Dispatched to the marker itself: the demo's own robots may drive over it.)
    page.locator(robot_el).dispatch_event("click")
    page.locator("#details h3", has_text="Robo 7").wait_for(timeout=3000)


def test_acknowledging_an_alert_puts_it_in_the_einsatztagebuch(cockpit: Cockpit, page: Any) -> None:
    cockpit.post(robot(51.5286, 7.4443, readings={"co": {"value": 20.0, "unit": "ppm"}}))
    cockpit.post(robot(51.5286, 7.4443, readings={"co": {"value": 60.0, "unit": "ppm"}}))
    alert = page.locator("#alerts-list .alert.sev-warning", has_text="Robo 7: CO")
    alert.wait_for(timeout=3000)
    assert "Robo 7" in alert.inner_text()  # the callsign, not the id
    alert.locator("button.ack").click()
    entry = page.locator("#journal-list .entry.cat-ack", has_text="CO")
    entry.wait_for(timeout=3000)
    assert entry.locator(".author").inner_text() == "el"
    page.locator("#alerts-list .alert .acked", has_text="el").wait_for(timeout=3000)
    # Tapping the alert shows its robot: details with the reading and its sparkline.
    alert.locator(".alert-text").click()
    page.locator("#details h3", has_text="Robo 7").wait_for(timeout=3000)
    assert "60 ppm" in page.locator("#details .facts").inner_text()
    page.locator("#details-spark .scatterlayer .trace").first.wait_for(timeout=3000)
    assert page.locator(".sym-robot.selected", has_text="Robo 7").count() == 1
    # A quick entry is one tap and shows the author too.
    page.locator("button.quick", has_text="Lage erkundet").click()
    page.locator("#journal-list .entry.cat-note", has_text="Lage erkundet").wait_for(timeout=3000)


def test_a_reading_that_did_not_change_stays_in_the_details(cockpit: Cockpit, page: Any) -> None:
    """Deltas carry only what changed: the page must keep the rest."""
    both = {"co": {"value": 61.0, "unit": "ppm"}, "h2s": {"value": 3.0, "unit": "ppm"}}
    cockpit.post(robot(51.5286, 7.4443, readings=both))
    facts = page.locator("#details .facts")
    page.wait_for_function(
        "() => /61 ppm/.test(document.querySelector('#details .facts').innerText)"
        " && /H₂S/.test(document.querySelector('#details .facts').innerText)",
        timeout=3000,
    )
    cockpit.post(robot(51.5286, 7.4444, readings={"co": {"value": 62.0, "unit": "ppm"}}))
    page.wait_for_function(
        "() => /62 ppm/.test(document.querySelector('#details .facts').innerText)", timeout=3000
    )
    text = facts.inner_text()
    assert "H₂S" in text and "3 ppm" in text, text


def _station(cockpit: Cockpit, lat: float, lon: float, wind_from: float) -> None:
    cockpit.post(
        {
            "entity": "ws-test",
            "kind": "sensor",
            "callsign": "Wetter Test",
            "observed_at": _iso(),
            "position": {"lat": lat, "lon": lon},
            "readings": {
                "wind_dir": {"value": wind_from, "unit": "°"},
                "wind_speed": {"value": 4.0, "unit": "m/s"},
            },
        }
    )


_SECTOR_AXIS = """() => {
    // The page's own downwind sector: the bearing from its source to the middle of its rim.
    const hs = [...window.cockpit.picture.hazards.values()];
    const s = hs.find(h => h.kind === "downwind_sector" && h.label === "Gefahrenstelle");
    if (!s) return null;
    const ring = s.geometry.coordinates[0];
    const src = hs.find(h => h.id === s.source) || null;
    const [lon0, lat0] = src.geometry.coordinates;
    let x = 0, y = 0;
    for (const [lon, lat] of ring) {
        const dx = (lon - lon0) * Math.cos(lat0 * Math.PI / 180), dy = lat - lat0;
        if (Math.hypot(dx, dy) < 1e-6) continue;
        x += dx / Math.hypot(dx, dy); y += dy / Math.hypot(dx, dy);
    }
    return (Math.atan2(x, y) * 180 / Math.PI + 360) % 360;
}"""


def test_a_wind_change_turns_the_sector_and_a_crew_inside_is_alerted(
    cockpit: Cockpit, page: Any
) -> None:
    fire = (51.5250, 7.4400)
    _station(cockpit, fire[0], fire[1] + 0.0002, 270.0)  # wind from the west
    # The commander marks the hazard: the button, then a tap on the map where it is.
    button = page.evaluate(
        "() => { const b = document.querySelector('#hazard-draw');"
        " return [b.scrollWidth, b.clientWidth, b.getBoundingClientRect().height]; }"
    )
    assert button[0] <= button[1] and button[2] >= 44, button  # whole label, a finger's size
    _no_popup(page)
    page.click("#hazard-draw")
    page.locator("#hazard-hint").wait_for(state="visible", timeout=2000)
    where = page.evaluate(
        """([lat, lon]) => {
            const map = window.cockpitLive.map;
            map.setView([lat, lon], 15, {animate: false});
            const p = map.latLngToContainerPoint([lat, lon]);
            const box = map.getContainer().getBoundingClientRect();
            return {x: box.x + p.x, y: box.y + p.y};
        }""",
        list(fire),
    )
    page.mouse.click(where["x"], where["y"])
    _wait(page, f"({_SECTOR_AXIS})() !== null", 5)
    axis = page.evaluate(_SECTOR_AXIS)
    assert abs(axis - 90.0) < 10, axis  # smoke drifts east
    entry = page.locator("#journal-list .entry", has_text="Gefahrenbereich festgelegt")
    entry.first.wait_for(timeout=3000)
    # A crew 300 m east of the hazard stands in the smoke.
    crew = {
        "entity": "hlf-test",
        "kind": "unit",
        "callsign": "HLF Test",
        "observed_at": _iso(),
        "position": {"lat": fire[0], "lon": fire[1] + 0.0043},
    }
    cockpit.post(crew)
    # (the demo's own vehicles may stand in it too: this crew's alert by its callsign)
    alert = page.locator("#alerts-list .alert", has_text="HLF Test: Im Windsektor")
    alert.first.wait_for(timeout=3000)
    assert "sev-warning" in (alert.first.get_attribute("class") or "")
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / "commander-sector.png"))
    # The wind turns to come from the east: the sector swings west, the crew is clear.
    _station(cockpit, fire[0], fire[1] + 0.0002, 90.0)
    _wait(page, f"Math.abs(({_SECTOR_AXIS})() - 270) < 10", 5)
    cleared = page.locator("#alerts-list .alert.cleared", has_text="HLF Test: Im Windsektor")
    cleared.first.wait_for(timeout=3000)
    # and the turn itself is an alert
    page.locator("#alerts-list .alert", has_text="Winddrehung").first.wait_for(timeout=3000)
    assert page.errors == [] and page.outside == []


def test_a_warning_given_only_by_area_codes_is_listed_by_name(cockpit: Cockpit, page: Any) -> None:
    from tests.test_cap import cap, info

    only_codes = """<area><areaDesc>Kreis Unna</areaDesc>
      <geocode><valueName>WARNCELLID</valueName><value>109978000</value></geocode></area>"""
    infos = info("de-DE", "FROST", "Amtliche WARNUNG vor FROST", areas=only_codes)
    infos += info("en-GB", "frost", "Official WARNING of FROST", areas=only_codes)
    r = httpx.post(
        cockpit.url + "/api/v1/ingest/cap",
        content=cap("DE-UN-FROST-1", infos=infos).encode(),
        headers={
            "Authorization": f"Bearer {cockpit.tokens['weather']}",
            "Content-Type": "application/cap+xml",
        },
        timeout=15,
    )
    assert r.status_code == 202, r.text
    card = page.locator("#warnings-list .warning", has_text="Amtliche WARNUNG vor FROST")
    card.wait_for(timeout=3000)
    assert "Kreis Unna" in card.inner_text()


def test_screenshots_in_german_and_english(cockpit: Cockpit, page: Any) -> None:
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / "commander-de.png"))
    assert page.locator(".card.alerts h2").inner_text().lower() == "alarme"
    page.click("#lang-toggle")
    page.wait_for_selector(".card.alerts h2:has-text('Alerts')", timeout=10000)
    _wait(page, "document.querySelectorAll('.sym-unit').length >= 8", 10)
    assert page.locator(".card.journal-card h2").inner_text().lower() == "incident log"
    # alerts and warnings in English too, not only the headings
    page.locator("#alerts-list .alert", has_text="In the downwind sector").first.wait_for(
        timeout=3000
    )
    page.locator("#warnings-list .warning", has_text="Official WARNING of FROST").wait_for(
        timeout=3000
    )
    page.screenshot(path=str(ARTIFACTS / "commander-en.png"))
    page.click("#lang-toggle")  # back to German for the rest
    page.wait_for_selector(".card.alerts h2:has-text('Alarme')", timeout=10000)


def test_the_demo_drones_fly_with_their_cameras_on_the_fire(cockpit: Cockpit, page: Any) -> None:
    # Both come in their own protocols: MAVLink over UDP, video over WHIP.
    for name in ("Drohne 1", "Drohne 2 (IR)"):
        page.locator(".sym-drone", has_text=name).wait_for(timeout=20000)
        page.locator(".video-tile.live", has_text=name).wait_for(timeout=20000)
    _wait(page, "(window.cockpit.picture.entities.get('uav-2') || {}).footprint?.length >= 4", 10)


def test_a_drones_video_plays_with_its_age_and_turns_stale_when_frames_stop(
    cockpit: Cockpit, page: Any
) -> None:
    # The drone itself reports over telemetry: where it is and where its camera points.
    cockpit.post(
        {
            "entity": "uav-9",
            "kind": "drone",
            "callsign": "Drohne 9",
            "observed_at": _iso(),
            "position": {"lat": 51.5287, "lon": 7.4441, "alt_m": 80.0, "heading_deg": 90.0},
            "readings": {"gimbal_pitch_deg": {"value": -60.0, "unit": "deg"}},
        }
    )
    _wait(page, "(window.cockpit.picture.entities.get('uav-9') || {}).footprint?.length >= 4", 5)
    pub = Publisher(cockpit.url, "uav-9", cockpit.tokens["uav"])
    pub.thread.start()
    try:
        assert pub.ready.wait(20) and pub.error is None, pub.error
        tile = page.locator(".video-tile[data-stream='uav-9']")
        tile.wait_for(timeout=10000)
        assert tile.locator(".name").inner_text() == "Drohne 9"  # the callsign, not the id
        page.locator(".video-tile.live[data-stream='uav-9']").wait_for(timeout=15000)
        size = page.evaluate(
            "(() => { const v = document.querySelector('.video-tile video');"
            " return [v.videoWidth, v.videoHeight]; })()"
        )
        assert size == [640, 360]  # Chromium decoded the forwarded VP8
        assert re.fullmatch(r"Bild \d+,\d s alt", tile.locator(".frame-age").inner_text())
        pub.paused.set()  # the radio drops: no more frames, the session stays
        page.locator(".video-tile.stale[data-stream='uav-9']").wait_for(timeout=5000)
        assert tile.locator(".frame-age").inner_text().startswith("KEIN BILD seit")
        pub.paused.clear()
        page.locator(".video-tile.live[data-stream='uav-9']").wait_for(timeout=10000)
    finally:
        pub.stop.set()
        pub.thread.join(20)
    assert pub.error is None, pub.error
    tile.wait_for(state="detached", timeout=10000)  # the stream ended: its tile goes


def test_losing_the_server_shows_the_banner_and_a_restart_resyncs(
    cockpit: Cockpit, page: Any
) -> None:
    _wait(page, "window.cockpit && window.cockpit.connected", 10)
    page.evaluate("window.__sameDocument = true")
    snapshots = page.evaluate("window.cockpit.stats.snapshots")
    assert cockpit.proc is not None
    cockpit.proc.send(signal.SIGKILL)
    cockpit.proc.wait(10)
    gone = time.monotonic()
    banner = page.locator("#conn-banner")
    banner.wait_for(state="visible", timeout=2000)
    shown_after = time.monotonic() - gone
    assert banner.inner_text().startswith("Verbindung unterbrochen — Stand ")
    assert "disconnected" in (page.locator(".map-wrap").get_attribute("class") or "")
    assert shown_after < 2.0
    cockpit.start()
    banner.wait_for(state="hidden", timeout=15000)
    assert page.evaluate("window.__sameDocument") is True  # no reload
    assert page.evaluate("window.cockpit.stats.snapshots") > snapshots
    _wait(page, "document.querySelectorAll('.sym-unit').length >= 8", 10)
    # What was recorded before the kill is back: the robot and the acknowledged alert.
    assert page.locator(".sym-robot", has_text="Robo 7").count() == 1
    page.locator("#journal-list .entry.cat-ack").first.wait_for(timeout=3000)
    assert page.errors == [] and page.outside == []


def test_a_large_layer_becomes_dots_and_a_tap_on_a_dot_selects_it(
    cockpit: Cockpit, page: Any
) -> None:
    """More than 300 of a kind: one canvas of dots instead of a symbol each; still
    tappable. (Last: the robots stay in the picture.)"""
    _wait(page, "window.cockpit && window.cockpit.connected", 10)
    now = _iso()
    many = [
        {
            "entity": f"robot-{i:03d}",
            "kind": "robot",
            "callsign": f"Schwarm {i}",
            "observed_at": now,
            "position": {"lat": 51.5230 + 0.0004 * (i // 20), "lon": 7.4380 + 0.0006 * (i % 20)},
        }
        for i in range(320)
    ]
    cockpit.post(*many)
    _wait(page, "window.cockpitLive.dots.robots && !document.querySelector('.sym-robot')", 5)
    _no_popup(page)
    # A dot nothing else is drawn over (the demo's Helfer walk about the district, and
    # their symbols with their labels take taps): where it is in page pixels, and what
    # the canvas holds there. robot-137 first, the one the test always took.
    where = page.evaluate(
        """() => {
            const map = window.cockpitLive.map;
            const box = map.getContainer().getBoundingClientRect();
            const canvas = document.querySelector("canvas.cockpit-dots");
            const ids = [137, ...Array.from({length: 320}, (_, i) => i)];
            for (const i of ids) {
                const id = "robot-" + String(i).padStart(3, "0");
                const e = window.cockpit.picture.entities.get(id);
                const p = map.latLngToContainerPoint([e.lat, e.lon]);
                const top = document.elementFromPoint(box.x + p.x, box.y + p.y);
                const over = ".leaflet-marker-icon, .video-tile, .leaflet-control, .adler-popup";
                if (!top || top.closest(over)) continue;
                const ctx = canvas.getContext("2d");
                const px = ctx.getImageData(Math.round(p.x), Math.round(p.y), 1, 1);
                return {x: box.x + p.x, y: box.y + p.y, alpha: px.data[3], name: e.callsign};
            }
            return null;
        }"""
    )
    assert where is not None and where["alpha"] > 200, where  # a dot is drawn there
    page.mouse.click(where["x"], where["y"])
    page.locator("#details h3", has_text=where["name"]).wait_for(timeout=3000)
    assert page.errors == []


def teardown_module() -> None:
    # Keep the screenshots; nothing else of a run stays in the tree.
    for child in ARTIFACTS.glob("*"):
        if child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
