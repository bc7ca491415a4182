"""`GET /api/v1/replay/debrief`: the debrief of the recording this server serves (a
replay's recording, or a live server's own log so far) as one HTML file to keep.

Trainers and the roles that may drive a replay; without personal data for everyone.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from cockpit.api.deps import require_trainer
from cockpit.api.errors import ApiError
from cockpit.api.pages import lang_of
from cockpit.api.services import services
from cockpit.auth import User
from cockpit.debrief import build_debrief, debrief_filename
from cockpit.i18n import Lang
from cockpit.recorder import RecorderError

__all__ = ["router"]

router = APIRouter(tags=["replay"])

# The file loads nothing: inline styles and SVG, pictures as data URIs.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _one_at_a_time(request: Request) -> asyncio.Lock:
    """One export at a time per server: each scans the whole log (seconds on a long
    incident); a second click waits here, holding no worker thread, instead of doubling
    the load on a busy server."""
    state = request.app.state
    lock: asyncio.Lock | None = getattr(state, "debrief_lock", None)
    if lock is None:
        lock = state.debrief_lock = asyncio.Lock()
    return lock


@router.get(
    "/api/v1/replay/debrief",
    summary="The debrief of this recording: one printable HTML file, without personal data",
)
async def debrief(
    request: Request,
    lang: Annotated[Literal["de", "en"] | None, Query()] = None,
    user: User = Depends(require_trainer),  # noqa: B008
) -> Response:
    svc = services(request)
    if not svc.log_path.is_file():
        raise ApiError(409, "no recording", "mode", "this server has not recorded anything yet")
    chosen: Lang = lang or lang_of(request)
    try:
        async with _one_at_a_time(request):
            text = await asyncio.to_thread(
                build_debrief, svc.log_path, svc.settings, lang=chosen, user=user.name
            )
    except RecorderError as exc:
        raise ApiError(
            503, "recording unreadable", "recording", str(exc).replace(str(svc.log_path), "…")
        ) from exc
    name = debrief_filename(svc.incident, chosen, svc.clock())
    return Response(
        text,
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
            "Content-Security-Policy": _CSP,
        },
    )
