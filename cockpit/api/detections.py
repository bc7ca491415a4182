"""The review of detections by people: new -> confirmed or dismissed -> dispatched ->
on_scene -> closed (`cockpit.detection_flow`), each step an event with actor and time
that the fold writes into the Einsatztagebuch."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from cockpit.api.deps import require_writer
from cockpit.api.errors import ApiError
from cockpit.api.jsonresponse import JsonResponse
from cockpit.api.responders import RESPONDER_ID, alert_events, check_alertable, confirmed_alerts
from cockpit.api.services import services
from cockpit.api.write import commit, envelope, read_validated
from cockpit.auth import User
from cockpit.detection_flow import NEXT, allowed
from cockpit.events import (
    DetectionState,
    DetectionTransition,
    DetectionTransitionEvent,
    checked,
)

__all__ = ["router"]

router = APIRouter(tags=["detections"])


_FOLD_WAIT_S = 2.0  # how long to wait for the picture to show the step (it usually has)


def _not_allowed(current: str, to: str, *, late: bool = False) -> ApiError:
    """409 naming the current state and what may follow (also as `state` and `allowed`,
    for a client that offers the next steps)."""
    nxt = NEXT.get(current, ())
    first = "another step came first; " if late else ""
    reason = f"{first}{current} -> {to}; from {current}: {', '.join(nxt) or 'none (final)'}"
    err = ApiError(409, "transition not allowed", "to", reason)
    # errors are typed str -> str; the renderer takes any JSON value
    err.errors[0].update(state=current, allowed=list(nxt))  # type: ignore[call-overload]
    return err


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: DetectionState
    note: Annotated[str, Field(max_length=1000)] = ""
    # Dispatch only: the first responders to alert; unset: the nearest offered ones.
    responders: (
        Annotated[list[Annotated[str, Field(pattern=RESPONDER_ID)]], Field(max_length=10)] | None
    ) = None


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
    step = await read_validated(request, TransitionIn, "transition", 16_384)
    det = svc.detection_or_404(detection_id)
    current = det["state"]
    if not allowed(current, step.to):
        raise _not_allowed(current, step.to)
    if step.responders and step.to != "dispatched":
        raise ApiError(422, "invalid transition", "responders", "only with to: dispatched")
    alert: list[str] = []
    if step.to == "dispatched":
        offered = svc.picture.situation.fresh_candidates(det, svc.now())
        alert = _to_alert(svc.settings.responders_per_dispatch, offered, step.responders)
        if alert:
            check_alertable(svc, det, alert, state="dispatched")
    event = checked(
        DetectionTransitionEvent(
            **envelope(svc, user),
            payload=DetectionTransition(id=detection_id, to=step.to, note=step.note),
        )
    )
    pipeline = svc.pipeline_or_409()
    # One batch: the dispatch and its alerts are folded together or not at all.
    alerts = alert_events(svc, user, detection_id, alert, parent=event.id)
    seqs = await commit(svc, [event, *alerts])
    # Someone else's step may have been folded between the check above and this one (two
    # people at once): the fold then ignored this one, and the person must hear so.
    if await pipeline.caught_up(_FOLD_WAIT_S):
        now_det = pipeline.situation.detections.get(detection_id, det)
        if not any(h.get("seq") in seqs for h in now_det.get("history", [])):
            raise _not_allowed(now_det["state"], step.to, late=True)
    answer: dict[str, Any] = {
        "seq": seqs,
        "id": event.id,
        "detection": detection_id,
        "state": step.to,
    }
    if step.to == "dispatched":
        answer["alerted"] = await confirmed_alerts(svc, detection_id, alert)
    return JsonResponse(answer, status_code=201)


def _to_alert(
    per_dispatch: int, offered: list[dict[str, Any]], named: list[str] | None
) -> list[str]:
    """The responders a dispatch alerts: those named, else the nearest offered ones."""
    if named is not None:
        return named
    return [c["responder"] for c in offered[:per_dispatch]]
