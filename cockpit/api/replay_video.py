"""The replay's recorded video: the segments of each stream, and their files.

`GET /api/v1/replay/video` lists, per stream, the segments the log's `video.segment`
events name (start, end, codec, frames, the URL to play). `GET /api/v1/replay/files/
{path}` serves one of them with HTTP Range (a <video> element seeks with it); H264 as an
MP4 copy (see cockpit/replay_video.py). Video is operational, as live video is: every
logged-in user may watch. Only on a replay server; a live server says 409 naming `mode`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import av
from fastapi import APIRouter, Depends, Request
from starlette.responses import FileResponse, Response

from cockpit.api.deps import require_user
from cockpit.api.errors import ApiError
from cockpit.api.jsonresponse import JsonResponse
from cockpit.api.services import Services, services
from cockpit.auth import User
from cockpit.replay_video import MEDIA_TYPE, Segment, playable_file, video_index
from cockpit.situation import iso

__all__ = ["FILES", "router"]

router = APIRouter(tags=["replay"])
log = logging.getLogger("cockpit.replay_video")

FILES = "/api/v1/replay/files/"
_CACHE = "cache/replay-video"  # under the data dir: never the recording's folder


def _replaying(svc: Services) -> None:
    if svc.replay is None:
        raise ApiError(
            409, "not a replay", "mode", "this server is live; start `cockpit replay RECORDING`"
        )


def _listed(seg: Segment) -> dict[str, Any]:
    return {
        "start": seg.start,
        "end": seg.end,
        "start_at": iso(seg.start),
        "end_at": iso(seg.end),
        "codec": seg.codec,
        "type": MEDIA_TYPE.get(seg.codec, "application/octet-stream"),
        "frames": seg.frames,
        "bytes": seg.bytes,
        "path": seg.path,
        "url": FILES + seg.path,
    }


@router.get(
    "/api/v1/replay/video",
    summary="The recorded video: per stream, its segments (server times, codec, URL)",
)
async def replay_video(
    request: Request,
    user: User = Depends(require_user),  # noqa: B008
) -> Response:
    svc = services(request)
    _replaying(svc)
    index = await asyncio.to_thread(video_index, svc.log_path)
    streams = [
        {"stream": name, "segments": [_listed(s) for s in segs]}
        for name, segs in index.streams().items()
    ]
    return JsonResponse({"incident": svc.incident, "streams": streams})


@router.get(
    "/api/v1/replay/files/{path:path}",
    summary="One recorded video segment (HTTP Range); H264 as MP4",
)
async def replay_file(
    request: Request,
    path: str,
    user: User = Depends(require_user),  # noqa: B008
) -> Response:
    svc = services(request)
    _replaying(svc)
    index = await asyncio.to_thread(video_index, svc.log_path)
    found = await asyncio.to_thread(index.file, path)
    if found is None:
        raise ApiError(404, "not found", "path", "no recorded video segment by that name")
    seg, file = found
    try:
        served = await asyncio.to_thread(playable_file, seg, file, svc.settings.data_dir / _CACHE)
    except av.FFmpegError as exc:  # a damaged file: say which, don't take the server down
        log.warning("replay video %s not playable: %s", seg.path, exc)
        raise ApiError(
            422, "video not playable", "path", f"{seg.path}: {type(exc).__name__}"
        ) from exc
    except OSError as exc:  # our side (a full disk for the MP4 copy): try again later
        log.warning("replay video %s: no MP4 copy: %s", seg.path, exc)
        raise ApiError(503, "video unavailable", "cache", f"{type(exc).__name__}: {exc}") from exc
    return FileResponse(
        served,
        media_type=MEDIA_TYPE.get(seg.codec, "application/octet-stream"),
        # The recording does not change: a browser may keep what it fetched.
        headers={"Cache-Control": "private, max-age=3600"},
    )
