"""The trainer's page (`/trainer`) in a real browser (Debian's Chromium via Playwright).

An incident is recorded first through the real routes (a live server, units reporting
over `/api/v1/ingest/telemetry`, a journal entry, a CO reading that raises an alert),
then served read-only by a replay server, as `cockpit replay RECORDING` does. The tests
go through it as a trainer would: the library on a live server, seek by tapping the
timeline, play at 10×, a bookmark that survives a restart. The only timings asserted are
a ratio (replay seconds per wall second), with generous bounds.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from cockpit.auth import AuthStore
from cockpit.recorder import incident_path
from tests.serving import Served, serve_in_thread

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("COCKPIT_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
INCIDENT = "uebung-hafen"
UNITS = 6
ROUNDS = 80  # one report per unit every 0.25 s: a recording of about 20 s
_HARMLESS = ("node:",)

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if not Path(CHROMIUM).is_file():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _login(s: Served, c: httpx.Client, user: str) -> None:
    r = c.post("/api/v1/session", json={"username": user, "password": s.passwords[user]})
    assert r.status_code == 200, r.text


PERSONAL = ("Marcumar", "Tochter 0231", "p-8c1f")  # (the words for needs are in the string table)


def _fall(now: float) -> dict[str, Any]:
    return {
        "id": "adler-1",
        "type": "fall",
        "confidence": 0.9,
        "time": _iso(now),
        "device": "fall-sensor-17",
        "location": {"lat": 51.527, "lon": 7.442, "address": "Kanalstraße 3"},
        "person": {
            "id": "p-8c1f",
            "age_group": "senior",
            "needs": ["hearing_impaired"],
            "medical": "Marcumar",
            "contact": "Tochter 0231 555 0123",
        },
    }


def _record(data: Path) -> Path:
    """A live incident, about 20 s long, made through the routes a live one uses."""
    with serve_in_thread(data, incident=INCIDENT) as s, httpx.Client(base_url=s.url) as c:
        _login(s, c, "el")
        with AuthStore(data / "auth.sqlite") as auth:
            adler = {"Authorization": f"Bearer {auth.add_device('adler-gw', ['adler'])}"}
        for i in range(ROUNDS):
            now = time.time()
            batch = [
                {
                    "entity": f"hlf-{u}",
                    "kind": "unit",
                    "callsign": f"Florian Hafen {u}/46-1",
                    "observed_at": _iso(now),
                    "position": {"lat": 51.525 + u * 2e-3 + i * 2e-5, "lon": 7.44 + i * 3e-5},
                }
                for u in range(UNITS)
            ]
            if i == 20:
                r = c.post("/api/v1/journal", json={"text": "Lage: Brand Lagerhalle, 2 Trupps"})
                assert r.status_code == 201, r.text
            if i == 40:  # a robot measuring CO over the limit: the fold raises an alert
                batch.append(
                    {
                        "entity": "robot-1",
                        "kind": "robot",
                        "observed_at": _iso(now),
                        "position": {"lat": 51.526, "lon": 7.441},
                        "readings": {"co": {"value": 250.0, "unit": "ppm"}},
                    }
                )
            if i == 30:  # an A.D.Le.R. fall with the person's data (never on this page)
                r = c.post("/api/v1/ingest/adler", json=_fall(now), headers=adler)
                assert r.status_code == 202, r.text
            r = c.post("/api/v1/ingest/telemetry", json=batch, headers=s.device())
            assert r.status_code == 202, r.text
            time.sleep(0.25)
    return incident_path(data, INCIDENT)


@dataclass
class Setup:
    work: Path
    recording: Path
    servers: list[Any] = field(default_factory=list)
    served: Served | None = None

    def replay(self, name: str) -> Served:
        """(Re)start the replay server on the recording, with its own data dir."""
        self.stop()
        ctx = serve_in_thread(self.work / name, replay=self.recording)
        self.served = ctx.__enter__()
        self.servers.append(ctx)
        return self.served

    def stop(self) -> None:
        while self.servers:
            self.servers.pop().__exit__(None, None, None)
        self.served = None


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    work = tmp_path_factory.mktemp("trainer")
    it = Setup(work, _record(work / "live"))
    try:
        yield it
    finally:
        it.stop()


def _page(browser: Any, s: Served, user: str = "trainer", lang: str = "de") -> Any:
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, locale="de-DE", timezone_id="Europe/Berlin"
    )
    r = context.request.post(
        s.url + "/api/v1/session", data={"username": user, "password": s.passwords[user]}
    )
    assert r.status == 200, r.text()
    pg = context.new_page()
    pg.errors = []
    pg.outside = []
    pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
    pg.on(
        "request",
        lambda req: (
            None
            if req.url.startswith((s.url, "data:", "blob:", *_HARMLESS))
            else pg.outside.append(req.url)
        ),
    )
    pg.goto(s.url + "/trainer" + ("?lang=en" if lang == "en" else ""))
    return pg


def _wait(page: Any, js: str, timeout_s: float = 15, arg: Any = None) -> Any:
    return page.wait_for_function(js, arg=arg, timeout=timeout_s * 1000, polling=20)


def _ready(page: Any) -> None:
    """The replay's state, timeline and the first picture are on the page."""
    try:
        _wait(
            page,
            "window.cockpitTrainer && cockpitTrainer.mode === 'replay' && cockpitTrainer.timeline"
            " && window.cockpit && cockpit.connected && document.querySelector('#tr-head')",
            30,
        )
    except sync_api.TimeoutError as exc:
        seen = page.evaluate(
            "JSON.stringify({mode: window.cockpitTrainer && cockpitTrainer.mode,"
            " timeline: !!(window.cockpitTrainer && cockpitTrainer.timeline),"
            " connected: window.cockpit && cockpit.connected,"
            " head: !!document.querySelector('#tr-head')})"
        )
        raise AssertionError(f"the trainer page is not ready: {seen} {page.errors}") from exc


