"""Ingest throughput of the cockpit: in-process, over HTTP batches, over one WebSocket.

Prints ONE JSON object to stdout; progress goes to stderr.

    .venv/bin/python bench/ingest.py              # 8 s measured per case (about 80 s)
    .venv/bin/python bench/ingest.py --quick      # 2 s per case
    .venv/bin/python bench/ingest.py --only ws --bus memory --seconds 5

Cases (each with the memory bus and with the Redis bus; Redis from COCKPIT_BENCH_REDIS_URL,
default redis://127.0.0.1:6379, skipped with a reason when it does not answer):

* in_process: JSON bytes -> `feeds.telemetry.parse_body` -> `to_events` ->
  `Pipeline.ingest` (bus publish -> fold -> recorder group commit, awaited), built the way
  `cockpit/server.py` `_live` builds it; several producer tasks, 500 messages per call.
  Recorder `synchronous=FULL` (the default); `--normal` adds a memory-bus run with NORMAL.
* http_batch: `cockpit serve --port <free port>` as a subprocess (its own core: the machine
  has 2) with a prepared data dir and device token, ready once /healthz answers; a client
  posting 500-message batches to `POST /api/v1/ingest/telemetry`, a few concurrent requests.
* ws_single_connection: the same server, ONE WebSocket to `/ws/ingest/telemetry`, one message
  per text frame, pipelined: a sender keeps at most `--ws-window` frames unacknowledged and a
  reader task counts the acknowledged events.

One native message carries a position and readings, i.e. 2 events. 200 entities report in
turn, each message at a new position (the fold appends to tracks, evaluates the threshold
rules); readings stay below alert thresholds. Only acknowledged (committed) events count.

Nothing leaks: producer tasks are awaited/cancelled, pipelines closed, server processes
stopped (SIGINT, then SIGKILL after 15 s), temporary data dirs removed, and every Redis key
of the run's unique incidents (`cockpit:bench-<run>-*`) deleted at the end.

Also reported per case: CPU use (server and client separately), ack latency percentiles,
the recorder's commits/s and events per commit over the window, and a check of the written
log (rows >= acknowledged events, no seq gaps, received_at never decreasing with seq).

`--profile DIR` runs the in-process cases and the servers under cProfile timed by thread
CPU time (the event loop and the recorder's writer thread separately; time spent waiting
for the GIL is not charged), writes `.prof` files to DIR and adds a summary to the JSON.
Deterministic profiling inflates many-small-call code (e.g. ULIDs): take shares as
pointers and `bench/ingest_steps.py` for per-step costs. Profiled runs are not figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import itertools
import math
import os
import platform
import random
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from bench.common import git_commit, proc_cpu_s  # noqa: E402

BATCH = 500  # messages per ingest call / HTTP request
ENTITIES = 200
EVENTS_PER_MESSAGE = 2  # position + readings
TARGETS = {"in_process_events_per_s": 50_000, "ws_events_per_s": 10_000}
DEFAULT_REDIS = "redis://127.0.0.1:6379"
OBS = "@@OBS@@"  # placeholder for observed_at, filled in when a message is sent

_t_start = time.perf_counter()


def log(msg: str) -> None:
    print(f"[bench {time.perf_counter() - _t_start:6.1f}s] {msg}", file=sys.stderr, flush=True)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- traffic -----------------------------------------------------------------------------


class Traffic:
    """Pre-rendered native telemetry: `variants` rounds of reports by `entities` entities.

    Round v moves every entity a step along its own random walk, so consecutive reports of
    an entity are at different positions. Batches are consecutive slices of the endless
    sequence round 0 (entity 0..N-1), round 1, ...; observed_at is put in at send time
    (wall clock), so every report is newer than the last one of its entity.
    """

    def __init__(self, entities: int = ENTITIES, variants: int = 16, seed: int = 7) -> None:
        rng = random.Random(seed)
        kinds = ["robot"] * 150 + ["drone"] * 30 + ["unit"] * 20
        base_lat, base_lon = 51.5235, 7.4480  # Dortmund harbour
        state = []
        for e in range(entities):
            state.append(
                {
                    "lat": base_lat + rng.uniform(-0.01, 0.01),
                    "lon": base_lon + rng.uniform(-0.015, 0.015),
                    "heading": rng.uniform(0, 360),
                    "co": rng.uniform(0, 20),
                    "battery": rng.uniform(60, 100),
                    "kind": kinds[e % len(kinds)],
                }
            )
        self.messages: list[str] = []
        for _v in range(variants):
            for e, st in enumerate(state):
                st["heading"] = (st["heading"] + rng.uniform(-30, 30)) % 360
                step = rng.uniform(0.5, 3.0) / 111_000
                st["lat"] += step * math.cos(math.radians(st["heading"]))
                st["lon"] += step * math.sin(math.radians(st["heading"])) / 0.62
                st["co"] = min(30.0, max(0.0, st["co"] + rng.uniform(-2, 2)))
                st["battery"] = max(30.0, st["battery"] - rng.uniform(0, 0.2))
                msg = {
                    "entity": f"{st['kind']}-{e:03d}",
                    "kind": st["kind"],
                    "callsign": f"{st['kind'].capitalize()} {e}",
                    "observed_at": OBS,
                    "position": {
                        "lat": round(st["lat"], 7),
                        "lon": round(st["lon"], 7),
                        "alt_m": round(rng.uniform(80, 120), 1),
                        "heading_deg": round(st["heading"], 1),
                        "speed_mps": round(rng.uniform(0, 3), 2),
                    },
                    "readings": {
                        "co": {"value": round(st["co"], 1), "unit": "ppm"},
                        "o2": {"value": round(rng.uniform(20.5, 20.9), 1), "unit": "Vol-%"},
                        "temperature": {"value": round(rng.uniform(20, 60), 1), "unit": "°C"},
                        "battery": {"value": round(st["battery"], 1), "unit": "%"},
                    },
                }
                self.messages.append(orjson.dumps(msg).decode())
        n = len(self.messages)
        period = n * BATCH // math.gcd(n, BATCH)  # messages until the batch slices repeat
        self.batches: list[bytes] = []
        for start in range(0, period, BATCH):
            part = [self.messages[(start + i) % n] for i in range(BATCH)]
            self.batches.append(("[" + ",".join(part) + "]").encode())

    def batch(self, k: int) -> bytes:
        """Batch k (JSON array of BATCH messages) with observed_at = now."""
        return self.batches[k % len(self.batches)].replace(OBS.encode(), now_iso().encode())

    def single(self, k: int, observed: str) -> str:
        return self.messages[k % len(self.messages)].replace(OBS, observed)


# --- helpers -----------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    idx = min(len(values) - 1, max(0, math.ceil(q / 100 * len(values)) - 1))
    return round(values[idx] * 1000, 2)  # ms


class Window:
    """Counts what is acknowledged; the figure is the delta over [start, end]."""

    def __init__(self) -> None:
        self.events = 0
        self.messages = 0
        self.calls = 0
        self.errors = 0
        # WS: acks whose seqs are not above the previous ack's (frames of one connection
        # committed in another order than they were sent); counted over the whole run.
        self.order_violations = 0
        self.latencies: list[float] = []  # seconds, only while measuring
        self.measuring = False
        self._t0 = 0.0
        self._e0 = self._m0 = self._c0 = self._err0 = 0
        self.result: dict[str, Any] = {}

    def add(self, events: int, messages: int, latency: float | None = None) -> None:
        self.events += events
        self.messages += messages
        self.calls += 1
        if self.measuring and latency is not None:
            self.latencies.append(latency)

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._e0, self._m0, self._c0, self._err0 = (
            self.events,
            self.messages,
            self.calls,
            self.errors,
        )
        self.measuring = True

    def stop(self) -> dict[str, Any]:
        dt = time.perf_counter() - self._t0
        self.measuring = False
        ev, msgs, calls = self.events - self._e0, self.messages - self._m0, self.calls - self._c0
        self.result = {
            "events_per_s": round(ev / dt),
            "messages_per_s": round(msgs / dt),
            "events": ev,
            "seconds": round(dt, 2),
            "calls": calls,
            "errors": self.errors - self._err0,
            "latency_ms": {
                "p50": pct(self.latencies, 50),
                "p90": pct(self.latencies, 90),
                "p99": pct(self.latencies, 99),
                "max": pct(self.latencies, 100),
            },
        }
        return self.result


async def measure(window: Window, warmup: float, seconds: float, label: str) -> dict[str, Any]:
    await asyncio.sleep(warmup)
    window.start()
    await asyncio.sleep(seconds)
    res = window.stop()
    log(f"{label}: {res['events_per_s']:,} events/s ({res['messages_per_s']:,} msg/s)")
    return res


async def stop_tasks(tasks: list[asyncio.Task[Any]], stop: asyncio.Event, grace: float) -> None:
    """Let tasks finish their current step, then cancel whatever is still running."""
    stop.set()
    if tasks:
        _done, pending = await asyncio.wait(tasks, timeout=grace)
        for t in pending:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t


def redis_available(url: str) -> str | None:
    """None if Redis answers at url, else the reason."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=2.0)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return f"no Redis at {url}: {exc.__class__.__name__}: {exc}"
    return None


