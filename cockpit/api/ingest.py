"""Ingest of the cockpit's native telemetry over HTTP (single or batch) and WebSocket.

Every accepted message is answered only once its events are committed to the log.
A bad message gets a 4xx naming the field and the reason, is counted per feed, and
nothing of it (or of its batch) is applied.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request, WebSocket, WebSocketDisconnect
from pydantic import ValidationError
from starlette.responses import Response

from cockpit.api.deps import device_for, require_device
from cockpit.api.errors import ApiError, describe_validation
from cockpit.api.jsonresponse import JsonResponse
from cockpit.api.services import Services, services
from cockpit.auth import Device
from cockpit.events import Event, utcnow
from cockpit.pipeline import CommitTimeout
from feeds.telemetry import TelemetryMessage, parse_body, to_events

__all__ = ["OPENAPI_MODELS", "read_body", "router"]

router = APIRouter(tags=["ingest"])

FEED = "telemetry"
# Models referenced from hand-written request bodies; server.py adds them to components.
OPENAPI_MODELS = (TelemetryMessage,)
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


def _parse(svc: Services, body: bytes) -> list[TelemetryMessage]:
    """Validate a whole body; raises ApiError naming the field, nothing half-done."""
    try:
        messages = parse_body(body)
    except ValidationError as exc:
        errors = describe_validation(exc)
        err = ApiError(422, "invalid telemetry", errors[0]["field"], errors[0]["reason"])
        err.errors = errors
        raise err from exc
    if not messages:
        raise ApiError(422, "invalid telemetry", "body", "empty batch")
    limit = svc.settings.max_batch
    if len(messages) > limit:
        raise ApiError(413, "batch too large", "body", f"{len(messages)} messages; at most {limit}")
    return messages


async def _ingest(svc: Services, device: Device, messages: list[TelemetryMessage]) -> list[int]:
    """Stamp arrival time and publish in one step (no await between), then await commit.

    Stamping and seq assignment must not interleave with other ingests, so that
    received_at grows with seq and `situation?at=T` is a prefix of the log.
    """
    received = utcnow()
    events: list[Event] = []
    for msg in messages:
        events.extend(
            to_events(msg, incident=svc.incident, device=device.name, received_at=received)
        )
    return await svc.pipeline_or_409().ingest(events)


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
    try:
        body = await read_body(request, svc.settings.max_body_bytes)
        messages = _parse(svc, body)
    except ApiError as exc:
        health.reject(f"{exc.error}: {exc.errors[0]['field'] if exc.errors else ''}", svc.clock())
        raise
    try:
        seqs = await _ingest(svc, device, messages)
    except CommitTimeout as exc:
        health.reject("not committed", svc.clock())
        raise ApiError(503, "not committed", "recorder", str(exc)) from exc
    health.accept(len(seqs), svc.clock())
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
    await ws.accept()
    health.connections += 1
    # Acknowledgements go out in order, while reading continues (pipelining).
    replies: asyncio.Queue[Awaitable[dict[str, Any]] | None] = asyncio.Queue(_WS_PIPELINE)
    writer = asyncio.create_task(_ws_writer(ws, replies))
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            data = message.get("bytes") or (message.get("text") or "").encode()
            await replies.put(_ws_handle(svc, device, data))
            if writer.done():
                break
    except WebSocketDisconnect:
        pass
    finally:
        health.connections -= 1
        with contextlib.suppress(asyncio.QueueFull):
            replies.put_nowait(None)
        if not writer.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer, 5.0)
        writer.cancel()


def _ws_handle(svc: Services, device: Device, data: bytes) -> Awaitable[dict[str, Any]]:
    """Validate and publish now (keeps order); return what waits for the commit."""
    health = svc.health.feed(FEED)
    if len(data) > svc.settings.max_body_bytes:
        health.reject("body too large: body", svc.clock())
        return _done(
            {"error": "body too large", "errors": [{"field": "body", "reason": "too large"}]}
        )
    try:
        messages = _parse(svc, data)
    except ApiError as exc:
        health.reject(f"{exc.error}: {exc.errors[0]['field'] if exc.errors else ''}", svc.clock())
        return _done({"error": exc.error, "errors": exc.errors})
    return asyncio.ensure_future(_commit(svc, device, messages))


async def _commit(
    svc: Services, device: Device, messages: list[TelemetryMessage]
) -> dict[str, Any]:
    try:
        seqs = await _ingest(svc, device, messages)
    except CommitTimeout as exc:
        svc.health.feed(FEED).reject("not committed", svc.clock())
        return {"error": "not committed", "errors": [{"field": "recorder", "reason": str(exc)}]}
    except ApiError as exc:
        return {"error": exc.error, "errors": exc.errors}
    svc.health.feed(FEED).accept(len(seqs), svc.clock())
    return {"seq": seqs}


async def _done(value: dict[str, Any]) -> dict[str, Any]:
    return value


async def _ws_writer(
    ws: WebSocket, replies: asyncio.Queue[Awaitable[dict[str, Any]] | None]
) -> None:
    while True:
        item = await replies.get()
        if item is None:
            return
        reply = await item
        await ws.send_bytes(orjson.dumps(reply))
