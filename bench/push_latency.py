"""Push latency ingest -> browser, against a Dash polling baseline, and map fluidity.

Prints ONE JSON object to stdout; progress goes to stderr.

    .venv/bin/python bench/push_latency.py              # 10 s per case (~5-6 min)
    .venv/bin/python bench/push_latency.py --quick      # 4 s per case, no diagnostics (~3 min)
    .venv/bin/python bench/push_latency.py --seconds 6 --rates 200 --pages 4
    .venv/bin/python bench/push_latency.py --rates 200 --breakdown  # what-if

What runs: one `cockpit serve --port P --data-dir D` subprocess (memory bus, recorder on,
defaults) with users and a device token made by `tests.serving.prepare`; the polling
baseline `bench/polling_baseline.py` as a second subprocess; Debian's Chromium
(/usr/bin/chromium, never a downloaded one) over the DevTools protocol with bench/cdp.py
(Playwright would forward every server-sent event to its driver): one browser, a separate
context per page (own cookie, own SSE connection: one context would hit the browser's
6-connections-per-host limit), 1280x800. Everything shares the machine's 2 cores.

Load: the bench process posts native telemetry to `POST /api/v1/ingest/telemetry`
(device token, JSON list, <= 500 messages a request) every 20 ms tick, paced against the
absolute schedule (a late tick sends more), at most 16 requests in flight. One message =
one position (no readings, no status) = one `position` event = one entity delta on the
stream. N entities report in turn, each once per second, at a new position each time
(a small circle): 200 ev/s = 200 entities, 2,000 ev/s = 2,000 entities, kinds
unit/drone/robot in turn (at 2,000 every point layer has > 300 features: canvas dots,
redrawn at most every 250 ms; at 200 each has ~67 DOM symbols). `observed_at` = wall
clock just before the POST (microseconds, UTC, ...Z). The load runs only during a case.

Push: each commander page (`/`, logged in by POST /api/v1/session in its context) gets a
`window.cockpit.listeners` hook that stores, for every entity upsert or patch whose observed_at
lies in the measured window, `(performance.timeOrigin + performance.now())/1000 -
d.d.observed_at`. Expected = the window's messages that got their 202; lost = expected -
seen, per page, after waiting for stragglers (until all are in, or no page got one more
for 2.5 s, at most 10 s). Pages also record requestAnimationFrame intervals, long tasks,
and stream.js's renders and reconnects (a reconnect = a resync with a new snapshot).

Polling baseline: the same load against pages of `bench/polling_baseline.py`
(dcc.Interval 250 ms -> async server callback -> GET /api/v1/situation?tracks=false ->
{id: observed_at} in a dcc.Store -> a clientside callback records now - observed_at the
first time an entity's value changes). Pages opened together start with a backlog of
polls, so the bench waits until each shows >= 2 answers a second (at most 20 s; 8 s with
--quick) and reports how long that took, or that it never happened.

Cases per rate: `sse_no_browser` (a Python SSE client in this process: the server and
the connection alone) and `bare_browser_1` (a page on the same origin with only an
EventSource and the same hook: no Dash, no map) unless --no-diagnostics/--quick; then
`push_1`, `push_10` (the first page plus 9), `map_1` (one commander page with the
frame probe: a requestAnimationFrame loop that itself makes a page draw 60 frames a
second, so never on the latency cases), `polling_1`, `polling_10`. Each: 1 s idle
CPU sample, arm the pages, warm-up with the load on, `--seconds` measured. CPU % over the
window from /proc (100 % = one core): the cockpit server, the polling app, Chromium (all
processes of the browser tree), this bench process (the browser's client) and the load
process (the load generator runs in a process of its own, so that this one's /proc reads
and browser traffic never delay a send after its `observed_at` was stamped).

Map fluidity: the `map_1` case at 2,000 ev/s (2,000 entities moving) on one commander
page: frame p50/p95/p99/max, fps, long tasks, and delta arrival -> first animation frame
after stream.js handed the layer to assets/livemap.js (`cockpitLive.points`, wrapped;
stream.js hands layers over at most every 250 ms, canvas dots every second).

What-if for the report (off by default, never part of the figures): --breakdown adds the
1-page push case with the tracks layer / all live map layers taken off the map. (The
server sets TCP_NODELAY itself since the what-if that found Nagle on.)

Clock: sender and browser share the machine's clock; the page's timeOrigin + now() is
compared with time.time() before each case (best of 7 round trips: `clock`).

Cleanup: browser, both subprocesses (SIGTERM, then SIGKILL) and the
temp dir go away at the end, also on an error, Ctrl-C or SIGTERM; `leaks` says so.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import math
import multiprocessing
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import orjson  # noqa: E402

from bench import cdp  # noqa: E402
from bench.common import git_commit  # noqa: E402
from tests.procs import Procs, clean_env, free_port, wait_healthy  # noqa: E402
from tests.serving import prepare  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
TICK_S = 0.02
MAX_IN_FLIGHT = 16
MAX_BATCH = 500  # messages per POST (the server's max_batch is 1,000)
KINDS = ("unit", "drone", "robot")
CENTER = (51.5270, 7.4445)  # the cockpit's default map centre (settings.map_center)
PAGES_MANY = 10
DRAIN_S = 10.0
TARGETS = {
    "push_p99_ms_at_200_eps_1_browser": 20.0,
    "push_p99_ms_at_2000_eps_10_browsers": 100.0,
    "push_vs_polling_p99_factor": 5.0,
}
_HARMLESS = ("data:", "blob:", "node:", "about:")  # node: = plotly.js probing for Node

_t_start = time.perf_counter()


def log(msg: str) -> None:
    print(f"[push {time.perf_counter() - _t_start:6.1f}s] {msg}", file=sys.stderr, flush=True)


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- CPU from /proc -------------------------------------------------------------------

_TCK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[str, int, float] | None:
    """(comm, ppid, cpu seconds) of a process, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw.rsplit(")", 1)[1].split()
    return comm, int(fields[1]), (int(fields[11]) + int(fields[12])) / _TCK


def _all_procs() -> dict[int, tuple[str, int, float]]:
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                out[int(name)] = st
    return out


