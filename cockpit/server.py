"""The composition root: one ASGI app (FastAPI) with every route, wired in one lifespan.

Settings, auth store, bus, pipeline (fold, recorder, push) or replay session are built
here and nowhere else; routes get them from `app.state.services`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from starlette.responses import FileResponse, HTMLResponse, Response

from cockpit.api import (
    audit,
    detections,
    ingest,
    ingest_adler,
    ingest_cap,
    ingest_cot,
    ingest_ttn,
    media,
    read,
    responders,
    session,
    tiles,
    write,
)
from cockpit.api import debrief as debrief_routes
from cockpit.api import exercise as exercise_routes
from cockpit.api import replay as replay_routes
from cockpit.api import replay_video as replay_video_routes
from cockpit.api.deps import require_user
from cockpit.api.errors import ApiError, error_response
from cockpit.api.jsonresponse import JsonResponse
from cockpit.api.pages import PageGuard
from cockpit.api.security import Hsts
from cockpit.api.services import Services, services
from cockpit.api.tiles import MBTiles
from cockpit.api.worker import WorkerTag
from cockpit.audit import AUDIT_FILE, AuditLog
from cockpit.auth import AuthStore, User
from cockpit.exercise import Exercise, ExerciseOptions
from cockpit.exercise_video import ExerciseCameras
from cockpit.live import live_services, resolve_incident
from cockpit.looplag import LoopLag
from cockpit.pipeline import situation_factory
from cockpit.recorder import LogReader, incident_folder
from cockpit.replay import ReplaySession
from cockpit.replay_video import video_index
from cockpit.settings import Settings

__all__ = ["build_services", "create_app", "resolve_incident"]

log = logging.getLogger("cockpit.server")

_SWAGGER_STATIC = Path(fastapi_offline.__file__).parent / "static"
_SWAGGER_FILES = {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}


@asynccontextmanager
async def _replay(settings: Settings, auth: AuthStore, recording: Path) -> AsyncIterator[Services]:
    reader = LogReader(recording)
    factory = situation_factory(settings, reader.incident, reader.meta)
    session_ = ReplaySession(reader, factory, stream_queue=settings.stream_queue)
    await session_.start()
    svc = Services(
        settings=settings,
        auth=auth,
        incident=reader.incident,
        picture=session_,
        replay=session_,
        log_path=recording,
    )
    try:
        yield svc
    finally:
        await session_.close()
        reader.close()


@asynccontextmanager
async def _exercise(
    settings: Settings, auth: AuthStore, opts: ExerciseOptions
) -> AsyncIterator[Services]:
    """A live server on the exercise's own incident, with the recording played into it."""
    reader = LogReader(opts.recording)
    try:
        async with live_services(opts.settings(settings), auth) as svc:
            assert svc.pipeline is not None
            player = Exercise(
                reader,
                svc.pipeline.publish,
                svc.incident,
                folder=opts.recording.with_suffix(""),
                target_folder=incident_folder(svc.settings.data_dir, svc.incident),
                start=opts.start,
            )
            await player.start(paused=opts.paused)
            svc.exercise = player
            # The recorded drone video, as live streams on the same clock.
            assert svc.media is not None
            index = await asyncio.to_thread(video_index, opts.recording)
            cameras = ExerciseCameras(svc.media, index, player.position, lambda: player.playing)
            cameras.start()
            svc.extra_stats["exercise_video"] = cameras.stats
            try:
                yield svc
            finally:
                try:
                    await cameras.close()
                finally:
                    await player.close()
    finally:
        reader.close()


