"""Soak: a control room under steady load for half an hour; memory and errors (issue 8).

Prints ONE JSON object to stdout (also bench/results/soak-<commit>.json with --save);
progress goes to stderr once a minute.

    .venv/bin/python bench/soak.py --save                      # 30 min (~33 min in all)
    .venv/bin/python bench/soak.py --minutes 3 --warmup-min 1  # a short check

What runs: `tests.topology.control_room` — one recorder, two web workers and one media
process (`cockpit serve --role …`, `cockpit media`) on one Redis (COCKPIT_TEST_REDIS_URL,
else redis://127.0.0.1:6379) and one data dir, behind Debian's nginx running
docker/nginx.conf.template. Everything below talks to the proxy only.

Load (a process of its own, so that the browsers' driver never delays a send): native
telemetry from ~200 entities (units, drones, robots) POSTed in batches every 100 ms
through the proxy without a worker cookie (nginx spreads them over both workers), paced
on the absolute schedule to `--rate` events/s. Every message carries a position; every
4th report of an entity also readings (temperature, CO), every 10th a status (battery,
link), so one message is 1-3 events; the rate counts events (the seqs acknowledged).
Counted: events acknowledged (202), non-2xx answers by code, transport errors by kind.

Video (a process of its own): one drone publishes a synthetic 640x480 30 fps VP8 stream
over WHIP (`uav` device token) through the proxy to the media process; `--viewers` aiortc
WHEP viewers (logged in as the commander, frames passed through undecoded) count frames;
a gap of more than 2 s between frames is a stall (an error).

Browsers: `--browsers` Chromium commander pages (`/`, logged in through the proxy), spread
over both workers by the `cockpit_worker` cookie. The commander layout opens a video tile
(assets/whep.js) for every live stream by itself, so each page is also a WHEP viewer, as
in a real control room: their frames are counted too (no new frame in a 10 s sample = a
stall). Page errors (uncaught exceptions) are errors; `window.cockpit.stats.reconnects`
growing is an error; a page whose `window.cockpit.seq` has not reached, 10 s later, the
last seq acknowledged to the load is behind (an error).

Every 10 s: VmRSS and CPU of each process of the deployment (recorder, web1, web2, media;
nginx = master + workers), Redis's `used_memory` and the incident stream's length, each
process's /healthz `status` (not "ok" or no answer = an error), whether it is alive.
Growth per process = (median RSS over the last window - median RSS over the window right
after `--warmup-min`) / the latter; windows are 2 min (shorter runs: half of what is left
after warm-up each). Bars: growth < 10 % for every cockpit process, 0 errors, and the
achieved rate >= 98 % of `--rate`.

Cleanup: browser, load and video processes, the control room and the incident's Redis
keys, the temp dir; also on errors and Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing as mp
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import orjson  # noqa: E402

from bench.common import git_commit, proc_cpu_s  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
REDIS_URL = os.environ.get("COCKPIT_TEST_REDIS_URL", "redis://127.0.0.1:6379")
SAMPLE_S = 10.0
TICK_S = 0.1
MAX_IN_FLIGHT = 8
ENTITIES = 200
KINDS = ("unit", "drone", "robot")
CENTER = (51.5270, 7.4445)
STREAM = "drone-soak"
VIDEO_SIZE = (640, 480)
STALL_S = 2.0
GROWTH_MAX = 0.10
RATE_MIN = 0.98
COCKPIT = ("recorder", "web1", "web2", "media")

_t0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[soak {time.monotonic() - _t0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- the load process ------------------------------------------------------------------

# Shared counters of the load process (mp.Array of doubles), read by the sampler.
L_SENT, L_ACKED, L_MSGS, L_NON2XX, L_TRANSPORT, L_MAXSEQ = range(6)


def _message(i: int, k: int, t: float) -> dict[str, Any]:
    """Report number k of entity i: a position on a small circle, sometimes more."""
    lat0 = CENTER[0] - 0.01 + 0.02 * (i // 20) / 10
    lon0 = CENTER[1] - 0.015 + 0.03 * (i % 20) / 20
    a = 0.3 * k + i
    msg: dict[str, Any] = {
        "entity": f"soak-{i:03d}",
        "kind": KINDS[i % len(KINDS)],
        "callsign": f"{KINDS[i % len(KINDS)][:1].upper()}-{i:03d}",
        "observed_at": iso(t),
        "position": {
            "lat": round(lat0 + 0.0004 * math.sin(a), 7),
            "lon": round(lon0 + 0.0006 * math.cos(a), 7),
            "speed_mps": round(1.5 + math.sin(a), 2),
            "heading_deg": round((math.degrees(a) + 90) % 360, 1),
        },
    }
    if k % 4 == 0:
        msg["readings"] = {
            "temp_c": {"value": round(20 + 5 * math.sin(a / 7), 1), "unit": "°C"},
            "co_ppm": {"value": round(abs(30 * math.sin(a / 3)), 1), "unit": "ppm"},
        }
    if k % 10 == 0:
        msg["status"] = {"battery_pct": round(100 - (k / 50) % 100, 1), "link": "ok"}
    return msg


def _events_of(msg: dict[str, Any]) -> int:
    return 1 + ("readings" in msg) + ("status" in msg)


def load_main(url: str, token: str, rate: float, stop: Any, shared: Any, out: Any) -> None:
    """Child process: telemetry at `rate` events/s until `stop` is set; details to `out`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    codes: dict[str, int] = {}
    transport: dict[str, int] = {}
    first_errors: list[str] = []
    ack_ms: list[float] = []

    async def run() -> None:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=8)
        tasks: set[asyncio.Task[None]] = set()
        reports = [0] * ENTITIES
        nxt = 0
        async with httpx.AsyncClient(
            base_url=url, headers=headers, timeout=30.0, limits=limits
        ) as client:

            async def post(body: bytes, n_events: int, n_msgs: int) -> None:
                t = time.perf_counter()
                try:
                    r = await client.post("/api/v1/ingest/telemetry", content=body)
                except httpx.HTTPError as exc:
                    name = type(exc).__name__
                    transport[name] = transport.get(name, 0) + 1
                    shared[L_TRANSPORT] += 1
                    if len(first_errors) < 10:
                        first_errors.append(f"{time.monotonic():.0f} {exc!r}")
                    return
                if r.status_code != 202:
                    codes[str(r.status_code)] = codes.get(str(r.status_code), 0) + 1
                    shared[L_NON2XX] += 1
                    if len(first_errors) < 10:
                        first_errors.append(f"{r.status_code} {r.text[:200]}")
                    return
                seqs = r.json()["seq"]
                ack_ms.append((time.perf_counter() - t) * 1000)
                shared[L_ACKED] += len(seqs)
                shared[L_MSGS] += n_msgs
                if seqs:
                    shared[L_MAXSEQ] = max(shared[L_MAXSEQ], seqs[-1])
                del n_events

            start = time.monotonic()
            sent = 0
            tick = 0
            while not stop.is_set():
                due = rate * (time.monotonic() - start)
                if due > sent and len(tasks) < MAX_IN_FLIGHT:
                    now = time.time()
                    msgs = []
                    n = 0
                    while sent + n < due:
                        i = nxt % ENTITIES
                        nxt += 1
                        m = _message(i, reports[i], now)
                        reports[i] += 1
                        msgs.append(m)
                        n += _events_of(m)
                    for c in range(0, len(msgs), 500):  # the server takes <= 1,000
                        part = msgs[c : c + 500]
                        ev = sum(_events_of(m) for m in part)
                        task = asyncio.create_task(post(orjson.dumps(part), ev, len(part)))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                    sent += n
                    shared[L_SENT] = sent
                tick += 1
                await asyncio.sleep(max(0.0, start + tick * TICK_S - time.monotonic()))
            if tasks:
                await asyncio.wait(tasks, timeout=30)

    asyncio.run(run())
    ack_ms.sort()
    out.put(
        {
            "non2xx_by_code": codes,
            "transport_errors_by_kind": transport,
            "first_errors": first_errors,
            "ack_ms": _summary(ack_ms),
        }
    )


