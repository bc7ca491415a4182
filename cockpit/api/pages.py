"""The gate in front of the browser pages: log-in for every page, asset and Dash route.

The API routes check credentials themselves (401 JSON, device tokens on ingest). Dash
mounts its own routes (`/`, `/_dash-*`, `/assets/*`, a catch-all), which know nothing of
our users; this ASGI middleware runs before them, sends people without a session to the
log-in page and tells the layouts who is asking, and in which language.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import HTTPConnection
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from cockpit.api.deps import user_for
from cockpit.api.errors import error_response
from cockpit.i18n import Lang

__all__ = ["LANG_COOKIE", "PAGES", "PageGuard", "lang_of"]

LANG_COOKIE = "cockpit_lang"
PAGES = ("/", "/wall", "/trainer")  # the layouts (the one Dash app at three paths)
# Paths with their own checks (or none by design: health, log-in).
_OWN_AUTH = (
    "/api/",
    "/ws/",
    "/healthz",
    "/login",
    "/docs",
    "/openapi.json",
    "/whip/",
    "/whep/",
)


def lang_of(conn: HTTPConnection) -> Lang:
    """`?lang=` first (a link), then the cookie the language toggle sets, else German."""
    asked = conn.query_params.get("lang") or conn.cookies.get(LANG_COOKIE)
    return "en" if asked == "en" else "de"


class PageGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(_OWN_AUTH) and path != "/":
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        user = user_for(conn)
        if user is None:
            response: Response
            if scope["type"] == "http" and scope["method"] == "GET" and path in PAGES:
                response = RedirectResponse(f"/login?next={path}", status_code=303)
            else:
                response = error_response(
                    401,
                    "not logged in",
                    [{"field": "session", "reason": "log in on /login"}],
                )
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 4401})
                return
            await response(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        state["user"] = user
        state["lang"] = lang_of(conn)
        state["incident"] = conn.app.state.services.incident
        await self.app(scope, receive, send)
