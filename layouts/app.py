"""The Dash app, mounted on the cockpit's FastAPI server (one origin, one log-in).

Which layout a page gets, in which language and for whom comes from the request, which
`cockpit.api.pages.PageGuard` has checked and annotated before Dash sees it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dash import Dash, html
from dash.backends._fastapi import reset_current_request, set_current_request
from fastapi import FastAPI, Request, Response

from cockpit.api.pages import PAGES
from cockpit.auth import PERSONAL_DATA_ROLES, User, can_write
from cockpit.i18n import Lang, browser_strings, t
from cockpit.settings import Settings
from layouts import commander, trainer, wall

__all__ = ["ASSETS", "mount", "page_config"]

ASSETS = Path(__file__).resolve().parent.parent / "assets"
_SYMBOLS = ASSETS / "symbols" / "index.json"


def page_config(
    settings: Settings, user: User, lang: Lang, incident: str, *, exercise: bool = False
) -> dict[str, Any]:
    """What the page scripts need to know, handed over in the layout (no extra request)."""
    tiles = "/tiles/{z}/{x}/{y}" if settings.map_mbtiles else settings.map_tiles
    return {
        "lang": lang,
        "user": user.name,
        "role": user.role,
        "can_write": can_write(user),
        # Whether the page offers a detection's personal data (asked for per tap, audited).
        "personal_data": user.role in PERSONAL_DATA_ROLES,
        "incident": incident,
        # An exercise (`cockpit replay --as-live`): every page says so, all the time.
        "exercise": exercise,
        "strings": browser_strings(lang),
        "symbols": json.loads(_SYMBOLS.read_text(encoding="utf-8")),
        "stale_after": dict(settings.stale_after_s),
        # How old a Helfer's position may be to be offered (the server's own rule).
        "responder_max_age_s": settings.rules.config().responder_position_max_age_s,
        "center": list(settings.map_center),
        "zoom": settings.map_zoom,
        "tiles": tiles,
        "attribution": settings.map_attribution,
        # Where a video tile plays a stream: the media process, or an SFU for many viewers.
        "whep_url": settings.video_whep_url,
    }


def serve_pages(server: FastAPI, app: Dash) -> None:
    """Every page but `/` is Dash's same index at its own path (the layout tells them
    apart); registered before the server's catch-all 404, which would answer them."""

    async def index(request: Request) -> Response:
        # Dash's middleware marks the current request for `/` and `/_dash-*` only.
        token = set_current_request(request)
        try:
            # Dash collects its assets on its first request; this page may be the first.
            app._setup_server()
            return Response(content=app.index(), media_type="text/html")
        finally:
            reset_current_request(token)

    for path in PAGES:
        if path != "/":
            server.add_api_route(path, index, methods=["GET"], include_in_schema=False)


def mount(server: FastAPI, settings: Settings, *, exercise: bool = False) -> Dash:
    app = Dash(
        __name__,
        server=server,  # type: ignore[arg-type]  # Dash 4 takes a FastAPI app; its hints lag
        assets_folder=str(ASSETS),
        title=t("app.title"),
        update_title="",
        serve_locally=True,
        suppress_callback_exceptions=True,
        meta_tags=[
            {"name": "viewport", "content": "width=device-width, initial-scale=1"},
            {"name": "color-scheme", "content": "dark"},
        ],
    )

    def layout() -> Any:
        try:
            request = app.backend.request_adapter()
            state = request.context
            user: User = state.user
            lang: Lang = state.lang
            incident: str = state.incident
        except (AttributeError, RuntimeError, LookupError):
            # Dash may build the layout outside a request (validation): an empty page.
            return html.Div(id="ui-config")
        if wall.is_wall(request):  # /wall: the control room's screen, no input
            return wall.page(
                request,
                lang,
                incident,
                lambda lg: page_config(settings, user, lg, incident, exercise=exercise),
            )
        if trainer.is_trainer(request):  # /trainer: the replay, read-only
            return trainer.layout(
                request,
                user,
                incident,
                page_config(settings, user, lang, incident, exercise=exercise),
            )
        return commander.layout(
            lang=lang,
            user=user.name,
            role=user.role,
            can_write=can_write(user),
            incident=incident,
            config=page_config(settings, user, lang, incident, exercise=exercise),
        )

    app.layout = layout
    # German first; each layout marks its own language on its root (lang="en" there).
    app.index_string = app.index_string.replace("<html>", '<html lang="de">', 1)
    serve_pages(server, app)
    app._favicon = "favicon.svg"  # type: ignore[assignment]  # Dash looks for .ico only
    commander.register(app)
    return app