def chromium_pids(procs: dict[int, tuple[str, int, float]] | None = None) -> list[int]:
    """Every process of the browsers this bench started (descendants of this process
    whose name says chrom*, and their descendants)."""
    procs = procs if procs is not None else _all_procs()
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    out: list[int] = []
    stack = [os.getpid()]
    inside: set[int] = set()
    while stack:
        pid = stack.pop()
        for child in children.get(pid, []):
            name = procs[child][0].lower()
            if child in inside or "chrom" in name or "headless" in name:
                inside.add(child)
                out.append(child)
            stack.append(child)
    return out


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def sweep_browser(profile_dir: str | None, wait_s: float = 5.0) -> list[int]:
    """Processes of our browser still alive after it closed: wait, then SIGKILL them.
    Only processes whose command line names this launch's own profile dir."""
    if not profile_dir:
        return []
    deadline = time.monotonic() + wait_s
    while True:
        left = [p for p in _all_procs() if profile_dir in _cmdline(p)]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return left


class CpuWindow:
    """CPU seconds of named process groups between start() and stop(), as % of a core."""

    def __init__(self, groups: dict[str, Any]) -> None:
        self.groups = groups  # name -> callable returning a list of pids
        self.t0 = 0.0
        self.c0: dict[str, dict[int, float]] = {}

    def _sample(self) -> dict[str, dict[int, float]]:
        procs = _all_procs()
        out: dict[str, dict[int, float]] = {}
        for name, pids in self.groups.items():
            out[name] = {p: procs[p][2] for p in pids(procs) if p in procs}
        return out

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.c0 = self._sample()

    def stop(self) -> dict[str, float | None]:
        c1 = self._sample()
        dt = time.monotonic() - self.t0
        out: dict[str, float | None] = {}
        for name in self.groups:
            before, after = self.c0.get(name, {}), c1.get(name, {})
            if not after:
                out[name] = None
                continue
            used = sum(v - before.get(p, 0.0) for p, v in after.items())
            out[name] = round(100 * used / dt, 1)
        return out


# --- statistics -------------------------------------------------------------------------


def pct(sorted_values: list[float], p: float) -> float | None:
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * p
    lo, hi = math.floor(k), math.ceil(k)
    v = sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)
    return round(v, 2)


def summary_ms(values_s: list[float], scale: float = 1000.0) -> dict[str, Any]:
    v = sorted(x * scale for x in values_s)
    return {
        "n": len(v),
        "p50": pct(v, 0.50),
        "p95": pct(v, 0.95),
        "p99": pct(v, 0.99),
        "max": round(v[-1], 2) if v else None,
        "min": round(v[0], 2) if v else None,
    }


# --- load generator ---------------------------------------------------------------------


class Load:
    """Native telemetry at `rate` messages/s for `entities` entities, each once per
    `entities / rate` seconds, at a new position each time."""

    def __init__(self, url: str, token: str, *, entities: int, rate: float, prefix: str) -> None:
        self.url = url
        self.token = token
        self.entities = entities
        self.rate = rate
        self.prefix = prefix
        self.window = (math.inf, -math.inf)
        self.sent = 0
        self.acked = 0
        self.errors = 0
        self.in_window_sent = 0
        self.in_window_acked = 0
        self.max_in_flight_seen = 0
        self.late_ticks = 0  # ticks that started more than a tick late
        self.ack_ms: list[float] = []
        self.pid: int | None = None  # the process that sends, once started
        cols = math.ceil(math.sqrt(entities * 2))
        self.base = [
            (
                CENTER[0] - 0.008 + 0.016 * ((i // cols) + 0.5) / math.ceil(entities / cols),
                CENTER[1] - 0.015 + 0.030 * ((i % cols) + 0.5) / cols,
            )
            for i in range(entities)
        ]
        self.reports = [0] * entities

    def _message(self, i: int, observed: str) -> dict[str, Any]:
        k = self.reports[i]
        self.reports[i] = k + 1
        lat0, lon0 = self.base[i]
        a = 0.35 * k + i  # a step along a small circle (~30 m): a new position each time
        return {
            "entity": f"{self.prefix}-{i:04d}",
            "kind": KINDS[i % len(KINDS)],
            "observed_at": observed,
            "position": {
                "lat": round(lat0 + 0.0003 * math.sin(a), 7),
                "lon": round(lon0 + 0.00045 * math.cos(a), 7),
            },
        }

    async def run(self, stop: asyncio.Event) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        limits = httpx.Limits(
            max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT
        )
        tasks: set[asyncio.Task[None]] = set()
        async with httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=30.0, limits=limits
        ) as client:

            async def post(body: bytes, n: int, in_window: bool) -> None:
                t0 = time.perf_counter()
                try:
                    r = await client.post("/api/v1/ingest/telemetry", content=body)
                except httpx.HTTPError as exc:
                    self.errors += n
                    if self.errors <= n:
                        log(f"load: {exc!r}")
                    return
                if r.status_code != 202:
                    self.errors += n
                    if self.errors <= n:
                        log(f"load: {r.status_code} {r.text[:200]}")
                    return
                self.acked += n
                self.ack_ms.append((time.perf_counter() - t0) * 1000)
                if in_window:
                    self.in_window_acked += n

            start = time.monotonic()
            k = 0
            try:
                while not stop.is_set():
                    now_m = time.monotonic()
                    due = int(self.rate * (now_m - start))
                    n = due - self.sent
                    if n > 0 and len(tasks) < MAX_IN_FLIGHT:
                        t = time.time()
                        observed = iso(t)
                        t_us = round(t, 6)
                        in_window = self.window[0] <= t_us <= self.window[1]
                        first = self.sent
                        msgs = [
                            self._message((first + j) % self.entities, observed) for j in range(n)
                        ]
                        self.sent += n
                        if in_window:
                            self.in_window_sent += n
                        for c in range(0, n, MAX_BATCH):  # the server takes <= 1,000
                            part = msgs[c : c + MAX_BATCH]
                            task = asyncio.create_task(
                                post(orjson.dumps(part), len(part), in_window)
                            )
                            tasks.add(task)
                            task.add_done_callback(tasks.discard)
                        self.max_in_flight_seen = max(self.max_in_flight_seen, len(tasks))
                    k += 1
                    nxt = start + k * TICK_S
                    delay = nxt - time.monotonic()
                    if delay < -TICK_S:
                        self.late_ticks += 1
                        k = int((time.monotonic() - start) / TICK_S) + 1
                        delay = start + k * TICK_S - time.monotonic()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), max(0.0, delay))
            finally:
                if tasks:
                    await asyncio.wait(tasks, timeout=15)
                for task in list(tasks):
                    task.cancel()

    # The load runs in a process of its own: this process also reads /proc for the CPU
    # figures and talks to the browser, and a stall here between stamping `observed_at`
    # and sending would count as the cockpit's latency.
    _RESULTS = (
        "sent",
        "acked",
        "errors",
        "in_window_sent",
        "in_window_acked",
        "max_in_flight_seen",
        "late_ticks",
        "ack_ms",
    )

    async def run_elsewhere(self, stop: asyncio.Event) -> None:
        """`run` in a child process until `stop`; its counters are copied back here."""
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        params = (self.url, self.token, self.entities, self.rate, self.prefix, self.window)
        proc = ctx.Process(target=_load_child, args=(child, params), daemon=True)
        proc.start()
        self.pid = proc.pid
        try:
            await asyncio.to_thread(parent.recv)  # started
            await stop.wait()
            parent.send("stop")
            if not await asyncio.to_thread(parent.poll, 30):
                raise RuntimeError("load process did not report")
            result = parent.recv()
            for name in self._RESULTS:
                setattr(self, name, result[name])
        finally:
            await asyncio.to_thread(proc.join, 10)
            if proc.is_alive():
                proc.kill()