# --- the video process -----------------------------------------------------------------


def video_main(
    url: str, token: str, password: str, viewers: int, stop: Any, shared: Any, out: Any
) -> None:
    """Child process: one WHIP sender, `viewers` WHEP viewers; shared[0] = viewers up,
    shared[1 + v] = frames of viewer v, shared[1 + viewers] = stalls."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import av
    import numpy as np
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import MediaStreamTrack, VideoStreamTrack

    from cockpit.media import passthrough

    passthrough.install()
    detail: dict[str, Any] = {"errors": [], "max_gap_s": [0.0] * viewers}
    stalls = 1 + viewers

    class Synthetic(VideoStreamTrack):  # type: ignore[misc]
        """A grey picture with a moving bar: 30 fps, encoded by aiortc (VP8)."""

        def __init__(self) -> None:
            super().__init__()
            w, h = VIDEO_SIZE
            self.base = np.full((h, w, 3), 96, np.uint8)
            self.n = 0

        async def recv(self) -> Any:
            pts, time_base = await self.next_timestamp()
            img = self.base.copy()
            x = (self.n * 6) % (VIDEO_SIZE[0] - 24)
            img[:, x : x + 24] = 220
            self.n += 1
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = pts, time_base
            return frame

    async def offer_answer(
        pc: Any, path: str, headers: dict[str, str], cookies: Any = None
    ) -> None:
        await pc.setLocalDescription(await pc.createOffer())
        async with httpx.AsyncClient(base_url=url, timeout=20, cookies=cookies) as c:
            r = await c.post(path, content=pc.localDescription.sdp, headers=headers)
        if r.status_code != 201:
            raise RuntimeError(f"{path}: {r.status_code} {r.text[:300]}")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=r.text, type="answer"))

    async def run() -> None:
        sdp = {"Content-Type": "application/sdp"}
        sender = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        sender.addTrack(Synthetic())
        await offer_answer(sender, f"/whip/{STREAM}", {**sdp, "Authorization": f"Bearer {token}"})
        async with httpx.AsyncClient(base_url=url, timeout=20) as c:
            r = await c.post("/api/v1/session", json={"username": "el", "password": password})
            r.raise_for_status()
            cookies = c.cookies
        await asyncio.sleep(1.0)
        pcs: list[Any] = []
        last: list[float | None] = [None] * viewers
        in_stall = [False] * viewers
        drains: list[asyncio.Task[None]] = []

        def watch(v: int, track: MediaStreamTrack) -> None:
            passthrough.pass_through(track)

            async def drain() -> None:
                while True:
                    await track.recv()
                    now = time.monotonic()
                    if last[v] is not None:
                        detail["max_gap_s"][v] = max(detail["max_gap_s"][v], now - last[v])
                    last[v] = now
                    in_stall[v] = False
                    shared[1 + v] += 1

            drains.append(asyncio.ensure_future(drain()))

        for v in range(viewers):
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            pc.addTransceiver("video", direction="recvonly")
            pc.on("track", lambda track, v=v: watch(v, track))
            await offer_answer(pc, f"/whep/{STREAM}", sdp, cookies)
            pcs.append(pc)
            shared[0] += 1
        while not stop.is_set():
            await asyncio.sleep(0.25)
            now = time.monotonic()
            for v in range(viewers):
                first_wait = last[v] is None and now - _t0 > 60  # never a frame at all
                gap = last[v] is not None and now - last[v] > STALL_S  # type: ignore[operator]
                if (gap or first_wait) and not in_stall[v]:
                    in_stall[v] = True
                    shared[stalls] += 1
                    detail["errors"].append(f"viewer {v}: stall at {now - _t0:.0f} s")
        for t in drains:
            t.cancel()
        for pc in (*pcs, sender):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pc.close(), 5)

    try:
        asyncio.run(run())
    except Exception as exc:
        detail["errors"].append(f"video: {exc!r}")
        shared[stalls] += 1
    detail["max_gap_s"] = [round(g, 2) for g in detail["max_gap_s"]]
    out.put(detail)


# --- /proc, Redis, healthz ---------------------------------------------------------------


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return 0  # a zombie has no VmRSS


def children(pid: int) -> list[int]:
    """Direct children of pid."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                stat = Path(f"/proc/{name}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(name))
    return out


