"""Video over WebRTC on loopback: an aiortc sender publishes (WHIP), viewers watch (WHEP).

The server forwards the sender's packets without decoding them (its receiver's decoder
is replaced, see cockpit/media/passthrough.py); the viewers here are plain aiortc peers
that do decode, so a frame arriving whole at a viewer proves the forwarding works.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack, VideoStreamTrack

from cockpit.media.passthrough import is_keyframe
from tests.serving import Served, serve

SDP = {"Content-Type": "application/sdp"}
NO_STUN = RTCConfiguration(iceServers=[])  # loopback only: nothing leaves the machine


class Pattern(VideoStreamTrack):
    """Frames with a moving bar and the frame number in the top-left block's brightness."""

    def __init__(self, width: int = 640, height: int = 480) -> None:
        super().__init__()
        self.width, self.height, self.n = width, height, 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        img = np.zeros((self.height, self.width, 3), np.uint8)
        x = (self.n * 8) % self.width
        img[:, x : x + 16] = (255, 255, 255)
        img[:32, :32] = (self.n * 5) % 256
        self.n += 1
        frame = av.VideoFrame.from_ndarray(img, format="bgr24")
        frame.pts, frame.time_base = pts, time_base
        return frame


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async with serve(tmp_path / "data") as s:
        yield s


@contextlib.asynccontextmanager
async def publisher(
    served: Served,
    stream: str = "uav-1",
    track: MediaStreamTrack | None = None,
    codec: str | None = None,
) -> AsyncIterator[tuple[RTCPeerConnection, str]]:
    pc = RTCPeerConnection(NO_STUN)
    if codec is None:
        pc.addTrack(track or Pattern())
    else:  # only this codec offered (and its retransmissions)
        transceiver = pc.addTransceiver(track or Pattern(), direction="sendonly")
        caps = RTCRtpSender.getCapabilities("video")
        assert caps is not None
        transceiver.setCodecPreferences(
            [c for c in caps.codecs if c.mimeType.upper() in (f"VIDEO/{codec}", "VIDEO/RTX")]
        )
    await pc.setLocalDescription(await pc.createOffer())
    async with httpx.AsyncClient(base_url=served.url, timeout=20) as c:
        r = await c.post(
            f"/whip/{stream}",
            content=pc.localDescription.sdp,
            headers={**SDP, **served.device("uav")},
        )
        assert r.status_code == 201, r.text
        assert r.headers["content-type"].startswith("application/sdp")
        location = r.headers["location"]
        assert location.startswith(f"/whip/{stream}/")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=r.text, type="answer"))
        try:
            yield pc, location
        finally:
            await pc.close()


@contextlib.asynccontextmanager
async def viewer(served: Served, stream: str = "uav-1") -> AsyncIterator[asyncio.Queue[Any]]:
    pc = RTCPeerConnection(NO_STUN)
    pc.addTransceiver("video", direction="recvonly")
    frames: asyncio.Queue[Any] = asyncio.Queue()
    pulls: list[asyncio.Task[None]] = []

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        async def pull() -> None:
            with contextlib.suppress(Exception):
                while True:
                    frames.put_nowait(await track.recv())

        pulls.append(asyncio.ensure_future(pull()))

    await pc.setLocalDescription(await pc.createOffer())
    async with httpx.AsyncClient(base_url=served.url, timeout=20) as c:
        await served.login(c)
        r = await c.post(f"/whep/{stream}", content=pc.localDescription.sdp, headers=SDP)
        assert r.status_code == 201, r.text
        await pc.setRemoteDescription(RTCSessionDescription(sdp=r.text, type="answer"))
        try:
            yield frames
        finally:
            r = await c.delete(r.headers["location"])
            assert r.status_code == 200
            await pc.close()
            for task in pulls:
                task.cancel()


async def _frames(queue: asyncio.Queue[Any], n: int, timeout: float = 20.0) -> list[av.VideoFrame]:
    out = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            out.append(await queue.get())
    return out


async def test_viewers_get_the_senders_frames_forwarded_not_reencoded(served: Served) -> None:
    async with publisher(served), viewer(served) as first, viewer(served) as second:
        a = await _frames(first, 15)
        b = await _frames(second, 15)
        for frame in a + b:
            assert (frame.width, frame.height) == (640, 480)
            img = frame.to_ndarray(format="bgr24")
            # The bar is there, sharp: a white column on black, as sent.
            assert img[:, :, 1].max() > 200 and np.median(img[100:, :, 1]) < 40
        async with httpx.AsyncClient(base_url=served.url) as c:
            health = (await c.get("/healthz")).json()
        video = health["video"]
        (stream,) = video["streams"]
        assert stream["name"] == "uav-1" and stream["codec"] in ("VP8", "H264")
        assert stream["live"] and stream["viewers"] == 2 and stream["keyframes"] >= 1
        assert video["sessions"] == {"whip": 1, "whep": 2, "relay": 0}
    hub = served.app.state.services.media
    assert hub.sessions == {}


