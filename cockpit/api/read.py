"""Reading the picture: situation (now or at a past time), the log, the live stream.

Need to know: no read route carries a detection's personal data unless a role that may
see it asks for it (`?personal=true`, or the detection's own route), and every time it is
sent, an audit entry is committed first (`cockpit.audit`); no entry, no data (503).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import FileResponse, Response, StreamingResponse

from cockpit.api.deps import require_user
from cockpit.api.errors import ApiError
from cockpit.api.jsonresponse import JsonResponse
from cockpit.api.limiting import SlotStream, stream_slot
from cockpit.api.services import Services, services
from cockpit.audit import AuditError
from cockpit.auth import PERSONAL_DATA_ROLES, User
from cockpit.privacy import PERSONAL_MARK, personal_ids, redact_event_body
from cockpit.push import sse_stream
from cockpit.recorder import LogReader, incident_folder
from cockpit.replay import situation_at
from cockpit.situation import reading_entity, reading_values, without_personal

__all__ = ["audited", "parse_time", "router"]

log = logging.getLogger("cockpit.api.read")

router = APIRouter(tags=["situation"])

_PERSONAL_QUERY = Query(
    description="include detections' personal data: admin, commander, operator only; "
    "each inclusion is written to the audit log first"
)

_MAX_EVENTS_PAGE = 5000


def parse_time(value: str, field: str = "at") -> float:
    """An ISO 8601 time with zone as epoch seconds, or 422 naming `field`."""
    shown = repr(value if len(value) <= 80 else value[:77] + "...")
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if at.tzinfo is None:
            raise ApiError(422, "invalid time", field, f"{shown} has no time zone (add Z)")
        return at.timestamp()
    except (ValueError, OverflowError) as exc:
        raise ApiError(422, "invalid time", field, f"{shown} is not ISO 8601") from exc


def _may_ask(user: User, personal: bool) -> None:
    if personal and user.role not in PERSONAL_DATA_ROLES:
        raise ApiError(403, "personal data", "personal", f"role {user.role!r} may not see it")


async def audited(
    svc: Services, user: User, action: str, records: Sequence[str], detail: str = ""
) -> None:
    """Commit an audit entry for personal data about to be sent (nothing when `records`
    is empty); 503 if it cannot be written, so that the caller sends nothing."""
    if not records:
        return
    why = "personal data is not sent without an audit entry"
    if svc.audit is None:
        raise ApiError(503, "audit unavailable", "audit", f"no audit log here: {why}")
    try:
        await asyncio.to_thread(
            svc.audit.record,
            user=user.name,
            role=user.role,
            action=action,
            incident=svc.incident,
            records=records,
            detail=detail,
        )
    except AuditError as exc:
        log.error("%s", exc)
        raise ApiError(503, "audit unavailable", "audit", why) from exc


async def _for_role(
    svc: Services, view: dict[str, Any], user: User, personal: bool, detail: str
) -> dict[str, Any]:
    """The view without detections' personal data, unless asked for (then audited)."""
    if not personal:
        view["detections"] = [without_personal(d) for d in view["detections"]]
        return view
    for d in view["detections"]:
        d["personal_held"] = bool(d.get("personal"))
    await audited(svc, user, "situation", personal_ids(view["detections"]), detail)
    return view


@router.get("/api/v1/situation", summary="The situation picture, now or at a past time")
async def situation(
    request: Request,
    at: Annotated[str | None, Query(description="ISO 8601 time with zone")] = None,
    tracks: Annotated[bool, Query(description="include track history")] = True,
    personal: Annotated[bool, _PERSONAL_QUERY] = False,
    user: User = Depends(require_user),  # noqa: B008
) -> Response:
    svc = services(request)
    _may_ask(user, personal)
    if at is None:
        await svc.picture.caught_up()
        # No await between reading the clock and the view: the picture cannot change.
        # The time is cut to what the answer's `at` can say (microseconds), so that
        # asking again with ?at= gives exactly the same ages.
        now = datetime.fromtimestamp(svc.now(), UTC).timestamp()
        view = svc.picture.situation.view(now, tracks=tracks)
        return JsonResponse(await _for_role(svc, view, user, personal, "now"))
    t = parse_time(at)
    reader = svc.reader()
    if reader is None:
        raise ApiError(
            409, "no recording here", "at", "this process has no copy of the incident log"
        )
    pipeline = svc.pipeline
    factory = pipeline.new_situation if pipeline else svc.replay.factory  # type: ignore[union-attr]
    sit = await asyncio.to_thread(situation_at, reader, t, factory)
    view = sit.view(t, tracks=tracks)
    return JsonResponse(await _for_role(svc, view, user, personal, f"at={at[:64]}"))


def _personal_in(bodies: Sequence[bytes]) -> list[str]:
    """The detections whose personal data these recorded events carry."""
    ids: set[str] = set()
    for body in bodies:
        if PERSONAL_MARK in body:
            event = orjson.loads(body)
            if event.get("kind") == "detection" and event["payload"].get("personal"):
                ids.add(str(event["payload"]["id"]))
    return sorted(ids)


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
    personal: Annotated[bool, _PERSONAL_QUERY] = False,
    user: User = Depends(require_user),  # noqa: B008
) -> Response:
    svc = services(request)
    _may_ask(user, personal)
    reader = svc.reader()
    if reader is None:
        raise ApiError(409, "no recording here", "since", "this process has no incident log")
    bodies = await asyncio.to_thread(reader.raw_events, since, limit)
    nxt = since
    if bodies:
        nxt = int(orjson.loads(bodies[-1])["seq"])
    if personal:
        await audited(svc, user, "events", _personal_in(bodies), f"since={since} limit={limit}")
    else:
        bodies = [redact_event_body(b) or b for b in bodies]
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
    role that needs it (audited)."""
    if user.role not in PERSONAL_DATA_ROLES:
        raise ApiError(403, "personal data", "role", f"role {user.role!r} may not see it")
    svc = services(request)
    det = svc.detection_or_404(detection_id)
    personal = det.get("personal")
    await audited(svc, user, "detection_personal", [detection_id] if personal else [])
    return JsonResponse({"id": detection_id, "personal": personal})


@router.get(
    "/api/v1/stream",
    summary="Live deltas (server-sent events): snapshot, then delta batches",
    response_class=StreamingResponse,
    responses={429: {"description": "the user has user_streams streams open already"}},
)
async def stream(
    request: Request,
    user: User = Depends(require_user),  # noqa: B008
) -> StreamingResponse:
    svc = services(request)
    picture = svc.picture
    await picture.caught_up()
    release = stream_slot(svc, user)  # 429 over user_streams; given back when it ends
    # Join and snapshot in one step (no await between): no gap, no duplicate.
    try:
        client = picture.hub.join(user.name)
        snapshot = picture.situation.live_state()
    except BaseException:
        release()
        raise
    return SlotStream(
        sse_stream(picture.hub, client, snapshot, svc.now, stopping=request.app.state.stopping),
        release=release,
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
    if kind == "snapshots" and "-person-" in name:
        # The file is `<detection id>-<ms>.jpg` (cockpit.media.vision).
        detection = name.rsplit("-", 1)[0]
        await audited(svc, user, "snapshot", [detection], f"{kind}/{stream}/{name}")
    media = {".jpg": "image/jpeg", ".webm": "video/webm", ".ts": "video/mp2t"}
    return FileResponse(path, media_type=media.get(path.suffix, "application/octet-stream"))
