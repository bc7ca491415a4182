"""What people write into the picture: Einsatztagebuch entries, acknowledgements."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import Response

from cockpit.api.deps import require_writer
from cockpit.api.errors import ApiError, describe_validation
from cockpit.api.ingest import read_body
from cockpit.api.jsonresponse import JsonResponse
from cockpit.api.services import Services, services
from cockpit.auth import User
from cockpit.events import (
    AckEvent,
    Acknowledgement,
    Context,
    Event,
    JournalEntry,
    JournalEvent,
    Source,
    checked,
    utcnow,
)
from cockpit.pipeline import CommitTimeout

__all__ = ["router"]

router = APIRouter(tags=["journal"])


class JournalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Annotated[str, Field(min_length=1, max_length=4000)]
    category: Annotated[str, Field(max_length=32, pattern=r"^[a-z_]*$")] = "note"


async def _publish(svc: Services, event: Event) -> Response:
    try:
        seqs = await svc.pipeline_or_409().ingest([event])
    except CommitTimeout as exc:
        raise ApiError(503, "not committed", "recorder", str(exc)) from exc
    svc.health.feed("ui").accept(1, svc.clock())
    return JsonResponse({"seq": seqs, "id": event.id}, status_code=201)


def _envelope(svc: Services, user: User) -> dict[str, Any]:
    now = utcnow()
    return {
        "incident": svc.incident,
        "source": Source(feed="ui", device=user.name),
        "observed_at": now,
        "received_at": now,
        "context": Context(actor=user.name),
    }


@router.post("/api/v1/journal", status_code=201, summary="Write an Einsatztagebuch entry")
async def write_journal(
    request: Request,
    user: User = Depends(require_writer),  # noqa: B008
) -> Response:
    svc = services(request)
    body = await read_body(request, 16_384)
    try:
        entry = JournalIn.model_validate_json(body)
    except ValidationError as exc:
        errors = describe_validation(exc)
        svc.health.feed("ui").reject("invalid journal entry", svc.clock())
        err = ApiError(422, "invalid journal entry", errors[0]["field"], errors[0]["reason"])
        err.errors = errors
        raise err from exc
    # checked: the author's name goes into the envelope, and no decoder has seen it.
    event = checked(
        JournalEvent(
            **_envelope(svc, user),
            payload=JournalEntry(text=entry.text, category=entry.category or "note"),
        )
    )
    return await _publish(svc, event)


@router.post("/api/v1/alerts/{alert_id}/ack", status_code=201, summary="Acknowledge an alert")
async def acknowledge(
    request: Request,
    alert_id: Annotated[str, Path(max_length=200)],
    user: User = Depends(require_writer),  # noqa: B008
) -> Response:
    svc = services(request)
    alert = svc.picture.situation.alerts.get(alert_id)
    if alert is None:
        raise ApiError(404, "no such alert", "alert_id", f"{alert_id!r} is not in the picture")
    if alert["acknowledged_by"] is not None:
        raise ApiError(409, "already acknowledged", "alert_id", f"by {alert['acknowledged_by']}")
    event = checked(AckEvent(**_envelope(svc, user), payload=Acknowledgement(alert=alert_id)))
    return await _publish(svc, event)
