"""Redis restarted under load: a recorder and two web workers on one private Redis.

The processes are real (`cockpit serve --role recorder`, and `--role web` twice), and so
is Redis: this module starts its own `redis-server` on a free port
with an append-only file, so that it can stop and start it without disturbing anyone.
`appendfsync everysec`, as in docker/compose: a SIGTERM writes and syncs the file before
Redis exits, so a clean restart loses nothing; a SIGKILL may lose the last second, which
the bus must survive without ever giving an acknowledged seq to another event.

What a user would notice, and what is asserted: every event acknowledged with a 202 is in
the recording under the seq the 202 named, the log has no gaps, all three processes come
back by themselves (/healthz ok), ingest works again on both workers, and a page open on
a worker says that the picture is not being updated while Redis is gone, and no longer
once it is back (then it shows what was reported after the restart).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from cockpit.bus import BusUnavailable, RedisBus, Rewound
from tests.procs import Proc, Procs, all_events, free_port, healthz
from tests.test_bus import batch, collect, seqs
from tests.test_processes import add_token, add_user, bearer, telemetry

pytestmark = pytest.mark.slow

REDIS_SERVER = shutil.which("redis-server")
START_TIMEOUT_S = 40.0  # three cold Python processes at once on a busy 2-core box
RECONNECT_TIMEOUT_S = 30.0
N_ENTITIES = 40
PER_REQUEST = 20
REQUEST_EVERY_S = 0.04  # 25 requests/s x 20 messages = 500 events/s
DOWN_S = float(os.environ.get("DOWN_S", "3.0"))  # how long Redis stays away


class RedisServer:
    """A private `redis-server` with an append-only file in its own folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.popen: subprocess.Popen[bytes] | None = None
        self.kept_seq = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert REDIS_SERVER is not None
        argv = [
            REDIS_SERVER,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.folder),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",  # the append-only file only: no forked RDB dumps under load
            "--auto-aof-rewrite-percentage", "0",  # the file a test copies stays the file
            "--logfile", str(self.folder / "redis.log"),
        ]  # fmt: skip
        self.popen = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + 20.0
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5, socket_timeout=2.0)
        try:
            while True:
                assert self.popen.poll() is None, self.log()
                try:
                    if client.ping():
                        return
                except (redis.ConnectionError, redis.BusyLoadingError, redis.TimeoutError):
                    pass
                assert time.monotonic() < deadline, f"redis-server not up\n{self.log()}"
                time.sleep(0.05)
        finally:
            client.close()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Send `sig` and wait until the process is gone."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            os.kill(self.popen.pid, sig)
        try:
            self.popen.wait(20)
        except subprocess.TimeoutExpired:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)
        self.popen = None

    def keep_files(self) -> None:
        """A copy of the append-only file as it is now, for `kill_and_put_back`; notes the
        highest seq the copy holds (`kept_seq`: the stream ids are `0-<seq>`)."""
        copy = self.folder / "appendonlydir.copy"
        shutil.copytree(self.folder / "appendonlydir", copy)
        self.kept_seq = max(
            (
                int(m)
                for f in copy.iterdir()
                for m in re.findall(rb"\r\n0-(\d+)\r\n", f.read_bytes())
            ),
            default=0,
        )

    def kill_and_put_back(self) -> None:
        """SIGKILL, as if the machine lost power: what was written since `keep_files` never
        reached the disk (what `appendfsync everysec` allows for the last second). A SIGKILL
        of the process alone loses nothing (the kernel still writes the file), hence the
        copy."""
        self.stop(signal.SIGKILL)
        shutil.rmtree(self.folder / "appendonlydir")
        (self.folder / "appendonlydir.copy").rename(self.folder / "appendonlydir")

    def kill_losing_last_writes(self, lost_s: float) -> None:
        self.keep_files()
        time.sleep(lost_s)
        self.kill_and_put_back()

    def log(self) -> str:
        path = self.folder / "redis.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


@dataclass
class Cluster:
    redis: RedisServer
    procs: Procs
    data: Path
    incident: str
    password: str
    token: str
    recorder: Proc
    workers: list[Proc]

    @property
    def all(self) -> list[Proc]:
        return [self.recorder, *self.workers]

    def tails(self) -> str:
        return "\n".join(p.tail(40) for p in self.all) + "\n--- redis:\n" + self.redis.log()


def _health(proc: Proc) -> dict[str, Any] | None:
    try:
        r = httpx.get(proc.url + "/healthz", timeout=2.0)
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code == 200 else None