# --- live: what there is to replay ----------------------------------------------------


def test_a_live_server_lists_the_library_and_disables_the_controls(
    setup: Setup, browser: Any
) -> None:
    # Another day's live server, with the recording in its incidents folder.
    library = setup.work / "library" / "incidents"
    library.mkdir(parents=True)
    shutil.copy(setup.recording, library / setup.recording.name)
    with serve_in_thread(library.parent, incident="heute") as s:
        page = _page(browser, s)
        _wait(page, "document.querySelectorAll('#tr-library .tr-rec').length >= 1")
        _wait(page, "window.cockpitTrainer && cockpitTrainer.mode === 'live'")
        library = page.locator("#tr-library").inner_text()
        assert INCIDENT in library and "Ereignisse" in library and "min" in library, library
        assert "cockpit replay RECORDING" in page.locator("#tr-note").inner_text()
        for control in ("#tr-play", "#tr-pause", "#tr-speed", "#tr-bm-add"):
            assert page.locator(control).is_disabled(), control
        assert page.errors == [] and page.outside == []
        page.context.close()


# --- replay ---------------------------------------------------------------------------


def test_a_tap_on_the_timeline_seeks_and_the_map_shows_that_moment(
    setup: Setup, browser: Any
) -> None:
    s = setup.replay("replay-1")
    page = _page(browser, s)
    _ready(page)
    marks = page.locator(".tr-pin").all_inner_texts()
    assert "●" in marks and "▲" in marks, marks  # the journal entry and the CO alert
    box = page.locator("#tr-timeline").bounding_box()
    for fraction in (0.6, 0.25):
        before = page.evaluate("cockpitTrainer.lastSeek && cockpitTrainer.lastSeek.seq")
        # The density strip (below the lanes of marks): a tap there is a seek.
        page.mouse.click(box["x"] + box["width"] * fraction, box["y"] + box["height"] - 15)
        seek = _wait(
            page,
            "(b) => { const s = cockpitTrainer.lastSeek; return s && s.seq !== b"
            " && cockpit.connected && cockpit.seq === s.seq && s; }",
            arg=before,
        ).json_value()
        state = page.evaluate("cockpitTrainer.state")
        assert state["start"] < seek["position"] < state["end"]
        expected = state["start"] + fraction * (state["end"] - state["start"])
        assert abs(seek["position"] - expected) < 0.05 * (state["end"] - state["start"])
        with httpx.Client(base_url=s.url) as c:
            _login(s, c, "viewer")
            at = c.get("/api/v1/situation", params={"at": _iso(seek["position"])}).json()
        want = {e["id"]: (e["lat"], e["lon"]) for e in at["entities"]}
        on_page = page.evaluate(
            "Object.fromEntries([...cockpit.picture.entities.values()]"
            ".map((e) => [e.id, [e.lat, e.lon]]))"
        )
        # What Leaflet draws: the markers' own positions.
        _wait(page, "(n) => cockpitLive.markers.size === n", arg=len(want))
        drawn = page.evaluate(
            "Object.fromEntries([...cockpitLive.markers].map(([id, m]) => "
            "[id, [m.getLatLng().lat, m.getLatLng().lng]]))"
        )
        assert at["seq"] == seek["seq"]
        assert len(want) >= UNITS
        assert {k: tuple(v) for k, v in on_page.items()} == want
        assert set(drawn) == set(want)
        for eid, (lat, lon) in want.items():
            assert drawn[eid] == pytest.approx([lat, lon], abs=1e-9), eid
    assert page.errors == [] and page.outside == []
    page.context.close()


