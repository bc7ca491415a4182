"""Exercise mode's drone video: the recording's camera plays as a live stream, on the
exercise clock, to a real WHEP viewer.

A live server records a drone publishing over WHIP (aiortc, VP8) for a few seconds in
short segments, each frame painting the time it was made (tests/clocked.py). An exercise
server then plays that recording; an aiortc viewer watches the stream over WHEP on
loopback and decodes what it gets: the painted recording time plus the exercise's shift
must be the time the frame arrives (what the crew sees is what the drone saw then).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from cockpit.exercise import ExerciseOptions
from cockpit.exercise_video import load_segment
from cockpit.recorder import incident_path
from cockpit.replay_video import video_index
from tests.clocked import Clocked, painted
from tests.serving import serve
from tests.test_media import publisher, viewer

pytestmark = pytest.mark.slow

STREAM = "uav-1"


async def _record(data: Path) -> Path:
    async with serve(data, incident="drohne-2025", video_segment_s=2.0) as s:
        async with publisher(s, STREAM, Clocked(), "VP8"):
            await asyncio.sleep(7)
        await asyncio.sleep(1.0)  # the last segment is closed and logged
    return incident_path(data, "drohne-2025")


async def _frame(frames: asyncio.Queue[Any], timeout_s: float = 15) -> tuple[float, float]:
    """(painted recording time, arrival time) of the next frame."""
    frame = await asyncio.wait_for(frames.get(), timeout_s)
    return painted(frame), time.time()


async def _drain(frames: asyncio.Queue[Any]) -> None:
    while not frames.empty():
        frames.get_nowait()


async def test_the_recorded_camera_plays_live_on_the_exercise_clock(tmp_path: Path) -> None:
    recording = await _record(tmp_path / "then")
    opts = ExerciseOptions.of(recording)
    async with (
        serve(tmp_path / "now", exercise=opts) as s,
        httpx.AsyncClient(base_url=s.url) as c,
    ):
        await s.login(c, "trainer")

        async def live() -> bool:
            sit = (await c.get("/api/v1/situation")).json()
            return any(v["stream"] == STREAM and v["live"] for v in sit["videos"])

        deadline = time.monotonic() + 20
        while not await live():
            assert time.monotonic() < deadline, "the recorded camera never went live"
            await asyncio.sleep(0.1)

        async with viewer(s, STREAM) as frames:
            seen = [await _frame(frames) for _ in range(20)]
            offset = (await c.get("/api/v1/exercise")).json()["offset_s"]
            # Each frame arrives when the exercise clock reaches the time it was made.
            late = sorted(arrived - (then + offset) for then, arrived in seen[5:])
            print(f"exercise video: frames arrive {late[len(late) // 2]:+.3f} s after their time")
            assert -0.3 < late[len(late) // 2] < 1.0, late
            assert seen[-1][0] > seen[0][0]  # the picture moves on

            # Two more screens join at once, between keyframes: each gets a whole picture
            # (painted() refuses a smeared one) without waiting for the recording's next.
            async with viewer(s, STREAM) as second, viewer(s, STREAM) as third:
                for late in (second, third):
                    then, arrived = await _frame(late)
                    assert abs(arrived - (then + offset)) < 2.0

            # A pause holds the picture; going on continues where it held, at today's time.
            r = await c.post("/api/v1/exercise/pause")
            assert r.status_code == 200, r.text
            await asyncio.sleep(0.5)
            await _drain(frames)
            await asyncio.sleep(1.5)
            assert frames.empty(), "frames kept coming while the exercise was held"
            held_at = (await c.get("/api/v1/exercise")).json()["position"]
            r = await c.post("/api/v1/exercise/play")
            assert r.status_code == 200, r.text
            then, arrived = await _frame(frames)
            offset = r.json()["offset_s"]
            assert held_at - 1.0 < then < held_at + 1.5, (then, held_at)
            assert abs(arrived - (then + offset)) < 1.5
        stats = (await c.get("/healthz")).json()["exercise"]
        assert stats["mode"] == "exercise"
    # The exercise recorded what its screens showed, and its own recording keeps time
    # across the pause: each segment's media lasts as long as its wall-clock span.
    index = video_index(incident_path(s.settings.data_dir, opts.incident))
    own = index.streams()[STREAM]
    assert own
    for seg in own:
        found = index.file(seg.path)
        assert found is not None
        frames = load_segment(seg, found[1])
        media = frames[-1].t - frames[0].t
        assert abs(media - (seg.end - seg.start)) < 0.5, (seg, media)
