"""The review of detections by people: new -> confirmed or dismissed -> dispatched ->
on_scene -> closed (`cockpit.detection_flow`), each step an event with actor and time
that the fold writes into the Einsatztagebuch."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import Response

from cockpit.api.deps import require_writer
from cockpit.api.errors import ApiError, describe_validation
from cockpit.api.ingest import read_body
from cockpit.api.jsonresponse import JsonResponse
from cockpit.api.services import services
from cockpit.auth import User
from cockpit.detection_flow import NEXT, allowed
from cockpit.events import (
    Context,
    DetectionState,
    DetectionTransition,
    DetectionTransitionEvent,
    Source,
    checked,
    utcnow,
)
from cockpit.pipeline import CommitTimeout

__all__ = ["router"]

router = APIRouter(tags=["detections"])


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: DetectionState
    note: Annotated[str, Field(max_length=1000)] = ""


@router.post(
    "/api/v1/detections/{detection_id}/transition",
    status_code=201,
    summary="Move a detection on: confirm, dismiss, dispatch, on scene, close",
    responses={
        404: {"description": "no such detection"},
        409: {"description": "not allowed from the current state: which state, what may follow"},
    },
)
async def transition(
    request: Request,
    detection_id: Annotated[str, Path(max_length=200)],
    user: User = Depends(require_writer),  # noqa: B008
) -> Response:
    svc = services(request)
    body = await read_body(request, 16_384)
    try:
        step = TransitionIn.model_validate_json(body)
    except ValidationError as exc:
        errors = describe_validation(exc)
        svc.health.feed("ui").reject("invalid transition", svc.clock())
        err = ApiError(422, "invalid transition", errors[0]["field"], errors[0]["reason"])
        err.errors = errors
        raise err from exc
    det = svc.picture.situation.detections.get(detection_id)
    if det is None:
        raise ApiError(
            404, "no such detection", "detection_id", f"{detection_id!r} is not in the picture"
        )
    current = det["state"]
    if not allowed(current, step.to):
        nxt = ", ".join(NEXT.get(current, ())) or "none (final)"
        raise ApiError(
            409, "transition not allowed", "to", f"{current} -> {step.to}; from {current}: {nxt}"
        )
    now = utcnow()
    event = checked(
        DetectionTransitionEvent(
            incident=svc.incident,
            source=Source(feed="ui", device=user.name),
            observed_at=now,
            received_at=now,
            context=Context(actor=user.name),
            payload=DetectionTransition(id=detection_id, to=step.to, note=step.note),
        )
    )
    try:
        seqs = await svc.pipeline_or_409().ingest([event])
    except CommitTimeout as exc:
        raise ApiError(503, "not committed", "recorder", str(exc)) from exc
    svc.health.feed("ui").accept(1, svc.clock())
    return JsonResponse(
        {"seq": seqs, "id": event.id, "detection": detection_id, "state": step.to},
        status_code=201,
    )
