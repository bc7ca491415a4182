"""Ingest of A.D.Le.R. detections over HTTP: one detection (JSON) per request.

Answered once the detection is committed to the log. A bad body gets a 4xx naming the
field and the reason, is counted as a reject of the feed `adler`, and nothing of it is
applied. The same detection id again updates the detection (the fold keeps one record
per id and never lets a report undo a person's review step).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from cockpit.api.deps import require_device
from cockpit.api.errors import ApiError, describe_decode_error
from cockpit.api.ingest import commit, read_body, rejects_counted
from cockpit.api.jsonresponse import JsonResponse
from cockpit.api.limiting import charge
from cockpit.api.services import services
from cockpit.auth import Device
from cockpit.detection_flow import CALL_NEXT, call_allowed
from cockpit.events import InvalidInput, utcnow
from cockpit.rules.responders import OPEN_STATES
from feeds.adler import (
    AdlerDetection,
    answer_event,
    parse,
    parse_answer,
    parse_responders,
    registry_events,
    schema_components,
    to_event,
)

__all__ = ["OPENAPI_SCHEMAS", "router"]

router = APIRouter(tags=["ingest"])

FEED = "adler"
OPENAPI_SCHEMAS = schema_components
_T = TypeVar("_T")


def _parse(body: bytes) -> AdlerDetection:
    return _decoded(parse, body, "invalid detection")


def _decoded(parser: Callable[[bytes], _T], body: bytes, what: str) -> _T:
    try:
        return parser(body)
    except InvalidInput as exc:
        errors = describe_decode_error(exc)
        err = ApiError(422, what, errors[0]["field"], errors[0]["reason"])
        err.errors = errors
        raise err from exc


def _schema_body(name: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
        }
    }


@router.post(
    "/api/v1/ingest/adler",
    status_code=202,
    summary="An A.D.Le.R. detection (fall, inactivity, smoke or CO alarm, emergency button …)",
    openapi_extra=_schema_body("AdlerDetection"),
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
    with rejects_counted(svc, health):
        body = await read_body(request, svc.settings.max_body_bytes)
        detection = _parse(body)
        charge(svc, device, 1)
    event = to_event(detection, incident=svc.incident, device=device.name, received_at=utcnow())
    if svc.exercise is not None and event.payload.personal is not None:
        # An exercise keeps no personal data, not even from a device posting to it.
        event = msgspec.structs.replace(
            event, payload=msgspec.structs.replace(event.payload, personal=None)
        )
    seqs = await commit(svc, health, [event], paid=(device, 1))
    return JsonResponse({"seq": seqs, "id": detection.id}, status_code=202)


@router.post(
    "/api/v1/ingest/adler/responders",
    status_code=202,
    summary="The platform's first-responder registry: one entry or a list (upserts)",
    openapi_extra=_schema_body("AdlerResponder"),
    responses={
        202: {"description": "committed; the sequence numbers"},
        413: {"description": "body over max_body_bytes"},
        422: {"description": "not a valid registry entry: the field and the reason"},
    },
)
async def ingest_responders(
    request: Request,
    device: Device = Depends(require_device(FEED)),  # noqa: B008
) -> Response:
    svc = services(request)
    health = svc.health.feed(FEED)
    with rejects_counted(svc, health):
        body = await read_body(request, svc.settings.max_body_bytes)
        entries = _decoded(parse_responders, body, "invalid responder")
        charge(svc, device, len(entries))
    events = registry_events(
        entries, incident=svc.incident, device=device.name, received_at=utcnow()
    )
    seqs = await commit(svc, health, list(events), counted=1, paid=(device, len(entries)))
    return JsonResponse({"seq": seqs, "responders": len(entries)}, status_code=202)


@router.post(
    "/api/v1/ingest/adler/answer",
    status_code=202,
    summary="A responder's answer to an alert: accepted, declined, arrived",
    openapi_extra=_schema_body("ResponderAnswer"),
    responses={
        200: {"description": "the same answer again: already in the picture, nothing new"},
        202: {"description": "committed; the sequence numbers"},
        404: {"description": "no such detection or responder"},
        409: {"description": "not an answer to an alert: the call's state and what may follow"},
        422: {"description": "not a valid answer: the field and the reason"},
    },
)
async def ingest_answer(
    request: Request,
    device: Device = Depends(require_device(FEED)),  # noqa: B008
) -> Response:
    svc = services(request)
    health = svc.health.feed(FEED)
    with rejects_counted(svc, health):
        body = await read_body(request, svc.settings.max_body_bytes)
        answer = _decoded(parse_answer, body, "invalid answer")
        charge(svc, device, 1)
        await svc.picture.caught_up()
        sit = svc.picture.situation
        det = sit.detections.get(answer.detection)
        if det is None:
            raise ApiError(404, "no such detection", "detection", f"{answer.detection!r}")
        if answer.responder not in sit.responders:
            raise ApiError(404, "no such responder", "responder", f"{answer.responder!r}")
        current = (det.get("calls") or {}).get(answer.responder, {}).get("state")
        if current != answer.answer and det["state"] not in OPEN_STATES:
            raise ApiError(
                409, "answer not allowed", "detection", f"the detection is {det['state']}"
            )
        if current == answer.answer:
            # The same answer again (the platform retried, or its "arrived" came after the
            # cockpit saw the responder arrive): already in the picture, nothing to add.
            health.accept(1, svc.clock())
            return JsonResponse({"seq": [], "state": current, "repeat": True}, status_code=200)
        if current in (None, "declined", "released") or not call_allowed(current, answer.answer):
            nxt = [s for s in CALL_NEXT.get(current, ()) if s != "released"]
            err = ApiError(
                409,
                "answer not allowed",
                "answer",
                f"call {current or 'none (never alerted)'} -> {answer.answer}; "
                f"allowed: {', '.join(nxt) or 'none'}",
            )
            err.errors[0].update(state=current or "none", allowed=nxt)  # type: ignore[call-overload]
            raise err
    event = answer_event(answer, incident=svc.incident, device=device.name, received_at=utcnow())
    seqs = await commit(svc, health, [event], paid=(device, 1))
    return JsonResponse({"seq": seqs, "state": answer.answer}, status_code=202)
