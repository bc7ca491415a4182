"""Reading the picture: situation (now or at a past time), the log, the live stream."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import FileResponse, Response, StreamingResponse

from cockpit.api.deps import require_user
from cockpit.api.errors import ApiError
from cockpit.api.jsonresponse import JsonResponse
from cockpit.api.services import services
from cockpit.auth import PERSONAL_DATA_ROLES, User
from cockpit.push import sse_stream
from cockpit.recorder import LogReader, incident_folder
from cockpit.replay import situation_at
from cockpit.situation import reading_entity, reading_values, without_personal

__all__ = ["router"]

router = APIRouter(tags=["situation"])

_MAX_EVENTS_PAGE = 5000


def _parse_at(value: str) -> float:
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ApiError(422, "invalid time", "at", f"{value!r} is not ISO 8601") from exc
    if at.tzinfo is None:
        raise ApiError(422, "invalid time", "at", f"{value!r} has no time zone (add Z)")
    return at.timestamp()


@router.get("/api/v1/situation", summary="The situation picture, now or at a past time")
async def situation(
    request: Request,
    at: Annotated[str | None, Query(description="ISO 8601 time with zone")] = None,
    tracks: Annotated[bool, Query(description="include track history")] = True,
    user: User = Depends(require_user),  # noqa: B008
) -> Response:
    svc = services(request)
    if at is None:
        await svc.picture.caught_up()
        # No await between reading the clock and the view: the picture cannot change.
        # The time is cut to what the answer's `at` can say (microseconds), so that
        # asking again with ?at= gives exactly the same ages.
        now = datetime.fromtimestamp(svc.now(), UTC).timestamp()
        return JsonResponse(_for_role(svc.picture.situation.view(now, tracks=tracks), user))
    t = _parse_at(at)
    reader = svc.reader()
    if reader is None:
        raise ApiError(
            409, "no recording here", "at", "this process has no copy of the incident log"
        )
    pipeline = svc.pipeline
    factory = pipeline.new_situation if pipeline else svc.replay.factory  # type: ignore[union-attr]
    sit = await asyncio.to_thread(situation_at, reader, t, factory)
    return JsonResponse(_for_role(sit.view(t, tracks=tracks), user))


def _for_role(view: dict[str, Any], user: User) -> dict[str, Any]:
    """The view without detections' personal data for roles that may not see it."""
    if user.role not in PERSONAL_DATA_ROLES:
        view["detections"] = [without_personal(d) for d in view["detections"]]
    return view


def _event_for_role(body: bytes, user: User) -> bytes:
    """A recorded event as `user` may read it: a detection's personal part emptied."""
    if user.role in PERSONAL_DATA_ROLES or b'"personal":{' not in body:
        return body
    event = orjson.loads(body)
    if event.get("kind") == "detection" and event.get("payload", {}).get("personal"):
        event["payload"]["personal"] = None
    return orjson.dumps(event)


_HISTORY_SCAN = 50_000  # seqs looked back for one entity's readings (no index: bounded)
_HISTORY_POINTS = 240


def _history(reader: LogReader, entity: str, upto: int) -> dict[str, list[list[float]]]:
    quoted = orjson.dumps(entity)
    events = reader.recent(
        ("readings", "weather"),
        upto,
        (b'"entity":' + quoted, b'"station":' + quoted),
        scan=_HISTORY_SCAN,
        limit=_HISTORY_POINTS,
    )
    series: dict[str, list[list[float]]] = {}
    for ev in reversed(events):  # oldest first
        if reading_entity(ev) != entity:  # the needle matched another field
            continue
        t = min(ev.observed_at.timestamp(), ev.received_at.timestamp())  # as the fold does
        for name, value in reading_values(ev):
            series.setdefault(name, []).append([t, value])
    return series


