"""The media process's relay to an SFU when the SFU is not there (issue 8): in-process,
no browser (tests/test_sfu.py has the whole path with Chromium)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from tests.procs import free_port
from tests.serving import serve
from tests.test_media import _frames, publisher, viewer


async def test_an_sfu_that_is_not_there_is_tried_again_and_hurts_no_viewer(
    tmp_path: Path,
) -> None:
    """The SFU down (a closed port): the link says so on /healthz, is tried again with
    backoff, and the media process's own viewers go on seeing the drone."""
    nowhere = f"http://cockpit:geheim@127.0.0.1:{free_port()}/{{stream}}/whip"
    async with (
        serve(tmp_path / "data", video_relay_url=nowhere) as s,
        publisher(s),
        viewer(s) as frames,
    ):
        assert len(await _frames(frames, 10)) == 10  # the relay's trouble is its own

        async def link() -> dict[str, Any]:
            async with httpx.AsyncClient(base_url=s.url, timeout=5) as c:
                return dict((await c.get("/healthz")).json()["video_relay"]["links"]["uav-1"])

        deadline = asyncio.get_running_loop().time() + 15
        state = await link()
        while state["attempts"] < 2:  # failed once, waited, tried again
            assert asyncio.get_running_loop().time() < deadline, state
            await asyncio.sleep(0.2)
            state = await link()
        assert state["state"] == "failed" and state["last_error"], state
        async with httpx.AsyncClient(base_url=s.url, timeout=5) as c:
            body = (await c.get("/healthz")).text
        assert "geheim" not in body  # the SFU's password never leaves the settings
