"""The real `cockpit` command, run as separate processes: what an operator would notice.

Each test starts `cockpit …` as a child process on a free port with its own data dir,
talks to it over HTTP only, and ends it (or kills it) for real. The `procs` fixture
kills and reaps anything still running when a test ends, pass or fail.

The only timings asserted are the product's promises: the demo answers within 15 s,
a second process shows an event within 1 s of the first one's 202, a surviving process
takes over recording within 15 s, and a signal stops a server within 10 s.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import signal
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.procs import Proc, Procs, all_events, free_port, healthz, wait_healthy

pytestmark = pytest.mark.slow

# Cold start of a Python process with FastAPI, pydantic, argon2 on a busy 2-core box.
START_TIMEOUT_S = 30.0
# `commit_timeout_s` is 5 s; nothing a test posts may take longer than that plus slack.
HTTP_TIMEOUT_S = 15.0


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    running = Procs(tmp_path / "procs")
    try:
        yield running
    finally:
        running.close()


# --- helpers ----------------------------------------------------------------------------


def add_user(procs: Procs, data_dir: Path, name: str = "el", role: str = "commander") -> str:
    """`cockpit user add` with a fresh password on stdin; returns the password."""
    password = secrets.token_urlsafe(12)
    r = procs.run(
        "user", "add", name, "--role", role, "--password-stdin", "--data-dir", str(data_dir),
        stdin=password + "\n",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return password


def add_token(procs: Procs, data_dir: Path, device: str = "dev") -> str:
    """`cockpit token add`: the token is the only thing on stdout."""
    r = procs.run("token", "add", device, "--feeds", "telemetry", "--data-dir", str(data_dir))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 1 and lines[0].strip(), r.stdout
    return lines[0].strip()


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def telemetry(entity: str, lat: float, lon: float, kind: str = "robot") -> dict[str, Any]:
    """A position-only native telemetry message (one event), observed now."""
    return {
        "entity": entity,
        "kind": kind,
        "callsign": entity.upper(),
        "observed_at": now_iso(),
        "position": {"lat": lat, "lon": lon},
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def logged_in(proc: Proc, user: str, password: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=proc.url, timeout=HTTP_TIMEOUT_S) as c:
        r = await c.post("/api/v1/session", json={"username": user, "password": password})
        assert r.status_code == 200, r.text
        yield c


async def entities(c: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    r = await c.get("/api/v1/situation", params={"tracks": "false"})
    assert r.status_code == 200, r.text
    return {e["id"]: e for e in r.json()["entities"]}


async def seen_after(c: httpx.AsyncClient, entity: str, since: float, timeout: float) -> float:
    """Poll the picture until `entity` is in it; seconds from `since` to that answer."""
    deadline = since + timeout
    while True:
        found = entity in await entities(c)
        t = time.monotonic()
        if found:
            return t - since
        if t > deadline:
            raise AssertionError(f"{entity} not in the picture {t - since:.2f} s after its 202")
        await asyncio.sleep(0.01)


def start_serve(procs: Procs, data_dir: Path, name: str, **env: str) -> Proc:
    return procs.start("serve", "--data-dir", str(data_dir), port=free_port(), name=name, env=env)


# --- 1. the demo ------------------------------------------------------------------------


async def wait_for_login_line(proc: Proc, timeout: float) -> tuple[str, str]:
    """The demo's printed log-in: a line with `einsatzleitung` and the password after it."""
    pattern = re.compile(r"\b(einsatzleitung)\s*[/:]\s*(\S+)")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in proc.stdout().splitlines():
            m = pattern.search(line)
            if m:
                return m.group(1), m.group(2)
        await asyncio.sleep(0.1)
    raise AssertionError(f"no log-in line with 'einsatzleitung' on stdout\n{proc.tail()}")


