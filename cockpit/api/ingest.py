"""Ingest of the cockpit's native telemetry over HTTP (single or batch) and WebSocket.

Every accepted message is answered only once its events are committed to the log.
A bad message gets a 4xx naming the field and the reason, is counted per feed, and
nothing of it (or of its batch) is applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request, WebSocket, WebSocketDisconnect
from starlette.responses import Response

from cockpit.api.deps import device_for, require_device
from cockpit.api.errors import ApiError, describe_decode_error
from cockpit.api.jsonresponse import JsonResponse
from cockpit.api.limiting import RELEASE_AFTER_S, TooMany, charge, deny, device_ws_slot
from cockpit.api.services import Services, services
from cockpit.auth import Device
from cockpit.events import Event, InvalidInput, utcnow
from cockpit.health import FeedHealth
from cockpit.pipeline import CommitTimeout
from feeds.telemetry import TelemetryMessage, parse_body, schema_components, to_events

__all__ = ["OPENAPI_SCHEMAS", "commit", "read_body", "rejects_counted", "router"]

router = APIRouter(tags=["ingest"])
log = logging.getLogger("cockpit.ingest")

FEED = "telemetry"
# Schemas referenced from hand-written request bodies; server.py adds them to components.
OPENAPI_SCHEMAS = schema_components
_WS_PIPELINE = 4096  # messages read ahead of their acknowledgement, per connection


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) anything over `limit` before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "body too large", "body", f"{declared} bytes; at most {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "body too large", "body", f"more than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@contextlib.contextmanager
def rejects_counted(svc: Services, health: FeedHealth) -> Iterator[None]:
    """A refusal raised inside (ApiError: 4xx naming the field) is counted as the feed's
    reject, with its reason, on /healthz before it is answered."""
    try:
        yield
    except ApiError as exc:
        health.reject(exc.summary(), svc.clock())
        raise


async def commit(
    svc: Services,
    health: FeedHealth,
    events: list[Event],
    counted: int | None = None,
    *,
    paid: tuple[Device, int] | None = None,
) -> list[int]:
    """Publish `events` and wait for the log's commit: the seqs, counted as accepted
    (`counted` of them: what the feed calls one message), else 503 counted as a reject,
    and what the device `paid` for them under its rate limit is given back."""
    try:
        seqs = await svc.pipeline_or_409().ingest(events)
    except CommitTimeout as exc:
        health.reject("not committed", svc.clock())
        if paid is not None:
            svc.limits.refund(paid[0].name, paid[1])
        raise ApiError(503, "not committed", "recorder", str(exc)) from exc
    health.accept(len(seqs) if counted is None else counted, svc.clock())
    return seqs


def _parse(svc: Services, body: bytes) -> list[TelemetryMessage]:
    """Validate a whole body; raises ApiError naming the field, nothing half-done."""
    try:
        messages = parse_body(body)
    except InvalidInput as exc:
        errors = describe_decode_error(exc)
        err = ApiError(422, "invalid telemetry", errors[0]["field"], errors[0]["reason"])
        err.errors = errors
        raise err from exc
    if not messages:
        raise ApiError(422, "invalid telemetry", "body", "empty batch")
    limit = svc.settings.max_batch
    if len(messages) > limit:
        raise ApiError(413, "batch too large", "body", f"{len(messages)} messages; at most {limit}")
    return messages


def _stamped(svc: Services, device: Device, messages: list[TelemetryMessage]) -> list[Event]:
    """The events of `messages`, stamped with the server's arrival time.

    Callers publish them without an await in between: stamping and seq assignment must
    not interleave with other ingests, so that received_at grows with seq and
    `situation?at=T` is a prefix of the log.
    """
    received = utcnow()
    events: list[Event] = []
    for msg in messages:
        events.extend(
            to_events(msg, incident=svc.incident, device=device.name, received_at=received)
        )
    return events


@router.post(
    "/api/v1/ingest/telemetry",
    status_code=202,
    summary="Native telemetry: one message or a list",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/TelemetryMessage"},
                            {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/TelemetryMessage"},
                            },
                        ]
                    }
                }
            },
        }
    },
    responses={202: {"description": "committed; the assigned sequence numbers"}},
)
async def ingest_telemetry(
    request: Request,
    device: Device = Depends(require_device(FEED)),  # noqa: B008
) -> Response:
    svc = services(request)
    health = svc.health.feed(FEED)
    with rejects_counted(svc, health):
        body = await read_body(request, svc.settings.max_body_bytes)
        messages = _parse(svc, body)
        charge(svc, device, len(messages))  # all or nothing: 429 before anything is stamped
    # Stamped and published in one step (no await between): see _stamped.
    seqs = await commit(svc, health, _stamped(svc, device, messages), paid=(device, len(messages)))
    return JsonResponse({"seq": seqs}, status_code=202)


@router.websocket("/ws/ingest/telemetry")
async def ingest_telemetry_ws(ws: WebSocket) -> None:
    """One message (object or list) per frame; each answered in order with its seqs."""
    svc = services(ws)
    health = svc.health.feed(FEED)
    try:
        device = device_for(ws, FEED)
    except ApiError as exc:
        health.reject(exc.error, svc.clock())
        await ws.close(code=1008, reason=exc.error)
        return
    release = device_ws_slot(svc, device)
    if release is None:
        limit = svc.limits.ws_per_device
        refused = TooMany(
            "too many connections",
            "connections",
            f"{limit} ingest WebSockets per device token (device_ws_connections)",
            RELEASE_AFTER_S,
        )
        health.reject(refused.summary(), svc.clock())
        await deny(ws, refused)
        return
    try:
        await ws.accept()
    except BaseException:
        release()
        raise
    health.connections += 1
    # Acknowledgements go out in order, while reading continues (pipelining).
    replies: asyncio.Queue[asyncio.Future[dict[str, Any]] | None] = asyncio.Queue(_WS_PIPELINE)
    grouper = _Grouper(svc, device)
    writer = asyncio.create_task(_ws_writer(ws, replies))
    try:
        while not writer.done():
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            data = message.get("bytes") or (message.get("text") or "").encode()
            await replies.put(_ws_handle(svc, grouper, data))
    except WebSocketDisconnect:
        pass
    finally:
        release()
        health.connections -= 1
        with contextlib.suppress(asyncio.QueueFull):
            replies.put_nowait(None)
        if not writer.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer, 5.0)
        writer.cancel()
        await grouper.close()


def _ws_handle(svc: Services, grouper: _Grouper, data: bytes) -> asyncio.Future[dict[str, Any]]:
    """Validate now; valid messages join the connection's next publish."""
    health = svc.health.feed(FEED)
    if len(data) > svc.settings.max_body_bytes:
        health.reject("body too large: body", svc.clock())
        return _done(
            {"error": "body too large", "errors": [{"field": "body", "reason": "too large"}]}
        )
    try:
        messages = _parse(svc, data)
        charge(svc, grouper.device, len(messages))  # refused: this message only
    except ApiError as exc:
        health.reject(exc.summary(), svc.clock())
        reply: dict[str, Any] = {"error": exc.error, "errors": exc.errors}
        if isinstance(exc, TooMany):
            reply["retry_after_s"] = exc.retry_after_s
        return _done(reply)
    return grouper.submit(messages)


