"""Exercise mode in a real browser: `cockpit replay RECORDING --as-live` as a real process,
the commander's ordinary page showing a March 2025 incident's units moving with today's
times, every page marked ÜBUNG, and the trainer pausing and injecting from /trainer.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import recordings
from tests.procs import Proc, Procs, free_port, wait_healthy
from tests.serving import prepare
from tests.test_a11y import _findings, _scan, axe_script

__all__ = ["axe_script"]  # the fixture, shared with the accessibility tests

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("COCKPIT_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
_HARMLESS = ("node:",)

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if not Path(CHROMIUM).is_file():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


@dataclass
class Exercise:
    proc: Proc
    passwords: dict[str, str]

    @property
    def url(self) -> str:
        return self.proc.url


@pytest.fixture(scope="module")
def exercise(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exercise]:
    work = tmp_path_factory.mktemp("exercise")
    recording = asyncio.run(recordings.write_recording(work / "then" / "brand.sqlite", 600.0))
    data = work / "data"
    _tokens, passwords = prepare(data)
    procs = Procs(work / "procs")
    try:
        proc = procs.start(
            "replay", str(recording), "--as-live", "--data-dir", str(data), port=free_port()
        )
        asyncio.run(wait_healthy(proc, 60))
        yield Exercise(proc, passwords)
    finally:
        procs.close()


def _page(
    browser: Any, ex: Exercise, path: str, user: str, size: tuple[int, int] = (1280, 800)
) -> Any:
    context = browser.new_context(
        viewport={"width": size[0], "height": size[1]},
        locale="de-DE",
        timezone_id="Europe/Berlin",
    )
    r = context.request.post(
        ex.url + "/api/v1/session", data={"username": user, "password": ex.passwords[user]}
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
            if req.url.startswith((ex.url, "data:", "blob:", *_HARMLESS))
            else pg.outside.append(req.url)
        ),
    )
    pg.goto(ex.url + path)
    return pg


def _wait(page: Any, js: str, timeout_s: float = 20, arg: Any = None) -> Any:
    return page.wait_for_function(js, arg=arg, timeout=timeout_s * 1000, polling=50)


_UNIT_X = """(label) => {
    const el = [...document.querySelectorAll('.sym-unit')].find(e => e.textContent.includes(label));
    return el ? el.getBoundingClientRect().x : null;
}"""

_PICTURE_TIMES = """() => {
    const out = {};
    for (const e of window.cockpit.picture.entities.values()) out[e.id] = e.observed_at;
    return out;
}"""


def test_the_commander_sees_the_recorded_units_move_with_todays_times(
    exercise: Exercise, browser: Any
) -> None:
    page = _page(browser, exercise, "/", "el")
    try:
        _wait(page, "document.querySelectorAll('.sym-unit').length >= 3")
        label = "1/46-1"  # the page drops "Florian <place>"
        x0 = page.evaluate(_UNIT_X, label)
        assert x0 is not None
        # The unit drives east on the commander's map (~5 px a second at this zoom).
        _wait(page, f"(() => {{ const x = ({_UNIT_X})({label!r}); return x && x > {x0} + 3; }})()")
        # With the times of today: the page's own copy, and the age each marker shows.
        times = page.evaluate(_PICTURE_TIMES)
        now = time.time()
        units = {u: times[u] for u in recordings.UNITS}
        for unit, observed in units.items():
            assert abs(observed - now) < 15, (unit, observed, now)  # not March 2025
        ages = page.locator(".sym-unit .age").all_inner_texts()
        assert ages and all(
            re.fullmatch(r"(jetzt|gerade|\d+ s|vor \d+ s)", a.strip()) for a in ages
        ), ages
        # It says ÜBUNG, with the recording it comes from, and nobody can miss it.
        tag = page.locator("#exercise-tag")
        _wait(page, "(document.getElementById('exercise-tag')||{}).textContent?.includes('brand')")
        text = tag.inner_text()
        assert text.startswith("ÜBUNG") and recordings.RECORDED in text and "läuft" in text
        assert page.evaluate("document.body.classList.contains('exercise')")
        # The recorded commander's journal entry is not played: this crew writes its own.
        assert recordings.JOURNAL_THEN not in page.locator("#journal-list").inner_text()
        page.screenshot(path=str(ARTIFACTS / "exercise-commander.png"))
        assert page.errors == [] and page.outside == []
    finally:
        page.context.close()


def test_the_trainer_pauses_and_injects_and_the_crew_sees_it(
    exercise: Exercise, browser: Any, axe_script: Path
) -> None:
    commander = _page(browser, exercise, "/", "el")
    trainer = _page(browser, exercise, "/trainer", "trainer")
    try:
        _wait(
            trainer,
            "document.getElementById('ex-card')?.hidden === false && window.cockpitExercise?.state",
        )
        assert "Übung" in trainer.locator("#tr-status").inner_text()
        # The exercise card and the ÜBUNG mark pass the accessibility scan; every control
        # in the card is a touch target of at least 44 px.
        for pg, where in ((trainer, "#ex-card"), (commander, "#exercise-tag")):
            _wait(pg, f"!!document.querySelector({where!r})")
            pg.add_script_tag(path=str(axe_script))
            bad = _scan(pg, where)
            assert bad == [], _findings(bad)
        small = trainer.evaluate(
            "[...document.querySelectorAll('#ex-card button, #ex-card select, #ex-card input')]"
            ".map(e => e.getBoundingClientRect()).filter(r => r.height < 44).length"
        )
        assert small == 0
        trainer.click("#ex-pause")
        _wait(trainer, "window.cockpitExercise.state && !window.cockpitExercise.state.playing")
        # The crew's page says the exercise is held, within its next look (2 s).
        _wait(
            commander,
            "(document.getElementById('exercise-tag')||{}).textContent?.includes('angehalten')",
            10,
        )
        held = commander.evaluate(_PICTURE_TIMES)
        time.sleep(1.5)
        assert commander.evaluate(_PICTURE_TIMES) == held  # nothing reported while held

        text = "Einspielung: Person am Fenster 2. OG"
        trainer.fill("#ex-text", text)
        trainer.click("#ex-send")
        _wait(trainer, f"document.getElementById('ex-said').textContent.includes({text!r})", 10)
        _wait(
            commander, f"document.getElementById('journal-list').textContent.includes({text!r})", 10
        )

        trainer.select_option("#ex-kind", "alert")
        trainer.select_option("#ex-severity", "critical")
        trainer.fill("#ex-text", "Atemschutznotfall Trupp 2")
        trainer.click("#ex-send")
        _wait(
            commander,
            "[...window.cockpit.picture.alerts.values()]"
            ".some(a => a.text === 'Atemschutznotfall Trupp 2')",
            10,
        )

        trainer.click("#ex-play")
        _wait(
            commander,
            "(document.getElementById('exercise-tag')||{}).textContent?.includes('läuft')",
            10,
        )
        _wait(
            commander,
            f"(held) => {{ const now = ({_PICTURE_TIMES})();"
            " return Object.keys(held).some(k => now[k] !== held[k]); }",
            10,
            arg=held,
        )
        wall = _page(browser, exercise, "/wall", "viewer", (1920, 1080))
        try:
            _wait(
                wall,
                "(document.getElementById('exercise-tag')||{}).textContent?.startsWith('ÜBUNG')",
            )
            _wait(wall, r"/\d\d:\d\d:\d\d/.test(document.getElementById('clock').textContent)")
            wall.screenshot(path=str(ARTIFACTS / "exercise-wall.png"))
        finally:
            wall.context.close()
        for pg in (commander, trainer):
            assert pg.errors == [] and pg.outside == [], (pg.errors, pg.outside)
    finally:
        commander.context.close()
        trainer.context.close()