def tree(pid: int, skip: set[int] | None = None) -> list[int]:
    """pid and its descendants, without the subtrees of `skip`."""
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(c for c in children(p) if c not in (skip or ()))
    return out


def _summary(values: list[float]) -> dict[str, Any]:
    v = sorted(values)
    if not v:
        return {"n": 0}

    def q(p: float) -> float:
        return round(v[min(len(v) - 1, int(p * (len(v) - 1) + 0.5))], 1)

    return {"n": len(v), "p50": q(0.5), "p99": q(0.99), "max": round(v[-1], 1)}


# --- browsers ----------------------------------------------------------------------------

PAGE_STATE = """() => ({
  seq: window.cockpit.seq, connected: window.cockpit.connected,
  reconnects: window.cockpit.stats.reconnects, snapshots: window.cockpit.stats.snapshots,
  video: window.cockpitVideo ? [...window.cockpitVideo.players.values()].map((p) => p.frames)
                             : null,
})"""

WORKER_OF_NEXT_REQUEST = """async () => {
  const r = await fetch('/api/v1/situation?tracks=false');
  return r.headers.get('x-cockpit-worker');
}"""


async def open_page(browser: Any, proxy: str, password: str, worker: str, video: bool) -> Any:
    """A commander's page whose proxy cookie names `worker`, logged in through the proxy;
    without `video` its WHEP requests fail (the tile stays empty, for comparison)."""
    ctx = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="de-DE")
    await ctx.add_cookies([{"name": "cockpit_worker", "value": worker, "url": proxy}])
    if not video:
        await ctx.route("**/whep/**", lambda route: route.abort())
    page = await ctx.new_page()
    page.soak_errors = []
    page.soak_console = []
    page.on("pageerror", lambda exc: page.soak_errors.append(str(exc)[:300]))
    page.on(
        "console",
        lambda m: (
            page.soak_console.append(m.text[:300])
            if m.type == "error" and "'node:" not in m.text
            else None
        ),
    )
    await page.goto(proxy + "/login")
    await page.fill("#u", "el")
    await page.fill("#p", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(proxy + "/")
    await page.wait_for_function("window.cockpit && window.cockpit.connected", timeout=30000)
    page.soak_worker = await page.evaluate(WORKER_OF_NEXT_REQUEST)
    return page


# --- the soak ----------------------------------------------------------------------------


class Sampler:
    """Every SAMPLE_S: memory, CPU, health and liveness of the deployment; page state."""

    def __init__(self, room: Any, redis_client: Any) -> None:
        self.room = room
        self.redis = redis_client
        self.series: dict[str, list[tuple[float, int]]] = {}  # name -> (t_s, rss kB)
        self.cpu: dict[str, list[tuple[float, float]]] = {}  # name -> (t_s, cpu s)
        self.redis_series: list[tuple[float, int, int]] = []  # (t_s, used_memory, xlen)
        self.errors: dict[str, int] = {}
        self.error_notes: list[str] = []
        self.health: dict[str, dict[str, int]] = {}
        self.died: set[str] = set()
        self.bench_cpu: dict[str, list[tuple[float, float]]] = {}  # the bench's own parts
        self.children: list[Any] = []  # the load and video processes
        self.loadavg: list[float] = []
        self.load_elapsed_s = 0.0  # the sampled run, from its first sample to its last
        self.acked_in_run = 0.0  # events acknowledged in that time

    def error(self, kind: str, note: str, n: int = 1) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + n
        if len(self.error_notes) < 50:
            self.error_notes.append(f"{time.monotonic() - _t0:.0f}s {kind}: {note}")
        log(f"ERROR {kind}: {note}")

    def pids(self) -> dict[str, list[int]]:
        procs = self.room.processes()
        out = {name: [pid] for name, pid in procs.items() if name != "nginx"}
        out["nginx"] = tree(procs["nginx"])
        return out

    async def sample(self, t: float, client: httpx.AsyncClient) -> None:
        for name, pids in self.pids().items():
            alive = (
                self.room.nginx.poll() is None
                if name == "nginx"
                else (self.room.web.get(name) or getattr(self.room, name)).alive()
            )
            if not alive:
                if name not in self.died:
                    self.died.add(name)
                    self.error("process_died", name)
                continue
            rss = [r for r in map(rss_kb, pids) if r is not None]
            cpu = [c for c in map(proc_cpu_s, pids) if c is not None]
            self.series.setdefault(name, []).append((t, sum(rss)))
            self.cpu.setdefault(name, []).append((t, sum(cpu)))
        # The bench's own parts; the deployment's processes are its children too.
        deployment = {pid for pids in self.pids().values() for pid in pids}
        names = {c.pid: {"soak-load": "load", "soak-video": "video"}[c.name] for c in self.children}
        groups: dict[str, list[int]] = {"load": [], "video": [], "chromium_and_driver": []}
        for pid in tree(os.getpid(), skip=deployment)[1:]:
            groups[names.get(pid, "chromium_and_driver")].append(pid)
        groups["bench_main"] = [os.getpid()]
        for name, pids in groups.items():
            used = sum(c for c in map(proc_cpu_s, pids) if c is not None)
            self.bench_cpu.setdefault(name, []).append((t, used))
        self.loadavg.append(os.getloadavg()[0])
        info = self.redis.info("memory")
        xlen = self.redis.xlen(f"cockpit:{self.room.incident}:events")
        self.redis_series.append((t, int(info["used_memory"]), int(xlen)))
        urls = {"recorder": self.room.recorder.url, "media": self.room.media.url}
        urls.update({name: p.url for name, p in self.room.web.items()})
        urls["proxy"] = self.room.proxy
        for name, url in urls.items():
            if name in self.died:
                continue
            h = self.health.setdefault(name, {})
            try:
                r = await client.get(url + "/healthz", timeout=5)
                status = r.json().get("status", str(r.status_code))
            except (httpx.HTTPError, ValueError) as exc:
                status = type(exc).__name__
            h[status] = h.get(status, 0) + 1
            if status != "ok":
                self.error("healthz_not_ok", f"{name}: {status}")


def _median_in(series: list[tuple[float, int]], a: float, b: float) -> float | None:
    vals = [v for t, v in series if a <= t <= b]
    return statistics.median(vals) if vals else None


def growth(sampler: Sampler, warm_s: float, end_s: float, window_s: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, series in sampler.series.items():
        early = _median_in(series, warm_s, warm_s + window_s)
        late = _median_in(series, end_s - window_s, end_s)
        rss = [v for _, v in series]
        cpu = sampler.cpu[name]
        after = [(t, c) for t, c in cpu if t >= warm_s]
        cpu_pct = (
            round(100 * (after[-1][1] - after[0][1]) / (after[-1][0] - after[0][0]), 1)
            if len(after) > 1 and after[-1][0] > after[0][0]
            else None
        )
        g = (late - early) / early if early and late is not None else None
        out[name] = {
            "samples": len(series),
            "rss_mb_first": round(rss[0] / 1024, 1),
            "rss_mb_after_warmup_median": round(early / 1024, 1) if early else None,
            "rss_mb_last_window_median": round(late / 1024, 1) if late else None,
            "rss_mb_max": round(max(rss) / 1024, 1),
            "rss_mb_series": [round(v / 1024, 1) for v in rss[:: max(1, len(rss) // 60)]],
            "growth_pct": round(100 * g, 2) if g is not None else None,
            "cpu_pct_of_a_core_after_warmup": cpu_pct,
        }
    return out


async def soak(args: argparse.Namespace, room: Any, work: Path) -> dict[str, Any]:
    import redis
    from playwright.async_api import async_playwright

    from tests.topology import WORKERS

    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    load_shared = ctx.Array("d", 6, lock=False)
    video_shared = ctx.Array("d", 2 + args.viewers, lock=False)
    load_out: Any = ctx.Queue()
    video_out: Any = ctx.Queue()
    children_: list[Any] = []
    redis_client = redis.Redis.from_url(REDIS_URL)
    sampler = Sampler(room, redis_client)
    pages: list[Any] = []
    result: dict[str, Any] = {}
    run_s = args.minutes * 60
    warm_s = args.warmup_min * 60
    window_s = min(120.0, max(SAMPLE_S, (run_s - warm_s) / 2))
    try:
        video = ctx.Process(
            target=video_main,
            args=(room.proxy, room.tokens["uav"], room.passwords["el"], args.viewers, stop,
                  video_shared, video_out),
            name="soak-video",
        )  # fmt: skip
        video.start()
        children_.append(video)
        sampler.children = children_
        deadline = time.monotonic() + 60
        while video_shared[0] < args.viewers and video.is_alive():
            if time.monotonic() > deadline:
                raise RuntimeError("the video viewers did not connect within 60 s")
            await asyncio.sleep(0.2)
        log(f"video: 1 sender, {int(video_shared[0])} viewers on {STREAM}")
        load = ctx.Process(
            target=load_main,
            args=(room.proxy, room.tokens["robot"], args.rate, stop, load_shared, load_out),
            name="soak-load",
        )
        load.start()
        children_.append(load)

        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                for i in range(args.browsers):
                    pages.append(
                        await open_page(
                            browser,
                            room.proxy,
                            room.passwords["el"],
                            WORKERS[i % len(WORKERS)],
                            args.browser_video,
                        )
                    )
                log(f"browsers: {[p.soak_worker for p in pages]}")
                await asyncio.wait_for(run_loop(args, room, sampler, pages, load_shared,
                                                video_shared, run_s), run_s + 120)  # fmt: skip
                result["pages"] = [
                    {
                        "worker": p.soak_worker,
                        "page_errors": p.soak_errors[:10],
                        # plotly.js probes for Node modules (node:fs ...): each probe
                        # also logs "Failed to load resource: net::ERR_FAILED".
                        "console_errors": len(p.soak_console),
                        "console_errors_first": p.soak_console[:5],
                        **p.soak_last,
                    }
                    for p in pages
                ]
            finally:
                await browser.close()
    finally:
        stop.set()
        details: dict[str, Any] = {}
        for name, q in (("load", load_out), ("video", video_out)):
            with contextlib.suppress(Exception):
                details[name] = q.get(timeout=40)
        for child in children_:
            child.join(20)
            if child.is_alive():
                child.kill()
                child.join(5)
        redis_client.close()

    elapsed_load = sampler.load_elapsed_s
    acked = sampler.acked_in_run
    load_detail = details.get("load", {})
    video_detail = details.get("video", {})
    if not load_detail:
        sampler.error("bench", "the load process reported nothing")
    if not video_detail:
        sampler.error("bench", "the video process reported nothing")
    for code, n in load_detail.get("non2xx_by_code", {}).items():
        sampler.errors[f"ingest_http_{code}"] = sampler.errors.get(f"ingest_http_{code}", 0) + n
    for kind, n in load_detail.get("transport_errors_by_kind", {}).items():
        key = f"ingest_transport_{kind}"
        sampler.errors[key] = sampler.errors.get(key, 0) + n
    stalls = int(video_shared[1 + args.viewers])
    if stalls:
        sampler.errors["video_viewer_stalls"] = stalls
    for p in pages:
        if p.soak_errors:
            sampler.errors["page_errors"] = sampler.errors.get("page_errors", 0) + len(
                p.soak_errors
            )
    end_s = max((t for s in sampler.series.values() for t, _ in s), default=0.0)
    procs = growth(sampler, warm_s, end_s, window_s)
    rs = sampler.redis_series
    r_early = _median_in([(t, m) for t, m, _ in rs], warm_s, warm_s + window_s)
    r_late = _median_in([(t, m) for t, m, _ in rs], end_s - window_s, end_s)
    # CPU of the bench's parts over the run; a group's processes can come and go
    # (Chromium's), so this is a lower bound for it.
    bench_cpu = {
        name: round(100 * (s[-1][1] - s[0][1]) / (s[-1][0] - s[0][0]), 1)
        for name, s in sampler.bench_cpu.items()
        if len(s) > 1 and s[-1][0] > s[0][0]
    }
    total_errors = sum(sampler.errors.values())
    rate = acked / elapsed_load if elapsed_load else 0.0
    cockpit_growth = [procs.get(n, {}).get("growth_pct") for n in COCKPIT]
    growth_ok = all(g is not None and g < 100 * GROWTH_MAX for g in cockpit_growth)
    result.update(
        {
            "processes": procs,
            "redis": {
                "used_memory_mb_first": round(rs[0][1] / 2**20, 1) if rs else None,
                "used_memory_mb_after_warmup_median": round(r_early / 2**20, 1)
                if r_early
                else None,
                "used_memory_mb_last_window_median": round(r_late / 2**20, 1) if r_late else None,
                "growth_pct": round(100 * (r_late - r_early) / r_early, 2)
                if r_early and r_late
                else None,
                "stream_entries_last": rs[-1][2] if rs else None,
                "stream_trim": "the recorder trims the stream behind its shared snapshots "
                "after redis_keep_s (cockpit/pipeline.py); XADD MAXLEN ~1,000,000 caps it",
                "bytes_per_stream_entry": round((rs[-1][1] - rs[0][1]) / (rs[-1][2] - rs[0][2]))
                if len(rs) > 1 and rs[-1][2] > rs[0][2]
                else None,
            },
            "healthz": sampler.health,
            "load": {
                "events_acked_in_run": int(acked),
                "events_acked_total": int(load_shared[L_ACKED]),
                "messages_acked": int(load_shared[L_MSGS]),
                "events_sent": int(load_shared[L_SENT]),
                "seconds": round(elapsed_load, 1),
                "events_per_s": round(rate, 1),
                "ack_ms": load_detail.get("ack_ms"),
                "first_errors": load_detail.get("first_errors", []),
            },
            "video": {
                "sender": f"{VIDEO_SIZE[0]}x{VIDEO_SIZE[1]} 30 fps VP8 over WHIP via the proxy",
                "aiortc_viewer_frames": [int(video_shared[1 + v]) for v in range(args.viewers)],
                "aiortc_viewer_max_gap_s": video_detail.get("max_gap_s"),
                "browser_viewers": sum(1 for p in pages if p.soak_last.get("video")),
                "notes": video_detail.get("errors", [])[:10],
            },
            "bench_cpu_pct_of_a_core": bench_cpu,
            "machine_loadavg_1min": _summary(sampler.loadavg),
            "errors": {"total": total_errors, "by_kind": sampler.errors},
            "error_notes": sampler.error_notes,
            "windows_s": {"warmup": warm_s, "window": window_s, "end": round(end_s, 1)},
            "pass": {
                "memory_growth_under_10_pct": growth_ok,
                "no_errors": total_errors == 0,
                "rate_reached": rate >= RATE_MIN * args.rate,
            },
        }
    )
    return result


async def run_loop(
    args: argparse.Namespace,
    room: Any,
    sampler: Sampler,
    pages: list[Any],
    load_shared: Any,
    video_shared: Any,
    run_s: float,
) -> None:
    start = time.monotonic()
    acked0 = load_shared[L_ACKED]
    prev_acked_seq = None
    prev_video: list[list[int] | None] = [None] * len(pages)
    prev_reconnects = [0] * len(pages)
    for p in pages:
        p.soak_last = {}
        p.soak_lag_events: list[float] = []
        p.soak_video0 = p.soak_video1 = None  # (t, frames) first and last seen
    k = 0
    next_progress = 60.0
    async with httpx.AsyncClient() as client:
        while True:
            t = time.monotonic() - start
            acked_seq = load_shared[L_MAXSEQ]
            await sampler.sample(t, client)
            for i, p in enumerate(pages):
                now_acked = load_shared[L_MAXSEQ]
                try:
                    st = await p.evaluate(PAGE_STATE)
                except Exception as exc:
                    sampler.error("page_gone", f"page {i}: {exc!r}"[:200])
                    continue
                p.soak_last = st
                p.soak_lag_events.append(max(0.0, now_acked - st["seq"]))
                if prev_acked_seq is not None and st["seq"] < prev_acked_seq:
                    sampler.error(
                        "page_behind",
                        f"page {i} ({p.soak_worker}) seq {st['seq']} < {prev_acked_seq} "
                        f"acknowledged {SAMPLE_S:.0f} s ago",
                    )
                if st["reconnects"] > prev_reconnects[i]:
                    sampler.error("page_reconnects", f"page {i}: {st['reconnects']}",
                                  st["reconnects"] - prev_reconnects[i])  # fmt: skip
                    prev_reconnects[i] = st["reconnects"]
                if st["video"] and p.soak_video0 is None:
                    p.soak_video0 = (t, sum(st["video"]))
                if st["video"]:
                    p.soak_video1 = (t, sum(st["video"]))
                if args.browser_video and t > 30 and not st["video"]:
                    sampler.error("browser_video_missing", f"page {i}: no video tile")
                elif (
                    args.browser_video
                    and prev_video[i] is not None
                    and st["video"]
                    and sum(st["video"]) <= sum(prev_video[i] or [])
                ):
                    sampler.error("browser_video_stall", f"page {i}: no new frame in 10 s")
                prev_video[i] = st["video"]
            prev_acked_seq = acked_seq
            if t >= next_progress or k == 0:
                rss = {n: round(s[-1][1] / 1024) for n, s in sampler.series.items() if s}
                rate = (load_shared[L_ACKED] - acked0) / t if t > 1 else float("nan")
                frames = [int(video_shared[1 + v]) for v in range(args.viewers)]
                log(
                    f"{t / 60:4.1f} min: {rate:.0f} ev/s acked, seq {int(acked_seq)}, "
                    f"RSS MB {rss}, redis {sampler.redis_series[-1][1] / 2**20:.0f} MB, "
                    f"viewer frames {frames}, errors {sum(sampler.errors.values())}"
                )
                if k:
                    next_progress += 60.0
            k += 1
            if t >= run_s:
                break
            await asyncio.sleep(max(0.0, start + k * SAMPLE_S - time.monotonic()))
    # Events acknowledged while the pages opened are left out of the rate.
    sampler.load_elapsed_s = time.monotonic() - start
    sampler.acked_in_run = load_shared[L_ACKED] - acked0
    for p in pages:
        lag = sorted(p.soak_lag_events)
        v0, v1 = p.soak_video0, p.soak_video1
        p.soak_last = {
            **p.soak_last,
            "video_fps": round((v1[1] - v0[1]) / (v1[0] - v0[0]), 1)
            if v0 and v1 and v1[0] > v0[0]
            else None,
            "lag_events_at_sample": _summary(lag),
        }


def preflight() -> str | None:
    import redis

    from tests.topology import NGINX

    if not Path(NGINX).is_file():
        return f"no nginx at {NGINX} (apt-get install nginx-light)"
    if not Path(CHROMIUM).is_file():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1.0, socket_timeout=2.0)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        return f"no Redis at {REDIS_URL} ({exc}); set COCKPIT_TEST_REDIS_URL"
    finally:
        client.close()
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30.0, help="length of the soak")
    p.add_argument("--warmup-min", type=float, default=5.0, help="minutes before the baseline")
    p.add_argument("--rate", type=float, default=500.0, help="telemetry events/s")
    p.add_argument("--browsers", type=int, default=5, help="commander pages")
    p.add_argument("--viewers", type=int, default=2, help="aiortc WHEP viewers")
    p.add_argument(
        "--no-browser-video",
        dest="browser_video",
        action="store_false",
        help="the pages' WHEP requests fail (to see what the browsers' video costs)",
    )
    p.add_argument("--save", action="store_true", help="also write bench/results/soak-<commit>")
    args = p.parse_args(argv)
    if args.warmup_min >= args.minutes:
        p.error("--warmup-min must be shorter than --minutes")
    missing = preflight()
    if missing:
        print(f"soak: {missing}", file=sys.stderr)
        return 2
    from tests.topology import control_room

    started = datetime.now(UTC)
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    try:
        with control_room(work, REDIS_URL) as room:
            log(f"control room up: proxy {room.proxy}, processes {room.processes()}")

            async def runner() -> dict[str, Any]:
                task = asyncio.current_task()
                if task is not None:
                    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
                return await soak(args, room, work)

            result = asyncio.run(runner())
            logs = {
                proc.name: proc.stderr().count("Traceback")
                for proc in (room.recorder, *room.web.values(), room.media)
            }
            # nginx logs at `warn` to stderr: why it answered 502, if it did. Its warnings
            # that a body was buffered to a temporary file are normal at this size.
            proxy_lines = room.nginx_err.read_text(errors="replace").splitlines()
    except (KeyboardInterrupt, asyncio.CancelledError):
        log("interrupted; processes, Redis keys and temp dir cleaned up")
        return 130
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["tracebacks_in_process_logs"] = logs
    bad = [
        ln[:300] for ln in proxy_lines if any(f"[{w}]" in ln for w in ("error", "crit", "alert"))
    ]
    result["proxy_log"] = {
        "warnings": sum("[warn]" in ln for ln in proxy_lines),
        "errors": len(bad),
        "errors_first": bad[:10],
    }
    commit = git_commit()
    doc = {
        "bench": "soak",
        "date": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration_s": round(time.monotonic() - _t0, 1),
        "command": " ".join([".venv/bin/python", "bench/soak.py", *sys.argv[1:]]),
        "commit": commit,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "settings": {
            "minutes": args.minutes,
            "warmup_min": args.warmup_min,
            "rate_events_per_s": args.rate,
            "entities": ENTITIES,
            "browsers": args.browsers,
            "aiortc_viewers": args.viewers,
            "browsers_are_video_viewers": args.browser_video,
            "sample_s": SAMPLE_S,
            "growth_max_pct": 100 * GROWTH_MAX,
            "rate_min_fraction": RATE_MIN,
            "topology": "recorder, web1, web2, media behind nginx (tests/topology.py)",
            "transport": f"HTTP POST batches every {TICK_S * 1000:.0f} ms via the proxy, "
            f"<= {MAX_IN_FLIGHT} in flight",
        },
        **result,
    }
    text = json.dumps(doc, indent=2, ensure_ascii=False)
    print(text, flush=True)
    if args.save:
        out = ROOT / "bench" / "results" / f"soak-{commit or 'unknown'}.json"
        out.write_text(text + "\n")
        log(f"saved {out.relative_to(ROOT)}")
    return 0 if all(result["pass"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