def wait_all_ok(cluster: Cluster, timeout: float) -> dict[str, float]:
    """Seconds until each process's /healthz says `ok` (bus connected, recorder well)."""
    t0 = time.monotonic()
    took: dict[str, float] = {}
    last: dict[str, Any] = {}
    while len(took) < len(cluster.all):
        for p in cluster.all:
            assert p.alive(), f"{p.name} exited\n{cluster.tails()}"
            if p.name in took:
                continue
            h = _health(p)
            last[p.name] = h and {"status": h["status"], "bus": h.get("pipeline", {}).get("bus")}
            if h is not None and h["status"] == "ok":
                took[p.name] = time.monotonic() - t0
        assert time.monotonic() - t0 < timeout, f"not ok in {timeout} s: {last}\n{cluster.tails()}"
        time.sleep(0.1)
    return took


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if REDIS_SERVER is None:
        pytest.skip("no redis-server binary (apt-get install redis-server)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, private_redis: RedisServer
) -> Iterator[Cluster]:
    work = tmp_path_factory.mktemp("redis-restart")
    server = private_redis
    procs = Procs(work / "procs")
    try:
        data = work / "data"
        password = add_user(procs, data)
        token = add_token(procs, data)
        incident = "redis-restart"
        env = {"COCKPIT_REDIS_URL": server.url, "COCKPIT_INCIDENT": incident}

        def serve(name: str, role: str) -> Proc:
            return procs.start(
                "serve", "--role", role, "--data-dir", str(data), port=free_port(), name=name,
                env={**env, "COCKPIT_WORKER_NAME": name} if role == "web" else env,
            )  # fmt: skip

        rec = serve("recorder", "recorder")
        workers = [serve("web1", "web"), serve("web2", "web")]
        c = Cluster(server, procs, data, incident, password, token, rec, workers)
        wait_all_ok(c, START_TIMEOUT_S)
        yield c
    finally:
        procs.close()


# --- the bus alone ----------------------------------------------------------------------


async def test_after_redis_lost_its_last_writes_numbering_continues_after_the_recorder(
    private_redis: RedisServer,
) -> None:
    """Two buses as two processes: `recorder` (opens Redis, its subscription follows) and
    `worker` (gated publisher, a fold subscription). Redis comes back without seqs 5..6."""
    incident = f"bus-{uuid.uuid4().hex[:8]}"
    recorder = RedisBus(incident, private_redis.url, block_ms=200)
    worker = RedisBus(incident, private_redis.url, block_ms=200)
    worker.gated = True
    worker._publish_retry_s = 1.0  # a refused publish must not hold the test for 10 s
    await recorder.start()
    await worker.start()
    try:
        with pytest.raises(BusUnavailable, match="NOTOPEN"):
            await worker.publish(batch(incident, 1))  # nobody opened this Redis yet
        assert await recorder.open_run(0) is True
        fold = worker.subscribe("fold")
        follower = recorder.subscribe("recorder")
        follower.follow_rewind = True
        assert seqs(await worker.publish(batch(incident, 4))) == [1, 2, 3, 4]
        await asyncio.to_thread(private_redis.keep_files)
        lost = await worker.publish(batch(incident, 2, start=4))
        assert seqs(lost) == [5, 6]
        assert seqs(await collect(fold, 6)) == [1, 2, 3, 4, 5, 6]
        assert seqs(await collect(follower, 6)) == [1, 2, 3, 4, 5, 6]
        await asyncio.to_thread(private_redis.kill_and_put_back)
        await asyncio.to_thread(private_redis.start)

        # The fold had seen 5 and 6, which are nowhere now: it must rebuild, not go on.
        with pytest.raises(Rewound, match="went back from seq 6 to 4"):
            await collect(fold, 1)
        # Until the recorder opens this run of Redis, nothing gets a seq.
        with pytest.raises(BusUnavailable, match="NOTOPEN"):
            await worker.publish(batch(incident, 1))
        assert await recorder.open_run(follower.fetched) is True
        assert await recorder.open_run(follower.fetched) is False  # once per run
        after = await worker.publish(batch(incident, 2, start=6))
        assert seqs(after) == [7, 8], "seqs 5 and 6 name events the log already holds"
        got = await collect(follower, 2)
        assert [(e.seq, e.id) for e in got] == [(e.seq, e.id) for e in after]
    finally:
        await worker.close()
        await recorder.close()


# --- the load ---------------------------------------------------------------------------


