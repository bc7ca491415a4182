"""Drive the cockpit's native telemetry WebSocket from a scenario.

One JSON object per actor message per tick over `ws://host:port/ws/ingest/telemetry`
(header `Authorization: Bearer <token>`). The server answers every message with
`{"seq": [...]}` or `{"error": ..., "errors": [...]}`; rejections are logged with their
reason and never stop the simulator. A dropped or refused connection is retried with
exponential backoff (0.5 s doubling to 10 s, reset once the server answers again).

Sim time runs from the injected clock: t = start_s + elapsed wall time x speedup, and
keeps running while disconnected, like a real incident would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, InvalidURI, WebSocketException

from feeds.sim.scenario import Scenario, harbour_fire

__all__ = ["BACKOFF_CAP_S", "BACKOFF_START_S", "Clock", "backoff_delays", "run_sim"]

log = logging.getLogger("feeds.sim")

Clock = Callable[[], datetime]

BACKOFF_START_S = 0.5
BACKOFF_CAP_S = 10.0
_OPEN_TIMEOUT_S = 10.0
_CLOSE_TIMEOUT_S = 2.0
_MAX_REPLY_BYTES = 1 << 20


def _utcnow() -> datetime:
    return datetime.now(UTC)


def backoff_delays(start_s: float = BACKOFF_START_S, cap_s: float = BACKOFF_CAP_S) -> list[float]:
    """The retry delays in order, ending at the cap: [0.5, 1, 2, 4, 8, 10]."""
    delays, d = [], start_s
    while d < cap_s:
        delays.append(d)
        d *= 2
    return [*delays, cap_s]


@dataclass
class _Stats:
    sent: int = 0
    acked: int = 0
    rejected: int = 0
    answered: bool = False  # the server answered on the current connection


async def run_sim(
    url: str,
    token: str,
    *,
    rate_hz: float = 1.0,
    speedup: float = 1.0,
    stop: asyncio.Event | None = None,
    clock: Clock = _utcnow,
    scenario: Scenario | None = None,
    start_s: float = 0.0,
) -> None:
    """Send the scenario's telemetry to `url` until `stop` is set (for ever if None)."""
    if not (rate_hz > 0 and math.isfinite(rate_hz)):
        raise ValueError(f"rate_hz must be positive, got {rate_hz!r}")
    if not (speedup > 0 and math.isfinite(speedup)):
        raise ValueError(f"speedup must be positive, got {speedup!r}")
    if not (start_s >= 0 and math.isfinite(start_s)):
        raise ValueError(f"start_s must be >= 0, got {start_s!r}")
    stop = stop or asyncio.Event()
    scenario = scenario or harbour_fire()
    t0 = clock()

    def sim_time(now: datetime) -> float:
        return start_s + max((now - t0).total_seconds(), 0.0) * speedup

    delays = backoff_delays()
    attempt = 0
    stats = _Stats()
    headers = {"Authorization": f"Bearer {token}"}
    log.info("simulating %r towards %s (x%g, %g Hz)", scenario.incident.name, url, speedup, rate_hz)
    while not stop.is_set():
        stats.answered = False
        try:
            async with connect(
                url,
                additional_headers=headers,
                open_timeout=_OPEN_TIMEOUT_S,
                close_timeout=_CLOSE_TIMEOUT_S,
                max_size=_MAX_REPLY_BYTES,
                proxy=None,  # the cockpit is on the local network; never go via a proxy
            ) as ws:
                log.info("connected to %s", url)
                await _session(ws, scenario, sim_time, clock, 1.0 / rate_hz, stop, stats)
            if stop.is_set():
                break
            log.warning("connection to %s closed", url)
        except InvalidURI:
            raise
        except InvalidStatus as exc:
            status = exc.response.status_code
            body = exc.response.body.decode("utf-8", "replace")[:200] if exc.response.body else ""
            log.error("server refused the connection: HTTP %s %s", status, body)
        except (OSError, TimeoutError, WebSocketException) as exc:
            log.warning("connection to %s lost or failed: %s", url, str(exc) or type(exc).__name__)
        if stats.answered:
            attempt = 0
        delay = delays[min(attempt, len(delays) - 1)]
        attempt += 1
        log.info("reconnecting in %.1f s", delay)
        await _wait(stop, delay)
    log.info("simulator stopped: %d sent, %d acked, %d rejected", *_counts(stats))


def _counts(stats: _Stats) -> tuple[int, int, int]:
    return stats.sent, stats.acked, stats.rejected


async def _wait(stop: asyncio.Event, delay_s: float, *also: asyncio.Future[Any]) -> None:
    """Sleep delay_s, waking early when stop is set or any of `also` finishes."""
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([stopper, *also], timeout=delay_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopper


async def _session(
    ws: ClientConnection,
    scenario: Scenario,
    sim_time: Callable[[datetime], float],
    clock: Clock,
    period_s: float,
    stop: asyncio.Event,
    stats: _Stats,
) -> None:
    """Tick until stop or until the connection goes; replies are read alongside."""
    reader = asyncio.ensure_future(_read_replies(ws, stats))
    loop = asyncio.get_running_loop()
    next_tick = loop.time()
    try:
        while not stop.is_set() and not reader.done():
            now = clock()
            for message in scenario.messages_at(sim_time(now), now):
                await ws.send(json.dumps(message, separators=(",", ":"), allow_nan=False))
                stats.sent += 1
            log.debug("tick t=%.1f s: %d messages sent", sim_time(now), stats.sent)
            next_tick += period_s
            if next_tick < loop.time():  # fell behind (slow link): do not burst to catch up
                next_tick = loop.time()
            await _wait(stop, next_tick - loop.time(), reader)
        if reader.done():
            reader.result()  # surface why the connection ended
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketException, OSError):
            await reader


async def _read_replies(ws: ClientConnection, stats: _Stats) -> None:
    """Log each reply: acks at debug level, rejections as warnings with their reason."""
    async for raw in ws:
        stats.answered = True
        try:
            reply = json.loads(raw)
        except ValueError:
            log.warning("server reply is not JSON: %.200r", raw)
            continue
        if isinstance(reply, dict) and "error" in reply:
            stats.rejected += 1
            log.warning(
                "server rejected a message: %s; %s",
                reply.get("error"),
                json.dumps(reply.get("errors", []), ensure_ascii=False)[:500],
            )
        elif isinstance(reply, dict) and isinstance(reply.get("seq"), list):
            stats.acked += len(reply["seq"])
            log.debug("acked seq %s", reply["seq"])
        else:
            log.warning("unexpected server reply: %.200r", raw)