def _load_child(conn: Any, params: tuple[Any, ...]) -> None:
    # No collector pauses between stamping observed_at and sending (a case lasts
    # seconds; what it allocates is small).
    gc.disable()
    url, token, entities, rate, prefix, window = params
    load = Load(url, token, entities=entities, rate=rate, prefix=prefix)
    load.window = window

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def wait_for_stop() -> None:
            conn.recv()
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=wait_for_stop, daemon=True).start()
        conn.send("started")
        await load.run(stop)

    asyncio.run(main())
    conn.send({name: getattr(load, name) for name in Load._RESULTS})


# --- the browser side -------------------------------------------------------------------

# Installed on a commander page once the stream is live.
_PUSH_HOOK = """
(cfg) => {
  const C = window.cockpit;
  const epoch = () => (performance.timeOrigin + performance.now()) / 1000;
  const B = window.__bench = {
    from: Infinity, to: -Infinity, lat: [], all: 0, msgs: 0, msgDeltas: 0,
    frames: [], lastFrame: null, longTasks: [], layerLat: [], ingestLayerLat: [],
    setPropsMs: [], pending: {}, layerTiming: !!cfg.layerTiming,
  };
  const LAYER = {unit: "units", drone: "drones", robot: "robots", sensor: "sensors",
                 person: "persons"};
  C.listeners.push((msg) => {
    const now = epoch();
    let n = 0;
    for (const d of msg.deltas) {
      if (d.l !== "entities" || d.op === "remove" || !d.d) continue;
      const t = d.d.observed_at;
      if (t == null) continue;
      B.all++;
      if (t < B.from || t > B.to) continue;
      n++;
      B.lat.push(now - t);
      if (B.layerTiming) {
        const layer = LAYER[C.picture.entities.get(d.id).kind];
        if (layer) (B.pending[layer] || (B.pending[layer] = [])).push(now, t);
      }
    }
    if (n) { B.msgs++; B.msgDeltas += n; }
  });
  // assets/livemap.js draws the point layers (stream.js hands them over at most every
  // 250 ms, 1 s for canvas dots): the first animation frame after that call paints it.
  const live = window.cockpitLive;
  const orig = live.points;
  live.points = function (name) {
    const t0 = performance.now();
    const r = orig.apply(this, arguments);
    const t1 = performance.now();
    const waiting = B.pending[name];
    if (B.layerTiming && waiting && waiting.length) {
      B.pending[name] = [];
      B.setPropsMs.push(t1 - t0);
      requestAnimationFrame(() => {
        const done = epoch();
        for (let i = 0; i < waiting.length; i += 2) {
          B.layerLat.push(done - waiting[i]);
          B.ingestLayerLat.push(done - waiting[i + 1]);
        }
      });
    }
    return r;
  };
  if (cfg.frames) {
  __FRAMES__
  }
  return true;
}
"""

# Frame timing and long tasks, on any page (push or polling).
_FRAMES = """
  const FB = window.__bench;
  const frame = (ts) => {
    const now = (performance.timeOrigin + ts) / 1000;
    if (FB.lastFrame !== null && now >= FB.from && now <= FB.to) FB.frames.push(ts - FB.lastFrame);
    FB.lastFrame = ts;
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const t = (performance.timeOrigin + e.startTime) / 1000;
        if (t >= FB.from && t <= FB.to) FB.longTasks.push(e.duration);
      }
    }).observe({type: "longtask", buffered: false});
  } catch (err) { FB.noLongTasks = String(err); }
"""

_BARE_HOOK = """
() => new Promise((resolve, reject) => {
  const epoch = () => (performance.timeOrigin + performance.now()) / 1000;
  const B = window.__bench = {
    from: Infinity, to: -Infinity, lat: [], all: 0, msgs: 0, msgDeltas: 0,
    frames: [], lastFrame: null, longTasks: [],
  };
  __FRAMES__
  const es = new EventSource("/api/v1/stream");
  B.es = es;
  es.addEventListener("snapshot", () => resolve(true));
  es.addEventListener("delta", (ev) => {
    const now = epoch();
    const msg = JSON.parse(ev.data);
    let n = 0;
    for (const d of msg.deltas) {
      if (d.l !== "entities" || d.op === "remove" || !d.d) continue;
      const t = d.d.observed_at;
      if (t == null) continue;
      B.all++;
      if (t < B.from || t > B.to) continue;
      n++;
      B.lat.push(now - t);
    }
    if (n) { B.msgs++; B.msgDeltas += n; }
  });
  es.onerror = () => { B.errors = (B.errors || 0) + 1; };
  setTimeout(() => reject(new Error("no snapshot in 60 s")), 60000);
})
"""

