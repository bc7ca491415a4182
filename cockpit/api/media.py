"""WHIP ingest (RFC 9725) and WHEP playback: SDP offer in, SDP answer out.

`POST /whip/{stream}` with a device token for the `video` feed and `application/sdp`
answers 201 with the answer and a `Location` for the session; `DELETE` on it ends the
session. No trickle ICE (the answer carries all candidates), so `PATCH` answers 405.
`POST /whep/{stream}` is the same for logged-in people who want to watch.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import Response

from cockpit.api.deps import require_device, require_user
from cockpit.api.errors import ApiError
from cockpit.api.ingest import read_body
from cockpit.api.services import Services, services
from cockpit.auth import Device, User
from cockpit.media.streams import BadOffer, MediaHub, NoSuchStream

__all__ = ["router"]

router = APIRouter(tags=["video"])

FEED = "video"
_SDP_LIMIT = 64 * 1024
StreamName = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
SessionId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9-]+$")]


def _hub(svc: Services) -> MediaHub:
    if svc.media is None:
        if svc.settings.role == "web":  # behind the proxy, /whip and /whep go to `media`
            raise ApiError(503, "no video here", "role", "video is served by the media process")
        raise ApiError(409, "no video here", "stream", "this process does not handle video")
    return svc.media


async def _offer(request: Request) -> str:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/sdp":
        raise ApiError(415, "unsupported media type", "content-type", "send application/sdp")
    body = await read_body(request, _SDP_LIMIT)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "bad SDP", "body", "not UTF-8") from exc
    if not re.match(r"v=0\r?\n", text):
        raise ApiError(400, "bad SDP", "body", "an SDP offer starts with v=0")
    return text


def _answer(sdp: str, location: str) -> Response:
    return Response(
        sdp,
        status_code=201,
        media_type="application/sdp",
        headers={"Location": location, "Cache-Control": "no-store"},
    )


@router.post("/whip/{stream}", status_code=201, summary="Publish video (WHIP, RFC 9725)")
async def whip(
    request: Request,
    stream: StreamName,
    device: Device = Depends(require_device(FEED)),  # noqa: B008
) -> Response:
    svc = services(request)
    hub = _hub(svc)
    offer = await _offer(request)
    try:
        session, answer, _codec = await hub.publish(stream, offer, f"device:{device.name}")
    except BadOffer as exc:
        svc.health.feed(FEED).reject("bad SDP", svc.clock())
        raise ApiError(400, "bad SDP", "body", str(exc)) from exc
    svc.health.feed(FEED).accept(1, svc.clock())
    return _answer(answer, f"/whip/{stream}/{session}")


@router.delete("/whip/{stream}/{session}", summary="End a WHIP session")
async def whip_end(
    request: Request,
    stream: StreamName,
    session: SessionId,
    device: Device = Depends(require_device(FEED)),  # noqa: B008
) -> Response:
    hub = _hub(services(request))
    found = hub.owner_of(session)
    if found is None or found[:2] != ("whip", stream):
        raise ApiError(404, "no such session", "session", session)
    if found[2] != f"device:{device.name}":
        raise ApiError(403, "not yours", "session", "another device published this stream")
    await hub.end(session)
    return Response(status_code=200)


@router.patch("/whip/{stream}/{session}", include_in_schema=False)
async def whip_patch(
    stream: str,
    session: str,
    device: Device = Depends(require_device(FEED)),  # noqa: B008
) -> Response:
    # Trickle ICE and ICE restarts are optional in WHIP; the answer has every candidate.
    return Response(status_code=405, headers={"Allow": "DELETE"})


@router.post("/whep/{stream}", status_code=201, summary="Watch a video stream (WHEP)")
async def whep(
    request: Request,
    stream: StreamName,
    user: User = Depends(require_user),  # noqa: B008
) -> Response:
    hub = _hub(services(request))
    offer = await _offer(request)
    try:
        session, answer = await hub.view(stream, offer, f"user:{user.name}")
    except NoSuchStream as exc:
        raise ApiError(404, "no such stream", "stream", f"{stream!r} is not being sent") from exc
    except BadOffer as exc:
        raise ApiError(400, "bad SDP", "body", str(exc)) from exc
    return _answer(answer, f"/whep/{stream}/{session}")


@router.delete("/whep/{stream}/{session}", summary="Stop watching")
async def whep_end(
    request: Request,
    stream: StreamName,
    session: SessionId,
    user: User = Depends(require_user),  # noqa: B008
) -> Response:
    hub = _hub(services(request))
    found = hub.owner_of(session)
    if found is None or found[:2] != ("whep", stream) or found[2] != f"user:{user.name}":
        raise ApiError(404, "no such session", "session", session)
    await hub.end(session)
    return Response(status_code=200)


@router.patch("/whep/{stream}/{session}", include_in_schema=False)
async def whep_patch(
    stream: str,
    session: str,
    user: User = Depends(require_user),  # noqa: B008
) -> Response:
    return Response(status_code=405, headers={"Allow": "DELETE"})
