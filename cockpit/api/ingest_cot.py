"""`POST /api/v1/ingest/cot`: one or more CoT `<event>`s in one XML body.

The same parsing and mapping as the TCP listener (`feeds.cot`). All or nothing: a
body with one bad event is refused whole (400 when it is not well-formed or not framed,
422 when an event breaks CoT's rules), naming the event, the element and the attribute.
Answered 202 with the assigned seqs once committed.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from cockpit.api.deps import require_device
from cockpit.api.errors import ApiError
from cockpit.api.ingest import commit, read_body, rejects_counted
from cockpit.api.jsonresponse import JsonResponse
from cockpit.api.limiting import charge
from cockpit.api.services import Services, services
from cockpit.auth import Device
from cockpit.events import Event, utcnow
from feeds.cot import CotError, CotTranslator, parse, split_events

__all__ = ["router"]

router = APIRouter(tags=["ingest"])

FEED = "cot"
CONTENT_TYPES = ("application/xml", "text/xml", "application/cot+xml")


def _events(svc: Services, device: Device, body: bytes) -> tuple[list[Event], int]:
    """The events of a whole body, and how many CoT messages it held; ApiError else."""
    frames, problems = split_events(body, svc.settings.cot_max_event_bytes)
    if problems:
        raise ApiError(400, "invalid CoT", "body", problems[0])
    if not frames:
        raise ApiError(400, "invalid CoT", "body", "no <event> element")
    if len(frames) > svc.settings.max_batch:
        limit = svc.settings.max_batch
        raise ApiError(413, "batch too large", "body", f"{len(frames)} events; at most {limit}")
    now = utcnow()
    translator = CotTranslator(svc.incident)
    events: list[Event] = []
    for i, frame in enumerate(frames):
        if frame.startswith(b"<auth"):
            raise ApiError(422, "invalid CoT", f"event[{i}]", "<auth> belongs to the TCP port")
        try:
            cot = parse(frame, now)
        except CotError as exc:
            status = 400 if exc.field == "xml" else 422
            raise ApiError(status, "invalid CoT", f"event[{i}]/{exc.field}", exc.reason) from exc
        if cot.is_echo or cot.is_ping:
            continue
        events.extend(translator.to_events(cot, device=device.name, received_at=now))
    return events, len(frames)


@router.post(
    "/api/v1/ingest/cot",
    status_code=202,
    summary="Cursor-on-Target: one or more <event> elements (CoT 2.0 XML)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {t: {"schema": {"type": "string"}} for t in CONTENT_TYPES},
        }
    },
    responses={202: {"description": "committed; the assigned sequence numbers"}},
)
async def ingest_cot(
    request: Request,
    device: Device = Depends(require_device(FEED)),  # noqa: B008
) -> Response:
    svc = services(request)
    health = svc.health.feed(FEED)
    with rejects_counted(svc, health):
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in CONTENT_TYPES:
            raise ApiError(
                415, "unsupported media type", "content-type", f"send {', '.join(CONTENT_TYPES)}"
            )
        body = await read_body(request, svc.settings.max_body_bytes)
        events, count = _events(svc, device, body)
        charge(svc, device, count)  # every <event> of the body
    seqs = await commit(svc, health, events, counted=count, paid=(device, count))
    return JsonResponse({"seq": seqs}, status_code=202)