def redis_keys(url: str, pattern: str) -> int:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=10.0)
    try:
        return sum(1 for _ in client.scan_iter(match=pattern, count=10_000))
    finally:
        client.close()


def redis_delete(url: str, pattern: str) -> int:
    """Delete every key matching pattern (SCAN + UNLINK); returns how many."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=30.0)
    deleted = 0
    try:
        chunk: list[bytes] = []
        for key in client.scan_iter(match=pattern, count=10_000):
            chunk.append(key)
            if len(chunk) >= 5000:
                deleted += int(client.unlink(*chunk))
                chunk.clear()
        if chunk:
            deleted += int(client.unlink(*chunk))
    finally:
        client.close()
    return deleted


def redis_clients(url: str) -> int:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5.0)
    try:
        return int(client.info("clients")["connected_clients"])
    finally:
        client.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_pct(c0: float | None, c1: float | None, seconds: float) -> float | None:
    if c0 is None or c1 is None or seconds <= 0:
        return None
    return round(100 * (c1 - c0) / seconds, 1)


def check_log(path: Path, acked_events: int) -> dict[str, Any]:
    """What the recorder wrote: row count and seq/received_at consistency."""
    if not path.is_file():
        return {"error": f"{path} missing"}
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT seq, received_at FROM events ORDER BY seq").fetchall()
    finally:
        conn.close()
    gaps = sum(1 for a, b in itertools.pairwise(rows) if b[0] != a[0] + 1)
    inversions = sum(1 for a, b in itertools.pairwise(rows) if b[1] < a[1])
    return {
        "rows": len(rows),
        "rows_ge_acked": len(rows) >= acked_events,
        "seq_gaps": gaps,
        "received_at_inversions": inversions,
    }


# --- 1. in-process -----------------------------------------------------------------------


def _cpu_profile() -> cProfile.Profile:
    """cProfile charging the calling thread's CPU time, not wall time.

    The event loop and the recorder's writer thread compete for the GIL; with a wall-clock
    timer the wait for the GIL would be charged to whatever function happened to run.
    """
    return cProfile.Profile(time.thread_time)


def hook_recorder_profile(out: Path) -> Callable[[], None]:
    """Profile the writer thread of every Recorder opened from now on; returns an undo."""
    from cockpit.recorder import Recorder

    real_open = Recorder.open

    def hooked_open(self: Any) -> int:
        original = self._writer

        def writer() -> None:
            prof = _cpu_profile()
            prof.enable()
            try:
                original()
            finally:
                prof.disable()
                prof.dump_stats(str(out))

        self._writer = writer  # the thread's target is looked up on the instance
        return int(real_open(self))

    Recorder.open = hooked_open  # type: ignore[method-assign]

    def undo() -> None:
        Recorder.open = real_open  # type: ignore[method-assign]

    return undo


def serve_profiled() -> None:
    """Entry of a profiled server process: argv = [-, out_prefix, cockpit args...]."""
    prefix = sys.argv[1]
    from cockpit.cli import main

    hook_recorder_profile(Path(prefix + "-recorder.prof"))
    prof = _cpu_profile()
    prof.enable()
    try:
        code = main(sys.argv[2:])
    finally:
        prof.disable()
        prof.dump_stats(prefix + "-loop.prof")
    sys.exit(code)


# (label, file suffix, function): cumulative CPU share of these entry points.
_COMPONENTS = [
    ("ws route: receive loop", "cockpit/api/ingest.py", "ingest_telemetry_ws"),
    ("ws route: _ws_handle (validate + spawn)", "cockpit/api/ingest.py", "_ws_handle"),
    ("ws route: _ws_writer (await + send ack)", "cockpit/api/ingest.py", "_ws_writer"),
    ("http route: ingest_telemetry", "cockpit/api/ingest.py", "ingest_telemetry"),
    ("parse_body (pydantic validate_json)", "feeds/telemetry.py", "parse_body"),
    ("to_events (build event models)", "feeds/telemetry.py", "to_events"),
    ("  of which new_event_id (ULID)", "cockpit/events.py", "new_event_id"),
    ("Pipeline.ingest (publish + wait commit)", "cockpit/pipeline.py", "ingest"),
    ("  bus.publish", "cockpit/bus.py", "publish"),
    ("  bus.wait_committed", "cockpit/bus.py", "wait_committed"),
    ("fold loop", "cockpit/pipeline.py", "_fold_loop"),
    ("  Situation.apply", "cockpit/situation.py", "apply"),
    ("  Situation.snapshot", "cockpit/situation.py", "snapshot"),
    ("record loop (bus -> recorder queue)", "cockpit/pipeline.py", "_record_loop"),
    ("redis: subscription reader", "cockpit/bus.py", "_read"),
    ("redis: parse_event", "cockpit/events.py", "parse_event"),
    ("recorder: _write", "cockpit/recorder.py", "_write"),
    ("recorder: event_to_json", "cockpit/events.py", "event_to_json"),
]


def _package(file: str, func: str) -> str:
    if file == "~":  # a builtin: name its owner
        for key, label in (
            ("pydantic_core", "pydantic-core (C)"),
            ("sqlite3", "sqlite3 (C)"),
            ("orjson", "orjson"),
            ("zlib", "zlib"),
            ("epoll", "select/epoll"),
            ("socket", "socket I/O"),
        ):
            if key in func:
                return label
        return "other builtins"
    for key in (
        "cockpit/",
        "feeds/",
        "pydantic/",
        "ulid/",
        "asyncio/",
        "uvicorn/",
        "websockets/",
        "starlette/",
        "fastapi/",
        "redis/",
        "httpx/",
        "h11/",
        "httptools/",
    ):
        if key in file:
            if key in ("cockpit/", "feeds/"):
                return file[file.index(key) :]
            return key.rstrip("/")
    return "other python"


def summarize_profile(path: Path, top: int = 12) -> dict[str, Any]:
    """Shares of the thread's CPU: by component (cumulative), by package and by function."""
    import pstats

    st = pstats.Stats(str(path))
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = st.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values()) or 1e-9  # sum of self times
    components: dict[str, float] = {}
    for label, suffix, func in _COMPONENTS:
        cum = sum(v[3] for (f, _l, fn), v in raw.items() if f.endswith(suffix) and fn == func)
        if cum > 0:
            components[label] = round(100 * cum / total, 1)
    packages: dict[str, float] = {}
    for (f, _l, fn), v in raw.items():
        key = _package(f, fn)
        packages[key] = packages.get(key, 0.0) + v[2]
    by_pkg = sorted(packages.items(), key=lambda kv: -kv[1])[:top]
    by_fn = sorted(raw.items(), key=lambda kv: -kv[1][2])[:top]
    return {
        "cpu_s": round(total, 2),
        "components_cum_pct": components,
        "self_pct_by_package": {k: round(100 * v / total, 1) for k, v in by_pkg},
        "self_pct_top_functions": [
            [f"{_package(f, fn)}:{ln}({fn})", round(100 * v[2] / total, 1)]
            for (f, ln, fn), v in by_fn
        ],
    }


