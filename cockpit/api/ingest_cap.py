"""Ingest of CAP 1.2 warnings (DWD, MoWaS) over HTTP: one CAP `alert` per request.

Answered once the warning is committed to the log. A bad message gets a 4xx naming the
element path and the reason (400: not well-formed XML; 422: not valid CAP), is counted
as a reject of the feed `cap`, and nothing of it is applied.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from cockpit.api.deps import require_device
from cockpit.api.errors import ApiError
from cockpit.api.ingest import commit, read_body, rejects_counted
from cockpit.api.jsonresponse import JsonResponse
from cockpit.api.limiting import charge
from cockpit.api.services import services
from cockpit.auth import Device
from cockpit.events import utcnow
from feeds.cap import CapError, parse_alert, to_event

__all__ = ["CONTENT_TYPES", "router"]

router = APIRouter(tags=["ingest"])

FEED = "cap"
CONTENT_TYPES = ("application/cap+xml", "application/xml", "text/xml")


def _content_type(request: Request) -> None:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in CONTENT_TYPES:
        raise ApiError(
            415,
            "unsupported media type",
            "content-type",
            f"{media or 'none'}; send {', '.join(CONTENT_TYPES)}",
        )


@router.post(
    "/api/v1/ingest/cap",
    status_code=202,
    summary="A CAP 1.2 alert (OASIS Common Alerting Protocol; DWD, MoWaS)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {t: {"schema": {"type": "string", "format": "xml"}} for t in CONTENT_TYPES},
        }
    },
    responses={
        202: {
            "description": "committed; the assigned sequence numbers, the warning's id in the "
            "picture (from sender and identifier) and its CAP identifier"
        },
        400: {"description": "not well-formed XML"},
        415: {"description": "not an XML content type"},
        422: {"description": "not valid CAP 1.2: the element path and the reason"},
    },
)
async def ingest_cap(
    request: Request,
    device: Device = Depends(require_device(FEED)),  # noqa: B008
) -> Response:
    svc = services(request)
    health = svc.health.feed(FEED)
    with rejects_counted(svc, health):
        _content_type(request)
        body = await read_body(request, svc.settings.max_body_bytes)
        try:
            warning = parse_alert(body)
        except CapError as exc:
            status = 400 if exc.malformed else 422
            raise ApiError(status, "invalid CAP", exc.path, exc.reason) from exc
        charge(svc, device, 1)
    event = to_event(
        warning,
        incident=svc.incident,
        device=device.name,
        received_at=utcnow(),
        max_age_s=svc.settings.cap_max_age_s,
    )
    seqs = await commit(svc, health, [event], paid=(device, 1))
    return JsonResponse(
        {"seq": seqs, "id": warning.id, "identifier": warning.identifier}, status_code=202
    )
