"""A drone for browser tests: an aiortc sender publishing a test pattern over WHIP, on
its own event loop in a thread (Playwright's sync API owns the test's thread)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx

__all__ = ["Publisher"]


class Publisher:
    """Publishes `stream` to `url` with a device `token` until `stop` is set; `paused`
    stops the frames without ending the session (a drone's radio gap)."""

    def __init__(
        self, url: str, stream: str, token: str, size: tuple[int, int] = (640, 360)
    ) -> None:
        self.url, self.stream, self.token, self.size = url, stream, token, size
        self.paused = threading.Event()
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

        from tests.test_media import Pattern

        paused = self.paused

        class Pausable(Pattern):
            async def recv(self) -> Any:
                while paused.is_set():
                    await asyncio.sleep(0.05)
                return await super().recv()

        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            pc.addTrack(Pausable(*self.size))
            await pc.setLocalDescription(await pc.createOffer())
            headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/sdp"}
            async with httpx.AsyncClient(base_url=self.url, timeout=20) as c:
                r = await c.post(
                    f"/whip/{self.stream}", content=pc.localDescription.sdp, headers=headers
                )
                assert r.status_code == 201, r.text
                await pc.setRemoteDescription(RTCSessionDescription(sdp=r.text, type="answer"))
                self.ready.set()
                while not self.stop.is_set():
                    await asyncio.sleep(0.05)
                r = await c.delete(r.headers["location"], headers=headers)
                assert r.status_code == 200
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc
            self.ready.set()
        finally:
            await pc.close()