async def in_process(
    traffic: Traffic,
    *,
    bus_kind: str,
    redis_url: str | None,
    run_id: str,
    warmup: float,
    seconds: float,
    producers: int,
    sync: str,
    profile_dir: Path | None,
) -> dict[str, Any]:
    from cockpit.bus import make_bus
    from cockpit.cli import tune_gc
    from cockpit.events import Event, utcnow
    from cockpit.pipeline import Pipeline
    from cockpit.settings import load_settings
    from feeds.telemetry import parse_body, to_events

    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    incident = f"bench-{run_id}-inproc-{bus_kind}-{sync.lower()}"
    settings = load_settings(
        None,
        data_dir=tmp,
        incident=incident,
        redis_url=redis_url if bus_kind == "redis" else None,
        recorder_sync=sync,
        ingest_rate_per_s=0,  # one device token sends the whole load
    )
    bus = make_bus(incident, settings.redis_url)
    pipeline = Pipeline(settings, bus, incident)
    label = f"in_process/{bus_kind}/{sync}"
    undo_hook: Callable[[], None] | None = None
    if profile_dir is not None:
        # Hook the writer thread before the pipeline opens its recorder.
        undo_hook = hook_recorder_profile(profile_dir / f"in_process-{bus_kind}-recorder.prof")
    window = Window()
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    result: dict[str, Any] = {}
    try:
        await pipeline.start()
        tune_gc()  # as `cockpit serve` does once it has started
        if undo_hook is not None:
            undo_hook()

        async def producer(i: int) -> None:
            k = i * 997
            while not stop.is_set():
                body = traffic.batch(k)
                k += 1
                t0 = time.perf_counter()
                messages = parse_body(body)
                received = utcnow()  # as cockpit/api/ingest.py `_ingest` stamps
                events: list[Event] = []
                for msg in messages:
                    events.extend(
                        to_events(msg, incident=incident, device="bench", received_at=received)
                    )
                try:
                    seqs = await pipeline.ingest(events)
                except Exception as exc:  # counted and reported, never hidden
                    window.errors += 1
                    log(f"{label}: ingest failed: {exc!r}")
                    await asyncio.sleep(0.1)
                    continue
                window.add(len(seqs), len(messages), time.perf_counter() - t0)

        tasks = [
            asyncio.create_task(producer(i), name=f"bench-producer-{i}") for i in range(producers)
        ]
        prof = _cpu_profile() if profile_dir is not None else None
        await asyncio.sleep(warmup)
        rec = pipeline.recorder
        c0 = (rec.commits, rec.events_written) if rec else (0, 0)
        if prof is not None:
            prof.enable()
        cpu0 = time.process_time()
        result = await measure(window, 0.0, seconds, label)
        result["cpu_pct"] = cpu_pct(cpu0, time.process_time(), result["seconds"])
        if prof is not None:
            prof.disable()
            assert profile_dir is not None
            prof.dump_stats(str(profile_dir / f"in_process-{bus_kind}-loop.prof"))
        if rec:
            commits, written = rec.commits - c0[0], rec.events_written - c0[1]
            result["recorder"] = {
                "synchronous": sync,
                "commits_per_s": round(commits / result["seconds"]),
                "events_per_commit": round(written / commits, 1) if commits else None,
                "last_commit_ms": round(rec.last_commit_ms, 2),
            }
        result["producers"] = producers
        result["messages_per_call"] = BATCH
        result["fold_errors"] = pipeline.fold_errors
        await stop_tasks(tasks, stop, grace=10.0)
        result["picture_entities"] = len(pipeline.situation.entities)
    finally:
        await stop_tasks(tasks, stop, grace=0.0)
        await pipeline.close()
        if result:
            result["log"] = check_log(pipeline.log_path, window.events)
        shutil.rmtree(tmp, ignore_errors=True)
    return result


