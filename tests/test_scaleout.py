"""A control room's topology, really started: nginx (Debian's) in front of two web
workers, one recorder and one media process, all on one Redis (issue 8).

The proxy runs `docker/nginx.conf.template`, the file the compose deployment runs, so what
is shown here is what a control room gets: a browser on each worker sees the same
picture, a worker killed with SIGKILL sends its browser through the proxy to the other
worker, which resyncs it, and no event acknowledged before the kill is missing from the log.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from cockpit.recorder import LogReader, incident_path
from tests.topology import NGINX, WORKERS, ControlRoom, commander_page, control_room
from tests.whip import Publisher

pytestmark = [pytest.mark.slow, pytest.mark.redis]


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


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[ControlRoom]:
    if not Path(NGINX).is_file():
        pytest.skip("no nginx (apt-get install nginx-light)")
    with control_room(tmp_path_factory.mktemp("scaleout"), redis_url) as room:
        yield room


def _post(cluster: ControlRoom, *messages: dict[str, Any]) -> list[int]:
    r = httpx.post(
        cluster.proxy + "/api/v1/ingest/telemetry",
        json=list(messages),
        headers={"Authorization": "Bearer " + cluster.tokens["robot"]},
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


@pytest.fixture(scope="module")
def pages(browser: Any, cluster: ControlRoom) -> Iterator[dict[str, Any]]:
    opened = {name: commander_page(browser, cluster, name) for name in WORKERS}
    try:
        yield opened
    finally:
        for page in opened.values():
            page.context.close()


def test_a_browser_on_each_worker_sees_the_same_picture(
    cluster: ControlRoom, pages: dict[str, Any]
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
    # A commander writes through the proxy (the cockpit checks the Origin against the
    # Host the proxy passes on, port included); both workers' pages get the entry.
    status = pages["web1"].evaluate(
        """async () => (await fetch('/api/v1/journal', {method: 'POST',
             headers: {'content-type': 'application/json'},
             body: JSON.stringify({text: 'EA Nord übernimmt Riegelstellung'})})).status"""
    )
    assert status == 201
    for page in pages.values():
        page.locator("#journal-list .entry", has_text="EA Nord übernimmt").first.wait_for(
            timeout=10000
        )
    # WHEP goes to the media process, not to a web worker (which would answer 503 `role`).
    answer = pages["web1"].evaluate(
        """async () => { const r = await fetch('/whep/no-such-drone', {method: 'POST',
             headers: {'content-type': 'application/sdp'}, body: 'v=0\\r\\n'});
           return [r.status, r.headers.get('x-cockpit-worker'), await r.text()]; }"""
    )
    assert answer[0] != 503 and answer[1] is None and "role" not in answer[2], answer
    # Asked directly, a web worker names the role that serves video; the recorder serves
    # nothing but its health.
    session = {c["name"]: c["value"] for c in pages["web2"].context.cookies()}
    direct = httpx.post(
        cluster.web["web2"].url + "/whep/no-such-drone",
        content="v=0\r\n",
        headers={"content-type": "application/sdp"},
        cookies={"cockpit_session": session["cockpit_session"]},
    )
    assert direct.status_code == 503, direct.text
    assert direct.json()["errors"][0]["field"] == "role", direct.text
    assert httpx.get(cluster.recorder.url + "/api/v1/situation").status_code == 404

    # Devices without the cookie are spread over both workers, but one TTN integration
    # (one token) stays on one: its translator remembers each device between uplinks.
    def workers_of(path: str) -> set[str]:
        return {
            httpx.post(cluster.proxy + path, json={}, headers=bearer).headers["x-cockpit-worker"]
            for _ in range(6)
        }

    bearer = {"Authorization": "Bearer " + cluster.tokens["weather"]}
    assert workers_of("/api/v1/ingest/telemetry") == {"web1", "web2"}
    assert len(workers_of("/api/v1/ingest/ttn")) == 1
    assert all(page.errors == [] for page in pages.values())


def test_a_drones_video_goes_to_the_media_process_and_plays_on_both_workers_pages(
    cluster: ControlRoom, pages: dict[str, Any]
) -> None:
    _post(cluster, {**_probe("uav-7", "Drohne 7", 51.5104, 7.4604), "kind": "drone"})
    pub = Publisher(cluster.proxy, "uav-7", cluster.tokens["uav"])
    pub.thread.start()
    try:
        assert pub.ready.wait(20) and pub.error is None, pub.error
        # The media process announced it (a video.stream event over Redis); each page
        # learned of it from its own worker's picture and plays it from the media process.
        for page in pages.values():
            page.locator(".video-tile.live[data-stream='uav-7']").wait_for(timeout=20000)
            assert (
                page.evaluate(
                    "document.querySelector(\".video-tile[data-stream='uav-7'] video\").videoWidth"
                )
                == 640
            )
        media = httpx.get(cluster.media.url + "/healthz", timeout=5).json()
        streams = {st["name"]: st for st in media["video"]["streams"]}
        assert media["role"] == "media" and streams["uav-7"]["viewers"] >= 2, media["video"]
        for web in cluster.web.values():
            assert "video" not in httpx.get(web.url + "/healthz", timeout=5).json()
    finally:
        pub.stop.set()
        pub.thread.join(20)
    assert pub.error is None, pub.error
    for page in pages.values():  # the stream ended: its tile goes on both
        page.locator(".video-tile[data-stream='uav-7']").wait_for(state="detached", timeout=15000)


class Load(threading.Thread):
    """Telemetry through the proxy (no cookie: round robin over the workers), 10 events
    every 0.1 s, remembering what was acknowledged and what was refused."""

    def __init__(self, cluster: ControlRoom) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.stop = threading.Event()
        self.acked: dict[int, tuple[str, int]] = {}
        self.refused: dict[str, int] = {}
        self.k = 0

    def run(self) -> None:
        headers = {"Authorization": "Bearer " + self.cluster.tokens["robot"]}
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
    cluster: ControlRoom, pages: dict[str, Any]
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
