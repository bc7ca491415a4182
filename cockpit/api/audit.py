"""The privacy audit log, for admins: who saw which personal record, when, how."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from cockpit.api.deps import require_user
from cockpit.api.errors import ApiError
from cockpit.api.jsonresponse import JsonResponse
from cockpit.api.read import parse_time
from cockpit.api.services import services
from cockpit.audit import AuditError
from cockpit.auth import User

__all__ = ["router"]

router = APIRouter(tags=["privacy"])


@router.get("/api/v1/audit", summary="The privacy audit log, newest first (admin only)")
async def audit_log(
    request: Request,
    since: Annotated[
        str | None, Query(max_length=64, description="only entries after this ISO 8601 time")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    user: User = Depends(require_user),  # noqa: B008
) -> Response:
    if user.role != "admin":
        raise ApiError(403, "forbidden", "role", f"role {user.role!r} may not read the audit log")
    svc = services(request)
    try:
        t = parse_time(since, "since") if since is not None else None
    except ApiError as exc:
        svc.health.feed("api").reject(f"invalid request: {exc.summary()}", svc.clock())
        raise
    if svc.audit is None:
        raise ApiError(503, "audit unavailable", "audit", "no audit log here")
    try:
        entries = await asyncio.to_thread(svc.audit.entries, since=t, limit=limit)
    except AuditError as exc:
        raise ApiError(503, "audit unavailable", "audit", str(exc)) from exc
    return JsonResponse({"entries": [e.to_json() for e in entries]})
