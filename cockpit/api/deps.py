"""Who is asking: people by session cookie, devices by bearer token."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

from fastapi import Depends
from starlette.requests import HTTPConnection

from cockpit.api.errors import ApiError
from cockpit.api.services import Services, services
from cockpit.auth import Device, User, can_write, device_may_post

__all__ = [
    "EXERCISE_ROLES",
    "SESSION_COOKIE",
    "TRAINER_ROLES",
    "bearer",
    "device_for",
    "require_device",
    "require_exercise_lead",
    "require_trainer",
    "require_user",
    "require_writer",
    "user_for",
]

SESSION_COOKIE = "cockpit_session"
# May drive a replay (play, pause, speed, seek) and keep bookmarks: trainers, and those
# who may write the live picture. Viewers and wall displays watch.
TRAINER_ROLES: frozenset[str] = frozenset({"admin", "commander", "operator", "trainer"})
# In an exercise the commanders and operators are the ones being trained: only the
# trainers (and admins) drive it and inject into it.
EXERCISE_ROLES: frozenset[str] = frozenset({"admin", "trainer"})


def bearer(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return token.strip()


def user_for(conn: HTTPConnection) -> User | None:
    svc = services(conn)
    token = conn.cookies.get(SESSION_COOKIE) or bearer(conn)
    if not token:
        return None
    return svc.auth.user_for_session(token)


def require_user(conn: HTTPConnection) -> User:
    user = user_for(conn)
    if user is None:
        raise ApiError(401, "not logged in", "session", "log in on /login or POST /api/v1/session")
    return user


def _cross_site(conn: HTTPConnection) -> str | None:
    """Why a request that carries a person's cookie came from another site's page, if
    it did. The session cookie is SameSite=Lax, but a page on another port of the same
    host is the same *site*: without this it could post into the picture."""
    fetch_site = conn.headers.get("sec-fetch-site")
    if fetch_site in ("cross-site", "same-site"):
        return f"Sec-Fetch-Site: {fetch_site}"
    origin = conn.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != conn.headers.get("host"):
        return f"Origin {origin[:100]} is not this server"
    return None


def require_writer(conn: HTTPConnection, user: User = Depends(require_user)) -> User:  # noqa: B008
    if not can_write(user):
        raise ApiError(403, "forbidden", "role", f"role {user.role!r} may not write")
    if conn.cookies.get(SESSION_COOKIE):
        reason = _cross_site(conn)
        if reason is not None:
            raise ApiError(403, "cross-site request", "origin", reason)
    return user


def device_for(conn: HTTPConnection, feed: str) -> Device:
    """The device behind the bearer token, if it may post to `feed`; else ApiError."""
    svc: Services = services(conn)
    token = bearer(conn)
    if token is None:
        raise ApiError(401, "no device token", "authorization", "send 'Bearer <device token>'")
    device = svc.auth.device_for_token(token)
    if device is None:
        raise ApiError(401, "unknown device token", "authorization", "token unknown or revoked")
    if not device_may_post(device, feed):
        raise ApiError(
            403,
            "feed not allowed",
            "authorization",
            f"device {device.name!r} may not post to {feed!r}",
        )
    return device


def require_device(feed: str) -> Callable[[HTTPConnection], Coroutine[Any, Any, Device]]:
    async def dependency(conn: HTTPConnection) -> Device:
        try:
            return device_for(conn, feed)
        except ApiError as exc:
            services(conn).health.feed(feed).reject(exc.error, services(conn).clock())
            raise

    return dependency


def require_trainer(conn: HTTPConnection, user: User = Depends(require_user)) -> User:  # noqa: B008
    if user.role not in TRAINER_ROLES:
        raise ApiError(403, "forbidden", "role", f"role {user.role!r} may not control a replay")
    _same_site(conn)
    return user


def require_exercise_lead(
    conn: HTTPConnection,
    user: User = Depends(require_user),  # noqa: B008
) -> User:
    if user.role not in EXERCISE_ROLES:
        raise ApiError(
            403, "forbidden", "role", f"role {user.role!r} may not lead an exercise (trainer)"
        )
    _same_site(conn)
    return user


def _same_site(conn: HTTPConnection) -> None:
    if conn.cookies.get(SESSION_COOKIE):
        reason = _cross_site(conn)
        if reason is not None:
            raise ApiError(403, "cross-site request", "origin", reason)
