"""Ingest of A.D.Le.R. detections over HTTP: one detection (JSON) per request.

Answered once the detection is committed to the log. A bad body gets a 4xx naming the
field and the reason, is counted as a reject of the feed `adler`, and nothing of it is
applied. The same detection id again updates the detection (the fold keeps one record
per id and never lets a report undo a person's review step).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from cockpit.api.deps import require_device
from cockpit.api.errors import ApiError, describe_decode_error
from cockpit.api.ingest import commit, read_body
from cockpit.api.jsonresponse import JsonResponse
from cockpit.api.services import services
from cockpit.auth import Device
from cockpit.events import InvalidInput, utcnow
from feeds.adler import AdlerDetection, parse, schema_components, to_event

__all__ = ["OPENAPI_SCHEMAS", "router"]

router = APIRouter(tags=["ingest"])

FEED = "adler"
OPENAPI_SCHEMAS = schema_components


def _parse(body: bytes) -> AdlerDetection:
    try:
        return parse(body)
    except InvalidInput as exc:
        errors = describe_decode_error(exc)
        err = ApiError(422, "invalid detection", errors[0]["field"], errors[0]["reason"])
        err.errors = errors
        raise err from exc


@router.post(
    "/api/v1/ingest/adler",
    status_code=202,
    summary="An A.D.Le.R. detection (fall, inactivity, smoke or CO alarm, emergency button …)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/AdlerDetection"}}
            },
        }
    },
    responses={
        202: {"description": "committed; the sequence numbers and the detection's id"},
        413: {"description": "body over max_body_bytes"},
        422: {"description": "not a valid detection: the field and the reason"},
    },
)
async def ingest_adler(
    request: Request,
    device: Device = Depends(require_device(FEED)),  # noqa: B008
) -> Response:
    svc = services(request)
    health = svc.health.feed(FEED)
    try:
        body = await read_body(request, svc.settings.max_body_bytes)
        detection = _parse(body)
    except ApiError as exc:
        health.reject(exc.summary(), svc.clock())
        raise
    event = to_event(detection, incident=svc.incident, device=device.name, received_at=utcnow())
    seqs = await commit(svc, health, [event])
    return JsonResponse({"seq": seqs, "id": detection.id}, status_code=202)