async def test_a_late_viewer_starts_at_a_keyframe(served: Served) -> None:
    async with publisher(served):
        await asyncio.sleep(2.0)  # well past the first keyframe
        async with viewer(served) as late:
            frames = await _frames(late, 5)
            assert all(f.width == 640 for f in frames)


async def test_whip_errors_name_the_problem(served: Served) -> None:
    offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as c:
        r = await c.post("/whip/uav-1", content=offer, headers=SDP)
        assert r.status_code == 401
        bad = {**SDP, "Authorization": "Bearer nope"}
        assert (await c.post("/whip/uav-1", content=offer, headers=bad)).status_code == 401
        robot = {**SDP, **served.device("robot")}  # a token for telemetry only
        assert (await c.post("/whip/uav-1", content=offer, headers=robot)).status_code == 403
        uav = served.device("uav")
        r = await c.post(
            "/whip/uav-1", content=offer, headers={**uav, "Content-Type": "text/plain"}
        )
        assert r.status_code == 415 and r.json()["errors"][0]["field"] == "content-type"
        r = await c.post("/whip/uav-1", content="hello", headers={**uav, **SDP})
        assert r.status_code == 400 and r.json()["errors"][0]["field"] == "body"
        r = await c.post("/whip/uav-1", content=offer, headers={**uav, **SDP})  # no video
        assert r.status_code == 400 and "video" in r.json()["errors"][0]["reason"]
        r = await c.post("/whip/bad name", content=offer, headers={**uav, **SDP})
        assert r.status_code == 422
        assert (await c.patch("/whip/uav-1/p1-x", headers=uav)).status_code == 405
        assert (await c.delete("/whip/uav-1/p1-x", headers=uav)).status_code == 404
        health = (await c.get("/healthz")).json()
        assert health["feeds"]["video"]["rejected"] >= 4
        # Watching needs a log-in, and a stream that is being sent.
        assert (await c.post("/whep/uav-1", content=offer, headers=SDP)).status_code == 401
        await served.login(c)
        r = await c.post("/whep/uav-9", content=offer, headers=SDP)
        assert r.status_code == 404 and r.json()["errors"][0]["field"] == "stream"


async def test_ending_the_whip_session_ends_the_stream(served: Served) -> None:
    async with publisher(served) as (_pc, location):
        async with viewer(served) as frames:
            await _frames(frames, 3)
            async with httpx.AsyncClient(base_url=served.url) as c:
                await served.login(c)
                (video,) = (await c.get("/api/v1/situation")).json()["videos"]
                assert video["stream"] == "uav-1" and video["live"] is True
                assert video["entity"] == "uav-1" and video["codec"] in ("VP8", "H264")
                other = await c.delete(location, headers=served.device("robot"))
                assert other.status_code == 403  # not this device's stream
                r = await c.delete(location, headers=served.device("uav"))
                assert r.status_code == 200
                await asyncio.sleep(0.2)
                health = (await c.get("/healthz")).json()
                (video,) = (await c.get("/api/v1/situation")).json()["videos"]
                assert video["live"] is False and video["ended_at"] is not None
        (stream,) = health["video"]["streams"]
        assert stream["live"] is False and health["video"]["sessions"]["whip"] == 0
    # What was sent is recorded: one closed segment, an event pointing at its file.
    async with httpx.AsyncClient(base_url=served.url) as c:
        await served.login(c)
        for _ in range(100):
            (video,) = (await c.get("/api/v1/situation")).json()["videos"]
            if video["segments"]:
                break
            await asyncio.sleep(0.05)
    (segment,) = video["segments"]
    assert segment["path"].startswith("video/uav-1/") and segment["path"].endswith(".webm")
    assert (
        segment["codec"] == "VP8" and segment["frames"] >= 3 and segment["start"] < segment["end"]
    )
    folder = served.settings.data_dir / "incidents" / "test-incident"
    with av.open(str(folder / segment["path"])) as container:
        decoded = sum(1 for _ in container.decode(video=0))
    assert decoded == segment["frames"]


def test_keyframes_are_recognised() -> None:
    assert is_keyframe("vp8", bytes([0b10010000, 0, 0]))  # bit 0 = 0: key frame
    assert not is_keyframe("vp8", bytes([0b10010001, 0, 0]))
    assert is_keyframe("h264", b"\x00\x00\x00\x01\x67rest\x00\x00\x01\x65idr")
    assert not is_keyframe("h264", b"\x00\x00\x00\x01\x41slice")
    assert not is_keyframe("vp8", b"")