_POLL_HOOK = """
(cfg) => {
  const B = window.__bench || (window.__bench = {from: Infinity, to: -Infinity, lat: [], all: 0});
  B.frames = []; B.lastFrame = null; B.longTasks = [];
  if (cfg.frames) {
  __FRAMES__
  }
  return true;
}
"""

_ARM = """
([from, to]) => {
  const B = window.__bench;
  B.from = from; B.to = to;
  B.lat = []; B.frames = []; B.longTasks = [];
  B.layerLat = []; B.ingestLayerLat = []; B.setPropsMs = []; B.pending = {};
  B.msgs = 0; B.msgDeltas = 0;
  B.stats0 = window.cockpit ? Object.assign({}, window.cockpit.stats) : null;
  return true;
}
"""

_COUNT = "() => window.__bench.lat.length"

# What-if: layers taken off the map (assets/livemap.js keeps drawing into them, nothing is
# shown); "*" takes them all.
_SKIP_LAYERS = """
(skip) => {
  const live = window.cockpitLive;
  for (const [name, group] of Object.entries(live.groups)) {
    if (skip.includes(name) || skip.includes("*")) group.remove();
  }
  if (skip.includes("*")) live.dotLayer.remove();
}
"""

_COLLECT = """
() => {
  const B = window.__bench;
  const C = window.cockpit;
  return {
    lat: B.lat, frames: B.frames, longTasks: B.longTasks,
    layerLat: B.layerLat || [], ingestLayerLat: B.ingestLayerLat || [],
    setPropsMs: B.setPropsMs || [], msgs: B.msgs || 0, msgDeltas: B.msgDeltas || 0,
    stats: C ? Object.assign({}, C.stats) : null,
    stats0: B.stats0 || null,
    connected: C ? C.connected : null,
    entities: C && C.picture ? C.picture.entities.size : null,
    polls: B.polls || null,
  };
}
"""


_LOGIN = """
async (password) => {
  const r = await fetch("/api/v1/session", {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({username: "el", password: password}),
  });
  return r.status;
}
"""

# What the page fetched from anywhere but the cockpit (nothing may come from outside).
_OUTSIDE = """
(allowed) => performance.getEntriesByType("resource").map((e) => e.name)
  .filter((n) => !allowed.some((a) => n.startsWith(a)))
"""


class Page:
    """One page in its own browser context, with the bench's hooks in it."""

    def __init__(self, page: cdp.Page, kind: str, origin: str) -> None:
        self.page = page
        self.kind = kind
        self.origin = origin
        self.outside: list[str] = []
        self.frames = True  # whether the page records its animation frames

    @property
    def errors(self) -> list[str]:
        return self.page.errors

    async def arm(self, t_from: float, t_to: float) -> None:
        await self.page.evaluate(_ARM, [t_from, t_to])

    async def count(self) -> int:
        return int(await self.page.evaluate(_COUNT))

    async def collect(self) -> dict[str, Any]:
        self.outside = list(await self.page.evaluate(_OUTSIDE, [self.origin, *_HARMLESS]))
        return dict(await self.page.evaluate(_COLLECT))

    async def close(self) -> None:
        await self.page.close()


class SseProbe:
    """The same measurement without a browser: a Python client on /api/v1/stream in
    this process. Shows what the server and the connection add on their own."""

    def __init__(self, url: str, password: str) -> None:
        self.url = url
        self.password = password
        self.kind = "sse"
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.window = (math.inf, -math.inf)
        self.lat: list[float] = []
        self.msgs = 0
        self.msg_deltas = 0
        self.connected = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.connected.wait(), 30)

    async def _run(self) -> None:
        timeout = httpx.Timeout(10.0, read=None)
        async with httpx.AsyncClient(base_url=self.url, timeout=timeout) as c:
            r = await c.post("/api/v1/session", json={"username": "el", "password": self.password})
            r.raise_for_status()
            async with c.stream("GET", "/api/v1/stream") as resp:
                event = ""
                async for line in resp.aiter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                        continue
                    if not line.startswith("data: "):
                        continue
                    if event == "snapshot":
                        self.connected.set()
                    if event != "delta":
                        continue
                    now = time.time()
                    lo, hi = self.window
                    n = 0
                    for d in orjson.loads(line[6:])["deltas"]:
                        data = d.get("d")
                        if d["l"] != "entities" or d["op"] == "remove" or not data:
                            continue
                        t = data.get("observed_at")
                        if t is None or t < lo or t > hi:
                            continue
                        self.lat.append(now - t)
                        n += 1
                    if n:
                        self.msgs += 1
                        self.msg_deltas += n

    async def arm(self, t_from: float, t_to: float) -> None:
        self.window = (t_from, t_to)
        self.lat = []
        self.msgs = self.msg_deltas = 0

    async def count(self) -> int:
        if self.task is not None and self.task.done():
            self.task.result()
        return len(self.lat)

    async def collect(self) -> dict[str, Any]:
        return {
            "lat": list(self.lat),
            "frames": [],
            "longTasks": [],
            "layerLat": [],
            "ingestLayerLat": [],
            "setPropsMs": [],
            "msgs": self.msgs,
            "msgDeltas": self.msg_deltas,
            "stats": None,
            "connected": True,
            "entities": None,
            "polls": None,
        }

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task


async def open_page(
    browser: cdp.Browser,
    url: str,
    kind: str,
    password: str,
    *,
    layer_timing: bool = False,
    frames: bool = True,
) -> Page:
    page = await browser.new_page(1280, 800)
    p = Page(page, kind, url)
    p.frames = frames
    try:
        if kind in ("push", "bare"):
            # Log in from the page itself: its context gets the session cookie.
            await page.goto(url + "/healthz")
            status = await page.evaluate(_LOGIN, password)
            if status != 200:
                raise RuntimeError(f"log-in failed: {status}")
        if kind == "bare":
            # Same origin and cookie, no Dash, no map: EventSource + the same hook only.
            await page.evaluate(_BARE_HOOK.replace("__FRAMES__", _FRAMES))
        elif kind == "push":
            await page.goto(url + "/")
            await page.wait_for(
                "() => window.cockpit && window.cockpit.connected && window.cockpit.picture"
                " && window.cockpitLive && window.cockpitLive.map"
                " && window.dash_clientside && window.dash_clientside.set_props",
                90,
            )
            await page.evaluate(
                _PUSH_HOOK.replace("__FRAMES__", _FRAMES),
                {"layerTiming": layer_timing, "frames": frames},
            )
        else:
            await page.goto(url + "/")
            # Dash is up once the layout is rendered; not waiting for a poll's answer,
            # which never comes when the polls pile up (the 10-page case at 2,000).
            await page.wait_for(
                "() => document.getElementById('sink') && window.dash_clientside", 90
            )
            await page.evaluate(_POLL_HOOK.replace("__FRAMES__", _FRAMES), {"frames": frames})
    except BaseException:
        await page.close()
        raise
    return p


