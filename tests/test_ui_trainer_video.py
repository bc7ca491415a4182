"""The trainer's recorded drone video in a real browser (Debian's Chromium via Playwright).

A live server records real video: an aiortc sender publishes over WHIP for about 14 s,
in segments of 4 s (`video_segment_s`), each frame painting the time it was made as a
row of black and white blocks (and the same inverted, to know a read is sound). Then a
replay server serves that log, as `cockpit replay RECORDING` does. The page is sought by
a tap on the timeline, and the frame it shows is read back through a canvas: the picture
itself must be the one of the replay time, not only the <video>'s currentTime.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from cockpit.recorder import incident_path
from tests.clocked import BITS, BLOCK_H, BLOCK_W, EPOCH, Clocked, H, W
from tests.serving import Served, serve_in_thread
from tests.test_a11y import _findings, _scan, axe_script
from tests.test_media import publisher
from tests.test_ui_trainer import _login, _page, _ready, _wait

pytestmark = pytest.mark.slow

__all__ = ["axe_script"]  # a fixture shared with the accessibility tests

INCIDENT = "uebung-drohne"
STREAM = "uav-1"
H264_STREAM = "uav-2"
# Draws the tile's current frame into a canvas and reads the blocks' centres back.
READ_PICTURE = """([stream, w, h, n, bw, bh]) => {
  const tile = cockpitTrainerVideo.tiles.get(stream);
  const v = tile.video;
  const c = document.createElement("canvas");
  c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext("2d", { willReadFrequently: true });
  g.drawImage(v, 0, 0);
  const sx = c.width / w, sy = c.height / h;
  const bits = [], inverted = [];
  for (let i = 0; i < n; i++) {
    const x = Math.round(((i % 16) * bw + bw / 2) * sx);
    const row = Math.floor(i / 16);
    const y = (r) => Math.round((r * bh + bh / 2) * sy);
    const at = (r) => (g.getImageData(x, y(r), 1, 1).data[1] > 128 ? 1 : 0);
    bits.push(at(row)); inverted.push(at(row + 2));
  }
  return { bits, inverted, replay: cockpitTrainer.position(), video: tile.position(),
           seeking: v.seeking, paused: v.paused, width: v.videoWidth };
}"""


def _read(page: Any, stream: str = STREAM) -> dict[str, Any]:
    read: dict[str, Any] = page.evaluate(READ_PICTURE, [stream, W, H, BITS, BLOCK_W, BLOCK_H])
    return read


def _painted(read: dict[str, Any]) -> float:
    """The server time painted into the frame the page shows."""
    assert all(a != b for a, b in zip(read["bits"], read["inverted"], strict=True)), read
    ms = int("".join(map(str, read["bits"])), 2)
    return EPOCH + ms / 1000


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _ping(s: Served, c: httpx.Client) -> None:
    """A unit's report: the recording starts before the video and ends after it."""
    now = time.time()
    body = [{"entity": "hlf-1", "kind": "unit", "observed_at": _iso(now)}]
    body[0]["position"] = {"lat": 51.525, "lon": 7.44}  # type: ignore[assignment]
    r = c.post("/api/v1/ingest/telemetry", json=body, headers=s.device())
    assert r.status_code == 202, r.text


def _record(data: Path) -> Path:
    async def publish(s: Served) -> None:
        # Two drones at once: VP8 (played as recorded) and H264 (served as MP4).
        async with (
            publisher(s, STREAM, Clocked(), "VP8"),
            publisher(s, H264_STREAM, Clocked(), "H264"),
        ):
            await asyncio.sleep(14)

    with (
        serve_in_thread(data, incident=INCIDENT, video_segment_s=4.0) as s,
        httpx.Client(base_url=s.url) as c,
    ):
        _ping(s, c)
        time.sleep(1.5)
        asyncio.run(publish(s))
        time.sleep(1.5)
        _ping(s, c)
    return incident_path(data, INCIDENT)


