"""The Things Stack v3 uplinks, by webhook (`POST /api/v1/ingest/ttn`) and by MQTT.

Both ways end in `uplink_events`: one parser, one translator per process (it remembers
each water gauge's last level), the same counters under `feeds.ttn` on /healthz.

Webhook: in The Things Stack, an application webhook with base URL
`https://<cockpit>/api/v1/ingest/ttn`, the "Uplink message" path left empty, and an
additional header `Authorization: Bearer <device token>` (`cockpit token add ttn-hook
--feeds ttn`). Other message kinds (join accept, downlink events, location solved …)
answer 202 with nothing ingested and `"ignored": "<kind>"`: they are valid, and tell the
picture nothing. A body that is not JSON or not shaped like an application message is a
422 naming the field, counted as a reject.

MQTT authenticates with its own credentials (the broker's user and password; for TTS the
application's `{app}@{tenant}` and an API key), so it needs no device token.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import msgspec
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from cockpit.api.deps import require_device
from cockpit.api.errors import ApiError, describe_decode_error
from cockpit.api.ingest import commit, read_body, rejects_counted
from cockpit.api.jsonresponse import JsonResponse
from cockpit.api.limiting import charge
from cockpit.api.services import Services, services
from cockpit.auth import Device
from cockpit.events import Event, InvalidInput, utcnow
from cockpit.pipeline import CommitTimeout
from feeds.ttn import TtnTranslator, parse_message, profiles_from

__all__ = ["mqtt_handler", "router", "translator", "uplink_events"]

router = APIRouter(tags=["ingest"])
FEED = "ttn"
_TOPIC = re.compile(r"^v3/[^/]+/devices/(?P<device>[^/]+)/up$")


def translator(svc: Services) -> TtnTranslator:
    """The process's one translator, made on first use from the configured profiles."""
    tr = svc.feed_state.get(FEED)
    if not isinstance(tr, TtnTranslator):
        raw = {k: v.model_dump() for k, v in svc.settings.ttn_profiles.items()}
        tr = svc.feed_state[FEED] = TtnTranslator(profiles_from(raw))
    return tr


def uplink_events(
    svc: Services,
    data: bytes,
    topic: str | None = None,
    admit: Callable[[], None] | None = None,
) -> tuple[list[Event], str]:
    """Events of one message and its kind; raises `InvalidInput` naming the field.

    `admit` runs once the message is valid and before the translator remembers anything
    of it (it may refuse by raising). Stamped with the arrival time here: the caller
    publishes with no await in between, so that received_at grows with the log's sequence."""
    up = parse_message(data)
    kind = up.message_kind()
    m = _TOPIC.match(topic or "")
    if m is not None and m["device"] != up.end_device_ids.device_id:
        raise msgspec.ValidationError(
            f"the topic names device {m['device']!r} - at `$.end_device_ids.device_id`"
        )
    if admit is not None:
        admit()
    events = translator(svc).translate(up, incident=svc.incident, received_at=utcnow())
    return events, kind


def _reason(exc: InvalidInput) -> tuple[str, str]:
    err = describe_decode_error(exc)[0]
    return err["field"], err["reason"]


@router.post(
    "/api/v1/ingest/ttn",
    status_code=202,
    summary="The Things Stack v3 webhook: one application message (uplink)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
    responses={
        202: {"description": "committed (the sequence numbers), or ignored (not an uplink)"}
    },
)
async def ingest_ttn(
    request: Request,
    device: Device = Depends(require_device(FEED)),  # noqa: B008
) -> Response:
    svc = services(request)
    health = svc.health.feed(FEED)
    svc.pipeline_or_409()  # a replay takes no uplinks: refused before the body is read
    with rejects_counted(svc, health):
        body = await read_body(request, svc.settings.max_body_bytes)
        try:
            events, kind = uplink_events(svc, body, admit=lambda: charge(svc, device, 1))
        except InvalidInput as exc:
            field, reason = _reason(exc)
            raise ApiError(422, "invalid uplink", field, reason) from exc
    if kind != "uplink_message":
        return JsonResponse({"seq": [], "ignored": kind}, status_code=202)
    if not events:
        health.accept(0, svc.clock())
        return JsonResponse({"seq": []}, status_code=202)
    seqs = await commit(svc, health, events, paid=(device, 1))
    return JsonResponse({"seq": seqs}, status_code=202)


def mqtt_handler(svc: Services) -> Callable[[str, bytes], Awaitable[None]]:
    """What the MQTT subscription does with each message: the webhook's path, with the
    outcome counted on /healthz instead of answered."""
    health = svc.health.feed(FEED)
    limit = svc.settings.max_body_bytes

    async def on_message(topic: str, payload: bytes) -> None:
        if len(payload) > limit:
            health.reject("message too large: payload", svc.clock())
            return
        try:
            events, kind = uplink_events(svc, payload, topic)
        except InvalidInput as exc:
            field, _ = _reason(exc)
            health.reject(f"invalid uplink: {field}", svc.clock())
            return
        if kind != "uplink_message" or not events:
            return
        try:
            await svc.pipeline_or_409().ingest(events)
        except CommitTimeout:
            health.reject("not committed", svc.clock())
            return
        health.accept(len(events), svc.clock())

    return on_message