async def units(c: httpx.AsyncClient) -> dict[str, tuple[float, float]]:
    return {
        eid: (e["lat"], e["lon"])
        for eid, e in (await entities(c)).items()
        if e["kind"] == "unit" and e["lat"] is not None
    }


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_demo_shows_moving_units_and_stops_on_signal(
    procs: Procs, tmp_path: Path, sig: signal.Signals
) -> None:
    demo = procs.start(
        "demo", "--no-browser", "--data-dir", str(tmp_path / "demo"), port=free_port(), name="demo"
    )
    to_healthy, body = await wait_healthy(demo, 15.0)
    assert body["status"] == "ok", body
    print(f"demo: /healthz 200 after {to_healthy:.2f} s")

    user, password = await wait_for_login_line(demo, 5.0)
    async with logged_in(demo, user, password) as c:
        # The simulator connects right after start-up; give it a few reports.
        deadline = time.monotonic() + 10.0
        first = await units(c)
        while len(first) < 8 and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            first = await units(c)
        assert len(first) >= 8, f"only {len(first)} units in the picture: {sorted(first)}"
        await asyncio.sleep(2.0)
        second = await units(c)
    moved = sorted(u for u in first if u in second and second[u] != first[u])
    print(f"demo: {len(first)} units, {len(moved)} moved in 2 s")
    assert len(moved) >= 8, f"only {moved} of {sorted(first)} moved in 2 s"

    demo.send(sig)
    t0 = time.monotonic()
    code = demo.wait(10.0)
    print(f"demo: exit {code} {time.monotonic() - t0:.2f} s after {sig.name}")
    assert code is not None, f"demo still running 10 s after {sig.name}\n{demo.tail()}"
    assert code in (0, 128 + sig, -sig), f"exit code {code}\n{demo.tail()}"
    assert "Traceback" not in demo.stderr(), demo.tail(60)


# --- 2. two processes on one Redis ------------------------------------------------------