@dataclass
class Setup:
    served: Served
    segments: list[dict[str, Any]]  # STREAM's
    h264: list[dict[str, Any]]  # H264_STREAM's


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    work = tmp_path_factory.mktemp("trainer-video")
    recording = _record(work / "live")
    with serve_in_thread(work / "replay", replay=recording) as s, httpx.Client(base_url=s.url) as c:
        _login(s, c, "viewer")
        listed = c.get("/api/v1/replay/video").json()["streams"]
        assert [x["stream"] for x in listed] == [STREAM, H264_STREAM], listed
        assert {x["codec"] for x in listed[1]["segments"]} == {"H264"}
        yield Setup(s, listed[0]["segments"], listed[1]["segments"])


def _tap(page: Any, t: float) -> float:
    """Seek by a tap on the timeline's density strip at time `t`; the time it went to."""
    state = page.evaluate("cockpitTrainer.state")
    box = page.locator("#tr-timeline").bounding_box()
    fraction = (t - state["start"]) / (state["end"] - state["start"])
    before = page.evaluate("cockpitTrainer.lastSeek && cockpitTrainer.lastSeek.seq")
    page.mouse.click(box["x"] + box["width"] * fraction, box["y"] + box["height"] - 15)
    seek = _wait(
        page,
        "(b) => { const s = cockpitTrainer.lastSeek;"
        " return s && s.seq !== b && cockpitTrainer.seeking === null && s; }",
        arg=before,
    ).json_value()
    return float(seek["position"])


def _settled(page: Any, segment: dict[str, Any], stream: str = STREAM) -> None:
    """The tile shows a frame of `segment`, sought and ready."""
    _wait(
        page,
        "([s, url]) => { const t = cockpitTrainerVideo.tiles.get(s);"
        " return t && t.seg && t.seg.url === url && !t.video.seeking"
        " && t.video.readyState >= 2; }",
        arg=[stream, segment["url"]],
    )
    page.wait_for_timeout(150)  # the sought frame reaches the compositor


def test_a_seek_shows_the_picture_of_the_replay_time_and_play_follows_the_clock(
    setup: Setup, browser: Any
) -> None:
    segs = setup.segments
    assert len(segs) >= 3, segs  # 14 s in segments of 4 s
    page = _page(browser, setup.served)
    _ready(page)
    _wait(page, "cockpitTrainerVideo.tiles.size === 2")
    tile = page.locator(f'.tr-vtile[data-stream="{STREAM}"]')
    assert "big" in (tile.get_attribute("class") or "")

    # A tap into the second segment: the picture there is the one made at that time.
    second = segs[1]
    t = _tap(page, second["start"] + 0.6 * (second["end"] - second["start"]))
    assert second["start"] < t < second["end"]
    _settled(page, second)
    read = _read(page)
    assert read["paused"] and read["width"] == W
    assert abs(read["video"] - t) < 0.5, (read, t)  # segment.start + currentTime
    assert abs(_painted(read) - t) < 0.5, (_painted(read) - t, read)
    print(f"seek: video {read['video'] - t:+.3f} s, picture {_painted(read) - t:+.3f} s")

    # Play at 2×: the video runs with the replay clock, into the next segment.
    page.select_option("#tr-speed", "2")
    _wait(page, "cockpitTrainer.state.speed === 2")
    page.click("#tr-play")
    _wait(page, "cockpitTrainer.state.playing === true")
    _wait(page, "(s) => !cockpitTrainerVideo.tiles.get(s).video.paused", arg=STREAM)
    first = _read(page)
    wall0 = time.monotonic()
    third = segs[2]
    _wait(
        page,
        "([s, url]) => { const t = cockpitTrainerVideo.tiles.get(s);"
        " return t.seg.url === url && !t.video.paused && t.video.currentTime > 0.5; }",
        arg=[STREAM, third["url"]],
    )
    page.wait_for_timeout(500)
    later = _read(page)
    wall1 = time.monotonic()
    page.click("#tr-pause")
    ratio = (later["video"] - first["video"]) / (wall1 - wall0)
    assert 1.0 < ratio < 3.0, (ratio, first, later)  # about the replay's 2×
    # The picture keeps to the replay clock while playing (corrected beyond 0.3 s).
    assert abs(later["video"] - later["replay"]) < 0.75, later
    assert abs(_painted(later) - later["replay"]) < 0.75, (_painted(later), later)
    print(
        f"play: ratio {ratio:.2f}, video {later['video'] - later['replay']:+.3f} s,"
        f" picture {_painted(later) - later['replay']:+.3f} s"
    )
    assert "Bild" in tile.inner_text()
    assert page.errors == [] and page.outside == []
    page.context.close()