async def clock_offset_ms(page: Any) -> dict[str, float]:
    """Browser clock (timeOrigin + now) minus this process's time.time(), best of 7."""
    best: tuple[float, float] | None = None
    for _ in range(7):
        t0 = time.time()
        v = await page.evaluate("() => performance.timeOrigin + performance.now()")
        t1 = time.time()
        rtt = t1 - t0
        off = v / 1000 - (t0 + t1) / 2
        if best is None or rtt < best[0]:
            best = (rtt, off)
    assert best is not None
    return {"offset_ms": round(best[1] * 1000, 2), "rtt_ms": round(best[0] * 1000, 2)}


# --- the cases --------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.procs = Procs(work / "procs")
        self.poll_proc: subprocess.Popen[bytes] | None = None
        self.server_pid = 0
        self.url = ""
        self.poll_url = ""
        self.token = ""
        self.password = ""
        self.browser: Any = None

    # processes
    async def start_servers(self) -> None:
        data = self.work / "data"
        tokens, passwords = prepare(data)
        self.token, self.password = tokens["robot"], passwords["el"]
        port = free_port()
        # One device token sends the whole load, and ten pages plus this client share one
        # user: the per-token rate and per-user stream limits are lifted for the bench.
        lifted = {"COCKPIT_INGEST_RATE_PER_S": "0", "COCKPIT_USER_STREAMS": "100"}
        server = self.procs.start(
            "serve", "--data-dir", str(data), port=port, name="cockpit", env=lifted
        )
        took, _ = await wait_healthy(server, 90)
        self.server_pid, self.url = server.pid, server.url
        log(f"cockpit serve up in {took:.1f} s at {self.url} (pid {server.pid})")
        pport = free_port()
        self.poll_proc = self._spawn_polling(pport)
        self.poll_url = f"http://127.0.0.1:{pport}"
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(timeout=2) as c:
            while True:
                if self.poll_proc.poll() is not None:
                    raise RuntimeError(f"polling app exited: {self.poll_stderr()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await c.get(self.poll_url + "/bench-stats")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"polling app did not start: {self.poll_stderr()}")
                await asyncio.sleep(0.1)
        log(f"polling baseline up at {self.poll_url} (pid {self.poll_proc.pid})")

    def _spawn_polling(self, port: int) -> subprocess.Popen[bytes]:
        """bench/polling_baseline.py on `port`, output in files, password by environment."""
        with (
            (self.work / "procs" / "polling.out").open("wb") as out,
            (self.work / "procs" / "polling.err").open("wb") as err,
        ):
            return subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "bench" / "polling_baseline.py"),
                    "--port",
                    str(port),
                    "--cockpit",
                    self.url,
                    "--user",
                    "el",
                    "--interval-ms",
                    str(self.args.interval_ms),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=ROOT,
                env=clean_env({"BENCH_COCKPIT_PASSWORD": self.password}),
                start_new_session=True,  # a Ctrl-C at the terminal is not sent to it
            )

    def poll_stderr(self) -> str:
        with contextlib.suppress(OSError):
            return (self.work / "procs" / "polling.err").read_text(errors="replace")[-2000:]
        return ""

    def stop_servers(self) -> None:
        if self.poll_proc is not None and self.poll_proc.poll() is None:
            self.poll_proc.send_signal(signal.SIGTERM)
            try:
                self.poll_proc.wait(10)
            except subprocess.TimeoutExpired:
                self.poll_proc.kill()
                self.poll_proc.wait(10)
        self.procs.close()

    async def health(self) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=5) as c:
            r = await c.get(self.url + "/healthz")
            return dict(r.json())

    async def poll_stats(self, reset: bool = False) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=5) as c:
            r = await c.get(self.poll_url + "/bench-stats", params={"reset": str(reset).lower()})
            return dict(r.json())

    # one case
    async def measure(self, kind: str, rate: int, pages: list[Any], load: Load) -> dict[str, Any]:
        seconds, warmup = self.args.seconds, self.args.warmup
        label = f"{kind} {rate} ev/s x {len(pages)} page(s)"
        stop = asyncio.Event()
        clock = (
            await clock_offset_ms(pages[0].page)
            if isinstance(pages[0], Page)
            else {"offset_ms": 0.0, "note": "same process clock"}
        )
        cpu = CpuWindow(
            {
                "cockpit_server": lambda _p: [self.server_pid],
                "polling_app": lambda _p: [self.poll_proc.pid] if self.poll_proc else [],
                "chromium_all": lambda p: chromium_pids(p),
                "bench_process": lambda _p: [os.getpid()],
                "load_process": lambda _p: [load.pid] if load.pid else [],
            }
        )
        h0 = await self.health()
        # What the pages cost with no load at all (the 1 s tick redraws every layer).
        cpu.start()
        await asyncio.sleep(1.0)
        idle_cpu = cpu.stop()
        # The window is set in the pages before the load starts (idle pages answer at
        # once; busy ones can take a while), then warm-up, then the window. The load
        # starts only after every page is armed, so a slow arm shortens the warm-up,
        # never the window.
        margin = 0.5 + 0.25 * len(pages)
        t_from = time.time() + margin + warmup
        t_to = t_from + seconds
        await asyncio.gather(*(p.arm(t_from, t_to) for p in pages))
        if time.time() > t_from - warmup:
            log(f"{label}: arming the pages took more than {margin:g} s")
        load.window = (round(t_from, 6), round(t_to, 6))
        load_task = asyncio.create_task(load.run_elsewhere(stop))
        try:
            await asyncio.sleep(max(0.0, t_from - time.time()))
            cpu.start()
            if kind == "polling":
                await self.poll_stats(reset=True)
            await asyncio.sleep(max(0.0, t_to - time.time()))
            cpu_pct = cpu.stop()
            stop.set()
            await load_task
            h1 = await self.health()
            pstats = await self.poll_stats() if kind == "polling" else None
            expected = load.in_window_acked
            # In-flight deltas: wait until every page has them, or until no page got one
            # more for 2.5 s (then the rest counts as lost), at most DRAIN_S.
            deadline = time.monotonic() + DRAIN_S
            last: list[int] = []
            still = time.monotonic()
            while time.monotonic() < deadline:
                counts = list(await asyncio.gather(*(p.count() for p in pages)))
                if min(counts) >= expected:
                    break
                if counts != last:
                    last, still = counts, time.monotonic()
                elif time.monotonic() - still > 2.5:
                    break
                await asyncio.sleep(0.2)
            got = await asyncio.gather(*(p.collect() for p in pages))
        finally:
            stop.set()
            if not load_task.done():
                load_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await load_task

        pooled: list[float] = []
        per_page = []
        for p, g in zip(pages, got, strict=True):
            pooled.extend(g["lat"])
            s = summary_ms(g["lat"])
            frames = summary_ms(g["frames"], 1.0)
            entry: dict[str, Any] = {
                "seen": len(g["lat"]),
                "lost": expected - len(g["lat"]),
                "p50": s["p50"],
                "p99": s["p99"],
                "max": s["max"],
                "fps": round(len(g["frames"]) / seconds, 1),
                "frame_p99_ms": frames["p99"],
                "long_tasks": len(g["longTasks"]),
                "long_task_ms_total": round(sum(g["longTasks"]), 1),
                "page_errors": len(p.errors),
                "outside_requests": len(p.outside),
            }
            if kind in ("push", "sse"):
                entry["sse_messages"] = g["msgs"]
                entry["deltas_per_sse_message"] = (
                    round(g["msgDeltas"] / g["msgs"], 1) if g["msgs"] else None
                )
                entry["stream_stats"] = g["stats"]
                st, st0 = g.get("stats"), g.get("stats0")
                if st and st0:
                    # A reconnect means a resync: a new snapshot, deltas in between lost.
                    entry["reconnects_in_case"] = st["reconnects"] - st0["reconnects"]
                    entry["renders_per_s"] = round((st["renders"] - st0["renders"]) / seconds, 1)
                entry["entities_in_picture"] = g["entities"]
            if kind == "sse" or not getattr(p, "frames", True):
                # No frame probe on this page (the many-page cases time frames on the
                # first page only: a probe asks for 60 frames a second on its page).
                for k in ("fps", "frame_p99_ms", "long_tasks", "long_task_ms_total"):
                    entry.pop(k)
            per_page.append(entry)
        lat = summary_ms(pooled)
        seen = [e["seen"] for e in per_page]
        push0, push1 = (
            h0.get("pipeline", {}).get("push", {}),
            h1.get("pipeline", {}).get("push", {}),
        )
        result: dict[str, Any] = {
            "pages": len(pages),
            "rate_events_per_s": rate,
            "entities": load.entities,
            "seconds": seconds,
            "latency_ms": {k: lat[k] for k in ("p50", "p95", "p99", "max")},
            "samples": lat["n"],
            "expected_per_page": expected,
            "seen_per_page": seen,
            "lost_per_page": [expected - s for s in seen],
            "lost_total": sum(expected - s for s in seen),
            "per_page": per_page,
            "cpu_pct": cpu_pct,
            "cpu_pct_idle_before": idle_cpu,
            "load": {
                "sent_in_window": load.in_window_sent,
                "acked_in_window": load.in_window_acked,
                "errors": load.errors,
                "achieved_events_per_s": round(load.in_window_sent / seconds, 1),
                "ack_ms": summary_ms(load.ack_ms, 1.0),
                "max_in_flight": load.max_in_flight_seen,
                "late_ticks": load.late_ticks,
            },
            "clock": clock,
            # The worst event-loop lag of the server in the 10 s before the case ended.
            "server_loop_lag_max_ms": h1.get("event_loop", {}).get("max_10s_ms"),
            "server_push": {
                "clients": push1.get("clients"),
                "dropped_during_case": (push1.get("dropped_total") or 0)
                - (push0.get("dropped_total") or 0),
                "max_pending_at_end": push1.get("max_pending"),
            },
        }
        if pstats is not None:
            result["polling_app"] = pstats
        if kind == "push" and pages[0].frames and any(g["layerLat"] for g in got):
            g = got[0]
            result["map"] = {
                "frame_ms": summary_ms(g["frames"], 1.0),
                "fps": round(len(g["frames"]) / seconds, 1),
                "long_tasks": {
                    "count": len(g["longTasks"]),
                    "total_ms": round(sum(g["longTasks"]), 1),
                    "max_ms": round(max(g["longTasks"]), 1) if g["longTasks"] else None,
                },
                "delta_to_layer_frame_ms": summary_ms(g["layerLat"]),
                "ingest_to_layer_frame_ms": summary_ms(g["ingestLayerLat"]),
                "layer_call_ms": summary_ms(g["setPropsMs"], 1.0),
            }
        log(
            f"{label}: p50 {lat['p50']} p95 {lat['p95']} p99 {lat['p99']} max {lat['max']} ms; "
            f"expected {expected}/page, seen {seen}; cpu {cpu_pct}"
        )
        return result

    async def rate_block(self, rate: int, out: dict[str, Any]) -> None:
        """All cases at one rate, into `out` as they finish (a failed case says why)."""
        entities = rate  # each entity reports once per second
        prefix = f"r{rate}"
        many = self.args.pages

        def load() -> Load:
            return Load(self.url, self.token, entities=entities, rate=rate, prefix=prefix)

        async def case(name: str, kind: str, probes: list[Any]) -> None:
            try:
                out[name] = await self.measure(kind, rate, probes, load())
            except Exception as exc:
                log(f"{name} at {rate}: {exc!r}")
                out[name] = {"error": repr(exc)}

        async def add_pages(pages: list[Page], url: str, kind: str, n: int, **kw: Any) -> bool:
            t0 = time.monotonic()
            got = await asyncio.gather(
                *(open_page(self.browser, url, kind, self.password, **kw) for _ in range(n)),
                return_exceptions=True,
            )
            opened = [g for g in got if isinstance(g, Page)]
            pages.extend(opened)
            failed = [g for g in got if not isinstance(g, Page)]
            if failed:
                log(f"opening {n} {kind} page(s) at {rate}: {failed[0]!r}")
                out[f"{kind}_open_error"] = repr(failed[0])
                return False
            log(f"opened {n} {kind} page(s) in {time.monotonic() - t0:.1f} s")
            if kind == "polling":
                limit = 8.0 if self.args.quick else 20.0
                out.setdefault("polling_settle_s", []).append(await settle_polling(pages, limit))
            return True

        if not self.args.no_diagnostics:
            # No browser: where the server and the connection stand on their own.
            probe = SseProbe(self.url, self.password)
            try:
                await probe.start()
                await case("sse_no_browser", "sse", [probe])
            finally:
                await probe.close()
            # A browser page with only EventSource + the hook: no Dash, no map.
            pages: list[Page] = []
            try:
                if await add_pages(pages, self.url, "bare", 1):
                    await case("bare_browser_1", "bare", pages)
            finally:
                await close_pages(pages)
        # Push: 1 commander page, then the same page plus (many - 1). No frame probe on
        # these: a requestAnimationFrame loop makes a page draw 60 frames a second, which
        # doubled a commander page's CPU and its latency tail (p99 27 vs 16 ms at 200).
        pages = []
        try:
            if await add_pages(pages, self.url, "push", 1, layer_timing=True, frames=False):
                await case("push_1", "push", pages)
                if many > 1 and await add_pages(pages, self.url, "push", many - 1, frames=False):
                    await case(f"push_{many}", "push", pages)
        finally:
            await close_pages(pages)
        # The map's fluidity: one commander page with the frame probe, same load.
        pages = []
        try:
            if await add_pages(pages, self.url, "push", 1, layer_timing=True):
                await case("map_1", "push", pages)
        finally:
            await close_pages(pages)
        if self.args.breakdown:
            # Where the commander page's time goes: the same 1-page case with the map's
            # tracks layer, or every live layer, off the map (stream.js and the listener
            # run as before). Not the product: a what-if on the page, for the report.
            for label, skip in (("no_tracks_layer", ["tracks"]), ("no_map_layers", ["*"])):
                pages = []
                try:
                    if await add_pages(pages, self.url, "push", 1):
                        await pages[0].page.evaluate(_SKIP_LAYERS, skip)
                        await case(f"push_1_{label}", "push", pages)
                finally:
                    await close_pages(pages)
        # Polling baseline: the same.
        pages = []
        try:
            if await add_pages(pages, self.poll_url, "polling", 1, frames=False):
                await case("polling_1", "polling", pages)
                if many > 1 and await add_pages(
                    pages, self.poll_url, "polling", many - 1, frames=False
                ):
                    await case(f"polling_{many}", "polling", pages)
        finally:
            await close_pages(pages)