@asynccontextmanager
async def build_services(
    settings: Settings, replay: Path | None = None, exercise: ExerciseOptions | None = None
) -> AsyncIterator[Services]:
    """Everything the routes need, started; torn down in reverse on exit."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    auth = AuthStore(settings.data_dir / "auth.sqlite", session_ttl_s=settings.session_ttl_s)
    try:
        audit_log = AuditLog(settings.data_dir / AUDIT_FILE)
    except BaseException:
        auth.close()
        raise
    try:
        if exercise is not None:
            ctx = _exercise(settings, auth, exercise)
        elif replay is not None:
            ctx = _replay(settings, auth, replay)
        else:
            ctx = live_services(settings, auth)
        async with ctx as svc:
            svc.audit = audit_log
            if settings.map_mbtiles is not None:
                svc.tiles = MBTiles(settings.map_mbtiles)
            lag = LoopLag()
            lag.start()
            svc.extra_stats["event_loop"] = lag.stats
            log.info("serving incident %s", svc.incident)
            try:
                yield svc
            finally:
                await lag.stop()
    finally:
        audit_log.close()
        auth.close()


def create_app(
    settings: Settings,
    *,
    replay: Path | None = None,
    exercise: ExerciseOptions | None = None,
    services: Services | None = None,
) -> FastAPI:
    """The ASGI app. With `services` (already started by the caller, as the CLI does so
    that start-up errors surface before serving) the lifespan only attaches them."""
    if exercise is not None:  # its incident and the recording's rules, for the pages too
        settings = exercise.settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.stopping = asyncio.Event()
        if services is not None:
            app.state.services = services
            yield
            app.state.stopping.set()
            return
        async with build_services(settings, replay, exercise) as svc:
            app.state.services = svc
            yield
            app.state.stopping.set()

    app = FastAPI(
        title="Einsatz-Cockpit API",
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        default_response_class=JsonResponse,
    )
    _install_error_handlers(app)
    role = "all" if replay is not None or exercise is not None else settings.role
    if role in ("all", "web"):
        routers = (session, read, ingest, write, tiles, media, ingest_cap, ingest_ttn, ingest_cot)
        for router in (r.router for r in routers):
            app.include_router(router)
        for module in (ingest_adler, detections, responders):  # issue 6: A.D.Le.R.
            app.include_router(module.router)
        app.include_router(audit.router)  # issue 6: who saw which personal data
        app.include_router(replay_routes.router)  # issue 7: the trainer's replay
        app.include_router(exercise_routes.router)  # issue 7: exercise mode (--as-live)
        app.include_router(debrief_routes.router)  # issue 7: the debrief export
        app.include_router(replay_video_routes.router)  # issue 7: its recorded video
    elif role == "media":  # issue 8: video in its own process, nothing else
        app.include_router(media.router)
    _install_meta_routes(app)
    if role in ("all", "web"):
        # The browser pages: Dash on this same app, behind the log-in (the guard runs first).
        from layouts.app import mount  # composition only: layouts never import the server

        mount(app, settings, exercise=exercise is not None)
        app.add_middleware(PageGuard)
    if settings.worker_name:
        app.add_middleware(WorkerTag, name=settings.worker_name, secure=settings.https)
    _install_not_found(app)
    if settings.https:  # here or at a proxy
        app.add_middleware(Hsts)
    return app


def _install_not_found(app: FastAPI) -> None:
    # Registered before Dash's own catch-all (added at start-up, which would answer any
    # unknown GET with the page): an unknown path is a 404 naming it.
    @app.get("/{path:path}", include_in_schema=False)
    async def not_found(path: str) -> Response:
        raise ApiError(404, "not found", "path", f"/{path}")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        response = error_response(exc.status, exc.error, exc.errors)
        if headers:
            response.headers.update(headers)
        response.headers.update(getattr(exc, "headers", None) or {})  # e.g. Retry-After
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        svc = services(request)
        errors = [
            {"field": ".".join(str(p) for p in e["loc"][1:]) or "request", "reason": e["msg"]}
            for e in exc.errors()[:20]
        ]
        svc.health.feed("api").reject(f"invalid request: {errors[0]['field']}", svc.clock())
        return error_response(422, "invalid request", errors)


def _install_meta_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["meta"], summary="Liveness and per-feed status (no log-in)")
    async def healthz(request: Request) -> Response:
        svc = services(request)
        now = svc.clock()
        body: dict[str, Any] = {
            "status": "ok",
            "incident": svc.incident,
            "mode": "replay" if svc.replay else "exercise" if svc.exercise else "live",
            "role": svc.settings.role,
            "worker": svc.settings.worker_name,
            "uptime_s": round(now - svc.started_at, 1),
            "feeds": svc.health.view(now),
        }
        if svc.pipeline is not None:
            stats = svc.pipeline.stats()
            body["pipeline"] = stats
            rec = stats["recorder"]
            if (rec and rec["error"]) or not stats["bus"].get("connected", True):
                body["status"] = "degraded"
        if svc.replay is not None:
            body["replay"] = svc.replay.state()
        if svc.exercise is not None:
            body["exercise"] = svc.exercise.state()
        if svc.media is not None:
            body["video"] = svc.media.stats()
        body["limits"] = svc.limits.view()  # per process; totals only, no names
        for name, counters in svc.extra_stats.items():
            body[name] = counters()
        return JsonResponse(body, status_code=200)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(user: User = Depends(require_user)) -> Response:  # noqa: B008
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            defs = schema.setdefault("components", {}).setdefault("schemas", {})
            defs.update(ingest.OPENAPI_SCHEMAS())
            defs.update(ingest_adler.OPENAPI_SCHEMAS())
            app.openapi_schema = schema
        return JsonResponse(app.openapi_schema)

    @app.get("/docs", include_in_schema=False)
    async def docs(user: User = Depends(require_user)) -> HTMLResponse:  # noqa: B008
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Einsatz-Cockpit API",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon.png",
        )

    @app.get("/docs/static/{name}", include_in_schema=False)
    async def docs_static(name: str, user: User = Depends(require_user)) -> Response:  # noqa: B008
        # Served from the installed package: the docs work without internet.
        if name not in _SWAGGER_FILES:
            raise ApiError(404, "not found", "name", name)
        return FileResponse(_SWAGGER_STATIC / name)