def test_a_drag_along_the_timeline_seeks_to_where_it_ends(setup: Setup, browser: Any) -> None:
    s = setup.served or setup.replay("replay-1")
    page = _page(browser, s)
    _ready(page)
    assert page.locator("#conn-state").inner_text() == "Wiedergabe"  # not "Live"
    seeks: list[dict[str, Any]] = []
    page.on(
        "request",
        lambda r: seeks.append(r.post_data_json) if r.url.endswith("/replay/seek") else None,
    )
    box = page.locator("#tr-timeline").bounding_box()
    y = box["y"] + box["height"] - 15
    page.mouse.move(box["x"] + box["width"] * 0.1, y)
    page.mouse.down()
    began = time.monotonic()
    for i in range(1, 21):  # 20 steps over a second or more
        page.mouse.move(box["x"] + box["width"] * (0.1 + 0.035 * i), y)
        page.wait_for_timeout(50)
    page.mouse.up()
    dragged = time.monotonic() - began
    seek = _wait(
        page,
        "cockpitTrainer.seeking === null && cockpitTrainer.lastSeek && cockpit.connected"
        " && cockpit.seq === cockpitTrainer.lastSeek.seq && cockpitTrainer.lastSeek",
    ).json_value()
    state = page.evaluate("cockpitTrainer.state")
    span = state["end"] - state["start"]
    assert abs(seek["position"] - (state["start"] + 0.8 * span)) < 0.05 * span
    # Debounced: at most one seek per 200 ms of dragging (and the one where it ended),
    # fewer than the steps; the last one where the drag ended.
    assert 1 <= len(seeks) <= min(19, dragged / 0.2 + 2), (dragged, seeks)
    assert abs(seeks[-1]["t"] - seek["position"]) < 0.01
    assert page.errors == []
    page.context.close()


def test_play_at_ten_times_runs_the_replay_clock_ten_times_as_fast(
    setup: Setup, browser: Any
) -> None:
    s = setup.served or setup.replay("replay-1")
    page = _page(browser, s)
    _ready(page)
    box = page.locator("#tr-timeline").bounding_box()
    page.mouse.click(box["x"] + 3, box["y"] + box["height"] - 15)  # near the start
    _wait(page, "cockpitTrainer.lastSeek && cockpitTrainer.seeking === null")
    page.select_option("#tr-speed", "10")
    _wait(page, "cockpitTrainer.state.speed === 10")
    page.click("#tr-play")
    _wait(page, "cockpitTrainer.state.playing === true")

    def clock() -> tuple[float, float]:
        return time.monotonic(), float(page.locator("#tr-clock").get_attribute("data-t"))

    wall0, replay0 = clock()
    page.wait_for_timeout(1500)
    wall1, replay1 = clock()
    page.click("#tr-pause")
    _wait(page, "cockpitTrainer.state.playing === false")
    ratio = (replay1 - replay0) / (wall1 - wall0)
    assert 6.0 < ratio < 14.0, ratio
    # The server agrees: the picture moved on with the clock.
    with httpx.Client(base_url=s.url) as c:
        _login(s, c, "viewer")
        state = c.get("/api/v1/replay").json()
    assert state["playing"] is False and state["speed"] == 10
    assert state["position"] > replay0 + 5
    assert ":" in page.locator("#tr-clock").inner_text()
    assert page.errors == []
    page.context.close()


