"""The routes' side of `cockpit.limits`: refusals as 429 answers, and connection slots
that are given back however the connection ends."""

from __future__ import annotations

import math
from collections.abc import Callable

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from cockpit.api.errors import ApiError, error_response
from cockpit.api.services import Services
from cockpit.auth import Device, User

__all__ = [
    "RELEASE_AFTER_S",
    "SlotStream",
    "TooMany",
    "charge",
    "deny",
    "device_ws_slot",
    "stream_slot",
]

RELEASE_AFTER_S = 5  # Retry-After for a connection limit: a closed page frees its slot


class TooMany(ApiError):
    """429 with `Retry-After` (whole seconds, at least 1)."""

    def __init__(self, error: str, field: str, reason: str, retry_after_s: float) -> None:
        super().__init__(429, error, field, reason)
        self.retry_after_s = max(1, math.ceil(retry_after_s))
        self.headers = {"Retry-After": str(self.retry_after_s)}


def charge(svc: Services, device: Device, cost: int) -> None:
    """Take `cost` events from the device's bucket, or raise (nothing taken)."""
    limits = svc.limits
    wait = limits.admit(device.name, cost)
    if wait == 0.0:
        return
    if math.isinf(wait):
        raise ApiError(
            413,
            "batch too large",
            "rate",
            f"{cost} events in one request; at most {limits.burst} (ingest_burst)",
        )
    raise TooMany("rate limited", "rate", limits.rate_reason(), wait)


def _once(release: Callable[[], None]) -> Callable[[], None]:
    done = False

    def once() -> None:
        nonlocal done
        if not done:
            done = True
            release()

    return once


def stream_slot(svc: Services, user: User) -> Callable[[], None]:
    """A push-stream slot of `user` (its release, safe to call twice), or 429."""
    limits = svc.limits
    if not limits.streams.acquire(user.name):
        limits.refused["streams"] += 1
        raise TooMany(
            "too many streams",
            "connections",
            f"{limits.streams_per_user} push streams per user (user_streams)",
            RELEASE_AFTER_S,
        )
    return _once(lambda: limits.streams.release(user.name))


def device_ws_slot(svc: Services, device: Device) -> Callable[[], None] | None:
    """An ingest-WebSocket slot of `device` (its release), or None, counted, when full."""
    limits = svc.limits
    if not limits.device_ws.acquire(device.name):
        limits.refused["device_ws"] += 1
        return None
    return _once(lambda: limits.device_ws.release(device.name))


async def deny(ws: WebSocket, exc: TooMany) -> None:
    """Refuse a WebSocket handshake with the HTTP answer (where the server can send one;
    else close with 1013, try again later)."""
    response = error_response(exc.status, exc.error, exc.errors)
    response.headers.update(exc.headers)
    try:
        await ws.send_denial_response(response)
    except RuntimeError:
        await ws.close(code=1013, reason=exc.error)


class SlotStream(StreamingResponse):
    """A streaming answer that gives its slot back when it ends, however it ends: done,
    the client gone (Starlette stops the stream on its disconnect), the server stopping."""

    def __init__(self, *args: object, release: Callable[[], None], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()
