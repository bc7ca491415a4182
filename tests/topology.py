"""A control room's processes, really started, for tests and benchmarks (issue 8).

`control_room(work, redis_url)` starts one recorder, two web workers and one media
process (`cockpit serve --role …`, `cockpit media`) on one Redis and one data dir, and
Debian's nginx in front of them with `docker/nginx.conf.template` — the file the compose
deployment runs. Everything is stopped and the incident's Redis keys deleted on exit.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis

from tests.procs import Proc, Procs, free_port
from tests.serving import prepare

__all__ = [
    "NGINX",
    "TEMPLATE",
    "WORKERS",
    "ControlRoom",
    "commander_page",
    "control_room",
    "render",
]

TEMPLATE = Path(__file__).resolve().parent.parent / "docker" / "nginx.conf.template"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
WORKERS = ("web1", "web2")
START_TIMEOUT_S = 40.0  # four Python processes starting at once on two cores


def render(template: str, values: dict[str, str]) -> str:
    """envsubst with a list of names, as the compose service runs it: nginx's own
    `$variables` are left alone."""

    def one(m: re.Match[str]) -> str:
        return values[m.group(1)] if m.group(1) in values else m.group(0)

    return re.sub(r"\$\{([A-Z0-9_]+)\}", one, template)


@dataclass
class ControlRoom:
    procs: Procs
    data: Path
    incident: str
    tokens: dict[str, str]
    passwords: dict[str, str]
    proxy: str
    web: dict[str, Proc]
    recorder: Proc
    media: Proc
    nginx: subprocess.Popen[bytes]
    nginx_err: Path
    sfu: Proc | None = None

    def processes(self) -> dict[str, int]:
        """Name -> pid of every process of the deployment (nginx's master included)."""
        out = {p.name: p.pid for p in (self.recorder, *self.web.values(), self.media)}
        out["nginx"] = self.nginx.pid
        return out


def commander_page(browser: Any, room: ControlRoom, worker: str | None = None) -> Any:
    """A commander's tablet logged in through the proxy (on `worker`, by its cookie, if
    given); `page.errors` collects the page's uncaught exceptions."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="de-DE")
    if worker is not None:
        context.add_cookies([{"name": "cockpit_worker", "value": worker, "url": room.proxy}])
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.goto(room.proxy + "/login")
    page.fill("#u", "el")
    page.fill("#p", room.passwords["el"])
    page.click("button[type=submit]")
    page.wait_for_url(room.proxy + "/")
    page.wait_for_function("window.cockpit && window.cockpit.connected", timeout=20000)
    return page


def wait_healthy(url: str, alive: object, deadline: float, what: str) -> None:
    """Poll `url/healthz` until 200; fail at once if the process is gone."""
    last = "no answer"
    while time.monotonic() < deadline:
        running = alive.alive() if isinstance(alive, Proc) else alive.poll() is None  # type: ignore[attr-defined]
        if not running:
            tail = alive.tail() if isinstance(alive, Proc) else ""
            raise AssertionError(f"{what} exited before answering\n{tail}")
        try:
            r = httpx.get(url + "/healthz", timeout=2)
            if r.status_code == 200:
                return
            last = f"{r.status_code} {r.text[:200]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.2)
    raise AssertionError(f"{what}: no healthy answer ({last})")


@contextlib.contextmanager
def control_room(
    work: Path, redis_url: str, env: dict[str, str] | None = None, *, sfu: bool = False
) -> Iterator[ControlRoom]:
    """The topology of docs/deployment.md on this machine; `env` goes to every process.

    With `sfu`, a second cockpit (its own incident, in-memory bus, the same users and
    device tokens) stands in for the SFU: it takes WHIP and serves WHEP as MediaMTX would;
    the media process relays every stream to it and the pages play from it via /sfu/."""
    data = work / "data"
    tokens, passwords = prepare(data)
    incident = f"room-{uuid.uuid4().hex[:8]}"
    base = {"COCKPIT_REDIS_URL": redis_url, "COCKPIT_INCIDENT": incident, **(env or {})}
    procs = Procs(work / "procs")
    run = work / "nginx"
    run.mkdir(parents=True, exist_ok=True)
    nginx: subprocess.Popen[bytes] | None = None
    try:
        common = ("--data-dir", str(data))
        sfu_proc: Proc | None = None
        media_env = dict(base)
        web_env = dict(base)
        if sfu:
            sfu_proc = procs.start(
                "serve", *common, name="sfu", port=free_port(),
                env={**(env or {}), "COCKPIT_INCIDENT": f"{incident}-sfu"},
            )  # fmt: skip
            media_env["COCKPIT_VIDEO_RELAY_URL"] = f"{sfu_proc.url}/whip/{{stream}}"
            media_env["COCKPIT_VIDEO_RELAY_TOKEN"] = tokens["uav"]
            web_env["COCKPIT_VIDEO_WHEP_URL"] = "/sfu/whep/{stream}"
        recorder = procs.start(
            "serve", "--role", "recorder", *common, name="recorder", port=free_port(), env=base
        )
        web = {
            name: procs.start(
                "serve",
                "--role",
                "web",
                *common,
                name=name,
                port=free_port(),
                env={**web_env, "COCKPIT_WORKER_NAME": name},
            )
            for name in WORKERS
        }
        media = procs.start("media", *common, name="media", port=free_port(), env=media_env)
        deadline = time.monotonic() + START_TIMEOUT_S
        for proc in (recorder, *web.values(), media, *([sfu_proc] if sfu_proc else [])):
            wait_healthy(proc.url, proc, deadline, proc.name)

        listen = free_port()
        conf = run / "nginx.conf"
        conf.write_text(
            render(
                TEMPLATE.read_text(),
                {
                    "COCKPIT_WEB1": f"127.0.0.1:{web['web1'].port}",
                    "COCKPIT_WEB2": f"127.0.0.1:{web['web2'].port}",
                    "COCKPIT_MEDIA": f"127.0.0.1:{media.port}",
                    # Without an SFU, the discard port: /sfu/ answers 502.
                    "COCKPIT_SFU": f"127.0.0.1:{sfu_proc.port}" if sfu_proc else "127.0.0.1:9",
                    "NGINX_LISTEN": f"127.0.0.1:{listen}",
                    "NGINX_RUN": str(run),
                },
            )
        )
        # As root, nginx's workers would run as `nobody`, who cannot enter pytest's folders.
        globals_ = "daemon off;" + (" user root;" if os.geteuid() == 0 else "")
        nginx_err = run / "stderr"
        with nginx_err.open("wb") as err:
            nginx = subprocess.Popen(
                [NGINX, "-c", str(conf), "-p", str(run), "-g", globals_],
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )
        proxy = f"http://127.0.0.1:{listen}"
        wait_healthy(proxy, nginx, time.monotonic() + 10, f"nginx: {nginx_err.read_text()}")
        yield ControlRoom(
            procs, data, incident, tokens, passwords, proxy, web, recorder, media, nginx,
            nginx_err, sfu_proc,
        )  # fmt: skip
    finally:
        if nginx is not None:
            nginx.terminate()
            try:
                nginx.wait(10)
            except subprocess.TimeoutExpired:
                nginx.kill()
        procs.close()
        with contextlib.closing(redis.Redis.from_url(redis_url)) as client:
            keys = list(client.scan_iter(f"cockpit:{incident}:*"))
            if keys:
                client.delete(*keys)
