"""Many viewers through an SFU (issue 8, the compose profile `sfu`), really started: the
control room of tests/topology.py with a second cockpit standing in for the SFU (it takes
WHIP and serves WHEP, as MediaMTX does). The media process takes the drone's video, keeps
recording it, and pushes it on to the SFU unchanged; the pages play it from the SFU
through the proxy, which lets only the cockpit's logged-in users through.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.topology import NGINX, ControlRoom, commander_page, control_room
from tests.whip import Publisher

pytestmark = [pytest.mark.slow, pytest.mark.redis]


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[ControlRoom]:
    if not Path(NGINX).is_file():
        pytest.skip("no nginx (apt-get install nginx-light)")
    with control_room(tmp_path_factory.mktemp("sfu"), redis_url, sfu=True) as r:
        yield r


def _streams(url: str) -> dict[str, dict[str, Any]]:
    video = httpx.get(url + "/healthz", timeout=5).json().get("video", {})
    return {s["name"]: s for s in video.get("streams", [])}


def test_the_pages_play_the_drone_from_the_sfu_and_strangers_get_nothing(
    room: ControlRoom, browser: Any
) -> None:
    assert room.sfu is not None
    # Nobody without a session gets anything from the SFU: the proxy asks a worker first.
    anonymous = httpx.post(
        room.proxy + "/sfu/whep/uav-5",
        content="v=0\r\n",
        headers={"content-type": "application/sdp"},
    )
    assert anonymous.status_code == 401, anonymous.text

    page = commander_page(browser, room)
    pub = Publisher(room.proxy, "uav-5", room.tokens["uav"])
    try:
        pub.thread.start()
        assert pub.ready.wait(20) and pub.error is None, pub.error
        page.locator(".video-tile.live[data-stream='uav-5']").wait_for(timeout=30000)
        width = page.evaluate(
            "document.querySelector(\".video-tile[data-stream='uav-5'] video\").videoWidth"
        )
        assert width == 640  # Chromium decoded the VP8 the drone sent, forwarded twice
        media = httpx.get(room.media.url + "/healthz", timeout=5).json()
        assert media["video_relay"]["links"]["uav-5"]["state"] == "relayed", media["video_relay"]
        assert "@" not in media["video_relay"]["to"]  # no credentials on /healthz
        # The page is the SFU's viewer; the media process has one: the relay.
        assert _streams(room.sfu.url)["uav-5"]["viewers"] >= 1
        assert _streams(room.media.url)["uav-5"]["viewers"] == 1
        assert media["video"]["sessions"]["relay"] == 1
    finally:
        pub.stop.set()
        pub.thread.join(20)
    try:
        assert pub.error is None, pub.error
        # The drone ended: the media process ends its link, the page drops the tile.
        page.locator(".video-tile[data-stream='uav-5']").wait_for(state="detached", timeout=15000)
        links = httpx.get(room.media.url + "/healthz", timeout=5).json()["video_relay"]["links"]
        assert "uav-5" not in links
        assert page.errors == [], page.errors
    finally:
        page.context.close()
