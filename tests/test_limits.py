"""Limits (issue 8): ingest rate per device token, WebSockets per device token, push
streams per user, all counted on /healthz.

The token bucket takes its clock: hypothesis drives it with made-up times, and the
server's buckets here run on a clock the test moves (no sleeping, no timing). One server
for the module, on its own loop in a thread (tests.serving.serve_in_thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import struct
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
import websockets
from hypothesis import given, settings
from hypothesis import strategies as st

from cockpit.auth import AuthStore
from cockpit.limits import Limits, Slots, TokenBucket
from cockpit.pipeline import CommitTimeout
from tests.serving import Served, serve_in_thread
from tests.test_adler import report
from tests.test_api import msg
from tests.test_cap import cap
from tests.test_cot import pli
from tests.test_ttn import uplink

RATE = 2.0  # events a second per device token
BURST = 20


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


# --- the bucket itself ------------------------------------------------------------------


steps = st.lists(
    st.tuples(st.floats(0, 5, allow_nan=False), st.integers(1, 120)), min_size=1, max_size=60
)


@settings(max_examples=300, deadline=None)
@given(
    rate=st.floats(0.1, 500, allow_nan=False),
    burst=st.integers(1, 100),
    requests=steps,
)
def test_the_bucket_never_admits_more_than_rate_times_t_plus_burst(
    rate: float, burst: int, requests: list[tuple[float, int]]
) -> None:
    clock = Clock()
    bucket = TokenBucket(rate, burst, clock)
    admitted: list[tuple[float, int]] = []
    for dt, cost in requests:
        clock.t += dt
        wait = bucket.take(cost)
        if wait == 0.0:
            admitted.append((clock.t, cost))
        else:
            assert wait > 0
            assert math.isinf(wait) == (cost > burst)
    # Over every window between two admissions (the worst windows start and end there).
    for i, (start, _) in enumerate(admitted):
        total = 0
        for at, cost in admitted[i:]:
            total += cost
            assert total <= rate * (at - start) + burst + 1e-6 * (1 + total)


@settings(max_examples=300, deadline=None)
@given(
    rate=st.floats(0.1, 500, allow_nan=False),
    burst=st.integers(1, 100),
    requests=steps,
    cost=st.integers(1, 100),
)
def test_a_refusal_takes_nothing_and_its_wait_is_enough(
    rate: float, burst: int, requests: list[tuple[float, int]], cost: int
) -> None:
    clock = Clock()
    bucket = TokenBucket(rate, burst, clock)
    for dt, c in requests:
        clock.t += dt
        bucket.take(c)
    wait = bucket.take(cost)
    if wait == 0.0 or math.isinf(wait):
        return
    again = bucket.take(cost)  # refused again at once: the refusal took nothing
    assert again == pytest.approx(wait)
    clock.t += wait * (1 + 1e-9) + 1e-9
    assert bucket.take(cost) == 0.0


def test_a_clock_stepping_back_refills_nothing() -> None:
    clock = Clock()
    bucket = TokenBucket(1.0, 5, clock)
    assert bucket.take(5) == 0.0
    clock.t -= 3600
    assert bucket.take(1) > 0
    clock.t += 3600 + 1
    assert bucket.take(1) == 0.0


def test_slots_count_per_key() -> None:
    slots = Slots(2)
    assert slots.acquire("a") and slots.acquire("a") and not slots.acquire("a")
    assert slots.acquire("b")
    slots.release("a")
    assert slots.acquire("a") and slots.total() == 3


# --- the server ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data = tmp_path_factory.mktemp("limits") / "data"
    with serve_in_thread(
        data,
        ingest_rate_per_s=RATE,
        ingest_burst=BURST,
        max_batch=BURST,
        user_streams=2,
        device_ws_connections=1,
    ) as s:
        with AuthStore(data / "auth.sqlite") as auth:
            s.tokens["robot2"] = auth.add_device("robot2", ["telemetry"])
            s.tokens["gateway"] = auth.add_device("gateway", ["cap", "cot", "adler", "ttn"])
        yield s


@pytest.fixture
def clock(served: Served) -> Clock:
    """Fresh limits (empty counters, full buckets) on a clock the test moves."""
    c = Clock()
    svc = served.app.state.services
    svc.limits = Limits.of(svc.settings, c)
    return c


@contextlib.asynccontextmanager
async def _client(s: Served, user: str | None = "el") -> Any:
    async with httpx.AsyncClient(base_url=s.url, timeout=15) as c:
        if user:
            await s.login(c, user)
        yield c


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not await check():
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0.05)


async def _limits(c: httpx.AsyncClient) -> dict[str, Any]:
    r = await c.get("/healthz")
    assert "strict-transport-security" not in r.headers  # plain HTTP, no proxy said TLS
    body: dict[str, Any] = r.json()
    return body


def _batch(prefix: str, n: int) -> list[dict[str, Any]]:
    return [msg(f"{prefix}-{i}") for i in range(n)]


async def test_a_burst_over_the_limit_is_refused_whole_and_applies_nothing(
    served: Served, clock: Clock
) -> None:
    async with _client(served) as c:
        r = await c.post(
            "/api/v1/ingest/telemetry", json=_batch("ok", BURST), headers=served.device()
        )
        assert r.status_code == 202, r.text
        over = _batch("over", 5)
        r = await c.post("/api/v1/ingest/telemetry", json=over, headers=served.device())
        assert r.status_code == 429
        retry_after = int(r.headers["Retry-After"])
        assert retry_after == math.ceil(5 / RATE)
        assert r.json()["errors"][0]["field"] == "rate"
        assert "2 events/s per device token" in r.json()["errors"][0]["reason"]
        # Another token has its own bucket.
        other = {"Authorization": f"Bearer {served.tokens['robot2']}"}
        r = await c.post("/api/v1/ingest/telemetry", json=msg("other-0"), headers=other)
        assert r.status_code == 202, r.text
        entities = {e["id"] for e in (await c.get("/api/v1/situation")).json()["entities"]}
        assert {f"ok-{i}" for i in range(BURST)} | {"other-0"} <= entities
        assert not any(e.startswith("over-") for e in entities)
        log = (await c.get("/api/v1/events", params={"since": 0, "limit": 5000})).content
        assert b"over-" not in log
        # Retry-After is honest: that long later the same batch goes in.
        clock.t += retry_after
        r = await c.post("/api/v1/ingest/telemetry", json=over, headers=served.device())
        assert r.status_code == 202, r.text
        health = await _limits(c)
    limits = health["limits"]
    assert limits["refused"]["rate"] == 1
    assert limits["ingest_rate_per_s"] == RATE and limits["ingest_burst"] == BURST
    assert limits["max_body_bytes"] == served.settings.max_body_bytes
    assert limits["sdp_max_bytes"] > 0
    assert health["feeds"]["telemetry"]["reject_reasons"]["rate limited: rate"] == 1
    shown = orjson.dumps(limits)
    for secret_or_name in (b"robot", b"el", served.tokens["robot"].encode()):
        assert secret_or_name not in shown


async def test_what_was_not_committed_costs_the_device_nothing(
    served: Served, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """During an outage every batch is answered 503 and sent again; once the recorder is
    back, the device is not refused for the batches that never went in."""
    svc = served.app.state.services

    async def recorder_away(events: Any) -> list[int]:
        raise CommitTimeout("the recorder did not confirm in time")

    monkeypatch.setattr(svc.pipeline, "ingest", recorder_away)
    async with _client(served) as c:
        for _ in range(3):  # a whole burst each time, on a clock that does not move
            r = await c.post(
                "/api/v1/ingest/telemetry", json=_batch("again", BURST), headers=served.device()
            )
            assert r.status_code == 503, r.text
        monkeypatch.undo()
        r = await c.post(
            "/api/v1/ingest/telemetry", json=_batch("again", BURST), headers=served.device()
        )
        assert r.status_code == 202, r.text
        assert (await _limits(c))["limits"]["refused"]["rate"] == 0


async def test_a_plain_server_sets_no_secure_cookie(served: Served) -> None:
    async with _client(served, None) as c:
        creds = {"username": "el", "password": served.passwords["el"]}
        r = await c.post("/api/v1/session", json=creds)
        assert r.status_code == 200 and "; secure" not in r.headers["set-cookie"].lower()
        await _limits(c)  # and no HSTS


async def test_a_request_bigger_than_the_burst_can_never_pass(served: Served, clock: Clock) -> None:
    served.app.state.services.limits.burst = 4  # the settings refuse burst < max_batch
    served.app.state.services.limits.buckets.clear()
    async with _client(served, None) as c:
        r = await c.post("/api/v1/ingest/telemetry", json=_batch("big", 5), headers=served.device())
    assert r.status_code == 413 and r.json()["errors"][0]["field"] == "rate"


async def test_every_device_route_is_limited(served: Served, clock: Clock) -> None:
    gw = {"Authorization": f"Bearer {served.tokens['gateway']}"}
    now = datetime.now(UTC)
    bodies: list[tuple[str, dict[str, Any]]] = [
        (
            "/api/v1/ingest/cap",
            {
                "content": cap("DE-LIMIT-1").encode(),
                "headers": {"Content-Type": "application/cap+xml"},
            },
        ),
        (
            "/api/v1/ingest/cot",
            {
                "content": pli(uid="LIMIT-1", now=now) + pli(uid="LIMIT-2", now=now),
                "headers": {"Content-Type": "application/xml"},
            },
        ),
        ("/api/v1/ingest/adler", {"json": report("adler-limit-1")}),
        ("/api/v1/ingest/ttn", {"json": uplink("limit-sensor", {"temperature": 21.5})}),
    ]
    svc = served.app.state.services
    async with _client(served, None) as c:
        for path, kwargs in bodies:
            svc.limits.buckets.clear()
            assert svc.limits.admit("gateway", BURST) == 0.0  # the bucket is empty now
            headers = {**gw, **kwargs.pop("headers", {})}
            r = await c.post(path, headers=headers, **kwargs)
            assert r.status_code == 429, (path, r.text)
            assert r.json()["errors"][0]["field"] == "rate" and "Retry-After" in r.headers
            clock.t += 60  # refilled
            r = await c.post(path, headers=headers, **kwargs)
            assert r.status_code == 202, (path, r.text)
        health = (await c.get("/healthz")).json()
    assert health["limits"]["refused"]["rate"] == len(bodies)
    for feed in ("cap", "cot", "adler", "ttn"):
        assert health["feeds"][feed]["reject_reasons"].get("rate limited: rate", 0) >= 1


async def test_the_websocket_answers_a_refused_message_and_stays_open(
    served: Served, clock: Clock
) -> None:
    url = served.ws_url + "/ws/ingest/telemetry"
    async with websockets.connect(url, additional_headers=served.device()) as ws:
        await ws.send(orjson.dumps(_batch("ws-ok", BURST)))
        assert len(orjson.loads(await ws.recv())["seq"]) >= BURST
        await ws.send(orjson.dumps(_batch("ws-over", 3)))
        refused = orjson.loads(await ws.recv())
        assert refused["error"] == "rate limited"
        assert refused["errors"][0]["field"] == "rate" and refused["retry_after_s"] >= 1
        # A second connection of the same token is over device_ws_connections (1).
        with pytest.raises(websockets.InvalidStatus) as denied:
            async with websockets.connect(url, additional_headers=served.device()):
                pass
        assert denied.value.response.status_code == 429
        assert orjson.loads(denied.value.response.body)["errors"][0]["field"] == "connections"
        clock.t += 10
        await ws.send(orjson.dumps(_batch("ws-later", 3)))  # the same connection goes on
        assert len(orjson.loads(await ws.recv())["seq"]) >= 3
    async with _client(served) as c:
        entities = {e["id"] for e in (await c.get("/api/v1/situation")).json()["entities"]}
        assert "ws-later-2" in entities and not any(e.startswith("ws-over") for e in entities)

        async def freed() -> bool:
            return int((await _limits(c))["limits"]["active"]["device_ws"]) == 0

        await _until(freed)  # the closed connection gave its slot back
        health = await _limits(c)
    assert health["limits"]["refused"] == {"rate": 1, "device_ws": 1, "streams": 0}
    async with websockets.connect(url, additional_headers=served.device()) as ws:
        await ws.send(orjson.dumps(msg("ws-again")))
        assert "seq" in orjson.loads(await ws.recv())


def _raw_stream(s: Served, cookie: str) -> socket.socket:
    """A push stream on a bare socket, its answer's head read: a client that can vanish."""
    port = int(s.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    sock.sendall(
        b"GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Cookie: cockpit_session=" + cookie.encode() + b"\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, "closed before the answer"
        head += chunk
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    return sock


async def test_push_streams_per_user_and_a_vanished_client_frees_its_slot(
    served: Served, clock: Clock
) -> None:
    async with _client(served) as c, contextlib.AsyncExitStack() as held:
        cookie = c.cookies["cockpit_session"]
        vanishing = await asyncio.to_thread(_raw_stream, served, cookie)
        first = await held.enter_async_context(c.stream("GET", "/api/v1/stream"))
        assert first.status_code == 200
        r = await c.get("/api/v1/stream")  # the third of user_streams = 2
        assert r.status_code == 429 and r.headers["Retry-After"]
        assert r.json()["errors"][0]["field"] == "connections"
        # Another user is not affected.
        async with _client(served, "viewer") as v, v.stream("GET", "/api/v1/stream") as theirs:
            assert theirs.status_code == 200
        # The client vanishes (a reset, no goodbye): its slot comes back.
        vanishing.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        vanishing.close()
        refused_meanwhile = 0  # until the server has seen the reset

        async def one_more() -> bool:
            nonlocal refused_meanwhile
            r = await held.enter_async_context(c.stream("GET", "/api/v1/stream"))
            if r.status_code == 200:
                return True
            assert r.status_code == 429
            refused_meanwhile += 1
            await r.aclose()
            return False

        await _until(one_more)
        health = await _limits(c)
        assert health["limits"]["active"]["streams"] == 2
        assert health["limits"]["refused"]["streams"] == 1 + refused_meanwhile
    # Both closed by the client: the slots come back.
    async with _client(served, None) as c:

        async def none_open() -> bool:
            return int((await _limits(c))["limits"]["active"]["streams"]) == 0

        await _until(none_open)
