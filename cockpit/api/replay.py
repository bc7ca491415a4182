"""The trainer's replay: control (play, pause, speed, seek), the timeline, the incident
library, and bookmarks kept beside the recording.

Controls and bookmarks answer only when this server replays a recording (`cockpit
replay RECORDING`); a live server says 409 naming `mode`. Everyone logged in may read;
trainers (and the roles that may write the live picture) may drive.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from datetime import datetime
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.responses import Response

from cockpit.api.deps import require_trainer, require_user
from cockpit.api.errors import ApiError
from cockpit.api.jsonresponse import JsonResponse
from cockpit.api.services import Services, services
from cockpit.api.write import read_validated
from cockpit.auth import User
from cockpit.bookmarks import BookmarkError, BookmarkStore
from cockpit.library import MAX_BUCKETS, list_recordings, timeline
from cockpit.replay import MAX_SPEED, MIN_SPEED, ReplaySession
from cockpit.situation import iso

__all__ = ["SeekIn", "Seeks", "one_time", "refuse", "router", "with_times"]

router = APIRouter(tags=["replay"])

_BODY_LIMIT = 16 * 1024
# Epoch seconds a replay can mean: 1970 .. 5138 (beyond, datetime cannot say it).
_T_MAX = 1e11

Speed = Annotated[float, Field(ge=MIN_SPEED, le=MAX_SPEED, allow_inf_nan=False)]
Epoch = Annotated[float, Field(ge=0, le=_T_MAX, allow_inf_nan=False)]


def _iso_epoch(value: str) -> float:
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{value[:40]!r} is not ISO 8601") from exc
    if at.tzinfo is None:
        raise ValueError(f"{value[:40]!r} has no time zone (add Z)")
    return at.timestamp()


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlayIn(_Body):
    speed: Speed | None = None


class SpeedIn(_Body):
    speed: Speed


class _When(_Body):
    """A replay time: `at` (ISO 8601 with zone) or `t` (epoch seconds), not both."""

    at: Annotated[str, Field(max_length=64)] | None = None
    t: Epoch | None = None

    @field_validator("at")
    @classmethod
    def _iso(cls, v: str | None) -> str | None:
        if v is not None:
            _iso_epoch(v)
        return v

    def epoch(self) -> float | None:
        if self.at is not None:
            return _iso_epoch(self.at)
        return self.t


class SeekIn(_When):
    pass


class BookmarkIn(_When):
    title: Annotated[str, Field(min_length=1, max_length=200)]
    note: Annotated[str, Field(max_length=4000)] = ""


_M = TypeVar("_M", bound=_Body)


def _documented(model: type[_Body], *, required: bool = True) -> dict[str, Any]:
    """The body's schema for /docs (the route validates the body itself, to answer 422
    naming the field in this API's one error shape)."""
    schema = model.model_json_schema()
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": schema}},
        }
    }


def refuse(svc: Services, what: str, field: str, reason: str) -> ApiError:
    svc.health.feed("ui").reject(f"invalid {what}", svc.clock())
    return ApiError(422, f"invalid {what}", field, reason)


async def _validated(request: Request, model: type[_M], what: str) -> _M:
    """The body as `model`; an empty body is `{}` (play without a speed)."""
    return await read_validated(request, model, what, _BODY_LIMIT, empty_is_object=True)


def _replay(svc: Services) -> ReplaySession:
    if svc.replay is None:
        raise ApiError(
            409, "not a replay", "mode", "this server is live; start `cockpit replay RECORDING`"
        )
    return svc.replay


def with_times(state: dict[str, Any]) -> dict[str, Any]:
    """A replay's or an exercise's state with its epoch times also in ISO 8601."""
    state.update(
        start_at=iso(state["start"]),
        end_at=iso(state["end"]),
        position_at=iso(state["position"]),
    )
    return state


def _state(replay: ReplaySession) -> dict[str, Any]:
    return with_times(replay.state())


@router.get("/api/v1/replay", summary="The replay's state: recording bounds, position, speed")
async def replay_state(
    request: Request,
    user: User = Depends(require_user),  # noqa: B008
) -> Response:
    return JsonResponse(_state(_replay(services(request))))


@router.post(
    "/api/v1/replay/play",
    summary="Play (optionally at a new speed, 0.25-100)",
    openapi_extra=_documented(PlayIn, required=False),
)
async def replay_play(
    request: Request,
    user: User = Depends(require_trainer),  # noqa: B008
) -> Response:
    replay = _replay(services(request))
    body = await _validated(request, PlayIn, "play")
    replay.play(body.speed)
    return JsonResponse(_state(replay))


@router.post("/api/v1/replay/pause", summary="Pause at the current position")
async def replay_pause(
    request: Request,
    user: User = Depends(require_trainer),  # noqa: B008
) -> Response:
    replay = _replay(services(request))
    await _validated(request, _Body, "pause")
    replay.pause()
    return JsonResponse(_state(replay))


@router.post(
    "/api/v1/replay/speed",
    summary="Change the speed (0.25-100), playing or not",
    openapi_extra=_documented(SpeedIn),
)
async def replay_speed(
    request: Request,
    user: User = Depends(require_trainer),  # noqa: B008
) -> Response:
    replay = _replay(services(request))
    body = await _validated(request, SpeedIn, "speed")
    replay.set_speed(body.speed)
    return JsonResponse(_state(replay))