def test_a_gap_says_there_is_no_video_and_when_there_is(
    setup: Setup, browser: Any, axe_script: Path
) -> None:
    segs = setup.segments
    page = _page(browser, setup.served)
    _ready(page)
    _wait(page, "cockpitTrainerVideo.tiles.size === 2")
    state = page.evaluate("cockpitTrainer.state")
    assert state["start"] < segs[0]["start"] - 1.0  # the unit reported before the video
    t = _tap(page, state["start"] + 0.2)
    assert t < segs[0]["start"]
    note = page.locator(f'.tr-vtile[data-stream="{STREAM}"] .tr-vnote')
    _wait(page, "document.querySelector('.tr-vnote').textContent.includes('Kein Video')")
    text = note.inner_text()
    assert "nächstes Video" in text and " s)" in text, text
    assert "gap" in (page.locator(".tr-vtile").first.get_attribute("class") or "")

    # After the video ended: the last frame's time and how long before.
    t = _tap(page, state["end"] - 0.2)
    assert t > segs[-1]["end"]
    _wait(page, "document.querySelector('.tr-vnote').textContent.includes('letztes Bild')")
    # Tiles are big touch targets, without serious accessibility findings; English too.
    box = page.locator(".tr-vtile").last.bounding_box()
    assert box["width"] >= 44 and box["height"] >= 44
    page.add_script_tag(path=str(axe_script))
    bad = _scan(page, "#tr-video")
    assert bad == [], _findings(bad)
    page.goto(setup.served.url + "/trainer?lang=en")
    _ready(page)
    _wait(page, "cockpitTrainerVideo.tiles.size === 2")
    _wait(page, "document.querySelector('.tr-vnote').textContent.includes('No video')")
    assert page.errors == [] and page.outside == []
    page.context.close()


def test_h264_plays_as_mp4_and_a_tap_makes_its_tile_large(setup: Setup, browser: Any) -> None:
    page = _page(browser, setup.served)
    _ready(page)
    _wait(page, "cockpitTrainerVideo.tiles.size === 2")
    tile = page.locator(f'.tr-vtile[data-stream="{H264_STREAM}"]')
    assert "big" not in (tile.get_attribute("class") or "")  # the first stream is
    tile.click()
    assert "big" in (tile.get_attribute("class") or "")
    assert "big" not in (
        page.locator(f'.tr-vtile[data-stream="{STREAM}"]').get_attribute("class") or ""
    )
    second = setup.h264[1]
    t = _tap(page, second["start"] + 0.5 * (second["end"] - second["start"]))
    _settled(page, second, H264_STREAM)
    read = _read(page, H264_STREAM)
    assert read["width"] == W and abs(read["video"] - t) < 0.5, (read, t)
    assert abs(_painted(read) - t) < 0.5, (_painted(read) - t, read)
    print(f"h264 seek: video {read['video'] - t:+.3f} s, picture {_painted(read) - t:+.3f} s")
    assert page.errors == [] and page.outside == []
    page.context.close()
