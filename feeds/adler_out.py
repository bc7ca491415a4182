"""Responder alerts out to the A.D.Le.R. platform, which rings the responders' phones.

Each `responder.call` with state `alerted` that the fold took becomes one POST to the
configured URL (bearer token), and each call a closing or dismissal released one POST
with state `released` (stand down), retried with backoff until it is delivered or the
alert is too old to matter. Only what a responder needs to find and help is sent: the
kind of emergency, the place, the floor, the access notes; never the `personal` part.

Only the process that records sends (every worker folds the same events; one phone call
per alert), and only alerts received in the last few minutes: a process that starts and
folds the log's history must not ring phones for alerts of an hour ago. The event id
goes along as `Idempotency-Key`, for a platform that sees a retry twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from cockpit.events import DetectionTransitionEvent, Event, ResponderCallEvent
from cockpit.health import FeedHealth

__all__ = ["MAX_AGE_S", "AlertSender", "alert_body"]

log = logging.getLogger(__name__)

MAX_AGE_S = 300.0  # an alert older than this is not (re)sent: the situation has moved on
_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
_QUEUE = 1000
_OPERATIONAL = ("id", "category", "lat", "lon", "address", "floor", "access", "summary")


def alert_body(state: str, responder: str, at: datetime, det: Mapping[str, Any]) -> dict[str, Any]:
    """What the platform gets: `alerted` (ring the phone) or `released` (stand down: the
    detection was closed or dismissed). No free text: a person's note may hold anything."""
    return {
        "state": state,
        "detection": {k: det.get(k) for k in _OPERATIONAL},
        "responder": responder,
        "at": at.isoformat().replace("+00:00", "Z"),
    }


_STAND_DOWN = ("closed", "dismissed")


def _taken(ev: Event, det: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(responder, state) for what the fold took of `ev`: an alert the fold refused (two
    people alerting at once, a refused dispatch) rings no one; a closing stands down the
    calls it released."""
    calls: Mapping[str, Mapping[str, Any]] = det.get("calls") or {}
    if isinstance(ev, ResponderCallEvent):
        call = calls.get(ev.payload.responder) or {}
        return [(ev.payload.responder, "alerted")] if call.get("alerted_seq") == ev.seq else []
    return [
        (rid, "released")
        for rid, call in calls.items()
        if call.get("state") == "released" and call.get("seq") == ev.seq
    ]


class AlertSender:
    def __init__(
        self,
        url: str,
        token: str,
        health: FeedHealth,
        clock: Callable[[], float],
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        self.health = health
        self.clock = clock
        self._queue: asyncio.Queue[tuple[str, dict[str, Any], float]] = asyncio.Queue(_QUEUE)
        self._client = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {token}"}, timeout=10.0, transport=transport
        )
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        health.state = "connected"

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def on_fold(self, batch: Sequence[Event], detections: Mapping[str, Mapping[str, Any]]) -> None:
        now = self.clock()
        for ev in batch:
            if isinstance(ev, ResponderCallEvent) and ev.payload.state == "alerted":
                det_id = ev.payload.detection
            elif isinstance(ev, DetectionTransitionEvent) and ev.payload.to in _STAND_DOWN:
                det_id = ev.payload.id
            else:
                continue
            received = ev.received_at.timestamp()
            if now - received > MAX_AGE_S:
                continue  # history being folded at start-up: rung long ago
            det = detections.get(det_id)
            if det is None:
                continue
            for responder, state in _taken(ev, det):
                body = alert_body(state, responder, ev.observed_at, det)
                try:
                    self._queue.put_nowait((f"{ev.id}:{responder}", body, received))
                except asyncio.QueueFull:
                    self.health.reject("queue full", now)

    async def _run(self) -> None:
        while True:
            key, body, received = await self._queue.get()
            await self._deliver(key, body, received)

    async def _deliver(self, key: str, body: dict[str, Any], received: float) -> None:
        for attempt in range(1_000):
            if self.clock() - received > MAX_AGE_S:
                self.health.reject("given up: too old", self.clock())
                return
            try:
                r = await self._client.post(self.url, json=body, headers={"Idempotency-Key": key})
            except httpx.HTTPError as exc:
                reason = f"unreachable: {type(exc).__name__}"
            else:
                if r.is_success:
                    self.sent += 1
                    self.health.state = "connected"
                    self.health.accept(1, self.clock())
                    return
                if 400 <= r.status_code < 500 and r.status_code not in (408, 429):
                    # Our request is wrong for them: retrying will not mend it.
                    self.health.reject(f"refused: HTTP {r.status_code}", self.clock())
                    log.warning("responder alert refused by %s: %s", self.url, r.text[:200])
                    return
                reason = f"HTTP {r.status_code}"
            self.health.state = "reconnecting"
            self.health.reject(reason, self.clock())
            await asyncio.sleep(_BACKOFF_S[min(attempt, len(_BACKOFF_S) - 1)])

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._client.aclose()
