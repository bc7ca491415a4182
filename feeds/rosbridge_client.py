"""The cockpit's outgoing rosbridge v2 connections: one WebSocket client per robot.

Each `RobotLink` connects to its robot's `ws://host:9090`, subscribes to the configured
topics on every (re)connect, feeds what arrives to its `RosbridgeTranslator`, and hands
the events over in small batches from one delivery task, so a slow commit never stalls
the socket (the translator holds at most one message per topic meanwhile: latest wins).
A lost connection is retried with exponential backoff (0.5 s doubling to 30 s, ±20 %
jitter so that robots behind one dropped network don't return in lock-step), reset on
every successful connect. The link state goes out as a `status` event (`link` ok/lost)
on each change, and to the `on_state` callback for /healthz:

* `connected` — the socket is open and subscribed;
* `reconnecting` — not connected, retrying with a delay still below the cap;
* `down` — not connected, retrying at the cap (every ~30 s): gone for a while.

A frame that is not what the protocol says is a counted reject; the connection stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidURI, WebSocketException

from cockpit.events import Event, utcnow
from feeds.rosbridge import MAX_MESSAGE_BYTES, BadMessage, RosbridgeTranslator, subscribe_ops

__all__ = ["BACKOFF_CAP_S", "BACKOFF_START_S", "LinkState", "RobotLink", "RosbridgeFeed"]

log = logging.getLogger(__name__)

LinkState = Literal["connected", "reconnecting", "down"]
Clock = Callable[[], datetime]
OnEvents = Callable[[list[Event]], Awaitable[None]]

BACKOFF_START_S = 0.5
BACKOFF_CAP_S = 30.0
_JITTER = 0.2
STABLE_S = 30.0  # a session this long resets the backoff
_OPEN_TIMEOUT_S = 10.0
_PING_S = 10.0  # a robot that drove out of Wi-Fi is noticed within ~20 s
_MAX_OUTBOX = 1000  # link events waiting for delivery; oldest dropped beyond (never hit)


def _public_url(url: str) -> str:
    """The URL without user:password, for /healthz and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