@router.post(
    "/api/v1/replay/seek",
    summary="Jump to a time (clamped to the recording); answers once the picture is there",
    openapi_extra=_documented(SeekIn),
)
async def replay_seek(
    request: Request,
    user: User = Depends(require_trainer),  # noqa: B008
) -> Response:
    svc = services(request)
    replay = _replay(svc)
    body = await _validated(request, SeekIn, "seek")
    t = one_time(svc, body, "seek")
    if t is None:
        raise refuse(svc, "seek", "at", "give `at` (ISO 8601) or `t` (epoch seconds)")
    # Browsers on the push stream are told to resync by the seek itself.
    done = await _seeks_of(replay).seek(t)
    await replay.caught_up()
    return JsonResponse({**_state(replay), "superseded": not done})


class _Seekable(Protocol):
    async def seek(self, t: float) -> None: ...


class Seeks:
    """Seeks one after another, skipping any that a newer one replaced while it waited:
    a drag along the timeline asks several times a second, and only where it ends
    matters; each rebuild of the picture takes its time on a large recording."""

    def __init__(self, replay: _Seekable) -> None:
        self._replay = replay
        self._lock = asyncio.Lock()
        self._latest = 0

    async def seek(self, t: float) -> bool:
        """True if this seek was made; False if a newer one replaced it."""
        self._latest += 1
        mine = self._latest
        async with self._lock:
            if mine != self._latest:
                return False
            await self._replay.seek(t)
            return True


_seeks: weakref.WeakKeyDictionary[ReplaySession, Seeks] = weakref.WeakKeyDictionary()


def _seeks_of(replay: ReplaySession) -> Seeks:
    seeks = _seeks.get(replay)
    if seeks is None:
        seeks = _seeks[replay] = Seeks(replay)
    return seeks


def one_time(svc: Services, body: _When, what: str) -> float | None:
    if body.at is not None and body.t is not None:
        raise refuse(svc, what, "t", "give `at` or `t`, not both")
    return body.epoch()


@router.get(
    "/api/v1/replay/timeline",
    summary="Event density per time slice and the marks: alerts, detections, journal",
)
async def replay_timeline(
    request: Request,
    buckets: Annotated[int, Query(ge=1, le=MAX_BUCKETS)] = 200,
    user: User = Depends(require_user),  # noqa: B008
) -> Response:
    svc = services(request)
    _replay(svc)
    body = await asyncio.to_thread(timeline, svc.log_path, svc.settings, buckets)
    return JsonResponse(body)


@router.get(
    "/api/v1/recordings",
    summary="The incident library: every recording in the data dir, with its counts",
)
async def recordings(
    request: Request,
    user: User = Depends(require_user),  # noqa: B008
) -> Response:
    svc = services(request)
    folder = svc.settings.data_dir / "incidents"
    current = svc.log_path if svc.log_path.is_file() else None
    listed = await asyncio.to_thread(list_recordings, folder, svc.settings, current)
    return JsonResponse({"mode": "replay" if svc.replay else "live", "recordings": listed})


def _store(svc: Services) -> BookmarkStore:
    replay = _replay(svc)
    return BookmarkStore(svc.log_path, replay.incident)


def _bookmark_failed(exc: BookmarkError) -> ApiError:
    return ApiError(503, "bookmarks unavailable", "bookmarks", str(exc))


@router.get("/api/v1/replay/bookmarks", summary="The trainer's bookmarks on this recording")
async def bookmarks(
    request: Request,
    user: User = Depends(require_user),  # noqa: B008
) -> Response:
    store = _store(services(request))
    try:
        marks = await asyncio.to_thread(store.all)
    except BookmarkError as exc:
        raise _bookmark_failed(exc) from exc
    return JsonResponse({"incident": store.incident, "bookmarks": marks})


@router.post(
    "/api/v1/replay/bookmarks",
    status_code=201,
    summary="Bookmark a time (default: the replay's position) with a title and a note",
    openapi_extra=_documented(BookmarkIn),
)
async def add_bookmark(
    request: Request,
    user: User = Depends(require_trainer),  # noqa: B008
) -> Response:
    svc = services(request)
    store = _store(svc)
    replay = _replay(svc)
    body = await _validated(request, BookmarkIn, "bookmark")
    t = one_time(svc, body, "bookmark")
    if t is None:
        t = replay.now()
    if not (replay.t_first <= t <= replay.t_last) or not math.isfinite(t):
        field = "at" if body.at is not None else "t"
        raise refuse(
            svc,
            "bookmark",
            field,
            f"outside the recording ({iso(replay.t_first)} .. {iso(replay.t_last)})",
        )
    try:
        mark = await asyncio.to_thread(store.add, t, body.title, body.note, user.name)
    except BookmarkError as exc:
        raise _bookmark_failed(exc) from exc
    return JsonResponse(mark, status_code=201)


@router.delete(
    "/api/v1/replay/bookmarks/{bookmark_id}",
    summary="Delete a bookmark (its author or an admin)",
)
async def delete_bookmark(
    request: Request,
    bookmark_id: Annotated[str, Path(max_length=64)],
    user: User = Depends(require_trainer),  # noqa: B008
) -> Response:
    store = _store(services(request))
    try:
        mark = await asyncio.to_thread(store.get, bookmark_id)
        if mark is None:
            raise ApiError(404, "no such bookmark", "bookmark_id", bookmark_id)
        if mark["author"] != user.name and user.role != "admin":
            raise ApiError(
                403, "forbidden", "author", f"only {mark['author']!r} or an admin may delete it"
            )
        await asyncio.to_thread(store.delete, bookmark_id)
    except BookmarkError as exc:
        raise _bookmark_failed(exc) from exc
    return JsonResponse({"deleted": bookmark_id})