class Load:
    """500 telemetry events/s over both workers; whatever is not acknowledged is sent again
    (the same messages) until it is, as a device's outbox would."""

    def __init__(self, urls: list[str], token: str, prefix: str) -> None:
        self.urls = urls
        self.token = token
        self.entities = [f"{prefix}-{e:02d}" for e in range(N_ENTITIES)]
        self.next_k = dict.fromkeys(self.entities, 0)
        self.sent: dict[tuple[str, int], tuple[float, float]] = {}
        self.acked: dict[int, tuple[str, int]] = {}  # seq -> (entity, k)
        self.unacked: set[tuple[str, int]] = set()
        self.requests = 0
        self.refused: dict[str, int] = {}  # status or error -> count
        self.first_refused: float | None = None
        self.last_refused: float | None = None
        self.give_up_at = float("inf")

    def _batch(self, i: int) -> list[tuple[str, int, dict[str, Any]]]:
        batch = []
        for j in range(PER_REQUEST):
            e = (i * PER_REQUEST + j) % N_ENTITIES
            entity = self.entities[e]
            k = self.next_k[entity]
            self.next_k[entity] = k + 1
            pos = (51.0 + k * 1e-5, 7.0 + e * 1e-3)
            self.sent[(entity, k)] = pos
            self.unacked.add((entity, k))
            batch.append((entity, k, telemetry(entity, *pos)))
        return batch

    def _refused(self, why: str) -> None:
        self.refused[why] = self.refused.get(why, 0) + 1
        now = time.monotonic()
        self.first_refused = self.first_refused or now
        self.last_refused = now

    async def _send(
        self, clients: list[httpx.AsyncClient], i: int, batch: list[tuple[str, int, dict[str, Any]]]
    ) -> None:
        body = [m for _, _, m in batch]
        attempt = 0
        while time.monotonic() < self.give_up_at:
            c = clients[(i + attempt) % len(clients)]  # a retry goes to the other worker
            attempt += 1
            try:
                r = await c.post("/api/v1/ingest/telemetry", json=body, headers=bearer(self.token))
            except httpx.TransportError as exc:
                self._refused(type(exc).__name__)
            else:
                if r.status_code == 202:
                    seqs = r.json()["seq"]
                    assert len(seqs) == len(batch), (seqs, len(batch))
                    for seq, (entity, k, _) in zip(seqs, batch, strict=True):
                        assert seq not in self.acked, f"seq {seq} acknowledged twice"
                        self.acked[seq] = (entity, k)
                        self.unacked.discard((entity, k))
                    return
                self._refused(str(r.status_code))
            await asyncio.sleep(0.25)

    async def run(self, stop: asyncio.Event, drain_s: float) -> None:
        loop = asyncio.get_running_loop()
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        clients = [httpx.AsyncClient(base_url=u, timeout=20.0, limits=limits) for u in self.urls]
        try:
            tasks = []
            t0 = loop.time()
            while not stop.is_set():
                i = self.requests
                tasks.append(asyncio.create_task(self._send(clients, i, self._batch(i))))
                self.requests += 1
                await asyncio.sleep(max(0.0, t0 + self.requests * REQUEST_EVERY_S - loop.time()))
            self.give_up_at = time.monotonic() + drain_s
            await asyncio.gather(*tasks)
        finally:
            for c in clients:
                await c.aclose()


async def run_with_restart(
    cluster: Cluster, load: Load, stop_redis: Callable[[], None]
) -> dict[str, float]:
    """Load for a while, take Redis away for DOWN_S under it, load on; the figures."""
    stop = asyncio.Event()
    poster = asyncio.create_task(load.run(stop, drain_s=40.0))
    await asyncio.sleep(3.0)
    assert not poster.done(), poster.exception()
    acked_before = len(load.acked)
    t_stop = time.monotonic()
    await asyncio.to_thread(stop_redis)
    await asyncio.sleep(DOWN_S)
    await asyncio.to_thread(cluster.redis.start)
    t_back = time.monotonic()
    # Measured under load: each process's /healthz back to ok, from Redis answering.
    reconnect = asyncio.create_task(asyncio.to_thread(wait_all_ok, cluster, RECONNECT_TIMEOUT_S))
    await asyncio.sleep(5.0)
    stop.set()
    await poster
    return {
        "acked_before": acked_before,
        "outage_s": t_back - t_stop,
        **{f"reconnect_{k}": v for k, v in (await reconnect).items()},
    }


