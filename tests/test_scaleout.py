"""A control room's topology, really started: nginx (Debian's) in front of two web
workers, one recorder and one media process, all on one Redis (issue 8).

The proxy runs `docker/nginx.conf.template`, the file the compose deployment runs, so what
is shown here is what a control room gets: a browser on each worker sees the same
picture, a worker killed with SIGKILL sends its browser through the proxy to the other
worker, which resyncs it, and no event acknowledged before the kill is missing from the log.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from cockpit.recorder import LogReader, incident_path
from tests.procs import Proc, Procs, free_port
from tests.serving import prepare

pytestmark = [pytest.mark.slow, pytest.mark.redis]

TEMPLATE = Path(__file__).resolve().parent.parent / "docker" / "nginx.conf.template"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
START_TIMEOUT_S = 40.0  # four Python processes starting at once on two cores
WORKERS = ("web1", "web2")


def render(template: str, values: dict[str, str]) -> str:
    """envsubst with a list of names, as the compose service runs it: nginx's own
    `$variables` are left alone."""

    def one(m: re.Match[str]) -> str:
        return values[m.group(1)] if m.group(1) in values else m.group(0)

    return re.sub(r"\$\{([A-Z0-9_]+)\}", one, template)


@dataclass
class Cluster:
    procs: Procs
    data: Path
    incident: str
    token: str
    password: str
    proxy: str
    web: dict[str, Proc]
    recorder: Proc
    media: Proc
    nginx: subprocess.Popen[bytes]
    nginx_err: Path
    acked: dict[int, tuple[str, int]] = field(default_factory=dict)


def _iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _probe(entity: str, callsign: str, lat: float, lon: float) -> dict[str, Any]:
    return {
        "entity": entity,
        "kind": "robot",
        "callsign": callsign,
        "observed_at": _iso(),
        "position": {"lat": lat, "lon": lon},
    }


def _healthy(url: str, proc: Proc | subprocess.Popen[bytes], deadline: float, what: str) -> None:
    last = "no answer"
    while time.monotonic() < deadline:
        alive = proc.alive() if isinstance(proc, Proc) else proc.poll() is None
        if not alive:
            tail = proc.tail() if isinstance(proc, Proc) else ""
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


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Cluster]:
    if not Path(NGINX).is_file():
        pytest.skip("no nginx (apt-get install nginx-light)")
    work = tmp_path_factory.mktemp("scaleout")
    data = work / "data"
    tokens, passwords = prepare(data)
    incident = f"scaleout-{uuid.uuid4().hex[:8]}"
    env = {"COCKPIT_REDIS_URL": redis_url, "COCKPIT_INCIDENT": incident}
    procs = Procs(work / "procs")
    run = work / "nginx"
    run.mkdir()
    nginx: subprocess.Popen[bytes] | None = None
    try:
        common = ("--data-dir", str(data))
        recorder = procs.start("serve", "--role", "recorder", *common, name="recorder",
                               port=free_port(), env=env)  # fmt: skip
        web = {
            name: procs.start(
                "serve",
                "--role",
                "web",
                *common,
                name=name,
                port=free_port(),
                env={**env, "COCKPIT_WORKER_NAME": name},
            )
            for name in WORKERS
        }
        media = procs.start("media", *common, name="media", port=free_port(), env=env)
        deadline = time.monotonic() + START_TIMEOUT_S
        for proc in (recorder, *web.values(), media):
            _healthy(proc.url, proc, deadline, proc.name)

        listen = free_port()
        conf = run / "nginx.conf"
        conf.write_text(
            render(
                TEMPLATE.read_text(),
                {
                    "COCKPIT_WEB1": f"127.0.0.1:{web['web1'].port}",
                    "COCKPIT_WEB2": f"127.0.0.1:{web['web2'].port}",
                    "COCKPIT_MEDIA": f"127.0.0.1:{media.port}",
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
        _healthy(proxy, nginx, time.monotonic() + 10, f"nginx: {nginx_err.read_text()}")
        yield Cluster(
            procs, data, incident, tokens["robot"], passwords["el"], proxy, web, recorder, media,
            nginx, nginx_err,
        )  # fmt: skip
    finally:
        if nginx is not None:
            nginx.terminate()
            try:
                nginx.wait(10)
            except subprocess.TimeoutExpired:
                nginx.kill()
        procs.close()
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(f"cockpit:{incident}:*"))
        if keys:
            client.delete(*keys)
        client.close()


def _post(cluster: Cluster, *messages: dict[str, Any]) -> list[int]:
    r = httpx.post(
        cluster.proxy + "/api/v1/ingest/telemetry",
        json=list(messages),
        headers={"Authorization": f"Bearer {cluster.token}"},
        timeout=15,
    )
    assert r.status_code == 202, r.text
    seqs: list[int] = r.json()["seq"]
    return seqs


_POSITIONS = """() => Object.fromEntries([...window.cockpit.picture.entities]
  .filter(([id]) => id.startsWith('probe-') || id.startsWith('load-'))
  .map(([id, e]) => [id, [e.lat, e.lon]]))"""

_WORKER_OF_NEXT_REQUEST = """async () => {
  const r = await fetch('/api/v1/situation?tracks=false');
  return r.headers.get('x-cockpit-worker');
}"""


def _page_on(browser: Any, cluster: Cluster, worker: str) -> Any:
    """A commander's tablet whose proxy cookie names `worker`, logged in through the proxy."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="de-DE")
    context.add_cookies([{"name": "cockpit_worker", "value": worker, "url": cluster.proxy}])
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.goto(cluster.proxy + "/login")
    page.fill("#u", "el")
    page.fill("#p", cluster.password)
    page.click("button[type=submit]")
    page.wait_for_url(cluster.proxy + "/")
    page.wait_for_function("window.cockpit && window.cockpit.connected", timeout=20000)
    return page