@pytest.fixture
def redis_incident(redis_url: str, procs: Procs) -> Iterator[str]:
    """A fresh incident id; afterwards the processes end, then its Redis keys go."""
    incident = f"proc-test-{uuid.uuid4().hex[:12]}"
    try:
        yield incident
    finally:
        procs.close()  # nothing may write the keys again once they are deleted
        client = redis.Redis.from_url(redis_url, socket_timeout=5.0)
        try:
            keys = list(client.scan_iter(match=f"cockpit:{incident}:*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


@pytest.mark.redis
async def test_two_processes_share_one_picture_and_hand_over_recording(
    procs: Procs, tmp_path: Path, redis_url: str, redis_incident: str
) -> None:
    data = tmp_path / "shared"
    password = add_user(procs, data)
    token = add_token(procs, data)
    env = {"COCKPIT_INCIDENT": redis_incident, "COCKPIT_REDIS_URL": redis_url}
    # Both at once: the recorder lease is decided between them, not by start order.
    a = start_serve(procs, data, "serve-a", **env)
    b = start_serve(procs, data, "serve-b", **env)
    await wait_healthy(a, START_TIMEOUT_S)
    await wait_healthy(b, START_TIMEOUT_S)

    health = {p.name: await healthz(p.url) for p in (a, b)}
    for h in health.values():
        assert h["incident"] == redis_incident and h["status"] == "ok", h
    recording = [p for p in (a, b) if health[p.name]["pipeline"]["recording"]]
    assert len(recording) == 1, {n: h["pipeline"]["recording"] for n, h in health.items()}
    recorder = recording[0]
    survivor = b if recorder is a else a

    acked: list[int] = []
    async with logged_in(a, "el", password) as ca, logged_in(b, "el", password) as cb:
        clients = {a.name: ca, b.name: cb}
        for n, (src, dst) in enumerate(((a, b), (b, a))):
            entity = f"robot-{src.name}"
            r = await clients[src.name].post(
                "/api/v1/ingest/telemetry",
                json=telemetry(entity, 51.51 + n / 1000, 7.46),
                headers=bearer(token),
            )
            assert r.status_code == 202, r.text
            t_ack = time.monotonic()
            acked += r.json()["seq"]
            latency = await seen_after(clients[dst.name], entity, t_ack, 1.0)
            print(f"redis: {src.name} 202 -> in {dst.name}'s picture after {latency * 1000:.0f} ms")

        recorder.kill9()
        t_kill = time.monotonic()
        deadline = t_kill + 20.0
        while not (await healthz(survivor.url))["pipeline"]["recording"]:
            assert time.monotonic() < deadline, f"no take-over in 20 s\n{survivor.tail()}"
            await asyncio.sleep(0.1)
        takeover = time.monotonic() - t_kill
        print(f"redis: {survivor.name} records {takeover:.1f} s after kill -9 of {recorder.name}")
        assert takeover <= 15.0, f"take-over took {takeover:.1f} s"

        c = clients[survivor.name]
        r = await c.post(
            "/api/v1/ingest/telemetry",
            json=telemetry("robot-after", 51.52, 7.47),
            headers=bearer(token),
        )
        assert r.status_code == 202, r.text
        acked += r.json()["seq"]
        assert {"robot-serve-a", "robot-serve-b", "robot-after"} <= set(await entities(c))
        # Nothing acknowledged before the kill is missing from the log now.
        logged = [e["seq"] for e in await all_events(c)]
        assert logged == list(range(1, len(logged) + 1)), logged
        assert set(acked) <= set(logged), (acked, logged)


async def wait_recording(proc: Proc, want: bool, timeout: float) -> float:
    """Seconds until `proc`'s /healthz says `pipeline.recording == want`."""
    t0 = time.monotonic()
    while (await healthz(proc.url))["pipeline"]["recording"] is not want:
        assert time.monotonic() - t0 < timeout, (
            f"{proc.name}: recording is not {want} after {timeout} s\n{proc.tail()}"
        )
        await asyncio.sleep(0.1)
    return time.monotonic() - t0


@pytest.mark.redis
async def test_a_recorder_paused_past_its_lease_gives_way(
    procs: Procs, tmp_path: Path, redis_url: str, redis_incident: str
) -> None:
    """A frozen recorder (SIGSTOP: a VM pause, a swap storm) wakes up as a follower."""
    data = tmp_path / "shared"
    password = add_user(procs, data)
    token = add_token(procs, data)
    env = {"COCKPIT_INCIDENT": redis_incident, "COCKPIT_REDIS_URL": redis_url}
    a = start_serve(procs, data, "serve-a", **env)
    await wait_healthy(a, START_TIMEOUT_S)
    b = start_serve(procs, data, "serve-b", **env)
    await wait_healthy(b, START_TIMEOUT_S)
    assert (await healthz(a.url))["pipeline"]["recording"] is True
    assert (await healthz(b.url))["pipeline"]["recording"] is False

    a.send(signal.SIGSTOP)
    takeover = await wait_recording(b, True, 20.0)
    print(f"pause: serve-b records {takeover:.1f} s after serve-a froze")
    acked: list[int] = []
    async with logged_in(b, "el", password) as cb:
        r = await cb.post(
            "/api/v1/ingest/telemetry",
            json=telemetry("robot-while-frozen", 51.5, 7.4),
            headers=bearer(token),
        )
        assert r.status_code == 202, r.text
        acked += r.json()["seq"]

        a.send(signal.SIGCONT)
        gave_way = await wait_recording(a, False, 10.0)
        print(f"pause: serve-a stopped recording {gave_way:.1f} s after it woke")
        # For longer than a lease renewal: exactly one records, and it stays serve-b.
        for _ in range(5):
            rec = [(await healthz(p.url))["pipeline"]["recording"] for p in (a, b)]
            assert rec == [False, True], rec
            await asyncio.sleep(1.0)

        async with logged_in(a, "el", password) as ca:
            r = await ca.post(
                "/api/v1/ingest/telemetry",
                json=telemetry("robot-after-wake", 51.51, 7.41),
                headers=bearer(token),
            )
            assert r.status_code == 202, r.text
            acked += r.json()["seq"]
            assert {"robot-while-frozen", "robot-after-wake"} <= set(await entities(ca))
        logged = [e["seq"] for e in await all_events(cb)]
        assert logged == list(range(1, len(logged) + 1)), logged
        assert set(acked) <= set(logged), (acked, logged)


# --- 3. durability under kill -9 --------------------------------------------------------

N_ENTITIES = 40
PER_REQUEST = 20
REQUEST_EVERY_S = 0.04  # 25 requests/s x 20 messages = 500 events/s


class Load:
    """Posts telemetry at a fixed rate, concurrently, and remembers what was acknowledged."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self.sent: dict[tuple[str, int], tuple[float, float]] = {}  # (entity, k) -> position
        self.acked: dict[int, tuple[str, int]] = {}  # seq -> (entity, k)
        self.next_k = dict.fromkeys((f"d-{e:02d}" for e in range(N_ENTITIES)), 0)
        self.requests = 0
        self.failed = 0
        self.statuses: dict[int, int] = {}
        self.in_flight = 0

    def _batch(self, i: int) -> list[tuple[str, int, dict[str, Any]]]:
        batch = []
        for j in range(PER_REQUEST):
            e = (i * PER_REQUEST + j) % N_ENTITIES
            entity = f"d-{e:02d}"
            k = self.next_k[entity]
            self.next_k[entity] = k + 1
            pos = (51.0 + k * 1e-5, 7.0 + e * 1e-3)
            self.sent[(entity, k)] = pos
            batch.append((entity, k, telemetry(entity, *pos)))
        return batch

    async def _post(
        self, c: httpx.AsyncClient, batch: list[tuple[str, int, dict[str, Any]]]
    ) -> None:
        self.in_flight += 1
        try:
            r = await c.post(
                "/api/v1/ingest/telemetry",
                json=[m for _, _, m in batch],
                headers=bearer(self.token),
            )
        except httpx.TransportError:
            self.failed += 1
            return
        finally:
            self.in_flight -= 1
        self.statuses[r.status_code] = self.statuses.get(r.status_code, 0) + 1
        if 200 <= r.status_code < 300:
            seqs = r.json()["seq"]
            assert len(seqs) == len(batch), (seqs, len(batch))
            for seq, (entity, k, _) in zip(seqs, batch, strict=True):
                self.acked[seq] = (entity, k)

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        async with httpx.AsyncClient(base_url=self.url, timeout=10.0, limits=limits) as c:
            tasks: list[asyncio.Task[None]] = []
            t0 = loop.time()
            while not stop.is_set():
                tasks.append(asyncio.create_task(self._post(c, self._batch(self.requests))))
                self.requests += 1
                await asyncio.sleep(max(0.0, t0 + self.requests * REQUEST_EVERY_S - loop.time()))
            await asyncio.gather(*tasks)

    def last_acked_k(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for entity, k in self.acked.values():
            out[entity] = max(out.get(entity, -1), k)
        return out


async def test_acknowledged_telemetry_survives_kill_9(procs: Procs, tmp_path: Path) -> None:
    data = tmp_path / "data"
    password = add_user(procs, data)
    token = add_token(procs, data)
    first = start_serve(procs, data, "serve-1")
    _, h1 = await wait_healthy(first, START_TIMEOUT_S)

    load = Load(first.url, token)
    stop = asyncio.Event()
    poster = asyncio.create_task(load.run(stop))
    await asyncio.sleep(3.0)
    assert not poster.done(), poster.exception()
    # Kill while at least one request waits for its acknowledgement, if that happens soon.
    deadline = time.monotonic() + 2.0
    while load.in_flight == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.001)
    in_flight = load.in_flight
    first.kill9()  # while the client is posting
    await asyncio.sleep(0.3)  # keep posting at a dead server for a moment
    stop.set()
    await poster

    acked_events = len(load.acked)
    print(
        f"kill: {load.requests} requests, {acked_events} events acked, {load.failed} failed, "
        f"{in_flight} in flight at the kill, statuses {load.statuses}"
    )
    assert acked_events >= 1000, f"only {acked_events} events acknowledged before the kill"
    assert set(load.statuses) <= {202}, load.statuses

    second = start_serve(procs, data, "serve-2")
    _, h2 = await wait_healthy(second, START_TIMEOUT_S)
    assert h2["incident"] == h1["incident"], (h1["incident"], h2["incident"])
    async with logged_in(second, "el", password) as c:
        log = {e["seq"]: e for e in await all_events(c)}
        picture = await entities(c)

    lost = []
    for seq, (entity, k) in sorted(load.acked.items()):
        ev = log.get(seq)
        if ev is None:
            lost.append(seq)
            continue
        pay = ev["payload"]
        assert ev["kind"] == "position" and pay["entity"] == entity, (seq, ev)
        assert (pay["lat"], pay["lon"]) == load.sent[(entity, k)], (seq, entity, k, ev)
    unacked_but_logged = len(set(log) - set(load.acked))
    print(
        f"kill: after restart {len(log)} events in the log, {len(lost)} acked ones lost, "
        f"{unacked_but_logged} committed without an ack"
    )
    assert not lost, f"{len(lost)} acknowledged events lost: {lost[:20]}"
    assert sorted(log) == list(range(1, len(log) + 1)), "the log has gaps"

    by_position = {(entity, pos): k for (entity, k), pos in load.sent.items()}
    for entity, last_k in load.last_acked_k().items():
        assert entity in picture, f"{entity} acknowledged but missing from the picture"
        e = picture[entity]
        shown_k = by_position.get((entity, (e["lat"], e["lon"])))
        assert shown_k is not None, f"{entity} at {e['lat']}, {e['lon']}: never sent"
        assert shown_k >= last_k, f"{entity} shows report {shown_k}, but {last_k} was acked"


async def test_a_second_server_on_the_same_data_dir_loses_no_acknowledged_event(
    procs: Procs, tmp_path: Path
) -> None:
    """Without Redis, two `cockpit serve` on one data dir (a second start by mistake).

    Refusing to start is fine; acknowledging an event and then not having it is not.
    """
    data = tmp_path / "data"
    password = add_user(procs, data)
    token = add_token(procs, data)
    a = start_serve(procs, data, "serve-a")
    await wait_healthy(a, START_TIMEOUT_S)
    b = start_serve(procs, data, "serve-b")
    deadline = time.monotonic() + START_TIMEOUT_S
    while b.alive() and time.monotonic() < deadline:
        try:
            await healthz(b.url)
            break
        except (httpx.HTTPError, AssertionError):
            await asyncio.sleep(0.1)
    if not b.alive():
        assert b.popen.returncode != 0, b.tail()
        return  # refused: nothing was acknowledged by it

    acked: dict[str, list[int]] = {}
    for proc in (a, b, a, b):
        entity = f"robot-via-{proc.name}-{len(acked)}"
        async with httpx.AsyncClient(base_url=proc.url, timeout=HTTP_TIMEOUT_S) as c:
            r = await c.post(
                "/api/v1/ingest/telemetry",
                json=telemetry(entity, 51.5, 7.4),
                headers=bearer(token),
            )
        if r.status_code == 202:
            acked[entity] = r.json()["seq"]
    a.stop()
    b.stop()

    after = start_serve(procs, data, "serve-after")
    await wait_healthy(after, START_TIMEOUT_S)
    async with logged_in(after, "el", password) as c:
        logged = {e["payload"]["entity"] for e in await all_events(c)}
    lost = sorted(set(acked) - logged)
    assert not lost, f"acknowledged (202) but not in the log: {lost}; acks were {acked}"


# --- 4. the administrative commands -----------------------------------------------------


def test_user_add_names_a_bad_role_and_a_short_password(procs: Procs, tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    r = procs.run(
        "user", "add", "chief", "--role", "chief", "--password-stdin", "--data-dir", data,
        stdin="a-long-enough-password\n",
    )  # fmt: skip
    assert r.returncode != 0
    assert "role" in r.stderr, r.stderr

    short = "Kurz3"
    r = procs.run(
        "user", "add", "kurt", "--role", "viewer", "--password-stdin", "--data-dir", data,
        stdin=short + "\n",
    )  # fmt: skip
    assert r.returncode != 0
    assert "password" in r.stderr, r.stderr
    assert short not in r.stderr + r.stdout, "the password must not be echoed"
    assert "Traceback" not in r.stderr, r.stderr


def test_token_add_names_an_unknown_feed(procs: Procs, tmp_path: Path) -> None:
    r = procs.run(
        "token", "add", "dev", "--feeds", "telemetry,fax", "--data-dir", str(tmp_path / "d")
    )
    assert r.returncode != 0
    assert "fax" in r.stderr and "feeds" in r.stderr, r.stderr
    assert r.stdout == "", "no token may be printed for a refused device"


def test_bad_setting_names_the_variable_and_the_value(procs: Procs, tmp_path: Path) -> None:
    r = procs.run(
        "serve", "--data-dir", str(tmp_path / "data"), env={"COCKPIT_PORT": "abc"}, timeout=30
    )
    assert r.returncode != 0
    assert "COCKPIT_PORT" in r.stderr and "abc" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr, r.stderr


def test_a_port_in_use_is_named_without_a_traceback(procs: Procs, tmp_path: Path) -> None:
    """The commonest start-up mistake: a second `cockpit serve` on the same port."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = procs.run(
            "serve", "--port", str(port), "--data-dir", str(tmp_path / "data"), timeout=30
        )
    assert r.returncode != 0
    assert str(port) in r.stderr and "in use" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr, r.stderr


def test_a_missing_recording_is_named_without_a_traceback(procs: Procs, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-drill.sqlite"
    r = procs.run(
        "replay", str(missing), "--port", str(free_port()), "--data-dir", str(tmp_path / "d"),
        timeout=30,
    )  # fmt: skip
    assert r.returncode != 0
    assert str(missing) in r.stderr, r.stderr
    assert "Traceback" not in r.stderr, r.stderr


def test_an_unreachable_redis_is_named_without_a_traceback(procs: Procs, tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}"  # nothing listens there
    r = procs.run(
        "serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "data"),
        env={"COCKPIT_REDIS_URL": url}, timeout=60,
    )  # fmt: skip
    assert r.returncode != 0
    assert url.removeprefix("redis://") in r.stderr, r.stderr
    assert "Traceback" not in r.stderr, r.stderr


async def test_export_import_and_replay_keep_the_events(procs: Procs, tmp_path: Path) -> None:
    src, other = tmp_path / "src", tmp_path / "other"
    incident = f"drill-{uuid.uuid4().hex[:8]}"
    password = add_user(procs, src)
    token = add_token(procs, src)
    live = start_serve(procs, src, "serve-src", COCKPIT_INCIDENT=incident)
    await wait_healthy(live, START_TIMEOUT_S)
    async with logged_in(live, "el", password) as c:
        for n, batch in enumerate(
            [
                [telemetry("robot-x", 51.5139, 7.4653)],
                [telemetry("unit-y", 51.52, 7.47, "unit"), telemetry("robot-x", 51.514, 7.466)],
            ]
        ):
            r = await c.post("/api/v1/ingest/telemetry", json=batch, headers=bearer(token))
            assert r.status_code == 202, (n, r.text)
        original = await all_events(c)
    assert len(original) == 3

    # Exported while the server still runs: the copy must be consistent anyway.
    file = tmp_path / "drill.sqlite"
    cli = procs.run("export", incident, str(file), "--data-dir", str(src))
    assert cli.returncode == 0 and file.is_file(), cli.stderr
    code = live.stop()
    assert code in (0, -signal.SIGTERM, 128 + signal.SIGTERM), f"exit {code}\n{live.tail()}"

    cli = procs.run("import", str(file), "--data-dir", str(other))
    assert cli.returncode == 0, cli.stderr
    cli = procs.run("import", str(file), "--data-dir", str(other))
    assert cli.returncode != 0 and "--force" in cli.stderr, cli.stderr

    other_password = add_user(procs, other)
    imported = start_serve(procs, other, "serve-other", COCKPIT_INCIDENT=incident)
    await wait_healthy(imported, START_TIMEOUT_S)
    async with logged_in(imported, "el", other_password) as c:
        # The imported incident goes on live: a robot silent past its limit makes it keep
        # time (a `clock` event) once it has started, on a slow machine before we read.
        back = [e for e in await all_events(c) if e["kind"] != "clock"]
        assert back == original
    imported.stop()

    replay = procs.start(
        "replay", str(file), "--data-dir", str(other), port=free_port(), name="replay"
    )
    _, body = await wait_healthy(replay, START_TIMEOUT_S)
    assert body["mode"] == "replay" and body["incident"] == incident, body
    async with logged_in(replay, "el", other_password) as c:
        assert await all_events(c) == original
        # The replay starts at the recording's first moment: robot-x's first report.
        picture = await entities(c)
        assert "robot-x" in picture, picture
        assert (picture["robot-x"]["lat"], picture["robot-x"]["lon"]) == (51.5139, 7.4653)
