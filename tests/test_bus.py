"""The event bus contract, run against the memory bus and a real Redis alike."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
import redis.exceptions

from cockpit.bus import Bus, MemoryBus, Overflow, Overflowed, RedisBus, Subscription, make_bus
from cockpit.events import Event, Position, PositionEvent, Source, utcnow, with_seq


def make_event(incident: str, i: int = 0) -> PositionEvent:
    now = utcnow()
    return PositionEvent(
        incident=incident,
        source=Source(feed="telemetry", device="d1"),
        observed_at=now,
        received_at=now,
        payload=Position(entity=f"u{i}", entity_kind="unit", lat=51.5, lon=7.4),
    )


def batch(incident: str, n: int, start: int = 0) -> list[Event]:
    return [make_event(incident, start + i) for i in range(n)]


async def collect(sub: Subscription, n: int, timeout: float = 10.0) -> list[Event]:
    """Read batches until n events arrived; a stall fails the test instead of hanging."""
    out: list[Event] = []
    async with asyncio.timeout(timeout):
        async for got in sub:
            assert got, "batches are never empty"
            out.extend(got)
            if len(out) >= n:
                break
    return out


async def eventually(cond: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


def sub_stats(bus: Bus) -> list[dict[str, Any]]:
    """The per-subscription part of `stats()`, as /healthz would show it."""
    return cast(list[dict[str, Any]], bus.stats()["subscriptions"])


def seqs(events: list[Event]) -> list[int]:
    return [e.seq for e in events if e.seq is not None]


@dataclass
class Harness:
    """Builds buses on one fresh incident; `peer` stands for a second process."""

    kind: str
    url: str | None
    incident: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:12]}")
    buses: list[Bus] = field(default_factory=list)

    async def bus(self, *, start_seq: int = 0, history: int = 0) -> Bus:
        new: Bus
        if self.url is None:
            new = MemoryBus(self.incident, start_seq=start_seq, history=history)
        else:
            # The Redis stream is the history; `history` only matters in memory.
            new = RedisBus(self.incident, self.url, start_seq=start_seq, block_ms=200)
        await new.start()
        self.buses.append(new)
        return new

    async def peer(self, bus: Bus) -> Bus:
        # One process holds one memory bus; over Redis a second instance is a second process.
        return bus if self.url is None else await self.bus()


@asynccontextmanager
async def open_harness(kind: str, url: str | None) -> AsyncIterator[Harness]:
    h = Harness(kind=kind, url=url)
    try:
        yield h
    finally:
        for b in h.buses:
            await b.close()
        if url is not None:
            client = aioredis.Redis.from_url(url)
            try:
                keys = [k async for k in client.scan_iter(match=f"cockpit:{h.incident}:*")]
                if keys:
                    await client.delete(*keys)
            finally:
                await client.aclose()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    """The same test against both buses; the Redis half skips when no Redis answers."""
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    async with open_harness(request.param, url) as h:
        yield h


@pytest.fixture
async def redis_harness(redis_url: str) -> AsyncIterator[Harness]:
    async with open_harness("redis", redis_url) as h:
        yield h


@pytest.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


# --- delivery -------------------------------------------------------------------------


async def test_batches_reach_two_subscribers_complete_and_in_order(harness: Harness) -> None:
    bus = await harness.bus()
    a = bus.subscribe("a")
    b = bus.subscribe("b")
    published: list[Event] = []
    for k in range(10):
        published += await bus.publish(batch(harness.incident, 7, start=k * 7))

    assert seqs(published) == list(range(1, 71))
    assert bus.head == 70
    for sub in (a, b):
        got = await collect(sub, 70)
        assert seqs(got) == list(range(1, 71))
        assert [e.id for e in got] == [e.id for e in published]
        assert got == published  # the same events, seq included, nothing altered


async def test_publish_returns_copies_and_leaves_input_unstamped(harness: Harness) -> None:
    bus = await harness.bus()
    events = batch(harness.incident, 3)
    out = await bus.publish(events)
    assert [e.seq for e in events] == [None, None, None]
    assert seqs(out) == [1, 2, 3]
    assert [with_seq(e, None) for e in out] == events
    assert await bus.publish([]) == []
    assert bus.head == 3


async def test_subscriber_after_k_gets_only_later_events(harness: Harness) -> None:
    bus = await harness.bus(history=100)
    await bus.publish(batch(harness.incident, 10))
    sub = bus.subscribe("late", after=4)
    await bus.publish(batch(harness.incident, 2))
    assert seqs(await collect(sub, 8)) == list(range(5, 13))


async def test_numbering_continues_after_start_seq(harness: Harness) -> None:
    bus = await harness.bus(start_seq=100)
    assert bus.head == 100
    sub = bus.subscribe("s", after=100)
    out = await bus.publish(batch(harness.incident, 3))
    assert seqs(out) == [101, 102, 103]
    assert seqs(await collect(sub, 3)) == [101, 102, 103]


async def test_subscribing_before_what_is_kept_names_the_gap(harness: Harness) -> None:
    bus = await harness.bus(start_seq=100)
    await bus.publish(batch(harness.incident, 2))
    if harness.kind == "memory":
        # Nothing kept in memory: the caller learns at once which seqs it cannot have.
        with pytest.raises(ValueError, match=r"1\.\.102"):
            bus.subscribe("old", after=0)
    else:
        # Seqs 1..100 never reached this Redis (e.g. it was flushed): resync needed.
        sub = bus.subscribe("old", after=0)
        with pytest.raises(Overflowed, match=r"1\.\.100"):
            await collect(sub, 1)
        assert sub.overflowed


async def test_numbering_can_be_raised_but_never_lowered(harness: Harness) -> None:
    bus = await harness.bus()
    recorder = await harness.peer(bus)
    following = bus.subscribe("following")
    await bus.publish(batch(harness.incident, 3))
    await recorder.ensure_seq_at_least(10)  # its log already holds events up to 10
    await recorder.ensure_seq_at_least(5)  # stale: no effect
    assert seqs(await bus.publish(batch(harness.incident, 1))) == [11]
    assert bus.head == 11
    # Someone following across the jump learns what it missed instead of a silent gap.
    with pytest.raises(Overflowed, match=r"4\.\.10"):
        await collect(following, 4)
    joined = bus.subscribe("joined", after=11)
    await recorder.publish(batch(harness.incident, 2))
    assert seqs(await collect(joined, 2)) == [12, 13]


async def test_event_of_another_incident_publishes_nothing(harness: Harness) -> None:
    bus = await harness.bus()
    sub = bus.subscribe("s")
    mixed = [make_event(harness.incident), make_event("some-other-incident")]
    with pytest.raises(ValueError, match="some-other-incident"):
        await bus.publish(mixed)
    assert bus.head == 0
    out = await bus.publish(batch(harness.incident, 1))
    assert seqs(out) == [1]
    assert seqs(await collect(sub, 1)) == [1]


# --- overflow policies ----------------------------------------------------------------


async def test_block_slow_consumer_loses_nothing(harness: Harness) -> None:
    bus = await harness.bus()
    n, maxsize = 300, 5
    sub = bus.subscribe("recorder", maxsize=maxsize, overflow=Overflow.BLOCK)
    got: list[Event] = []
    depths: list[int] = []

    async def slow_consumer() -> None:
        async for b in sub:
            depths.append(sub.depth + len(b))
            got.extend(b)
            await asyncio.sleep(0.001)
            if len(got) >= n:
                return

    consumer = asyncio.create_task(slow_consumer())
    for k in range(n // 3):
        await bus.publish(batch(harness.incident, 3, start=3 * k))
        if harness.kind == "memory":
            # Held back: the publisher is never more than one queue ahead of the reader.
            assert bus.head - len(got) <= maxsize + 3
    async with asyncio.timeout(20):
        await consumer
    assert seqs(got) == list(range(1, n + 1))
    assert max(depths) <= maxsize  # the local queue stayed within its bound
    assert sub.dropped == 0
    assert not sub.overflowed


async def test_disconnect_flags_the_laggard_and_spares_the_others(harness: Harness) -> None:
    bus = await harness.bus()
    fast = bus.subscribe("fold")
    slow = bus.subscribe("browser", maxsize=5, overflow=Overflow.DISCONNECT)
    for k in range(10):
        await bus.publish(batch(harness.incident, 2, start=2 * k))

    assert seqs(await collect(fast, 20)) == list(range(1, 21))
    await eventually(lambda: slow.overflowed)
    with pytest.raises(Overflowed):
        async for _ in slow:
            pass
    with pytest.raises(Overflowed):  # stays failed: the consumer must resync
        await collect(slow, 1)
    # The publisher was never held back by the laggard, and nothing more reaches it.
    await bus.publish(batch(harness.incident, 2))
    assert seqs(await collect(fast, 2)) == [21, 22]
    stats = bus.stats()
    assert stats["overflows"] == 1
    await slow.close()


async def test_drop_oldest_counts_drops_and_keeps_newest(harness: Harness) -> None:
    bus = await harness.bus()
    sub = bus.subscribe("metrics", maxsize=10, overflow=Overflow.DROP_OLDEST)
    for k in range(5):
        await bus.publish(batch(harness.incident, 4, start=4 * k))
    await eventually(lambda: sub.last_seq == 20)
    kept: list[Event] = []
    while sub.depth:
        kept += await collect(sub, sub.depth)
    assert kept, "the newest events are kept"
    assert len(kept) <= 10
    assert seqs(kept) == list(range(21 - len(kept), 21))  # a contiguous tail ending at 20
    assert sub.dropped == 20 - len(kept)
    assert sub.dropped >= 10
    assert not sub.overflowed
    [entry] = [s for s in sub_stats(bus) if s["name"] == "metrics"]
    assert entry["dropped"] == sub.dropped


# --- commit watermark -----------------------------------------------------------------


async def test_wait_committed_times_out_then_wakes_on_another_process(harness: Harness) -> None:
    bus = await harness.bus()
    recorder = await harness.peer(bus)
    assert await bus.wait_committed(1, timeout=0.2) is False

    async def commit_later() -> None:
        await asyncio.sleep(0.05)
        await recorder.mark_committed(5)

    task = asyncio.create_task(commit_later())
    assert await bus.wait_committed(5, timeout=5) is True
    await task
    assert bus.committed == 5
    assert await bus.wait_committed(3, timeout=0) is True  # already past

    await recorder.mark_committed(3)  # late, out-of-order report
    await asyncio.sleep(0.05)
    assert recorder.committed == 5
    assert bus.committed == 5
    if harness.kind == "redis":
        joiner = await harness.bus()
        assert joiner.committed == 5  # a process joining later knows the watermark


@pytest.mark.redis
async def test_redis_wait_committed_survives_a_missed_notification(
    redis_harness: Harness, raw_redis: aioredis.Redis
) -> None:
    harness = redis_harness
    bus = await harness.bus()
    # Set the key without PUBLISH: as if the message was lost; polling must notice.
    await raw_redis.set(f"cockpit:{harness.incident}:committed", 7)
    assert await bus.wait_committed(7, timeout=3) is True


# --- several processes ----------------------------------------------------------------


async def test_concurrent_publishers_get_unique_contiguous_seqs(harness: Harness) -> None:
    one = await harness.bus()
    two = await harness.peer(one)
    sub_one = one.subscribe("one")
    sub_two = two.subscribe("two")

    async def publish_many(bus: Bus, tag: int) -> list[Event]:
        out: list[Event] = []
        for k in range(20):
            out += await bus.publish(batch(harness.incident, 5, start=1000 * tag + 5 * k))
        return out

    results = await asyncio.gather(*(publish_many(b, t) for t, b in enumerate((one, two) * 2)))
    published = sorted((e for r in results for e in r), key=lambda e: e.seq or 0)
    assert seqs(published) == list(range(1, 401))
    for r in results:  # each batch got consecutive seqs
        for i in range(0, len(r), 5):
            assert seqs(r[i : i + 5]) == list(range(r[i].seq or 0, (r[i].seq or 0) + 5))

    seen_one = await collect(sub_one, 400)
    seen_two = await collect(sub_two, 400)
    assert seen_one == seen_two == published


async def test_only_one_owner_leads_until_release_or_expiry(harness: Harness) -> None:
    a = await harness.bus()
    b = await harness.peer(a)
    assert await a.try_lead("recorder", "A", ttl_s=5) is True
    assert await b.try_lead("recorder", "B", ttl_s=5) is False
    assert await a.try_lead("recorder", "A", ttl_s=5) is True  # renewal
    await b.release_lead("recorder", "B")  # not B's to release
    assert await b.try_lead("recorder", "B", ttl_s=5) is False
    assert await b.try_lead("archiver", "B", ttl_s=5) is True  # roles are independent

    await a.release_lead("recorder", "A")
    assert await b.try_lead("recorder", "B", ttl_s=0.2) is True
    assert await a.try_lead("recorder", "A", ttl_s=5) is False
    await asyncio.sleep(0.35)  # B stopped renewing: its lease lapses
    assert await a.try_lead("recorder", "A", ttl_s=5) is True
    assert await b.try_lead("recorder", "B", ttl_s=5) is False


async def test_snapshot_round_trips_and_never_goes_back(harness: Harness) -> None:
    bus = await harness.bus()
    joiner = await harness.peer(bus)
    assert await joiner.get_snapshot() is None
    data = bytes(range(256)) * 4  # arbitrary binary, not just text
    await bus.put_snapshot(5, data)
    assert await joiner.get_snapshot() == (5, data)
    await bus.put_snapshot(3, b"stale")
    assert await joiner.get_snapshot() == (5, data)
    await bus.put_snapshot(9, b"newer")
    assert await joiner.get_snapshot() == (9, b"newer")


# --- lifecycle ------------------------------------------------------------------------


async def test_close_ends_open_subscriptions(harness: Harness) -> None:
    bus = await harness.bus()
    idle = bus.subscribe("idle")
    held = bus.subscribe("held", maxsize=2)

    async def drain(sub: Subscription) -> list[int]:
        out: list[int] = []
        async for b in sub:
            out += seqs(b)
        return out

    idle_task = asyncio.create_task(drain(idle))
    await bus.publish(batch(harness.incident, 2))
    await asyncio.sleep(0.05)
    await bus.close()
    async with asyncio.timeout(3):
        got_idle = await idle_task
        got_held = await drain(held)
    assert got_idle in ([], [1, 2])
    assert got_held in ([], [1, 2])
    if harness.kind == "memory":
        assert got_idle == got_held == [1, 2]  # what was queued is still handed over
    with pytest.raises(RuntimeError):
        await bus.publish(batch(harness.incident, 1))


async def test_subscription_close_stops_it_and_frees_the_publisher(harness: Harness) -> None:
    bus = await harness.bus()
    sub = bus.subscribe("leaving", maxsize=3)
    await bus.publish(batch(harness.incident, 3))
    publishing = asyncio.create_task(bus.publish(batch(harness.incident, 3)))
    await asyncio.sleep(0.05)
    await sub.close()
    async with asyncio.timeout(3):
        await publishing  # a closed BLOCK subscriber no longer holds anyone back
        assert await collect(sub, 1) == []
    assert all(s["name"] != "leaving" for s in sub_stats(bus))


async def test_stats_describe_the_bus(harness: Harness) -> None:
    bus = await harness.bus()
    sub = bus.subscribe("s", maxsize=50)
    await bus.publish(batch(harness.incident, 4))
    await bus.mark_committed(2)
    await eventually(lambda: sub.depth == 4)
    stats = bus.stats()
    assert stats["kind"] == harness.kind
    assert stats["head"] == 4
    assert stats["committed"] == 2
    assert stats["connected"] is True
    assert stats["reconnects"] == 0
    assert stats["errors"] == 0
    [entry] = sub_stats(bus)
    assert entry["name"] == "s"
    assert entry["depth"] == 4
    assert entry["dropped"] == 0
    assert entry["overflowed"] is False


# --- redis specifics ------------------------------------------------------------------


@pytest.mark.redis
async def test_redis_subscriber_resumes_after_connection_kill(
    redis_harness: Harness, raw_redis: aioredis.Redis
) -> None:
    harness = redis_harness
    bus = await harness.bus()
    name = f"rk-{uuid.uuid4().hex[:8]}"
    sub = bus.subscribe(name)
    await bus.publish(batch(harness.incident, 50))
    first = await collect(sub, 50)

    clients = await raw_redis.client_list()
    [victim] = [c for c in clients if c.get("name") == f"cockpit-sub-{name}"]
    await raw_redis.client_kill_filter(_id=victim["id"])
    await bus.publish(batch(harness.incident, 30))
    await asyncio.sleep(0.2)  # let the reader notice and back off
    await bus.publish(batch(harness.incident, 20))

    rest = await collect(sub, 50)
    assert seqs(first + rest) == list(range(1, 101))  # no gap, no duplicate
    assert bus.stats()["reconnects"] == 1
    await eventually(lambda: sub.connected)
    assert bus.stats()["connected"] is True


@pytest.mark.redis
async def test_redis_retried_publish_is_not_appended_twice(
    redis_harness: Harness, raw_redis: aioredis.Redis
) -> None:
    harness = redis_harness
    bus = await harness.bus()
    assert isinstance(bus, RedisBus)
    events = batch(harness.incident, 3)
    # Same token = the same publish call retried after its reply was lost.
    first = await bus._publish(events, token="retry-token")
    again = await bus._publish(events, token="retry-token")
    assert seqs(first) == seqs(again) == [1, 2, 3]
    assert await raw_redis.xlen(f"cockpit:{harness.incident}:events") == 3
    assert seqs(await bus.publish(batch(harness.incident, 1))) == [4]


@pytest.mark.redis
async def test_redis_stream_entries_carry_the_event_without_seq(
    redis_harness: Harness, raw_redis: aioredis.Redis
) -> None:
    harness = redis_harness
    bus = await harness.bus()
    [out] = await bus.publish(batch(harness.incident, 1))
    entries = await raw_redis.xrange(f"cockpit:{harness.incident}:events")
    [(entry_id, fields)] = cast(list[tuple[bytes, dict[bytes, bytes]]], entries)
    assert entry_id == b"0-1"
    assert b'"seq":null' in fields[b"e"]
    assert await raw_redis.get(f"cockpit:{harness.incident}:seq") == b"1"
    assert out.seq == 1


@pytest.mark.redis
async def test_redis_bus_survives_losing_its_own_connections(
    redis_harness: Harness, raw_redis: aioredis.Redis
) -> None:
    harness = redis_harness
    bus = await harness.bus()
    recorder = await harness.bus()
    sub = bus.subscribe("s")
    await bus.publish(batch(harness.incident, 5))
    # Publisher and commit-listener connections of both "processes" share this name.
    name = f"cockpit-bus-{harness.incident}"
    for c in await raw_redis.client_list():
        if c.get("name") == name:
            await raw_redis.client_kill_filter(_id=c["id"])
    out = await bus.publish(batch(harness.incident, 5))
    assert seqs(out) == [6, 7, 8, 9, 10]
    assert seqs(await collect(sub, 10)) == list(range(1, 11))
    await asyncio.sleep(0.3)  # the commit listener notices and resubscribes
    await recorder.mark_committed(10)
    assert await bus.wait_committed(10, timeout=5) is True
    assert await raw_redis.xlen(f"cockpit:{harness.incident}:events") == 10


@pytest.mark.redis
async def test_redis_lost_counter_never_reuses_a_seq(
    redis_harness: Harness, raw_redis: aioredis.Redis
) -> None:
    harness = redis_harness
    bus = await harness.bus()
    await bus.publish(batch(harness.incident, 3))
    counter = f"cockpit:{harness.incident}:seq"
    stream = f"cockpit:{harness.incident}:events"
    await raw_redis.delete(counter)  # e.g. Redis restored from an older dump
    assert seqs(await bus.publish(batch(harness.incident, 2))) == [4, 5]

    await raw_redis.set(counter, 1)  # corrupted: would reuse seqs 2..3
    with pytest.raises(redis.exceptions.ResponseError):
        await bus.publish(batch(harness.incident, 2))
    # All or nothing: the failed batch left no trace.
    assert await raw_redis.xlen(stream) == 5
    assert await raw_redis.get(counter) == b"1"


def test_make_bus_picks_the_implementation() -> None:
    assert isinstance(make_bus("i1", None), MemoryBus)
    assert make_bus("i1", None, start_seq=7).head == 7
    bus = make_bus("i1", "redis://127.0.0.1:6379")
    assert isinstance(bus, RedisBus)
    assert bus.key_stream == "cockpit:i1:events"


@pytest.mark.redis
async def test_the_recorder_trims_what_its_shared_snapshots_cover_after_the_keep_window(
    redis_harness: Harness, raw_redis: aioredis.Redis, tmp_path: Any
) -> None:
    """Redis keeps the events a joining or lagging process needs, not the incident: once a
    shared snapshot is older than `redis_keep_s`, the events it covers leave the stream
    (with them any personal data, which the retention purge removes from the log)."""
    from cockpit.pipeline import Pipeline
    from cockpit.settings import load_settings

    incident = redis_harness.incident
    now = [1000.0]
    settings = load_settings(
        None,
        data_dir=tmp_path,
        incident=incident,
        redis_url=redis_harness.url,
        recorder="on",
        snapshot_every_s=1.0,
        redis_keep_s=60.0,
    )
    bus = await redis_harness.bus()
    pipeline = Pipeline(settings, bus, incident, clock=lambda: now[0])
    await pipeline.start()
    key = f"cockpit:{incident}:events"

    async def first_seq() -> int:
        [(entry_id, _)] = cast(list[tuple[bytes, Any]], await raw_redis.xrange(key, count=1))
        return int(entry_id.split(b"-")[1])

    try:
        await pipeline.ingest(batch(incident, 10))
        now[0] += 2  # a snapshot is due: seq 20 is shared at t=1002
        await pipeline.ingest(batch(incident, 10, start=10))
        now[0] += 30  # within the window: nothing leaves
        await pipeline.ingest(batch(incident, 10, start=20))
        await asyncio.sleep(0.5)
        assert await first_seq() == 1
        now[0] += 40  # t=1072: the snapshot of t=1002 is older than 60 s
        await pipeline.ingest(batch(incident, 10, start=30))

        async def trimmed() -> bool:
            return await first_seq() == 21

        async with asyncio.timeout(5):
            while not await trimmed():
                await asyncio.sleep(0.05)
        assert await raw_redis.xlen(key) == 20  # 21..40: what the newer snapshots need
        late = bus.subscribe("late", after=20)  # a process joining from that snapshot
        assert seqs(await collect(late, 20)) == list(range(21, 41))
        await late.close()
    finally:
        await pipeline.close()