async def check_log(cluster: Cluster, load: Load) -> dict[str, int]:
    """Every acknowledged event under its seq, no gaps; returns counts."""
    async with httpx.AsyncClient(base_url=cluster.workers[0].url, timeout=30.0) as c:
        r = await c.post("/api/v1/session", json={"username": "el", "password": cluster.password})
        assert r.status_code == 200, r.text
        log = {e["seq"]: e for e in await all_events(c)}
    assert sorted(log) == list(range(1, len(log) + 1)), "the log has gaps"
    lost, wrong = [], []
    for seq, (entity, k) in sorted(load.acked.items()):
        ev = log.get(seq)
        if ev is None:
            lost.append(seq)
            continue
        pay = ev["payload"]
        if ev["kind"] != "position" or pay.get("entity") != entity:
            wrong.append((seq, entity, k, ev["kind"], pay.get("entity")))
        elif (pay["lat"], pay["lon"]) != load.sent[(entity, k)]:
            wrong.append((seq, entity, k, pay["lat"], pay["lon"]))
    assert not lost, f"{len(lost)} acknowledged events missing from the log: {lost[:20]}"
    assert not wrong, f"{len(wrong)} acknowledged seqs name another event: {wrong[:10]}"
    return {"logged": len(log)}


async def pictures_catch_up(cluster: Cluster, load: Load, timeout: float = 20.0) -> float:
    """Seconds until every process's picture shows, for each entity, its last acknowledged
    report or a later one (not one Redis lost, nor an older one)."""
    by_position = {(entity, pos): k for (entity, k), pos in load.sent.items()}
    want: dict[str, int] = {}
    for entity, k in load.acked.values():
        want[entity] = max(want.get(entity, -1), k)
    t0 = time.monotonic()
    behind: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=20.0) as c:
        for w in cluster.workers:
            r = await c.post(
                w.url + "/api/v1/session", json={"username": "el", "password": cluster.password}
            )
            assert r.status_code == 200, r.text
        while True:
            behind = {}
            for w in cluster.workers:
                r = await c.get(w.url + "/api/v1/situation", params={"tracks": "false"})
                assert r.status_code == 200, r.text
                shown = {e["id"]: e for e in r.json()["entities"]}
                for entity, k in want.items():
                    e = shown.get(entity)
                    at = by_position.get((entity, (e["lat"], e["lon"]))) if e else None
                    if at is None or at < k:
                        behind[f"{w.name}:{entity}"] = (at, k)
            if not behind:
                return time.monotonic() - t0
            assert time.monotonic() - t0 < timeout, f"pictures behind: {behind}"
            await asyncio.sleep(0.5)


async def ingest_works_on_both(cluster: Cluster) -> None:
    async with httpx.AsyncClient(timeout=20.0) as c:
        for n, w in enumerate(cluster.workers):
            r = await c.post(
                w.url + "/api/v1/ingest/telemetry",
                json=telemetry(f"after-{w.name}", 51.6, 7.5 + n / 100),
                headers=bearer(cluster.token),
            )
            assert r.status_code == 202, (w.name, r.status_code, r.text)


async def all_recovered(cluster: Cluster, load: Load) -> None:
    """After the outage: every acknowledged event in the log, both pictures caught up,
    every process alive, the recorder recording, ingest working on both workers."""
    await check_log(cluster, load)
    await pictures_catch_up(cluster, load)
    for p in cluster.all:
        assert p.alive(), cluster.tails()
    assert (await healthz(cluster.recorder.url))["pipeline"]["recording"] is True
    await ingest_works_on_both(cluster)


def report(name: str, load: Load, figures: dict[str, float]) -> None:
    refused_s = (
        (load.last_refused - load.first_refused)
        if load.first_refused and load.last_refused
        else 0.0
    )
    print(
        f"{name}: {load.requests} requests, {len(load.acked)} events acked "
        f"({figures['acked_before']:.0f} before the outage), "
        f"Redis away {figures['outage_s']:.1f} s, "
        f"refusals {load.refused} over {refused_s:.1f} s, /healthz ok after Redis was back: "
        + ", ".join(f"{k[10:]} {v:.1f} s" for k, v in figures.items() if k[:10] == "reconnect_")
    )


async def test_redis_restart_under_load_loses_no_acknowledged_event(cluster: Cluster) -> None:
    load = Load([w.url for w in cluster.workers], cluster.token, "term")
    figures = await run_with_restart(cluster, load, cluster.redis.stop)
    report("SIGTERM", load, figures)
    # A clean stop writes the whole file: nothing is lost, nothing needs rebuilding.
    for p in cluster.all:
        assert "went back" not in p.stderr(), p.tail()
    assert not load.unacked, f"{len(load.unacked)} events never acknowledged\n{cluster.tails()}"
    assert len(load.acked) >= 4000, f"only {len(load.acked)} events acknowledged"
    await all_recovered(cluster, load)


