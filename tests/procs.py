"""Run the real `cockpit` command as child processes, and always clean them up.

Every process gets its own stdout/stderr files (no pipe can fill up and stall it), a
free port, and an environment without the caller's `COCKPIT_*` variables. `Procs`
kills whatever is still running when the test ends (SIGTERM, then SIGKILL) and reaps
it, so no test leaves a server behind, even when it fails half-way.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    """A port nobody listens on right now (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cockpit_command() -> list[str]:
    """The installed `cockpit` script next to this interpreter, else `python -m cockpit.cli`."""
    script = Path(sys.executable).parent / "cockpit"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "cockpit.cli"]


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class Proc:
    """One running `cockpit …` process with its output in files."""

    def __init__(
        self, name: str, popen: subprocess.Popen[bytes], out: Path, err: Path, port: int | None
    ) -> None:
        self.name = name
        self.popen = popen
        self.out_path = out
        self.err_path = err
        self.port = port
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def url(self) -> str:
        assert self.port is not None, f"{self.name} has no port"
        return f"http://127.0.0.1:{self.port}"

    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def tail(self, lines: int = 30) -> str:
        """The end of both outputs, for assertion messages."""
        out = "\n".join(self.stdout().splitlines()[-lines:])
        err = "\n".join(self.stderr().splitlines()[-lines:])
        return f"--- {self.name} (pid {self.pid}) stdout:\n{out}\n--- stderr:\n{err}"

    def alive(self) -> bool:
        return self.popen.poll() is None

    def send(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def kill9(self) -> None:
        """SIGKILL, and reap it: the process is gone when this returns."""
        self.send(signal.SIGKILL)
        self.popen.wait(10)

    def wait(self, timeout: float) -> int | None:
        """The exit code, or None if it still runs after `timeout` seconds."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace_s: float = 10.0) -> int:
        """SIGTERM, then SIGKILL after `grace_s`; returns the exit code."""
        if self.alive():
            self.send(signal.SIGTERM)
            self.send(signal.SIGCONT)
            if self.wait(grace_s) is None:
                self.send(signal.SIGKILL)
        return self.popen.wait(10)


class Procs:
    """Starts `cockpit` processes for one test and ends all of them afterwards."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.running: list[Proc] = []
        self._n = 0

    def start(
        self,
        *args: str,
        name: str | None = None,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Proc:
        self._n += 1
        name = name or f"{args[0]}-{self._n}"
        out = self.workdir / f"{self._n:02d}-{name}.out"
        err = self.workdir / f"{self._n:02d}-{name}.err"
        argv = [*cockpit_command(), *args]
        if port is not None:
            argv += ["--port", str(port)]
        with out.open("wb") as fo, err.open("wb") as fe:
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=fo,
                stderr=fe,
                cwd=self.workdir,
                env=clean_env(env),
                start_new_session=True,  # a Ctrl-C at the terminal is not sent to it
            )
        proc = Proc(name, popen, out, err, port)
        self.running.append(proc)
        return proc

    def run(
        self,
        *args: str,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """A short command (user add, export, …) to completion; killed after `timeout`."""
        return subprocess.run(
            [*cockpit_command(), *args],
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            cwd=self.workdir,
            env=clean_env(env),
            timeout=timeout,
            check=False,
        )

    def close(self) -> None:
        for proc in self.running:
            if proc.alive():
                proc.send(signal.SIGTERM)
                proc.send(signal.SIGCONT)  # a stopped process would keep SIGTERM pending
        deadline = time.monotonic() + 10
        for proc in self.running:
            if proc.wait(max(0.1, deadline - time.monotonic())) is None:
                proc.send(signal.SIGKILL)
                proc.popen.wait(10)
        self.running.clear()


async def wait_healthy(proc: Proc, timeout: float) -> tuple[float, dict[str, Any]]:
    """Poll `/healthz` until it answers 200; returns (seconds since start, body).

    Fails at once (with the process's output) if the process exits instead.
    """
    deadline = proc.started + timeout
    last: str = "no answer"
    async with httpx.AsyncClient(base_url=proc.url, timeout=2.0) as c:
        while time.monotonic() < deadline:
            code = proc.popen.poll()
            if code is not None:
                raise AssertionError(f"{proc.name} exited with {code}\n{proc.tail()}")
            try:
                r = await c.get("/healthz")
            except httpx.HTTPError as exc:
                last = repr(exc)
            else:
                if r.status_code == 200:
                    return time.monotonic() - proc.started, r.json()
                last = f"{r.status_code} {r.text[:200]}"
            await asyncio.sleep(0.1)
    raise AssertionError(
        f"{proc.name}: /healthz not 200 within {timeout} s ({last})\n{proc.tail()}"
    )


async def healthz(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=5.0) as c:
        r = await c.get("/healthz")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


async def all_events(c: httpx.AsyncClient, page: int = 5000) -> list[dict[str, Any]]:
    """The whole recorded log, paging with `since`."""
    out: list[dict[str, Any]] = []
    since = 0
    while True:
        r = await c.get("/api/v1/events", params={"since": since, "limit": page})
        assert r.status_code == 200, r.text
        body = r.json()
        if not body["events"]:
            return out
        out.extend(body["events"])
        assert body["next"] > since, body["next"]
        since = body["next"]