def test_a_bookmark_survives_a_restart_and_the_page_is_touchable(
    setup: Setup, browser: Any
) -> None:
    s = setup.served or setup.replay("replay-1")
    page = _page(browser, s)
    _ready(page)
    page.fill("#tr-bm-title", "Lagemeldung prüfen")
    page.fill("#tr-bm-note", "Wer wusste wann vom CO-Alarm?")
    page.click("#tr-bm-add")
    _wait(page, "document.querySelectorAll('#tr-bm-list .tr-bm').length === 1")
    page.context.close()

    s = setup.replay("replay-2")  # a restart on the same recording
    page = _page(browser, s)
    _ready(page)
    _wait(page, "document.querySelectorAll('#tr-bm-list .tr-bm').length === 1")
    listed = page.locator("#tr-bm-list").inner_text()
    assert "Lagemeldung prüfen" in listed and "CO-Alarm" in listed and "trainer" in listed
    assert "⚑" in page.locator(".tr-pin").all_inner_texts()
    # A tap on the bookmark's flag names it under the timeline (no hover needed).
    flag = page.locator(".tr-pin.pin-bookmark").bounding_box()
    page.mouse.click(flag["x"] + flag["width"] / 2, flag["y"] + flag["height"] / 2)
    _wait(page, "document.querySelector('#tr-mark').textContent.includes('Lagemeldung')")

    # The screenshot, then touch targets of at least 44 px on every control.
    page.screenshot(path=str(ARTIFACTS / "trainer-1280.png"))
    controls = ["#tr-play", "#tr-pause", "#tr-speed", "#tr-bm-add", "#tr-bm-title", "#tr-bm-note"]
    controls += [".tr-bm-go", ".tr-bm-del", ".tr-mark-go", "#tr-timeline"]
    for selector in controls:
        target = page.locator(selector).first.bounding_box()
        assert target is not None, selector
        assert target["width"] >= 44 and target["height"] >= 44, (selector, target)

    # English on request; the bookmark can be deleted by its author.
    page.goto(s.url + "/trainer?lang=en")
    _ready(page)
    _wait(page, "document.querySelectorAll('.tr-bm-del').length === 1")
    assert "Bookmarks" in page.content() and "Replay time" in page.content()
    page.click(".tr-bm-del")
    _wait(page, "document.querySelectorAll('#tr-bm-list .tr-bm').length === 0")
    assert page.errors == [] and page.outside == []
    page.context.close()


def test_a_commander_sees_the_detection_but_never_its_personal_data(
    setup: Setup, browser: Any
) -> None:
    s = setup.served or setup.replay("replay-1")
    page = _page(browser, s, user="el")  # a commander: on duty the tap would show it
    _ready(page)
    assert "◆" in page.locator(".tr-pin").all_inner_texts()  # the fall on the timeline
    box = page.locator("#tr-timeline").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.9, box["y"] + box["height"] - 15)
    _wait(page, "cockpit.picture && cockpit.picture.detections.has('adler-1')")
    _wait(page, "document.querySelector('.adler-item[data-detection=\"adler-1\"]')")
    page.locator('.adler-item[data-detection="adler-1"]').click()
    page.wait_for_timeout(300)
    assert page.evaluate("cockpit.cfg.personal_data") is False
    assert page.locator("button.personal").count() == 0  # no button asks for it
    html = page.content()
    for secret in PERSONAL:
        assert secret not in html, secret
    assert page.errors == []
    page.context.close()


def test_a_viewer_watches_without_driving_and_a_stranger_must_log_in(
    setup: Setup, browser: Any
) -> None:
    s = setup.served or setup.replay("replay-1")
    with httpx.Client(base_url=s.url) as anonymous:
        r = anonymous.get("/trainer", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/trainer"
    page = _page(browser, s, user="viewer")
    _ready(page)
    for control in ("#tr-play", "#tr-pause", "#tr-speed", "#tr-bm-add"):
        assert page.locator(control).is_disabled(), control
    assert "Nur ansehen" in page.locator("#tr-status").inner_text()
    before = page.evaluate("cockpitTrainer.state.position")
    box = page.locator("#tr-timeline").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] - 15)
    page.wait_for_timeout(500)
    assert page.evaluate("cockpitTrainer.lastSeek") is None  # no seek was even asked
    assert page.evaluate("cockpitTrainer.state.position") == before
    assert page.errors == []
    page.context.close()
