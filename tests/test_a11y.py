"""Accessibility of the browser pages: axe-core in the real page, and finger-sized targets.

axe-core comes from the npm registry, pinned in tests/package-lock.json and installed into
tests/node_modules by `npm ci` the first time (skipped cleanly where npm is missing or
fails). Each page is scanned while the demo's live picture is on it; a page this build
does not have (404) is skipped, so /trainer joins when it lands.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.test_ui import Cockpit
from tests.test_ui_wall import demo, new_page

pytestmark = pytest.mark.slow

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
TESTS = Path(__file__).resolve().parent
AXE = TESTS / "node_modules" / "axe-core" / "axe.min.js"
PAGES = ("/", "/wall", "/trainer")
LIVE = ("/", "/wall")  # the pages showing the live picture of the demo
BAD = ("serious", "critical")
FINGER_PX = 44.0


@pytest.fixture(scope="session")
def axe_script() -> Path:
    # Test processes running side by side (pytest-xdist) install it once, one at a time.
    with (TESTS / ".npm-ci.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not AXE.is_file():
            npm = shutil.which("npm")
            if npm is None:
                pytest.skip("npm is not installed: no axe-core for the accessibility scan")
            done = subprocess.run(
                [npm, "ci", "--prefix", str(TESTS), "--no-audit", "--no-fund"],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            if done.returncode != 0 or not AXE.is_file():
                pytest.skip(f"npm ci failed: {done.stderr.strip()[-300:]}")
    return AXE


@pytest.fixture(scope="module")
def cockpit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cockpit]:
    with demo(tmp_path_factory.mktemp("a11y")) as app:
        yield app


@pytest.fixture(scope="module")
def page(browser: Any, cockpit: Cockpit) -> Iterator[Any]:
    pg = new_page(browser, cockpit, 1280, 800)
    try:
        yield pg
    finally:
        pg.context.close()


def _exists(page: Any, url: str) -> bool:
    answer: int = page.evaluate(
        "async (u) => (await fetch(u, {credentials: 'same-origin'})).status", url
    )
    return answer != 404


def _findings(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        where = [" ".join(n["target"]) for n in v["nodes"][:4]]
        why = [m["message"] for n in v["nodes"][:1] for m in n["any"][:1]]
        lines.append(f"{v['impact']}: {v['id']} ({v['help']}) at {where} {why}")
    return "\n".join(lines)


@pytest.mark.parametrize("path", PAGES)
def test_no_serious_or_critical_axe_findings(
    page: Any, cockpit: Cockpit, axe_script: Path, path: str
) -> None:
    if not _exists(page, cockpit.url + path):
        pytest.skip(f"{path} is not in this build")
    # A pulsing ring passing over a label is not its contrast: scanned without motion.
    page.emulate_media(reduced_motion="reduce")
    page.goto(cockpit.url + path)
    page.wait_for_selector("#ui-config", state="attached", timeout=20000)
    if path in LIVE:
        # Scanned as people see it: connected, with the demo's picture drawn.
        page.wait_for_function("window.cockpit && window.cockpit.connected", timeout=20000)
        page.wait_for_function("document.querySelectorAll('.sym').length >= 4", timeout=20000)
    page.wait_for_timeout(2000)  # a page of its own (the trainer's): drawn by then
    page.add_script_tag(path=str(axe_script))
    bad = []
    if page.locator("#detection-popup").count():
        # The A.D.Le.R. pop-up on its own first: it covers map labels, which axe would
        # measure against the pop-up's own colours; then the page without it.
        bad += _scan(page, "#detection-popup")
        _close_popups(page)
    bad += _scan(page, None)
    assert bad == [], _findings(bad)


def _scan(page: Any, only: str | None) -> list[dict[str, Any]]:
    result = page.evaluate(
        "async (only) => await axe.run(only ? {include: [only]} : document,"
        " {resultTypes: ['violations']})",
        only,
    )
    return [v for v in result["violations"] if v["impact"] in BAD]


def _close_popups(page: Any) -> None:
    for _ in range(10):
        close = page.locator("#detection-popup button.close")
        if close.count() == 0:
            return
        close.click()
    raise AssertionError("the A.D.Le.R. pop-up does not close")


def test_every_target_on_the_commander_page_is_a_finger_wide(page: Any, cockpit: Cockpit) -> None:
    page.goto(cockpit.url + "/")
    page.wait_for_function("window.cockpit && window.cockpit.connected", timeout=20000)
    page.wait_for_function("document.querySelectorAll('.sym').length >= 4", timeout=20000)
    page.wait_for_timeout(1000)
    # What a gloved finger has to hit: buttons, fields, the map's own controls. The
    # attribution's links are text in a sentence (WCAG 2.5.8's inline exception).
    small = page.evaluate(
        """(min) => Array.from(document.querySelectorAll(
              'button, input, select, textarea, [role=button], .leaflet-control a'))
            .filter((el) => !el.closest('.leaflet-control-attribution'))
            .filter((el) => el.getClientRects().length)
            .filter((el) => getComputedStyle(el).visibility !== 'hidden')
            .map((el) => [el.outerHTML.slice(0, 90), el.getBoundingClientRect()])
            .filter(([, r]) => r.width < min || r.height < min)
            .map(([html, r]) => html + ' ' + Math.round(r.width) + 'x' + Math.round(r.height))""",
        FINGER_PX,
    )
    assert small == []
    assert httpx.get(cockpit.url + "/healthz", timeout=10).status_code == 200