@pytest.fixture(scope="module")
def pages(browser: Any, cluster: Cluster) -> Iterator[dict[str, Any]]:
    opened = {name: _page_on(browser, cluster, name) for name in WORKERS}
    try:
        yield opened
    finally:
        for page in opened.values():
            page.context.close()


def test_a_browser_on_each_worker_sees_the_same_picture(
    cluster: Cluster, pages: dict[str, Any]
) -> None:
    for name, page in pages.items():
        assert page.evaluate(_WORKER_OF_NEXT_REQUEST) == name  # the cookie holds
    seqs = _post(
        cluster,
        _probe("probe-a", "Sonde A", 51.5101, 7.4601),
        _probe("probe-b", "Sonde B", 51.5102, 7.4602),
    )
    for page in pages.values():
        page.locator(".sym", has_text="Sonde B").first.wait_for(timeout=10000)
    seen = {name: page.evaluate(_POSITIONS) for name, page in pages.items()}
    assert (
        seen["web1"]
        == seen["web2"]
        == {
            "probe-a": [51.5101, 7.4601],
            "probe-b": [51.5102, 7.4602],
        }
    ), seen
    for page in pages.values():
        assert page.evaluate("window.cockpit.seq") >= max(seqs)
    # WHEP goes to the media process, not to a web worker (which would answer 503 `role`).
    answer = pages["web1"].evaluate(
        """async () => { const r = await fetch('/whep/no-such-drone', {method: 'POST',
             headers: {'content-type': 'application/sdp'}, body: 'v=0\\r\\n'});
           return [r.status, r.headers.get('x-cockpit-worker'), await r.text()]; }"""
    )
    assert answer[0] != 503 and answer[1] is None and "role" not in answer[2], answer
    assert all(page.errors == [] for page in pages.values())


