"""What people write into the picture: Einsatztagebuch entries, acknowledgements,
hazard areas (Gefahrenbereiche)."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
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
    Hazard,
    HazardEvent,
    HazardRemoved,
    HazardRemovedEvent,
    JournalEntry,
    JournalEvent,
    Source,
    checked,
    new_event_id,
    utcnow,
)
from cockpit.pipeline import CommitTimeout

__all__ = ["commit", "envelope", "read_validated", "router"]

router = APIRouter(tags=["journal"])


class JournalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Annotated[str, Field(min_length=1, max_length=4000)]
    category: Annotated[str, Field(max_length=32, pattern=r"^[a-z_]*$")] = "note"


_Position = tuple[float, float]  # GeoJSON order: lon, lat


def _check_position(p: _Position) -> _Position:
    lon, lat = p
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise ValueError("coordinates must be numbers")
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValueError(f"[{lon}, {lat}] is not [lon, lat] on the earth")
    return p


class PointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["Point"]
    coordinates: _Position

    @field_validator("coordinates")
    @classmethod
    def _on_earth(cls, v: _Position) -> _Position:
        return _check_position(v)


class PolygonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["Polygon"]
    coordinates: Annotated[
        list[Annotated[list[_Position], Field(min_length=4, max_length=1000)]],
        Field(min_length=1, max_length=1),  # one outer ring: no holes in a drawn area
    ]

    @field_validator("coordinates")
    @classmethod
    def _closed_ring(cls, v: list[list[_Position]]) -> list[list[_Position]]:
        ring = [_check_position(p) for p in v[0]]
        if ring[0] != ring[-1]:
            raise ValueError("the ring must end where it starts")
        if len(set(ring)) < 3:
            raise ValueError("a ring needs three distinct positions")
        return v


class HazardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: Annotated[str, Field(max_length=200)] = ""
    severity: Literal["info", "warning", "critical"] = "critical"
    geometry: PointIn | PolygonIn = Field(discriminator="type")


_M = TypeVar("_M", bound=BaseModel)


async def read_validated(
    request: Request, model: type[_M], what: str, limit: int, *, empty_is_object: bool = False
) -> _M:
    """The body as `model`, or 422 `invalid <what>` naming the field, counted on /healthz.
    `empty_is_object`: no body at all reads as `{}` (a control without options)."""
    svc = services(request)
    body = await read_body(request, limit)
    if empty_is_object and not body:
        body = b"{}"
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = describe_validation(exc)
        svc.health.feed("ui").reject(f"invalid {what}", svc.clock())
        err = ApiError(422, f"invalid {what}", errors[0]["field"], errors[0]["reason"])
        err.errors = errors
        raise err from exc


async def commit(svc: Services, event: Event | list[Event]) -> list[int]:
    """Publish one person's event (or several that belong together, in one batch) and
    wait for the commit (503 if it does not come)."""
    try:
        seqs = await svc.pipeline_or_409().ingest(event if isinstance(event, list) else [event])
    except CommitTimeout as exc:
        raise ApiError(503, "not committed", "recorder", str(exc)) from exc
    svc.health.feed("ui").accept(1, svc.clock())
    return seqs


async def _publish(svc: Services, event: Event) -> Response:
    seqs = await commit(svc, event)
    return JsonResponse({"seq": seqs, "id": event.id}, status_code=201)


def envelope(svc: Services, user: User) -> dict[str, Any]:
    """The envelope of an event a person causes: from the UI, the person as its actor."""
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
    entry = await read_validated(request, JournalIn, "journal entry", 16_384)
    # checked: the author's name goes into the envelope, and no decoder has seen it.
    event = checked(
        JournalEvent(
            **envelope(svc, user),
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
    event = checked(AckEvent(**envelope(svc, user), payload=Acknowledgement(alert=alert_id)))
    return await _publish(svc, event)


@router.post("/api/v1/hazards", status_code=201, summary="Draw a hazard area (Gefahrenbereich)")
async def draw_hazard(
    request: Request,
    user: User = Depends(require_writer),  # noqa: B008
) -> Response:
    """A point (the source: a danger circle and a downwind sector follow it) or a polygon
    (the area itself) in GeoJSON; the new hazard's id comes back as `id`."""
    svc = services(request)
    hazard = await read_validated(request, HazardIn, "hazard", 65_536)
    hazard_id = "hz-" + new_event_id()
    payload = Hazard(
        id=hazard_id,
        label=hazard.label,
        severity=hazard.severity,
        geometry=hazard.geometry.model_dump(),
    )
    event = checked(HazardEvent(**envelope(svc, user), payload=payload))
    seqs = await commit(svc, event)
    return JsonResponse({"id": hazard_id, "seq": seqs}, status_code=201)


@router.delete("/api/v1/hazards/{hazard_id}", status_code=201, summary="Lift a hazard area")
async def lift_hazard(
    request: Request,
    hazard_id: Annotated[str, Path(max_length=200)],
    user: User = Depends(require_writer),  # noqa: B008
) -> Response:
    svc = services(request)
    hazard = svc.picture.situation.hazards.get(hazard_id)
    if hazard is None:
        raise ApiError(404, "no such hazard", "hazard_id", f"{hazard_id!r} is not in the picture")
    if hazard.get("derived"):
        raise ApiError(
            409, "derived zone", "hazard_id", f"follows {hazard['source']!r}: lift that instead"
        )
    event = checked(HazardRemovedEvent(**envelope(svc, user), payload=HazardRemoved(id=hazard_id)))
    return await _publish(svc, event)