async def settle_polling(pages: list[Page], limit_s: float = 20.0) -> float | None:
    """Wait until every polling page shows >= 2 poll answers a second (pages that just
    opened together start with a backlog of polls in the polling app; Dash drops an
    answer that a newer poll has overtaken). Seconds waited, or None if they never did."""
    t0 = time.monotonic()
    js = "() => (window.__bench && window.__bench.polls) || 0"
    before = await asyncio.gather(*(p.page.evaluate(js) for p in pages))
    while time.monotonic() - t0 < limit_s:
        await asyncio.sleep(1.0)
        now = await asyncio.gather(*(p.page.evaluate(js) for p in pages))
        if all(b - a >= 2 for a, b in zip(before, now, strict=True)):
            return round(time.monotonic() - t0, 1)
        before = now
    log(f"polling pages did not settle in {limit_s:g} s (answers overtaken by newer polls)")
    return None


async def close_pages(pages: list[Page]) -> None:
    for p in pages:
        await p.close()


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or a <= 0:
        return None
    return round(b / a, 1)


def _lat(case: dict[str, Any] | None, q: str) -> float | None:
    if not case or "latency_ms" not in case:
        return None
    v = case["latency_ms"][q]
    return None if v is None else float(v)


def _delivered(case: dict[str, Any] | None) -> float | None:
    """Share of the expected updates that the pages showed (all pages together)."""
    if not case or "expected_per_page" not in case or not case["expected_per_page"]:
        return None
    share = sum(case["seen_per_page"]) / (case["expected_per_page"] * case["pages"])
    return round(float(share), 4)


