"""Video glass-to-glass latency sender -> headless Chromium, and server CPU per viewer,
for the cockpit's pass-through forwarding against aiortc's plain `MediaRelay`.

Prints ONE JSON object to stdout; progress goes to stderr.

    .venv/bin/python bench/video_latency.py            # 8 s latency, 5 s CPU windows (~1.5-2 min)
    .venv/bin/python bench/video_latency.py --quick    # 4 s / 3 s windows (~1.3 min)

What runs: one `cockpit serve --port P --data-dir D` subprocess (users and the "uav"
device token from `tests.serving.prepare`), and, as the baseline, this file run with
`--relay-server PORT`: a Starlette app under uvicorn with unauthenticated `POST
/whip/{s}` / `POST /whep/{s}` whose viewers each get `MediaRelay().subscribe(track)` of
the sender's track (aiortc decodes the ingest once and re-encodes VP8 per viewer).

Sender: an aiortc peer in this process publishes over WHIP a 30 fps VideoStreamTrack
whose top 48 px rows carry 32 black/white blocks (width/32 px wide each) = the low 32
bits of the wall-clock ms at the moment the frame is made (before encoding).

Latency: one Chromium (/usr/bin/chromium, --no-sandbox, headless) page on the server's
origin (cockpit: logged in as "el" via POST /api/v1/session) opens an RTCPeerConnection
(iceServers: []), recvonly video, WHEP offer after ICE gathering completes, plays
muted into a <video>; on every requestVideoFrameCallback it draws the frame to a canvas,
reads the block row and records Date.now() - stamp (ms; same machine clock). Frames
whose stamp decodes to something outside [-50, 5000] ms are counted as `bad` and
dropped. Warm-up, then the measured window. Per size, per server.

CPU per viewer: 640x480 ingest, 1 / 3 / 8 aiortc viewers in this process (their frames
are passed through undecoded by cockpit.media.passthrough so that the bench itself
stays cheap), server process CPU % (100 % = one core) from /proc over a window;
extra viewer = (cpu8 - cpu1) / 7.

Cleanup: browser, both subprocesses (SIGTERM then SIGKILL), temp dir; also on errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SELF = Path(__file__).resolve()
ROOT = SELF.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import av  # noqa: E402
import httpx  # noqa: E402
import numpy as np  # noqa: E402
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.mediastreams import MediaStreamTrack, VideoStreamTrack  # noqa: E402

from bench.common import git_commit, proc_cpu_s  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
SDP = {"Content-Type": "application/sdp"}
BITS = 32
ROW_H = 48
SIZES = ((640, 480), (1280, 720))
VIEWER_COUNTS = (1, 3, 8)
TARGETS = {"p50_ms_max": 100.0, "p99_ms_max": 150.0, "extra_viewer_cpu_pct_max": 2.0}

_t_start = time.perf_counter()


def log(msg: str) -> None:
    print(f"[video {time.perf_counter() - _t_start:6.1f}s] {msg}", file=sys.stderr, flush=True)


def no_stun() -> RTCConfiguration:
    return RTCConfiguration(iceServers=[])


def cpu_seconds(pid: int) -> float:
    used = proc_cpu_s(pid)
    if used is None:
        raise ProcessLookupError(pid)
    return used


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return round(v[lo] + (v[hi] - v[lo]) * (k - lo), 1)


# --- the stamped sender ----------------------------------------------------------------


class Stamped(VideoStreamTrack):
    """30 fps frames with the wall-clock ms (low 32 bits) as a row of black/white blocks."""

    def __init__(self, width: int, height: int) -> None:
        super().__init__()
        self.width, self.height, self.n = width, height, 0
        self.base = np.full((height, width, 3), 96, np.uint8)

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        img = self.base.copy()
        x = (self.n * 8) % self.width  # some motion below the stamp
        img[ROW_H:, x : x + 16] = 200
        self.n += 1
        stamp = int(time.time() * 1000) & 0xFFFFFFFF
        bw = self.width // BITS
        for i in range(BITS):
            img[:ROW_H, i * bw : (i + 1) * bw] = 255 if (stamp >> (BITS - 1 - i)) & 1 else 0
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


async def publish(url: str, size: tuple[int, int], token: str | None) -> RTCPeerConnection:
    pc = RTCPeerConnection(no_stun())
    pc.addTrack(Stamped(*size))
    await pc.setLocalDescription(await pc.createOffer())
    headers = dict(SDP)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient(base_url=url, timeout=20) as c:
        r = await c.post("/whip/bench", content=pc.localDescription.sdp, headers=headers)
        if r.status_code != 201:
            raise RuntimeError(f"WHIP {r.status_code}: {r.text[:300]}")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=r.text, type="answer"))
    return pc


async def aiortc_viewer(url: str, cookies: httpx.Cookies | None) -> RTCPeerConnection:
    """A viewer that drains its track without decoding (pass-through)."""
    from cockpit.media import passthrough

    passthrough.install()
    pc = RTCPeerConnection(no_stun())
    pc.addTransceiver("video", direction="recvonly")

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        passthrough.pass_through(track)

        async def drain() -> None:
            with contextlib.suppress(Exception):
                while True:
                    await track.recv()

        pc.__dict__.setdefault("_bench_tasks", []).append(asyncio.ensure_future(drain()))

    await pc.setLocalDescription(await pc.createOffer())
    async with httpx.AsyncClient(base_url=url, timeout=20, cookies=cookies) as c:
        r = await c.post("/whep/bench", content=pc.localDescription.sdp, headers=SDP)
        if r.status_code != 201:
            raise RuntimeError(f"WHEP {r.status_code}: {r.text[:300]}")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=r.text, type="answer"))
    return pc


async def close_pc(pc: RTCPeerConnection) -> None:
    for t in pc.__dict__.get("_bench_tasks", []):
        t.cancel()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(pc.close(), 5)


# --- the baseline relay server ---------------------------------------------------------


def relay_server(port: int) -> None:
    import uvicorn
    from aiortc.contrib.media import MediaRelay
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, Response
    from starlette.routing import Route

    relay = MediaRelay()
    tracks: dict[str, MediaStreamTrack] = {}
    pcs: set[RTCPeerConnection] = set()

    async def answer(pc: RTCPeerConnection, offer: str) -> Response:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        pcs.add(pc)
        return Response(pc.localDescription.sdp, 201, media_type="application/sdp")

    async def whip(request: Request) -> Response:
        pc = RTCPeerConnection(no_stun())
        name = request.path_params["s"]

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            tracks[name] = track

        return await answer(pc, (await request.body()).decode())

    async def whep(request: Request) -> Response:
        track = tracks.get(request.path_params["s"])
        if track is None:
            return Response("no such stream", 404)
        pc = RTCPeerConnection(no_stun())
        pc.addTrack(relay.subscribe(track))
        return await answer(pc, (await request.body()).decode())

    async def index(request: Request) -> Response:
        return HTMLResponse("<!doctype html><title>relay</title><body></body>")

    async def healthz(request: Request) -> Response:
        return Response("ok")

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/healthz", healthz),
            Route("/whip/{s}", whip, methods=["POST"]),
            Route("/whep/{s}", whep, methods=["POST"]),
        ]
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


# --- the browser viewer ----------------------------------------------------------------

VIEWER_JS = """
async ([bits, rowH]) => {
  const S = (window.__bench = {samples: [], bad: 0, frames: 0, on: false, err: null});
  try {
    const pc = new RTCPeerConnection({iceServers: []});
    pc.addTransceiver("video", {direction: "recvonly"});
    const video = document.createElement("video");
    video.muted = true; video.autoplay = true; video.playsInline = true;
    document.body.appendChild(video);
    pc.ontrack = (e) => { video.srcObject = e.streams[0] || new MediaStream([e.track]); };
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((ok) => {
      if (pc.iceGatheringState === "complete") return ok();
      pc.addEventListener("icegatheringstatechange", () => {
        if (pc.iceGatheringState === "complete") ok();
      });
      setTimeout(ok, 3000);
    });
    const r = await fetch("/whep/bench", {method: "POST", body: pc.localDescription.sdp,
      headers: {"Content-Type": "application/sdp"}, credentials: "same-origin"});
    if (r.status !== 201) throw new Error("WHEP " + r.status + " " + (await r.text()));
    await pc.setRemoteDescription({type: "answer", sdp: await r.text()});
    video.play().catch(() => {});
    const canvas = document.createElement("canvas");
    const ctx = canvas.getContext("2d", {willReadFrequently: true});
    const onFrame = () => {
      const now = Date.now();
      const w = video.videoWidth, h = video.videoHeight;
      if (w && h) {
        S.frames++;
        if (canvas.width !== w) { canvas.width = w; canvas.height = rowH; }
        ctx.drawImage(video, 0, 0, w, rowH, 0, 0, w, rowH);
        const px = ctx.getImageData(0, rowH >> 1, w, 1).data;
        const bw = Math.floor(w / bits);
        let stamp = 0;
        for (let i = 0; i < bits; i++) {
          const x = i * bw + (bw >> 1);
          stamp = stamp * 2 + (px[x * 4] > 127 ? 1 : 0);
        }
        let d = (now % 4294967296) - stamp;
        if (d < -2147483648) d += 4294967296;
        if (d > 2147483647) d -= 4294967296;
        if (S.on) { if (d >= -50 && d <= 5000) S.samples.push(d); else S.bad++; }
      }
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  } catch (e) { S.err = String(e); }
}
"""


async def browser_latency(
    browser: Any, url: str, login: dict[str, str] | None, warm_s: float, measure_s: float
) -> dict[str, Any]:
    ctx = await browser.new_context()
    try:
        page = await ctx.new_page()
        if login:
            r = await page.request.post(url + "/api/v1/session", data=login)
            if r.status != 200:
                raise RuntimeError(f"login {r.status}")
        await page.goto(url + ("/healthz" if login else "/"))
        await page.evaluate("document.open(); document.write('<body></body>'); document.close()")
        await page.evaluate(VIEWER_JS, [BITS, ROW_H])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            st = await page.evaluate("({f: __bench.frames, e: __bench.err})")
            if st["e"]:
                raise RuntimeError(st["e"])
            if st["f"] > 0:
                break
            await asyncio.sleep(0.2)
        else:
            raise RuntimeError("no frame in the browser within 15 s")
        await asyncio.sleep(warm_s)
        await page.evaluate("__bench.on = true")
        await asyncio.sleep(measure_s)
        res = await page.evaluate("({s: __bench.samples, bad: __bench.bad, f: __bench.frames})")
        s = res["s"]
        return {
            "samples": len(s),
            "bad_stamps": res["bad"],
            "fps_seen": round(len(s) / measure_s, 1),
            "p50_ms": pct(s, 0.5),
            "p95_ms": pct(s, 0.95),
            "p99_ms": pct(s, 0.99),
            "max_ms": max(s) if s else None,
        }
    finally:
        await ctx.close()


# --- orchestration ---------------------------------------------------------------------


async def cpu_case(
    pid: int, url: str, cookies: httpx.Cookies | None, token: str | None, window_s: float
) -> dict[str, Any]:
    pub = await publish(url, SIZES[0], token)
    viewers: list[RTCPeerConnection] = []
    out: dict[str, Any] = {}
    try:
        await asyncio.sleep(2)
        for n in VIEWER_COUNTS:
            while len(viewers) < n:
                viewers.append(await aiortc_viewer(url, cookies))
            await asyncio.sleep(2)  # ICE/DTLS up, first keyframe
            c0, t0 = cpu_seconds(pid), time.monotonic()
            await asyncio.sleep(window_s)
            cpu = 100 * (cpu_seconds(pid) - c0) / (time.monotonic() - t0)
            out[f"cpu_pct_{n}_viewers"] = round(cpu, 1)
            log(f"  {n} viewers: server {cpu:.1f} % of a core")
        c1, c8 = out["cpu_pct_1_viewers"], out["cpu_pct_8_viewers"]
        out["extra_viewer_cpu_pct"] = round((c8 - c1) / 7, 2)
    finally:
        for v in viewers:
            await close_pc(v)
        await close_pc(pub)
    return out


async def latency_cases(
    browser: Any,
    url: str,
    login: dict[str, str] | None,
    token: str | None,
    warm_s: float,
    measure_s: float,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for size in SIZES:
        key = f"{size[0]}x{size[1]}"
        pub = await publish(url, size, token)
        try:
            out[key] = await browser_latency(browser, url, login, warm_s, measure_s)
            log(f"  {key}: {out[key]}")
        except Exception as exc:
            out[key] = {"error": repr(exc)}
            log(f"  {key}: ERROR {exc!r}")
        finally:
            await close_pc(pub)
        await asyncio.sleep(1)
    return out


async def wait_http(url: str, proc: subprocess.Popen[bytes], limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    async with httpx.AsyncClient(timeout=2) as c:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await c.get(url + "/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} not up in {limit_s} s")


def spawn(cmd: list[str], log_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as f:
        return subprocess.Popen(
            cmd,
            stdout=f,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=log_path.parent,
            env=env,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    from tests.procs import clean_env, cockpit_command, free_port
    from tests.serving import prepare

    warm_s, measure_s, window_s = (2.0, 4.0, 3.0) if args.quick else (3.0, 8.0, 5.0)
    work = Path(tempfile.mkdtemp(prefix="video-bench-"))
    servers: list[subprocess.Popen[bytes]] = []
    result: dict[str, Any] = {}
    try:
        data = work / "data"
        tokens, passwords = prepare(data)
        port = free_port()
        cockpit_url = f"http://127.0.0.1:{port}"
        cmd = [*cockpit_command(), "serve", "--port", str(port), "--data-dir", str(data)]
        cockpit = spawn(cmd, work / "cockpit.log", clean_env())
        servers.append(cockpit)
        rport = free_port()
        relay_url = f"http://127.0.0.1:{rport}"
        cmd = [sys.executable, str(SELF), "--relay-server", str(rport)]
        relay = spawn(cmd, work / "relay.log", clean_env())
        servers.append(relay)
        await wait_http(cockpit_url, cockpit, 90)
        await wait_http(relay_url, relay, 60)
        log(f"cockpit {cockpit_url} (pid {cockpit.pid}), relay {relay_url} (pid {relay.pid})")
        login = {"username": "el", "password": passwords["el"]}
        async with httpx.AsyncClient(base_url=cockpit_url) as c:
            r = await c.post("/api/v1/session", json=login)
            r.raise_for_status()
            cookies = c.cookies

        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                for name, url, lg, tok in (
                    ("cockpit", cockpit_url, login, tokens["uav"]),
                    ("mediarelay", relay_url, None, None),
                ):
                    log(f"latency via {name}")
                    result.setdefault(name, {})["latency"] = await latency_cases(
                        browser, url, lg, tok, warm_s, measure_s
                    )
            finally:
                await browser.close()
        for name, url, ck, tok, proc in (
            ("cockpit", cockpit_url, cookies, tokens["uav"], cockpit),
            ("mediarelay", relay_url, None, None, relay),
        ):
            log(f"server CPU via {name}")
            try:
                result[name]["cpu_640x480"] = await cpu_case(proc.pid, url, ck, tok, window_s)
            except Exception as exc:
                result[name]["cpu_640x480"] = {"error": repr(exc)}
                log(f"  ERROR {exc!r}")
    finally:
        for p in servers:
            stop(p)
        shutil.rmtree(work, ignore_errors=True)
    leaks = [p.pid for p in servers if p.poll() is None]
    return {
        **result,
        "windows_s": {"warm": warm_s, "latency": measure_s, "cpu": window_s},
        "leaks": leaks,
    }


def verdict(result: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    c = result.get("cockpit", {})
    for key, lat in c.get("latency", {}).items():
        if lat.get("p50_ms") is not None:
            out[f"latency_{key}_ok"] = (
                lat["p50_ms"] <= TARGETS["p50_ms_max"] and lat["p99_ms"] <= TARGETS["p99_ms_max"]
            )
    extra = c.get("cpu_640x480", {}).get("extra_viewer_cpu_pct")
    if extra is not None:
        out["extra_viewer_cpu_ok"] = extra <= TARGETS["extra_viewer_cpu_pct_max"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter windows (~1.3 min)")
    ap.add_argument("--relay-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.relay_server:
        relay_server(args.relay_server)
        return
    started = datetime.now(UTC)
    result = asyncio.run(run(args))
    doc = {
        "bench": "video_latency",
        "date": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration_s": round(time.perf_counter() - _t_start, 1),
        "command": " ".join([".venv/bin/python", "bench/video_latency.py", *sys.argv[1:]]),
        "commit": git_commit(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "method": {
            "latency": "stamp = wall ms when the sender makes the frame (before VP8 encode); "
            "end = Date.now() in requestVideoFrameCallback of headless Chromium, 1 page",
            "fps": 30,
            "cpu": "server process /proc utime+stime, % of one core; 640x480 ingest; "
            "viewers = aiortc peers in the bench process (pass-through, not decoding)",
            "baseline": "aiortc MediaRelay: ingest decoded once, VP8 re-encoded per viewer",
        },
        "targets": TARGETS,
        **result,
        "verdict": verdict(result),
    }
    print(json.dumps(doc, indent=2), flush=True)


if __name__ == "__main__":
    main()
