"""Every live stream pushed on to an SFU over WHIP, so that many viewers watch the drones
without each costing the media process a connection (issue 8, the `sfu` deployment).

The media process stays the one that takes the drones' video (device tokens), records it
and analyses it; the SFU (e.g. MediaMTX) gets the same packets as any viewer, unchanged,
and serves the rest. A link that fails is tried again with backoff while its stream is
live; a stream that ends ends its link (DELETE on the session's Location).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import httpx

from cockpit.media.streams import MediaHub, Stream

__all__ = ["SfuRelay"]

log = logging.getLogger("cockpit.media.relay")

_BACKOFF_MIN_S = 1.0
_BACKOFF_MAX_S = 30.0
_CHECK_S = 0.5  # how often a relayed link is looked at (is its session still there?)
_CONNECT_S = 15.0  # from the SFU's answer to a connected peer


@dataclass
class _Link:
    stream: str
    state: str = "connecting"  # connecting | relayed | failed
    since: float = 0.0
    attempts: int = 0
    last_error: str | None = None
    task: asyncio.Task[None] | None = None


def _split_auth(url: str) -> tuple[str, tuple[str, str] | None]:
    """The URL without its user:password, and those as HTTP basic auth (MediaMTX)."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, None
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc)), (parts.username, parts.password or "")


class SfuRelay:
    """`url` names the SFU's WHIP endpoint with `{stream}`, e.g.
    `http://user:secret@sfu:8889/{stream}/whip`; `token` is sent as a Bearer token."""

    def __init__(
        self,
        hub: MediaHub,
        url: str,
        token: str | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.hub = hub
        self._url, self._auth = _split_auth(url)
        self._headers = {"Content-Type": "application/sdp"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self.clock = clock
        self.links: dict[str, _Link] = {}
        self._client = httpx.AsyncClient(timeout=10.0, auth=self._auth)
        hub.on_change.append(self._changed)

    def _changed(self, stream: Stream) -> None:
        link = self.links.get(stream.name)
        if stream.live and link is None:
            link = self.links[stream.name] = _Link(stream.name, since=self.clock())
            link.task = asyncio.create_task(self._run(link), name=f"relay-{stream.name}")
        elif not stream.live and link is not None:
            del self.links[stream.name]
            if link.task is not None:
                link.task.cancel()

    async def _run(self, link: _Link) -> None:
        backoff = _BACKOFF_MIN_S
        url = self._url.replace("{stream}", quote(link.stream, safe=""))
        while True:
            session: str | None = None
            location: str | None = None
            try:
                link.attempts += 1
                session, offer = await self.hub.relay(link.stream, "relay")
                r = await self._client.post(url, content=offer, headers=self._headers)
                if r.status_code != 201:
                    raise RuntimeError(f"the SFU answered {r.status_code}: {r.text[:200]}")
                where = r.headers.get("location")
                location = urljoin(url, where) if where else None
                await self.hub.relay_answered(session, r.text)
                await self._connected(session)
                link.state, link.since, link.last_error = "relayed", self.clock(), None
                log.info("stream %s relayed to %s", link.stream, url)
                backoff = _BACKOFF_MIN_S
                # Until the connection fails or closes (the hub ends the session then).
                while session in self.hub.sessions:  # noqa: ASYNC110 - the hub has no event
                    await asyncio.sleep(_CHECK_S)
                raise RuntimeError("the connection to the SFU was lost")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                link.state, link.since, link.last_error = "failed", self.clock(), str(exc)
                log.warning("stream %s: relay to the SFU failed: %s", link.stream, exc)
            finally:
                await self._end(session, location)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX_S)

    async def _connected(self, session: str) -> None:
        """The SFU answered; wait for ICE and DTLS, or call the attempt failed (an SFU
        whose candidates this host cannot reach would otherwise look relayed)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _CONNECT_S
        while True:
            held = self.hub.sessions.get(session)
            if held is None:
                raise RuntimeError("the connection to the SFU failed")
            if held.pc.connectionState == "connected":
                return
            if loop.time() > deadline:
                raise RuntimeError(f"no connection to the SFU within {_CONNECT_S:.0f} s")
            await asyncio.sleep(0.1)

    async def _end(self, session: str | None, location: str | None) -> None:
        # Also on cancellation: shielded, bounded, best effort (the SFU may be gone).
        async def end() -> None:
            if session is not None:
                await self.hub.end(session)
            if location:
                with contextlib.suppress(httpx.HTTPError):
                    await self._client.delete(location, headers=self._headers, timeout=3.0)

        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.shield(end())

    def stats(self) -> dict[str, Any]:
        now = self.clock()
        return {
            "to": self._url,  # without user:password
            "links": {
                name: {
                    "state": link.state,
                    "for_s": round(max(0.0, now - link.since), 1),
                    "attempts": link.attempts,
                    "last_error": link.last_error,
                }
                for name, link in self.links.items()
            },
        }

    async def aclose(self) -> None:
        links = list(self.links.values())
        self.links.clear()
        for link in links:
            if link.task is not None:
                link.task.cancel()
        for link in links:
            if link.task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await link.task
        await self._client.aclose()