class Load(threading.Thread):
    """Telemetry through the proxy (no cookie: round robin over the workers), 10 events
    every 0.1 s, remembering what was acknowledged and what was refused."""

    def __init__(self, cluster: Cluster) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.stop = threading.Event()
        self.acked: dict[int, tuple[str, int]] = {}
        self.refused: dict[str, int] = {}
        self.k = 0

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.cluster.token}"}
        with httpx.Client(base_url=self.cluster.proxy, timeout=15, headers=headers) as c:
            while not self.stop.is_set():
                batch = []
                for e in range(10):
                    lat, lon = 51.50 + self.k * 1e-5, 7.40 + e * 1e-3
                    batch.append((f"load-{e}", self.k, _probe(f"load-{e}", f"L{e}", lat, lon)))
                self.k += 1
                try:
                    r = c.post("/api/v1/ingest/telemetry", json=[m for _, _, m in batch])
                except httpx.TransportError as exc:
                    self.refused[type(exc).__name__] = self.refused.get(type(exc).__name__, 0) + 1
                else:
                    if r.status_code == 202:
                        for seq, (entity, k, _) in zip(r.json()["seq"], batch, strict=True):
                            self.acked[seq] = (entity, k)
                    else:
                        self.refused[str(r.status_code)] = (
                            self.refused.get(str(r.status_code), 0) + 1
                        )
                time.sleep(0.1)


def test_killing_a_worker_moves_its_browser_and_loses_no_acknowledged_event(
    cluster: Cluster, pages: dict[str, Any]
) -> None:
    page = pages["web1"]
    page.evaluate("window.__sameDocument = true")
    snapshots = page.evaluate("window.cockpit.stats.snapshots")
    load = Load(cluster)
    load.start()
    try:
        time.sleep(2.0)
        before_kill = max(load.acked, default=0)
        assert before_kill > 0, load.refused
        cluster.web["web1"].kill9()
        killed = time.monotonic()
        # The page notices, reconnects through the proxy and is resynced by web2.
        page.wait_for_function(
            f"window.cockpit.connected && window.cockpit.stats.snapshots > {snapshots}",
            timeout=20000,
        )
        moved_after = time.monotonic() - killed
        assert page.evaluate(_WORKER_OF_NEXT_REQUEST) == "web2"
        seqs = _post(cluster, _probe("probe-c", "Sonde C", 51.5103, 7.4603))
        for p in pages.values():
            p.locator(".sym", has_text="Sonde C").first.wait_for(timeout=10000)
        time.sleep(2.0)  # the load goes on through the kill
    finally:
        load.stop.set()
        load.join(30)
    assert page.evaluate("window.__sameDocument") is True  # resynced in place, no reload
    print(f"scaleout: web1 killed; its page resynced from web2 after {moved_after:.1f} s; "
          f"{len(load.acked)} events acknowledged, refused: {load.refused}")  # fmt: skip

    # Every acknowledged event is in the log, with the content that was acknowledged.
    last = max(max(load.acked), *seqs)
    deadline = time.monotonic() + 20
    path = incident_path(cluster.data, cluster.incident)
    while True:
        reader = LogReader(path)
        try:
            logged = {ev.seq: ev for ev in reader.iter_events(0, reader.last_seq())}
        finally:
            reader.close()
        if max(logged, default=0) >= last or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert sorted(logged) == list(range(1, len(logged) + 1)), "the log has a gap"
    missing = [seq for seq in load.acked if seq not in logged]
    assert not missing, f"{len(missing)} acknowledged events are not in the log: {missing[:10]}"
    for seq, (entity, _k) in load.acked.items():
        assert logged[seq].payload.entity == entity  # type: ignore[attr-defined]
    assert any(seq > before_kill for seq in load.acked), "nothing was acknowledged after the kill"
    # Both pages end with the same positions of the load's entities: the last ones acked.
    expected: dict[str, tuple[int, list[float]]] = {}
    for seq in sorted(load.acked):
        entity, k = load.acked[seq]
        expected[entity] = (k, [51.50 + k * 1e-5, 7.40 + int(entity[5:]) * 1e-3])
    pages["web2"].wait_for_timeout(1500)
    for name, p in pages.items():
        shown = p.evaluate(_POSITIONS)
        for entity, (_, pos) in expected.items():
            assert shown[entity] == pytest.approx(pos, abs=1e-9), (name, entity, shown[entity])
    assert cluster.nginx.poll() is None, cluster.nginx_err.read_text()
