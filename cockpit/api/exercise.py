"""The trainer's hand on an exercise (`cockpit replay RECORDING --as-live`): its state,
pause and play, skipping ahead, and injecting Einsatztagebuch entries and alerts.

An exercise server is a live server: the crew writes through the ordinary routes. These
routes answer only there (elsewhere 409 naming `mode`); everyone logged in may read the
state; only trainers (and admins) drive and inject: the commanders and operators are the
ones being trained.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from cockpit.api.deps import require_exercise_lead, require_user
from cockpit.api.errors import ApiError
from cockpit.api.jsonresponse import JsonResponse
from cockpit.api.replay import SeekIn, one_time, refuse, with_times
from cockpit.api.services import Services, services
from cockpit.api.write import commit, envelope, read_validated
from cockpit.auth import User
from cockpit.events import (
    Alert,
    AlertEvent,
    Event,
    JournalEntry,
    JournalEvent,
    checked,
    new_event_id,
)
from cockpit.exercise import Exercise
from cockpit.situation import iso

__all__ = ["router"]

router = APIRouter(tags=["exercise"])

_BODY_LIMIT = 16 * 1024


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InjectIn(_Body):
    """What the trainer puts into the exercise: a journal entry or an alert."""

    kind: Literal["journal", "alert"]
    text: Annotated[str, Field(min_length=1, max_length=500)]
    severity: Literal["info", "warning", "critical"] = "warning"
    entity: (
        Annotated[str, Field(max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/-]*$")] | None
    ) = None


def _exercise(svc: Services) -> Exercise:
    if svc.exercise is None:
        mode = "replay" if svc.replay is not None else "live"
        raise ApiError(
            409,
            "not an exercise",
            "mode",
            f"this server is {mode}; start `cockpit replay RECORDING --as-live`",
        )
    return svc.exercise


def _state(ex: Exercise) -> dict[str, Any]:
    return with_times(ex.state())


@router.get("/api/v1/exercise", summary="The exercise's state: recording, position, shift")
async def exercise_state(
    request: Request,
    user: User = Depends(require_user),  # noqa: B008
) -> Response:
    return JsonResponse(_state(_exercise(services(request))))


@router.post("/api/v1/exercise/play", summary="Go on (the times stay in the present)")
async def exercise_play(
    request: Request,
    user: User = Depends(require_exercise_lead),  # noqa: B008
) -> Response:
    ex = _exercise(services(request))
    await read_validated(request, _Body, "play", _BODY_LIMIT, empty_is_object=True)
    ex.play()
    return JsonResponse(_state(ex))


@router.post("/api/v1/exercise/pause", summary="Hold the recording (the crew's clock runs on)")
async def exercise_pause(
    request: Request,
    user: User = Depends(require_exercise_lead),  # noqa: B008
) -> Response:
    ex = _exercise(services(request))
    await read_validated(request, _Body, "pause", _BODY_LIMIT, empty_is_object=True)
    ex.pause()
    return JsonResponse(_state(ex))


@router.post(
    "/api/v1/exercise/skip",
    summary="Skip ahead to a recording time; what happened in between arrives at once",
)
async def exercise_skip(
    request: Request,
    user: User = Depends(require_exercise_lead),  # noqa: B008
) -> Response:
    svc = services(request)
    ex = _exercise(svc)
    body = await read_validated(request, SeekIn, "skip", _BODY_LIMIT)
    field = "at" if body.at is not None else "t"
    t = one_time(svc, body, "skip")
    if t is None:
        raise refuse(svc, "skip", "at", "give `at` (ISO 8601) or `t` (epoch seconds)")
    if t < ex.position():
        raise refuse(
            svc,
            "skip",
            field,
            f"{iso(t)} is before the exercise's position {iso(ex.position())}:"
            " an exercise only runs forward",
        )
    published = await ex.skip(t)
    pipeline = svc.pipeline_or_409()
    if published and not await pipeline.wait_committed(ex.last_seq):
        # In the picture already; the recorder is behind and will write it.
        raise ApiError(503, "not committed", "recorder", f"seq {ex.last_seq} not yet recorded")
    return JsonResponse({**_state(ex), "published": published})


@router.post(
    "/api/v1/exercise/inject",
    status_code=201,
    summary="Inject an Einsatztagebuch entry or an alert into the exercise",
)
async def exercise_inject(
    request: Request,
    user: User = Depends(require_exercise_lead),  # noqa: B008
) -> Response:
    svc = services(request)
    _exercise(svc)
    body = await read_validated(request, InjectIn, "inject", _BODY_LIMIT)
    event: Event
    if body.kind == "journal":
        # Its own category: afterwards everyone can tell the trainer's entries apart.
        payload = JournalEntry(text=body.text, category="exercise")
        event = checked(JournalEvent(**envelope(svc, user), payload=payload))
    else:
        alert = Alert(
            id=f"uebung-{new_event_id()}",
            rule="exercise",
            severity=body.severity,
            entity=body.entity,
            text=body.text,
        )
        event = checked(AlertEvent(**envelope(svc, user), payload=alert))
    seqs = await commit(svc, event)
    made: dict[str, Any] = {"seq": seqs, "id": event.id}
    if isinstance(event, AlertEvent):
        made["alert"] = event.payload.id
    return JsonResponse(made, status_code=201)