class RobotLink:
    """One robot's rosbridge connection (see the module doc)."""

    def __init__(
        self,
        translator: RosbridgeTranslator,
        on_events: OnEvents,
        *,
        clock: Clock = utcnow,
        on_state: Callable[[str, LinkState], None] | None = None,
        on_reject: Callable[[str, str], None] | None = None,
        rng: Callable[[], float] = random.random,
        backoff: tuple[float, float] = (BACKOFF_START_S, BACKOFF_CAP_S),
    ) -> None:
        self.translator = translator
        self.robot = translator.robot
        self._on_events = on_events
        self._clock = clock
        self._on_state = on_state
        self._on_reject = on_reject
        self._rng = rng
        self._backoff_start, self._backoff_cap = backoff
        self._tick_s = min(max(self.robot.throttle_ms / 1000.0, 0.05), 0.5)
        self.state: LinkState = "reconnecting"
        self._announced: str | None = None  # the link value last sent as an event
        self._outbox: list[Event] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.counts: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.last_message: float | None = None
        self.last_reject: str | None = None
        self.last_error: str | None = None
        self.attempt = 0  # connection attempts since the last session that held

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        name = f"rosbridge-{self.robot.entity}"
        self._tasks = [
            loop.create_task(self._connect_loop(), name=name),
            loop.create_task(self._deliver_loop(), name=f"{name}-deliver"),
        ]

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self._deliver()  # what was already translated still reaches the picture

    # --- connecting ----------------------------------------------------------------------

    def backoff_base_s(self, attempt: int) -> float:
        """The delay before retry number `attempt` (0-based) before jitter."""
        return min(self._backoff_start * 2.0 ** min(attempt, 30), self._backoff_cap)

    def backoff_s(self, attempt: int) -> float:
        """The delay before retry number `attempt`, with jitter, at most the cap."""
        jitter = 1.0 - _JITTER + 2 * _JITTER * self._rng()
        return min(self.backoff_base_s(attempt) * jitter, self._backoff_cap)

    async def _connect_loop(self) -> None:
        self.attempt = 0
        while True:
            try:
                async with connect(
                    self.robot.url,
                    open_timeout=_OPEN_TIMEOUT_S,
                    ping_interval=_PING_S,
                    ping_timeout=_PING_S,
                    close_timeout=2.0,
                    max_size=MAX_MESSAGE_BYTES,
                    proxy=None,  # a robot on the local network, never through a web proxy
                ) as ws:
                    opened = time.monotonic()
                    try:
                        await self._session(ws)
                    finally:
                        # Only a link that held counts as recovered: one the robot accepts
                        # and drops at once (a topic too big for a frame) backs off further.
                        if time.monotonic() - opened >= STABLE_S:
                            self.attempt = 0
                self.last_error = "closed by the robot"
            except (OSError, TimeoutError, WebSocketException, InvalidURI) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"[:200]
            except Exception as exc:  # never let one robot's surprise end its link for good
                self.last_error = f"{type(exc).__name__}: {exc}"[:200]
                log.exception("rosbridge %s: unexpected error", self.robot.entity)
            self._announce("lost")
            delay = self.backoff_s(self.attempt)
            self.attempt += 1
            at_cap = self.backoff_base_s(self.attempt - 1) >= self._backoff_cap
            self._set_state("down" if at_cap else "reconnecting")
            log.info(
                "rosbridge %s: %s; retrying in %.1f s", self.robot.entity, self.last_error, delay
            )
            await asyncio.sleep(delay)

    async def _session(self, ws: ClientConnection) -> None:
        for op in subscribe_ops(self.robot):
            await ws.send(json.dumps(op))
        self.counts["connects"] += 1
        self._set_state("connected")
        self._announce("ok")
        log.info("rosbridge %s: connected to %s", self.robot.entity, _public_url(self.robot.url))
        async for frame in ws:
            now = self._clock()
            self.last_message = now.timestamp()
            try:
                self.translator.feed(frame, now)
            except BadMessage as exc:
                self._reject(str(exc))
            except Exception as exc:  # a translator bug costs one frame, not the link
                log.exception("rosbridge %s: translating a frame failed", self.robot.entity)
                self._reject(f"internal error: {type(exc).__name__}")

    def _reject(self, reason: str) -> None:
        self.counts["rejects"] += 1
        self.last_reject = reason[:300]
        # Reasons are kept by their start: the values in them vary message to message.
        key = reason[:80]
        if key in self.reasons or len(self.reasons) < 20:
            self.reasons[key] += 1
        if self._on_reject is not None:
            self._on_reject(self.robot.entity, reason)

    def _set_state(self, state: LinkState) -> None:
        if state != self.state:
            self.state = state
        if self._on_state is not None:
            self._on_state(self.robot.entity, state)

    def _announce(self, link: Literal["ok", "lost"]) -> None:
        if link == self._announced:
            return
        self._announced = link
        self._outbox.append(self.translator.link(link, self._clock()))
        del self._outbox[:-_MAX_OUTBOX]

    # --- delivering ----------------------------------------------------------------------

    async def _deliver_loop(self) -> None:
        while True:
            await asyncio.sleep(self._tick_s)
            await self._deliver()

    async def _deliver(self) -> None:
        batch, self._outbox = self._outbox, []
        batch.extend(self.translator.due(self._clock()))
        if not batch:
            return
        self.counts["events"] += len(batch)
        try:
            await self._on_events(batch)
        except Exception:  # the picture's trouble, not the robot's: keep the link
            self.counts["delivery_errors"] += 1
            log.exception(
                "rosbridge %s: delivering %d events failed", self.robot.entity, len(batch)
            )

    # --- health --------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        t = self.translator
        return {
            "url": _public_url(self.robot.url),
            "link": self.state,
            "connects": self.counts["connects"],
            "attempt": self.attempt,  # retries since the last session that held
            "messages": t.counts["messages"],
            "rejects": self.counts["rejects"],
            "skipped": t.counts["skipped"],
            "ignored": t.counts["ignored"],
            "events": self.counts["events"],
            "delivery_errors": self.counts["delivery_errors"],
            "last_message_at": None
            if self.last_message is None
            else datetime.fromtimestamp(self.last_message, UTC).isoformat(),
            "last_reject": self.last_reject,
            "reject_reasons": dict(self.reasons.most_common(10)),
            "last_error": self.last_error,
            "server_status": t.last_status,
        }


class RosbridgeFeed:
    """Every configured robot's link, started and stopped together."""

    def __init__(self, links: Sequence[RobotLink]) -> None:
        self.links = {link.robot.entity: link for link in links}

    def start(self) -> None:
        for link in self.links.values():
            link.start()

    @property
    def state(self) -> LinkState:
        """connected when all robots are; down when none is reachable; else reconnecting."""
        states = {link.state for link in self.links.values()}
        if states <= {"connected"}:
            return "connected"
        if states == {"down"}:
            return "down"
        return "reconnecting"

    def stats(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "robots": {name: link.stats() for name, link in sorted(self.links.items())},
        }

    async def aclose(self) -> None:
        await asyncio.gather(*(link.aclose() for link in self.links.values()))
