"""First responders (A.D.Le.R.) as people manage them: the registry, and alerting
responders to a detection. Their answers come from the platform (`ingest_adler`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from cockpit.api.deps import require_writer
from cockpit.api.errors import ApiError
from cockpit.api.jsonresponse import JsonResponse
from cockpit.api.services import Services, services
from cockpit.api.write import commit, envelope, read_validated
from cockpit.auth import User
from cockpit.events import (
    Context,
    Qualification,
    Responder,
    ResponderCall,
    ResponderCallEvent,
    ResponderEvent,
    Travel,
    checked,
)
from cockpit.rules.responders import ENGAGED, busy_of

__all__ = ["RESPONDER_ID", "alert_events", "check_alertable", "router"]

router = APIRouter(tags=["responders"])

RESPONDER_ID = r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$"
ALERT_STATES = frozenset({"confirmed", "dispatched", "on_scene"})


class ResponderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    callsign: Annotated[str, Field(min_length=1, max_length=64)]
    qualifications: Annotated[list[Qualification], Field(min_length=1, max_length=6)]
    available: bool = True
    travel: Travel = "car"


class AlertIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    responders: Annotated[
        list[Annotated[str, Field(pattern=RESPONDER_ID)]], Field(min_length=1, max_length=10)
    ]
    note: Annotated[str, Field(max_length=400)] = ""


@router.put(
    "/api/v1/responders/{responder_id}",
    status_code=201,
    summary="Register a first responder, or change one (availability, qualifications)",
)
async def put_responder(
    request: Request,
    responder_id: Annotated[str, Path(pattern=RESPONDER_ID)],
    user: User = Depends(require_writer),  # noqa: B008
) -> Response:
    svc = services(request)
    body = await read_validated(request, ResponderIn, "responder", 16_384)
    event = checked(
        ResponderEvent(
            **envelope(svc, user),
            payload=Responder(
                id=responder_id,
                callsign=body.callsign,
                qualifications=tuple(body.qualifications),
                available=body.available,
                travel=body.travel,
            ),
        )
    )
    seqs = await commit(svc, event)
    return JsonResponse({"seq": seqs, "id": responder_id}, status_code=201)


def check_alertable(
    svc: Services, det: Mapping[str, Any], ids: Sequence[str], *, state: str | None = None
) -> None:
    """Refuse (nothing sent) unless every responder in `ids` may be alerted to `det`:
    known, available, not engaged elsewhere and not already alerted here. `state` is the
    detection's state once the step that goes with the alert is folded."""
    if (state or det["state"]) not in ALERT_STATES:
        raise ApiError(
            409,
            "not alertable",
            "detection",
            f"{det['state']}: responders are alerted to confirmed or dispatched detections",
        )
    sit = svc.picture.situation
    busy = busy_of(sit.detections.values())
    calls = det.get("calls") or {}
    if len(set(ids)) != len(ids):
        raise ApiError(422, "invalid alert", "responders", "a responder is named twice")
    for i, rid in enumerate(ids):
        field = f"responders.{i}"
        r = sit.responders.get(rid)
        if r is None:
            raise ApiError(422, "invalid alert", field, f"{rid!r} is not a registered responder")
        if not r["available"]:
            raise ApiError(409, "not alertable", field, f"{rid} is not available")
        if calls.get(rid, {}).get("state") in ENGAGED:
            raise ApiError(409, "not alertable", field, f"{rid} is {calls[rid]['state']} already")
        if busy.get(rid) not in (None, det["id"]):
            raise ApiError(409, "not alertable", field, f"{rid} is engaged with {busy[rid]}")


def alert_events(
    svc: Services,
    user: User,
    det_id: str,
    ids: Sequence[str],
    note: str = "",
    parent: str | None = None,
) -> list[ResponderCallEvent]:
    """The alerts; `parent`: the dispatch step they go with (refused, it takes them along)."""
    env = envelope(svc, user)
    env["context"] = Context(actor=user.name, parent=parent)
    return [
        checked(
            ResponderCallEvent(
                **env,
                payload=ResponderCall(detection=det_id, responder=rid, state="alerted", note=note),
            )
        )
        for rid in ids
    ]


@router.post(
    "/api/v1/detections/{detection_id}/alert",
    status_code=201,
    summary="Alert first responders to a detection",
    responses={
        404: {"description": "no such detection"},
        409: {"description": "the detection or a responder cannot be alerted: which and why"},
    },
)
async def alert(
    request: Request,
    detection_id: Annotated[str, Path(max_length=200)],
    user: User = Depends(require_writer),  # noqa: B008
) -> Response:
    svc = services(request)
    body = await read_validated(request, AlertIn, "alert", 16_384)
    await svc.picture.caught_up()
    det = svc.detection_or_404(detection_id)
    check_alertable(svc, det, body.responders)
    svc.pipeline_or_409()
    seqs = await commit(
        svc, list(alert_events(svc, user, detection_id, body.responders, body.note))
    )
    alerted = await confirmed_alerts(svc, detection_id, body.responders)
    return JsonResponse({"seq": seqs, "alerted": alerted}, status_code=201)


async def confirmed_alerts(svc: Services, det_id: str, ids: Sequence[str]) -> list[str]:
    """Which of `ids` the picture shows alerted (someone else's alert of the same responder
    to another detection may have been folded first)."""
    await svc.picture.caught_up(2.0)
    det = svc.picture.situation.detections.get(det_id) or {}
    calls = det.get("calls") or {}
    return [rid for rid in ids if calls.get(rid, {}).get("state") in ENGAGED]