def _done(value: dict[str, Any]) -> asyncio.Future[dict[str, Any]]:
    fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    fut.set_result(value)
    return fut


class _Grouper:
    """Frames of one connection are published in groups: whatever arrived while the
    previous group was being published goes out as one publish (one stamp, one seq
    range), and each frame is answered with its own slice. A busy sender thus costs one
    bus round trip per group, not per frame."""

    def __init__(self, svc: Services, device: Device) -> None:
        self.svc = svc
        self.device = device
        self.pending: list[tuple[list[TelemetryMessage], asyncio.Future[dict[str, Any]]]] = []
        self.wake = asyncio.Event()
        self.acks: set[asyncio.Task[None]] = set()
        self.task = asyncio.create_task(self._run(), name="ws-ingest-grouper")

    def submit(self, messages: list[TelemetryMessage]) -> asyncio.Future[dict[str, Any]]:
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending.append((messages, fut))
        self.wake.set()
        return fut

    async def close(self) -> None:
        self.task.cancel()
        for task in (self.task, *self.acks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for _, fut in self.pending:
            fut.cancel()

    async def _run(self) -> None:
        svc = self.svc
        while True:
            await self.wake.wait()
            self.wake.clear()
            group, self.pending = self.pending, []
            if not group:
                continue
            # Stamp and publish in one step (see _stamped): received_at grows with seq.
            parts = [_stamped(svc, self.device, messages) for messages, _ in group]
            counts = [len(part) for part in parts]
            events = [event for part in parts for event in part]
            try:
                seqs = await svc.pipeline_or_409().publish(events)
            except Exception as exc:  # the bus is gone: answer, don't drop the connection
                log.warning("telemetry publish failed: %s", exc)
                svc.limits.refund(self.device.name, sum(len(m) for m, _ in group))
                for _, fut in group:
                    fut.set_result(_error("not accepted", "bus", str(exc)))
                svc.health.feed(FEED).reject("not accepted", svc.clock())
                continue
            task = asyncio.create_task(self._acknowledge(group, counts, seqs))
            self.acks.add(task)
            task.add_done_callback(self.acks.discard)

    async def _acknowledge(
        self,
        group: list[tuple[list[TelemetryMessage], asyncio.Future[dict[str, Any]]]],
        counts: list[int],
        seqs: list[int],
    ) -> None:
        svc = self.svc
        health = svc.health.feed(FEED)
        committed = await svc.pipeline_or_409().wait_committed(seqs[-1])
        i = 0
        for (_, fut), n in zip(group, counts, strict=True):
            part, i = seqs[i : i + n], i + n
            if committed:
                health.accept(len(part), svc.clock())
                fut.set_result({"seq": part})
            else:
                health.reject("not committed", svc.clock())
                fut.set_result(_error("not committed", "recorder", "not committed in time"))


def _error(error: str, field: str, reason: str) -> dict[str, Any]:
    return {"error": error, "errors": [{"field": field, "reason": reason}]}


async def _ws_writer(
    ws: WebSocket, replies: asyncio.Queue[asyncio.Future[dict[str, Any]] | None]
) -> None:
    while True:
        item = await replies.get()
        if item is None:
            return
        reply = await item
        await ws.send_bytes(orjson.dumps(reply))
