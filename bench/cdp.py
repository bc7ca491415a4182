"""Debian's Chromium driven over the DevTools protocol with nothing switched on but what a
bench needs: contexts, pages, `Runtime.evaluate`, uncaught exceptions.

Why not Playwright here: Playwright enables the Network domain on every page, so Chromium
forwards every server-sent event to the driver. With ten pages at 2,000 events/s that cost
about a third of a core (browser process and driver), on the machine the cockpit runs on,
and no tablet in the field pays it. The UI tests keep using Playwright.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import orjson
import websockets

__all__ = ["Browser", "CdpError", "Page"]


class CdpError(RuntimeError):
    pass


class Browser:
    """One headless Chromium process; `new_page` gives each page its own context (own
    cookies, own connection pool: pages do not share the 6-connections-per-host limit)."""

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self.proc: subprocess.Popen[bytes] | None = None
        self.profile = tempfile.mkdtemp(prefix="bench-chromium-")
        self.version = ""
        self._ws: Any = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._pages: dict[str, Page] = {}  # by session id
        self._reader: asyncio.Task[None] | None = None

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                self.executable,
                "--headless",
                "--no-sandbox",
                "--no-first-run",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its helpers go with it (killpg)
        )

    async def start(self, timeout_s: float = 30.0) -> None:
        self.proc = self._spawn()
        port_file = Path(self.profile) / "DevToolsActivePort"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            lines = port_file.read_text().split() if port_file.exists() else []
            if len(lines) == 2:
                break
            if self.proc.poll() is not None or loop.time() > deadline:
                raise CdpError(f"chromium did not start (exit {self.proc.poll()})")
            await asyncio.sleep(0.05)
        self._ws = await websockets.connect(
            f"ws://127.0.0.1:{lines[0]}{lines[1]}", max_size=None, ping_interval=None
        )
        self._reader = asyncio.create_task(self._read())
        self.version = (await self.send("Browser.getVersion"))["product"].split("/")[-1]

    async def _read(self) -> None:
        async for raw in self._ws:
            msg = orjson.loads(raw)
            fut = self._waiting.pop(msg.get("id", -1), None)
            if fut is not None:
                if not fut.done():
                    fut.set_result(msg)
                continue
            page = self._pages.get(msg.get("sessionId", ""))
            if page is not None and msg.get("method") == "Runtime.exceptionThrown":
                details = msg["params"]["exceptionDetails"]
                text = (details.get("exception") or {}).get("description") or details["text"]
                page.errors.append(str(text)[:300])

    async def send(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        i = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[i] = fut
        msg: dict[str, Any] = {"id": i, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        await self._ws.send(orjson.dumps(msg).decode())
        reply = await asyncio.wait_for(fut, 120)
        if "error" in reply:
            raise CdpError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply["result"]
        return result

    async def new_page(self, width: int = 1280, height: int = 800) -> Page:
        ctx = (await self.send("Target.createBrowserContext"))["browserContextId"]
        target = (
            await self.send(
                "Target.createTarget",
                {
                    "url": "about:blank",
                    "browserContextId": ctx,
                    "width": width,
                    "height": height,
                    "newWindow": True,
                },
            )
        )["targetId"]
        session = (await self.send("Target.attachToTarget", {"targetId": target, "flatten": True}))[
            "sessionId"
        ]
        page = Page(self, ctx, target, session)
        self._pages[session] = page
        # Runtime only for uncaught exceptions; the page's own console output stays there.
        await self.send("Runtime.enable", session=session)
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session,
        )
        await self.send("Emulation.setTimezoneOverride", {"timezoneId": "Europe/Berlin"}, session)
        return page

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc is not None else []

    async def close(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self.send("Browser.close")
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        if self.proc is not None:
            try:
                await asyncio.to_thread(self.proc.wait, 5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                await asyncio.to_thread(self.proc.wait, 5)
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    def __init__(self, browser: Browser, context: str, target: str, session: str) -> None:
        self.browser = browser
        self.context = context
        self.target = target
        self.session = session
        self.errors: list[str] = []

    async def evaluate(self, js: str, arg: Any = None) -> Any:
        """`js` is a function expression, called with `arg` (Playwright's convention)."""
        expr = f"({js})({orjson.dumps(arg).decode()})"
        r = await self.browser.send(
            "Runtime.evaluate",
            {"expression": expr, "awaitPromise": True, "returnByValue": True},
            self.session,
        )
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise CdpError((d.get("exception") or {}).get("description") or d.get("text"))
        return r["result"].get("value")

    async def goto(self, url: str, timeout_s: float = 90.0) -> None:
        await self.browser.send("Page.navigate", {"url": url}, self.session)
        await self.wait_for(
            f"() => location.href.startsWith({orjson.dumps(url).decode()})"
            " && document.readyState !== 'loading'",
            timeout_s,
        )

    async def wait_for(self, js: str, timeout_s: float, poll_s: float = 0.1) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            with contextlib.suppress(CdpError):  # a navigation in progress
                # Truthy in the page (a function is truthy there, but has no JSON value).
                if await self.evaluate(f"() => !!({js})()"):
                    return
            if loop.time() > deadline:
                raise CdpError(f"timed out after {timeout_s:g} s waiting for {js[:80]}")
            await asyncio.sleep(poll_s)

    async def close(self) -> None:
        self.browser._pages.pop(self.session, None)
        with contextlib.suppress(Exception):
            await self.browser.send("Target.closeTarget", {"targetId": self.target})
        with contextlib.suppress(Exception):
            await self.browser.send(
                "Target.disposeBrowserContext", {"browserContextId": self.context}
            )