async def test_redis_losing_its_last_second_never_reuses_an_acknowledged_seq(
    cluster: Cluster,
) -> None:
    """Redis killed and restarted from a file one second old: its seq counter and stream
    go back about 500 events that the recorder has already committed and acknowledged."""
    load = Load([w.url for w in cluster.workers], cluster.token, "kill")
    before = {p.name: len(p.stderr()) for p in cluster.all}
    figures = await run_with_restart(
        cluster, load, lambda: cluster.redis.kill_losing_last_writes(1.0)
    )
    report("SIGKILL", load, figures)
    # The case this test is for did happen: Redis came back (from the copy) behind what the
    # recorder had taken, and the recorder said so. (Whether a worker's reader also saw
    # the stream go back depends on whether new events were there before it reconnected.)
    floors = [
        int(m)
        for m in re.findall(
            r"numbering continues after seq (\d+)", cluster.recorder.stderr()[before["recorder"] :]
        )
    ]
    assert floors and max(floors) > cluster.redis.kept_seq, (
        f"Redis lost nothing: kept {cluster.redis.kept_seq}, floors {floors}\n{cluster.tails()}"
    )
    print(f"SIGKILL: Redis came back {max(floors) - cluster.redis.kept_seq} events behind")
    assert not load.unacked, f"{len(load.unacked)} events never acknowledged\n{cluster.tails()}"
    await all_recovered(cluster, load)


# --- the page on a worker (last: Playwright's sync API keeps a loop running, so no
# asyncio test may follow it in this module) -----------------------------------------


def test_a_page_on_a_worker_shows_the_outage_while_it_lasts(cluster: Cluster, browser: Any) -> None:
    web1, web2 = cluster.workers
    context = browser.new_context(locale="de-DE", timezone_id="Europe/Berlin")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(web1.url + "/login")
        page.fill("#u", "el")
        page.fill("#p", cluster.password)
        page.click("button[type=submit]")
        page.wait_for_url(web1.url + "/")
        page.wait_for_function("window.cockpit && window.cockpit.connected", timeout=20000)
        banner = page.locator("#conn-banner")
        assert banner.is_hidden()
        # The control room's wall on the other worker (same log-in, no input).
        wall = context.new_page()
        wall.on("pageerror", lambda exc: errors.append(str(exc)))
        wall.goto(web2.url + "/wall")
        wall.wait_for_function("window.cockpit && window.cockpit.connected", timeout=20000)
        veil = wall.locator("#wall-lost")
        assert veil.is_hidden()

        cluster.redis.stop(signal.SIGTERM)
        t_stop = time.monotonic()
        # A device posting meanwhile is told to try again (503 naming why), not left hanging.
        refused = httpx.post(
            web2.url + "/api/v1/ingest/telemetry",
            json=telemetry("during-outage", 51.61, 7.51),
            headers=bearer(cluster.token),
            timeout=30.0,
        )
        assert refused.status_code == 503, (refused.status_code, refused.text)
        assert refused.json()["errors"][0]["field"], refused.text
        banner.wait_for(state="visible", timeout=5000)
        text = banner.inner_text()
        assert text.startswith("Lagedaten unterbrochen (Bus) seit "), text
        assert "veraltet" in text, text
        assert "disconnected" in (page.locator(".map-wrap").get_attribute("class") or "")
        # The wall veils itself, in type that reads from the seats.
        veil.wait_for(state="visible", timeout=5000)
        assert veil.inner_text().upper().startswith("LAGEDATEN UNTERBROCHEN SEIT "), (
            veil.inner_text()
        )

        cluster.redis.start()
        t_back = time.monotonic()
        banner.wait_for(state="hidden", timeout=RECONNECT_TIMEOUT_S * 1000)
        hidden_after = time.monotonic() - t_back
        veil.wait_for(state="hidden", timeout=RECONNECT_TIMEOUT_S * 1000)
        deadline = t_back + RECONNECT_TIMEOUT_S
        while True:
            r = httpx.post(
                web2.url + "/api/v1/ingest/telemetry",
                json=telemetry("after-restart", 51.62, 7.52),
                headers=bearer(cluster.token),
                timeout=30.0,
            )
            if r.status_code == 202:
                break
            assert time.monotonic() < deadline, (r.status_code, r.text)
            time.sleep(0.2)
        accepted_after = time.monotonic() - t_back
        page.locator(".sym-robot", has_text="AFTER-RESTART").wait_for(timeout=10000)
        print(
            f"page: Redis away {t_back - t_stop:.1f} s, banner gone {hidden_after:.1f} s "
            f"after Redis was back, ingest 202 after {accepted_after:.1f} s, "
            "the entity reported after the restart on the map"
        )
        assert errors == [], errors
    finally:
        context.close()
