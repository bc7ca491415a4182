"""Logging in and out: `/login` (a form) and `/api/v1/session` (JSON)."""

from __future__ import annotations

import asyncio
import base64
import html
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import HTMLResponse, RedirectResponse, Response

from cockpit.api.deps import SESSION_COOKIE, require_user
from cockpit.api.errors import ApiError, describe_validation
from cockpit.api.ingest import read_body
from cockpit.api.jsonresponse import JsonResponse
from cockpit.api.pages import lang_of
from cockpit.api.services import Services, services
from cockpit.auth import User
from cockpit.i18n import Lang, t

__all__ = ["router"]

router = APIRouter()

_LOGIN_BODY_MAX = 8192


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]


def _lang(request: Request) -> Lang:
    return lang_of(request)


def _set_cookie(response: Response, svc: Services, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(svc.settings.session_ttl_s),
        httponly=True,
        samesite="lax",
        secure=svc.settings.https,  # its own TLS, or a TLS proxy's (cookie_secure)
        path="/",
    )


async def _login(svc: Services, username: str, password: str) -> tuple[User, str] | None:
    # argon2 takes tens of milliseconds: keep it off the event loop.
    user = await asyncio.to_thread(svc.auth.verify_password, username, password)
    if user is None:
        svc.health.feed("login").reject("bad credentials", svc.clock())
        return None
    svc.health.feed("login").accept(1, svc.clock())
    return user, svc.auth.create_session(user)


@router.post("/api/v1/session", tags=["session"], summary="Log in (sets the session cookie)")
async def create_session(request: Request) -> Response:
    svc = services(request)
    body = await read_body(request, _LOGIN_BODY_MAX)  # anonymous: never read more
    try:
        creds = Credentials.model_validate_json(body)
    except ValidationError as exc:
        svc.health.feed("login").reject("invalid body", svc.clock())
        raise ApiError(422, "invalid log-in", *_first(describe_validation(exc))) from exc
    result = await _login(svc, creds.username, creds.password)
    if result is None:
        raise ApiError(401, "log-in failed", "password", "wrong name or password, or locked out")
    user, token = result
    response = JsonResponse({"user": user.name, "role": user.role})
    _set_cookie(response, svc, token)
    return response


def _first(errors: list[dict[str, str]]) -> tuple[str, str]:
    return (errors[0]["field"], errors[0]["reason"]) if errors else ("body", "invalid")


@router.get("/api/v1/session", tags=["session"], summary="Who is logged in")
async def whoami(user: User = Depends(require_user)) -> dict[str, str]:  # noqa: B008
    return {"user": user.name, "role": user.role}


@router.delete("/api/v1/session", tags=["session"], summary="Log out")
async def logout(
    request: Request,
    user: User = Depends(require_user),  # noqa: B008
) -> Response:
    svc = services(request)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        svc.auth.end_session(token)
    response = JsonResponse({"logged_out": True})
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# Inline, so that the log-in page asks for nothing that needs a log-in.
_ICON = (
    "data:image/svg+xml;base64,"
    + base64.b64encode(
        (Path(__file__).resolve().parents[2] / "assets" / "favicon.svg").read_bytes()
    ).decode()
)


def _page(lang: Lang, failed: bool, next_url: str) -> str:
    other: Lang = "en" if lang == "de" else "de"
    error = (
        f'<p class="error" role="alert">{html.escape(t("login.failed", lang))}</p>'
        if failed
        else ""
    )
    nxt = html.escape(next_url, quote=True)
    return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{t("login.title", lang)} · {t("app.title", lang)}</title>
<link rel="icon" href="{_ICON}">
<style>
 body{{font-family:system-ui,sans-serif;background:#111;color:#eee;display:grid;place-items:center;min-height:100vh;margin:0}}
 form{{background:#1e1e1e;padding:2rem;border-radius:8px;min-width:18rem}}
 label{{display:block;margin:.8rem 0 .3rem;font-size:1.1rem}}
 input{{width:100%;box-sizing:border-box;font-size:1.2rem;padding:.6rem;min-height:44px}}
 button{{margin-top:1.2rem;width:100%;font-size:1.2rem;min-height:48px;background:#c62828;color:#fff;border:0;border-radius:4px}}
 .error{{color:#ff8a80}} a{{color:#90caf9}}
</style></head><body>
<form method="post" action="/login?lang={lang}">
<h1>{t("app.title", lang)}</h1>{error}
<input type="hidden" name="next" value="{nxt}">
<label for="u">{t("login.username", lang)}</label>
<input id="u" name="username" autocomplete="username" required>
<label for="p">{t("login.password", lang)}</label>
<input id="p" name="password" type="password" autocomplete="current-password" required>
<button type="submit">{t("login.submit", lang)}</button>
<p><a href="/login?lang={other}">{t("login.other_lang", lang)}</a></p>
</form></body></html>"""


def _safe_next(value: str) -> str:
    # Only same-site paths: never redirect a fresh session to another host.
    return value if value.startswith("/") and not value.startswith("//") else "/"


@router.get("/login", include_in_schema=False)
async def login_page(request: Request) -> HTMLResponse:
    failed = request.query_params.get("failed") == "1"
    nxt = _safe_next(request.query_params.get("next", "/"))
    return HTMLResponse(_page(_lang(request), failed, nxt))


@router.post("/login", include_in_schema=False)
async def login_form(request: Request) -> Response:
    svc = services(request)
    lang = _lang(request)
    body = await read_body(request, _LOGIN_BODY_MAX)  # anonymous: never read more
    form = parse_qs(body.decode("utf-8", "replace"))
    username = (form.get("username") or [""])[0][:64]
    password = (form.get("password") or [""])[0][:1024]
    nxt = _safe_next((form.get("next") or ["/"])[0])
    result = await _login(svc, username, password) if username and password else None
    if result is None:
        return RedirectResponse(f"/login?failed=1&lang={lang}", status_code=303)
    response = RedirectResponse(nxt, status_code=303)
    _set_cookie(response, svc, result[1])
    return response