@router.get(
    "/api/v1/entities/{entity}/readings",
    summary="One entity's recent readings (for sparklines), up to the picture's time",
)
async def readings_history(
    request: Request,
    entity: Annotated[str, Path(max_length=128)],
    user: User = Depends(require_user),  # noqa: B008
) -> Response:
    svc = services(request)
    reader = svc.reader()
    upto = svc.picture.situation.seq
    series = {} if reader is None else await asyncio.to_thread(_history, reader, entity, upto)
    return JsonResponse({"entity": entity, "seq": upto, "series": series})


@router.get("/api/v1/events", summary="The recorded event log, in seq order")
async def events(
    request: Request,
    since: Annotated[int, Query(ge=0, description="return events with seq > since")] = 0,
    limit: Annotated[int, Query(ge=1, le=_MAX_EVENTS_PAGE)] = 1000,
    user: User = Depends(require_user),  # noqa: B008
) -> Response:
    svc = services(request)
    reader = svc.reader()
    if reader is None:
        raise ApiError(409, "no recording here", "since", "this process has no incident log")
    bodies = await asyncio.to_thread(reader.raw_events, since, limit)
    nxt = since
    if bodies:
        nxt = int(orjson.loads(bodies[-1])["seq"])
    bodies = [_event_for_role(b, user) for b in bodies]
    payload = b'{"incident":"%s","next":%d,"events":[' % (svc.incident.encode(), nxt)
    return Response(payload + b",".join(bodies) + b"]}", media_type="application/json")


@router.get(
    "/api/v1/detections/{detection_id}/personal",
    summary="A detection's personal data (commander, operator, admin only)",
)
async def detection_personal(
    request: Request,
    detection_id: Annotated[str, Path(max_length=128)],
    user: User = Depends(require_user),  # noqa: B008
) -> Response:
    """Kept off the push stream and the picture: asked for one detection at a time, by a
    role that needs it."""
    if user.role not in PERSONAL_DATA_ROLES:
        raise ApiError(403, "personal data", "role", f"role {user.role!r} may not see it")
    det = services(request).picture.situation.detections.get(detection_id)
    if det is None:
        raise ApiError(404, "no such detection", "detection_id", detection_id)
    return JsonResponse({"id": detection_id, "personal": det.get("personal")})


@router.get(
    "/api/v1/stream",
    summary="Live deltas (server-sent events): snapshot, then delta batches",
    response_class=StreamingResponse,
)
async def stream(
    request: Request,
    user: User = Depends(require_user),  # noqa: B008
) -> StreamingResponse:
    svc = services(request)
    picture = svc.picture
    await picture.caught_up()
    # Join and snapshot in one step (no await between): no gap, no duplicate.
    client = picture.hub.join(user.name)
    snapshot = picture.situation.live_state()
    return StreamingResponse(
        sse_stream(picture.hub, client, snapshot, svc.now, stopping=request.app.state.stopping),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/api/v1/files/{kind}/{stream}/{name}",
    summary="A file recorded with the incident: a detection's snapshot or a video segment",
)
async def incident_file(
    request: Request,
    kind: Annotated[str, Path(pattern=r"^(snapshots|video)$")],
    stream: Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")],
    name: Annotated[str, Path(max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")],
    user: User = Depends(require_user),  # noqa: B008
) -> Response:
    svc = services(request)
    # A picture of a person is personal data (its detection says so): the roles that may
    # see personal data only.
    if kind == "snapshots" and "-person-" in name and user.role not in PERSONAL_DATA_ROLES:
        raise ApiError(403, "personal data", "role", f"role {user.role!r} may not see it")
    path = incident_folder(svc.settings.data_dir, svc.incident) / kind / stream / name
    if not path.is_file():
        raise ApiError(404, "no such file", "name", f"{kind}/{stream}/{name}")
    media = {".jpg": "image/jpeg", ".webm": "video/webm", ".ts": "video/mp2t"}
    return FileResponse(path, media_type=media.get(path.suffix, "application/octet-stream"))