# --- 2./3. the served app ----------------------------------------------------------------


class Server:
    """`cockpit serve` in a subprocess with a prepared data dir and a device token."""

    def __init__(
        self,
        *,
        incident: str,
        redis_url: str | None,
        profile_out: Path | None = None,
    ) -> None:
        self.incident = incident
        self.redis_url = redis_url
        self.profile_out = profile_out
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-serve-"))
        self.data_dir = self.tmp / "data"
        self.log_file = self.tmp / "server.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.url = ""
        self.token = ""

    @property
    def log_path(self) -> Path:
        from cockpit.recorder import incident_path

        return incident_path(self.data_dir, self.incident)

    async def start(self) -> None:
        from cockpit.auth import AuthStore

        self.data_dir.mkdir(parents=True)
        with AuthStore(self.data_dir / "auth.sqlite") as auth:
            self.token = auth.add_device("bench-device", ["telemetry"])
        env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
        env["COCKPIT_INCIDENT"] = self.incident
        env["COCKPIT_INGEST_RATE_PER_S"] = "0"  # one device token sends the whole load
        if self.redis_url:
            env["COCKPIT_REDIS_URL"] = self.redis_url
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        for _attempt in range(3):
            port = _free_port()
            self.url = f"http://127.0.0.1:{port}"
            if await self._launch(env, port):
                return
        raise RuntimeError(f"server did not start:\n{self._log_tail()}")

    async def _launch(self, env: dict[str, str], port: int) -> bool:
        """Start `cockpit serve` on port; True once /healthz answers, False if it exited."""
        import httpx

        args = ["serve", "--data-dir", str(self.data_dir), "--port", str(port)]
        if self.profile_out is not None:
            code = "from bench.ingest import serve_profiled; serve_profiled()"
            cmd = [sys.executable, "-c", code, str(self.profile_out), *args]
        else:
            cmd = [sys.executable, "-m", "cockpit.cli", *args]
        with self.log_file.open("ab") as fh:
            self.proc = await asyncio.create_subprocess_exec(
                *cmd,
                cwd=ROOT,
                env=env,
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient(base_url=self.url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.returncode is not None:
                    log(f"server exited with {self.proc.returncode}: {self._log_tail(300)}")
                    return False  # e.g. the port was taken meanwhile: try another
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/healthz")).status_code == 200:
                        return True
                await asyncio.sleep(0.05)
        await self.stop()
        raise RuntimeError(f"server did not answer /healthz in 30 s:\n{self._log_tail()}")

    def _log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    async def health(self) -> dict[str, Any]:
        import httpx

        async with httpx.AsyncClient(base_url=self.url, timeout=10) as client:
            r = await client.get("/healthz")
            return dict(r.json())

    async def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                log("server did not stop in 15 s; killing it")
                self.proc.kill()
                await asyncio.wait_for(self.proc.wait(), 5)
        return self.proc.returncode

    def log_summary(self) -> dict[str, Any]:
        """Warnings and errors the server logged (count and the first distinct ones)."""
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()
        except OSError:
            return {}
        bad = [ln for ln in lines if " WARNING " in ln or " ERROR " in ln]
        first: list[str] = []
        for ln in bad:
            # Drop the time stamp so that repeats of one message count once.
            text = ln.split(" ", 2)[-1][:240]
            if text not in first:
                first.append(text)
            if len(first) >= 3:
                break
        return {"warnings_and_errors": len(bad), "first": first}

    def cleanup(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def _recorder_window(h0: dict[str, Any], h1: dict[str, Any], seconds: float) -> dict[str, Any]:
    r0 = (h0.get("pipeline") or {}).get("recorder") or {}
    r1 = (h1.get("pipeline") or {}).get("recorder") or {}
    commits = r1.get("commits", 0) - r0.get("commits", 0)
    written = r1.get("events_written", 0) - r0.get("events_written", 0)
    return {
        "commits_per_s": round(commits / seconds) if seconds else None,
        "events_per_commit": round(written / commits, 1) if commits else None,
        "last_commit_ms": r1.get("last_commit_ms"),
        "error": r1.get("error"),
    }


async def served_case(
    name: str,
    body: Callable[[Server, Window, asyncio.Event], list[Awaitable[None]]],
    *,
    bus_kind: str,
    redis_url: str | None,
    run_id: str,
    warmup: float,
    seconds: float,
    profile_dir: Path | None,
    server_logs: Path | None,
    extra: dict[str, Any],
) -> dict[str, Any]:
    incident = f"bench-{run_id}-{name.replace('_', '-')}-{bus_kind}"
    server = Server(
        incident=incident,
        redis_url=redis_url if bus_kind == "redis" else None,
        profile_out=(profile_dir / f"server-{name}-{bus_kind}") if profile_dir else None,
    )
    label = f"{name}/{bus_kind}"
    window = Window()
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    result: dict[str, Any] = {}
    try:
        await server.start()
        log(f"{label}: server {server.url} (pid {server.proc.pid if server.proc else '?'})")
        tasks = [asyncio.create_task(c) for c in body(server, window, stop)]  # type: ignore[arg-type]
        await asyncio.sleep(warmup)
        for t in tasks:
            if t.done():
                t.result()  # a client that died in warm-up: raise its error
        pid = server.proc.pid if server.proc else 0
        h0 = await server.health()
        s0, c0 = proc_cpu_s(pid), time.process_time()
        result = await measure(window, 0.0, seconds, label)
        s1, c1 = proc_cpu_s(pid), time.process_time()
        h1 = await server.health()
        result["cpu_pct"] = {
            "server": cpu_pct(s0, s1, result["seconds"]),
            "client": cpu_pct(c0, c1, result["seconds"]),
        }
        result["recorder"] = _recorder_window(h0, h1, result["seconds"])
        result.update(extra)
        if name.startswith("ws"):
            result["ack_seq_order_violations"] = window.order_violations
        if bus_kind == "redis" and redis_url:
            result["redis_connected_clients"] = redis_clients(redis_url)
        await stop_tasks(tasks, stop, grace=15.0)
        for t in tasks:
            if t.done() and not t.cancelled() and t.exception() is not None:
                result["client_error"] = repr(t.exception())
    finally:
        await stop_tasks(tasks, stop, grace=0.0)
        code = await server.stop()
        if result:
            result["server_exit"] = code
            result["server_log"] = server.log_summary()
            result["log"] = check_log(server.log_path, window.events)
        if code not in (0, 130, -2, None):
            log(f"{label}: server exit {code}; log tail:\n{server.log_file.read_text()[-3000:]}")
        if server_logs is not None:
            with contextlib.suppress(OSError):
                shutil.copyfile(server.log_file, server_logs / f"{name}-{bus_kind}.log")
        server.cleanup()
    return result


def http_clients(
    traffic: Traffic, concurrency: int
) -> Callable[[Server, Window, asyncio.Event], list[Awaitable[None]]]:
    import httpx

    def make(server: Server, window: Window, stop: asyncio.Event) -> list[Awaitable[None]]:
        async def run() -> None:
            limits = httpx.Limits(
                max_connections=concurrency, max_keepalive_connections=concurrency
            )
            headers = {
                "Authorization": f"Bearer {server.token}",
                "Content-Type": "application/json",
            }
            async with httpx.AsyncClient(
                base_url=server.url, headers=headers, timeout=30.0, limits=limits
            ) as client:

                async def one(i: int) -> None:
                    k = i * 997
                    while not stop.is_set():
                        body = traffic.batch(k)
                        k += 1
                        t0 = time.perf_counter()
                        r = await client.post("/api/v1/ingest/telemetry", content=body)
                        if r.status_code != 202:
                            window.errors += 1
                            if window.errors <= 3:
                                log(f"http: {r.status_code} {r.text[:300]}")
                            await asyncio.sleep(0.05)
                            continue
                        seqs = orjson.loads(r.content)["seq"]
                        window.add(len(seqs), BATCH, time.perf_counter() - t0)

                workers = [asyncio.create_task(one(i)) for i in range(concurrency)]
                try:
                    await asyncio.gather(*workers)
                finally:
                    for w in workers:
                        w.cancel()
                    await asyncio.gather(*workers, return_exceptions=True)

        return [run()]

    return make


def ws_client(
    traffic: Traffic, max_unacked: int, compression: bool
) -> Callable[[Server, Window, asyncio.Event], list[Awaitable[None]]]:
    from websockets.asyncio.client import connect

    def make(server: Server, window: Window, stop: asyncio.Event) -> list[Awaitable[None]]:
        async def run() -> None:
            url = server.url.replace("http://", "ws://") + "/ws/ingest/telemetry"
            async with connect(
                url,
                additional_headers={"Authorization": f"Bearer {server.token}"},
                compression="deflate" if compression else None,
                max_size=1 << 20,
                max_queue=None,  # the reader keeps up; don't stall on ack bursts
                proxy=None,
                open_timeout=10,
                close_timeout=5,
            ) as ws:
                sent_at: deque[float] = deque()
                room = asyncio.Event()
                room.set()
                finished = asyncio.Event()

                async def reader() -> None:
                    last_seq = 0
                    async for raw in ws:
                        reply = orjson.loads(raw)
                        t = sent_at.popleft()
                        seqs = reply.get("seq")
                        if seqs is None:
                            window.errors += 1
                            if window.errors <= 3:
                                log(f"ws: rejected: {reply}")
                        else:
                            window.add(len(seqs), 1, time.perf_counter() - t)
                            if seqs and seqs[0] <= last_seq:
                                window.order_violations += 1
                            last_seq = max(last_seq, seqs[-1]) if seqs else last_seq
                        if len(sent_at) < max_unacked:
                            room.set()
                        if stop.is_set() and not sent_at:
                            finished.set()
                            return

                read_task = asyncio.create_task(reader())
                try:
                    k = 0
                    observed = now_iso()
                    while not stop.is_set():
                        if len(sent_at) >= max_unacked:
                            room.clear()
                            await room.wait()
                            continue
                        if k % 64 == 0:
                            observed = now_iso()
                        frame = traffic.single(k, observed)
                        k += 1
                        sent_at.append(time.perf_counter())
                        await ws.send(frame)
                        if read_task.done():
                            read_task.result()
                            return
                    if sent_at:  # collect the acks still in flight
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(finished.wait(), 10)
                finally:
                    read_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await read_task

        return [run()]

    return make


# --- main --------------------------------------------------------------------------------


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=8.0, help="measured seconds per case")
    p.add_argument("--quick", action="store_true", help="2 s per case (overrides --seconds)")
    p.add_argument("--warmup", type=float, default=None, help="seconds before measuring")
    p.add_argument(
        "--only",
        action="append",
        choices=["in_process", "http_batch", "ws_single_connection", "ws"],
        help="run only these cases (repeatable)",
    )
    p.add_argument("--bus", action="append", choices=["memory", "redis"], help="only these buses")
    p.add_argument("--producers", type=int, default=4, help="in-process producer tasks")
    p.add_argument("--http-concurrency", type=int, default=4, help="concurrent HTTP requests")
    p.add_argument("--ws-window", type=int, default=2000, help="max unacknowledged WS frames")
    p.add_argument("--ws-deflate", action="store_true", help="offer permessage-deflate on WS")
    p.add_argument("--normal", action="store_true", help="also in-process memory, sync NORMAL")
    p.add_argument("--profile", type=Path, help="write cProfile .prof files here")
    p.add_argument("--server-logs", type=Path, help="keep the servers' logs in this directory")
    return p.parse_args(argv)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    seconds = 2.0 if args.quick else args.seconds
    warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 1.5)
    only = {"ws_single_connection" if o == "ws" else o for o in (args.only or [])} or {
        "in_process",
        "http_batch",
        "ws_single_connection",
    }
    buses = args.bus or ["memory", "redis"]
    redis_url = os.environ.get("COCKPIT_BENCH_REDIS_URL", DEFAULT_REDIS)
    redis_reason = redis_available(redis_url) if "redis" in buses else None
    run_id = secrets.token_hex(3)
    profile_dir = args.profile
    for folder in (profile_dir, args.server_logs):
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
    traffic = Traffic()
    log(f"run {run_id}: {seconds:g} s per case after {warmup:g} s warm-up; buses {buses}")
    if redis_reason:
        log(f"redis cases skipped: {redis_reason}")

    results: dict[str, Any] = {}
    skipped = {"skipped": redis_reason}

    async def each_bus(name: str, run: Callable[[str], Awaitable[dict[str, Any]]]) -> None:
        out: dict[str, Any] = {}
        for bus_kind in buses:
            if bus_kind == "redis" and redis_reason:
                out[bus_kind] = skipped
                continue
            try:
                out[bus_kind] = await run(bus_kind)
            except Exception as exc:
                log(f"{name}/{bus_kind} failed: {exc!r}")
                out[bus_kind] = {"error": repr(exc)}
            finally:
                if bus_kind == "redis":
                    n = redis_delete(redis_url, f"cockpit:bench-{run_id}-*")
                    log(f"{name}/{bus_kind}: deleted {n} redis keys")
        results[name] = out

    if "in_process" in only:

        async def inproc(bus_kind: str, sync: str = "FULL") -> dict[str, Any]:
            return await in_process(
                traffic,
                bus_kind=bus_kind,
                redis_url=redis_url,
                run_id=run_id,
                warmup=warmup,
                seconds=seconds,
                producers=args.producers,
                sync=sync,
                profile_dir=profile_dir,
            )

        await each_bus("in_process", inproc)
        if args.normal and "memory" in buses:
            try:
                results["in_process"]["memory_sync_normal"] = await inproc("memory", "NORMAL")
            except Exception as exc:
                results["in_process"]["memory_sync_normal"] = {"error": repr(exc)}

    common = {
        "redis_url": redis_url,
        "run_id": run_id,
        "warmup": warmup,
        "seconds": seconds,
        "profile_dir": profile_dir,
        "server_logs": args.server_logs,
    }
    if "http_batch" in only:
        await each_bus(
            "http_batch",
            lambda b: served_case(
                "http_batch",
                http_clients(traffic, args.http_concurrency),
                bus_kind=b,
                extra={"concurrent_requests": args.http_concurrency, "messages_per_request": BATCH},
                **common,
            ),
        )
    if "ws_single_connection" in only:
        await each_bus(
            "ws_single_connection",
            lambda b: served_case(
                "ws_single_connection",
                ws_client(traffic, args.ws_window, args.ws_deflate),
                bus_kind=b,
                extra={
                    "max_unacked_frames": args.ws_window,
                    "messages_per_frame": 1,
                    "compression": "deflate" if args.ws_deflate else None,
                },
                **common,
            ),
        )

    leaks: dict[str, Any] = {
        "tasks_left": len([t for t in asyncio.all_tasks() if t is not asyncio.current_task()]),
    }
    if "redis" in buses and not redis_reason:
        leaks["redis_keys_left"] = redis_keys(redis_url, f"cockpit:bench-{run_id}-*")

    def fig(case: str, bus: str) -> int | None:
        v = results.get(case, {}).get(bus, {})
        return v.get("events_per_s") if isinstance(v, dict) else None

    verdict = {}
    for bus in buses:
        ip, ws = fig("in_process", bus), fig("ws_single_connection", bus)
        if ip is not None:
            verdict[f"in_process_{bus}_met"] = ip >= TARGETS["in_process_events_per_s"]
        if ws is not None:
            verdict[f"ws_{bus}_met"] = ws >= TARGETS["ws_events_per_s"]

    profile: dict[str, Any] | None = None
    if profile_dir is not None:
        profile = {"note": "cProfile with thread CPU time; figures of a profiled run are slower"}
        for f in sorted(profile_dir.glob("*.prof")):
            try:
                profile[f.stem] = summarize_profile(f)
            except Exception as exc:
                profile[f.stem] = {"error": repr(exc)}

    out = {
        "bench": "ingest",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loop": "asyncio (default policy, as `cockpit serve` runs)",
        },
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python bench/ingest.py " + " ".join(sys.argv[1:]),
        "commit": git_commit(),
        "settings": {
            "seconds_per_case": seconds,
            "warmup_s": warmup,
            "entities": ENTITIES,
            "events_per_message": EVENTS_PER_MESSAGE,
            "messages_per_batch": BATCH,
            "recorder_synchronous": "FULL (default) unless the case says otherwise",
            "redis_url": redis_url if "redis" in buses else None,
            "profiled": str(profile_dir) if profile_dir else None,
        },
        "results": results,
        "targets": TARGETS,
        "targets_met": verdict,
        "leaks": leaks,
    }
    if profile is not None:
        out["profile"] = profile
    return out


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    out = asyncio.run(main_async(args))
    # After asyncio.run: its default executor (asyncio.to_thread) is shut down by then.
    out["leaks"]["threads_left"] = [
        t.name for t in threading.enumerate() if t is not threading.main_thread()
    ]
    print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