def verdict(results: dict[str, Any], many: int) -> tuple[dict[str, Any], dict[str, Any]]:
    factor = TARGETS["push_vs_polling_p99_factor"]
    comparison: dict[str, Any] = {}
    for rate_key, block in results.items():
        for n in (1, many):
            push, poll = block.get(f"push_{n}"), block.get(f"polling_{n}")
            if not push or not poll:
                continue
            r99 = _ratio(_lat(push, "p99"), _lat(poll, "p99"))
            comparison[f"{rate_key}_{n}_pages"] = {
                "push_p50_ms": _lat(push, "p50"),
                "push_p99_ms": _lat(push, "p99"),
                "polling_p50_ms": _lat(poll, "p50"),
                "polling_p99_ms": _lat(poll, "p99"),
                "polling_over_push_p50": _ratio(_lat(push, "p50"), _lat(poll, "p50")),
                "polling_over_push_p99": r99,
                "push_p99_over_polling_p99": (round(1 / r99, 3) if r99 else None),
                "push_delivered": _delivered(push),
                "polling_delivered": _delivered(poll),
            }
        # The transport alone: the bare EventSource page against the same polling page.
        bare, poll = block.get("bare_browser_1"), block.get("polling_1")
        if bare and poll:
            comparison[f"{rate_key}_1_page_bare_push"] = {
                "bare_push_p50_ms": _lat(bare, "p50"),
                "bare_push_p99_ms": _lat(bare, "p99"),
                "polling_p50_ms": _lat(poll, "p50"),
                "polling_p99_ms": _lat(poll, "p99"),
                "polling_over_push_p50": _ratio(_lat(bare, "p50"), _lat(poll, "p50")),
                "polling_over_push_p99": _ratio(_lat(bare, "p99"), _lat(poll, "p99")),
                "note": "no Dash, no map on the push side: not the target's case",
            }
    met: dict[str, Any] = {}
    a = _lat(results.get("200_eps", {}).get("push_1"), "p99")
    if a is not None:
        met["push_p99_at_200_eps_1_browser"] = {
            "value_ms": a,
            "target_ms": TARGETS["push_p99_ms_at_200_eps_1_browser"],
            "met": a <= TARGETS["push_p99_ms_at_200_eps_1_browser"],
        }
    b = _lat(results.get("2000_eps", {}).get(f"push_{many}"), "p99")
    if b is not None:
        met[f"push_p99_at_2000_eps_{many}_browsers"] = {
            "value_ms": b,
            "target_ms": TARGETS["push_p99_ms_at_2000_eps_10_browsers"],
            "met": b <= TARGETS["push_p99_ms_at_2000_eps_10_browsers"] and many >= 10,
        }
    per_case: dict[str, Any] = {}
    for k, v in comparison.items():
        if "push_p99_ms" not in v:
            continue  # the bare-page rows are for the report, not the target
        if v["polling_over_push_p99"] is not None:
            per_case[k] = v["polling_over_push_p99"] >= factor
        elif v["polling_p99_ms"] is None and v["push_p99_ms"] is not None:
            # Polling showed nothing at all: push wins by any factor, if it delivered.
            per_case[k] = "polling showed no update" if (v["push_delivered"] or 0) > 0 else None
    if comparison:
        met["push_5x_better_than_polling_p99"] = {
            "factors": {
                k: v["polling_over_push_p99"] for k, v in comparison.items() if "push_p99_ms" in v
            },
            "target_factor": factor,
            "met_per_case": per_case,
            "met": all(x is not False and x is not None for x in per_case.values())
            and bool(per_case),
        }
    return comparison, met


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-push-"))
    bench = Bench(args, work)
    results: dict[str, Any] = {}
    errors: list[str] = []
    map_fluidity: dict[str, Any] | None = None
    leaks: dict[str, Any] = {}
    version: str | None = None
    browser = cdp.Browser(CHROMIUM)
    try:
        await bench.start_servers()
        await browser.start()
        bench.browser = browser
        version = browser.version
        for rate in args.rates:
            log(f"rate {rate} ev/s ({rate} entities, 1 report/s each)")
            block: dict[str, Any] = {}
            results[f"{rate}_eps"] = block
            try:
                await bench.rate_block(rate, block)
            except Exception as exc:  # report it, go on with the next rate
                log(f"rate {rate}: {exc!r}")
                errors.append(f"rate {rate}: {exc!r}")
    finally:
        await browser.close()
        bench.stop_servers()
        shutil.rmtree(work, ignore_errors=True)
        # Browser processes left behind (e.g. after a cancel), by their profile dir.
        leaks["browser_processes_killed"] = sweep_browser(browser.profile)
    leaks["chromium_left"] = chromium_pids()
    leaks["temp_dir"] = str(work)  # checked in main(), outside the event loop
    leaks["server_alive"] = _stat(bench.server_pid) is not None if bench.server_pid else False

    top = results.get("2000_eps", {}).get("map_1", {})
    if "map" in top:
        map_fluidity = {
            "case": "map_1 at 2,000 ev/s: 2,000 entities (3 layers of ~667 canvas dots) "
            "each moving once per second, one commander page",
            **top["map"],
        }
    comparison, met = verdict(results, args.pages)
    return {
        "bench": "push_latency",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "chromium": version,
        },
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python bench/push_latency.py " + " ".join(sys.argv[1:]),
        "commit": git_commit(),
        "settings": {
            "seconds_per_case": args.seconds,
            "warmup_s": args.warmup,
            "rates_events_per_s": args.rates,
            "entities": "= rate: each entity reports once per second",
            "message": "one position per message = one position event = one entity delta",
            "transport": f"HTTP POST batches per {TICK_S * 1000:.0f} ms tick, "
            f"<= {MAX_IN_FLIGHT} in flight, observed_at = send time",
            "pages_many": args.pages,
            "polling_interval_ms": args.interval_ms,
            "server": "cockpit serve (memory bus, recorder synchronous=FULL, defaults)",
            "breakdown": args.breakdown,
            "diagnostics": not args.no_diagnostics,
            "browser": "Debian Chromium headless over the DevTools protocol (bench/cdp.py), "
            "one context per page, 1280x800",
        },
        "results": results,
        "comparison": comparison,
        "map_fluidity": map_fluidity,
        "targets": TARGETS,
        "targets_met": met,
        "errors": errors,
        "leaks": leaks,
    }


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0, help="measured seconds per case")
    p.add_argument("--warmup", type=float, default=None, help="seconds of load before measuring")
    p.add_argument("--quick", action="store_true", help="4 s per case, 1.5 s warm-up")
    p.add_argument("--rates", type=int, nargs="+", default=[200, 2000], help="events/s")
    p.add_argument("--pages", type=int, default=PAGES_MANY, help="pages in the 'many' cases")
    p.add_argument("--interval-ms", type=int, default=250, help="polling baseline interval")
    p.add_argument(
        "--breakdown",
        action="store_true",
        help="also the 1-page push case without the tracks layer / without map layers",
    )
    p.add_argument(
        "--no-diagnostics",
        action="store_true",
        help="skip the no-browser SSE client and the bare EventSource page (on with --quick)",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.seconds = 4.0
        args.no_diagnostics = True
    if args.warmup is None:
        args.warmup = 1.5 if args.quick else 2.5
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if not Path(CHROMIUM).is_file():
        print(f"no Chromium at {CHROMIUM} (apt-get install chromium)", file=sys.stderr)
        return 2

    async def runner() -> dict[str, Any]:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        if task is not None:
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
        return await main_async(args)

    try:
        out = asyncio.run(runner())
    except (KeyboardInterrupt, asyncio.CancelledError):
        log("interrupted; processes and temp dir cleaned up")
        return 130
    out["leaks"]["temp_dir_left"] = Path(out["leaks"].pop("temp_dir")).exists()
    print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
