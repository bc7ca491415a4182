"""Start the real cockpit app under uvicorn on a free port, inside the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from cockpit.auth import AuthStore
from cockpit.server import create_app
from cockpit.settings import Settings, load_settings


@dataclass
class Served:
    url: str
    settings: Settings
    tokens: dict[str, str] = field(default_factory=dict)  # device -> token
    passwords: dict[str, str] = field(default_factory=dict)  # user -> password
    app: Any = None

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://")

    def device(self, name: str = "robot") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    async def login(self, client: httpx.AsyncClient, user: str = "el") -> None:
        r = await client.post(
            "/api/v1/session", json={"username": user, "password": self.passwords[user]}
        )
        assert r.status_code == 200, r.text


def prepare(data_dir: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Users of every role and devices for two feeds, with fresh secrets."""
    passwords = {
        "el": secrets.token_urlsafe(12),  # commander
        "viewer": secrets.token_urlsafe(12),
        "trainer": secrets.token_urlsafe(12),
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    with AuthStore(data_dir / "auth.sqlite") as auth:
        auth.add_user("el", "commander", passwords["el"])
        auth.add_user("viewer", "viewer", passwords["viewer"])
        auth.add_user("trainer", "trainer", passwords["trainer"])
        tokens = {
            "robot": auth.add_device("robot", ["telemetry"]),
            "weather": auth.add_device("weather", ["cap"]),
            "uav": auth.add_device("uav", ["video"]),
        }
    return tokens, passwords


@contextlib.asynccontextmanager
async def serve(
    data_dir: Path, replay: Path | None = None, exercise: Any = None, **overrides: Any
) -> AsyncIterator[Served]:
    tokens, passwords = prepare(data_dir)
    settings = load_settings(
        None,
        data_dir=data_dir,
        port=0,
        incident=overrides.pop("incident", "test-incident"),
        **overrides,
    )
    app = create_app(settings, replay=replay, exercise=exercise)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        timeout_graceful_shutdown=1,
        ws_max_size=settings.max_body_bytes,
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Served(f"http://127.0.0.1:{port}", settings, tokens, passwords, app)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@contextlib.contextmanager
def serve_in_thread(data_dir: Path, **overrides: Any) -> Any:
    """The same server on its own loop in a thread, for synchronous tests (hypothesis)."""
    import threading

    ready: dict[str, Any] = {}
    stop = threading.Event()

    async def main() -> None:
        async with serve(data_dir, **overrides) as served:
            ready["served"] = served
            while not stop.is_set():
                await asyncio.sleep(0.05)

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    for _ in range(400):
        if "served" in ready:
            break
        thread.join(0.025)
    assert "served" in ready, "server did not start"
    try:
        yield ready["served"]
    finally:
        stop.set()
        thread.join(15)
