"""The Redis Streams bus: several processes on one incident."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from cockpit.bus.base import (
    _BACKOFF_MAX_S,
    _BACKOFF_MIN_S,
    _TRANSIENT,
    BusUnavailable,
    Overflow,
    Overflowed,
    Rewound,
    Subscription,
    _BaseBus,
)
from cockpit.events import Event, InvalidInput, event_to_json, parse_event, with_seq

__all__ = ["RedisBus"]

log = logging.getLogger(__name__)

_CURRENT_SEQ_LUA = """
local cur = redis.call('GET', KEYS[1])
if cur then
  cur = tonumber(cur)
else
  cur = 0
  if redis.call('EXISTS', KEYS[2]) == 1 then
    local info = redis.call('XINFO', 'STREAM', KEYS[2])
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then
        local ms, sq = string.match(info[i + 1], '^(%d+)-(%d+)$')
        if tonumber(ms) ~= 0 then
          return redis.error_reply('stream ' .. KEYS[2] .. ' has ids not written by the bus')
        end
        cur = tonumber(sq)
      end
    end
  end
end
"""

# The run of the Redis server: a new one after every restart, whatever its files held.
_RUN_ID_LUA = """
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
"""

# Allocate seqs and append the batch in one atomic step, so concurrent publishers in
# different processes get contiguous, ordered seqs. A publish retried after a lost
# reply carries the same token and returns the first attempt's seqs instead of
# appending twice. Scripts are not rolled back on error, so the only XADD that can
# fail (the first, if its id is not above the stream's last) runs before any write.
# A gated publish (ARGV[4] = 1) is refused with NOTOPEN until the recorder has opened
# this run of Redis (see _OPEN_LUA): a Redis that lost its last writes would otherwise
# hand out seqs the log already holds.
#   KEYS: counter, stream, dedup key, opened key
#   ARGV: maxlen, start_seq (floor), dedup ttl ms, gated (0/1), event json...
_PUBLISH_LUA = (
    """
local done = redis.call('GET', KEYS[3])
if done then return tonumber(done) end
if ARGV[4] == '1' then
"""
    + _RUN_ID_LUA
    + """
  if redis.call('GET', KEYS[4]) ~= run then
    return redis.error_reply('NOTOPEN the recorder has not opened this run of Redis yet')
  end
end
"""
    + _CURRENT_SEQ_LUA
    + """
local n = #ARGV - 4
local floor = tonumber(ARGV[2])
if cur < floor then cur = floor end
for i = 1, n do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '0-' .. (cur + i), 'e', ARGV[4 + i])
end
redis.call('SET', KEYS[1], cur + n)
redis.call('SET', KEYS[3], cur + 1, 'PX', ARGV[3])
return cur + 1
"""
)

# The recorder opens a run of Redis for gated publishers: numbering continues after the
# highest seq it has taken from the bus (`ARGV[1]`), whatever Redis lost. Returns the
# counter and whether this run was opened just now (1) or before (0).
#   KEYS: counter, stream, opened key; ARGV: seq
_OPEN_LUA = (
    _RUN_ID_LUA
    + """
if redis.call('GET', KEYS[3]) == run then
  return {tonumber(redis.call('GET', KEYS[1]) or '0'), 0}
end
"""
    + _CURRENT_SEQ_LUA
    + """
local want = tonumber(ARGV[1])
if want > cur then cur = want end
redis.call('SET', KEYS[1], cur)
redis.call('SET', KEYS[3], run)
return {cur, 1}
"""
)

# Raise the counter so the next publish continues after `seq` (never lowers it).
#   KEYS: counter, stream; ARGV: seq
_RAISE_SEQ_LUA = (
    _CURRENT_SEQ_LUA
    + """
local want = tonumber(ARGV[1])
if want > cur then cur = want end
redis.call('SET', KEYS[1], cur)
return cur
"""
)

# Raise the watermark only (it never goes backwards) and tell every process.
#   KEYS: committed key; ARGV: seq, channel
_COMMIT_LUA = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local new = tonumber(ARGV[1])
if new > cur then
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('PUBLISH', ARGV[2], ARGV[1])
  return new
end
return cur
"""

# Take the lease if free, renew it if ours; anything else leaves it untouched.
#   KEYS: lease key; ARGV: owner, ttl ms
_LEAD_LUA = """
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Keep the newest snapshot only; KEYS: snapshot hash; ARGV: seq, data
_SNAPSHOT_LUA = """
local cur = tonumber(redis.call('HGET', KEYS[1], 'seq') or '-1')
if tonumber(ARGV[1]) >= cur then
  redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'data', ARGV[2])
  return 1
end
return 0
"""

_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._:@/-]")


def _client_name(prefix: str, name: str) -> str:
    # CLIENT SETNAME refuses spaces; keep names readable in CLIENT LIST.
    return f"{prefix}-{_NAME_UNSAFE.sub('_', name)}"[:200]


def _seq_of(stream_id: bytes | str) -> int:
    raw = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    ms, _, seq = raw.partition("-")
    if ms != "0":
        raise ValueError(f"stream id {raw!r} was not written by the bus")
    return int(seq)


@dataclass(frozen=True, slots=True)
class _Scripts:
    publish: AsyncScript
    raise_seq: AsyncScript
    open: AsyncScript
    commit: AsyncScript
    lead: AsyncScript
    release: AsyncScript
    snapshot: AsyncScript


class RedisBus(_BaseBus):
    """The bus over Redis Streams, for several processes on one incident.

    `start_seq` (an addition to the basic contract) is a floor for seq allocation: if
    Redis lost its data but the recorder holds events up to k, seqs continue at k + 1.
    """

    kind = "redis"
    _poll_interval_s: float | None = 0.25
    _dedup_ttl_ms = 120_000
    _publish_retry_s = 10.0

    def __init__(
        self,
        incident: str,
        url: str,
        *,
        maxlen: int = 1_000_000,
        block_ms: int = 1000,
        start_seq: int = 0,
        read_count: int = 1000,
    ) -> None:
        super().__init__(incident)
        self.url = url
        self.maxlen = maxlen
        self.block_ms = block_ms
        self.start_seq = start_seq
        self.read_count = read_count
        prefix = f"cockpit:{incident}"
        self.key_stream = f"{prefix}:events"
        self.key_seq = f"{prefix}:seq"
        self.key_committed = f"{prefix}:committed"
        self.channel_committed = f"{prefix}:committed"
        self.key_snapshot = f"{prefix}:snapshot"
        self.key_opened = f"{prefix}:opened"
        # Publish only into a run of Redis the recorder has opened (Pipeline sets this
        # in every process of a deployment; a bare bus, as in tests, publishes freely).
        self.gated = False
        self._prefix = prefix
        self._redis: Redis | None = None
        self._scripts: _Scripts | None = None
        self._connected = False
        self._down_at: float | None = None  # loop time of the first failed call in a row
        self._listener: asyncio.Task[None] | None = None
        self._readers: dict[int, tuple[asyncio.Task[None], Redis]] = {}
        self._poll_task: asyncio.Task[None] | None = None
        # One publish at a time per process: seqs then follow the order in which
        # publishers stamped their events (received_at grows with seq), and the
        # connection pool is never flooded by a burst of concurrent publishes.
        self._publish_lock = asyncio.Lock()

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        if self._redis is not None:
            return
        client = Redis.from_url(
            self.url,
            client_name=_client_name("cockpit-bus", self.incident),
            socket_connect_timeout=2.0,
            # A few quick reconnects inside redis-py; longer outages are retried (and
            # counted) by `_call`, bounded so a publisher learns that Redis is gone.
            retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.5), 3),
        )
        try:
            await client.ping()
            seq, committed = await client.mget([self.key_seq, self.key_committed])
        except BaseException:
            await client.aclose()
            raise
        self._redis = client
        self._scripts = _Scripts(
            publish=client.register_script(_PUBLISH_LUA),
            raise_seq=client.register_script(_RAISE_SEQ_LUA),
            open=client.register_script(_OPEN_LUA),
            commit=client.register_script(_COMMIT_LUA),
            lead=client.register_script(_LEAD_LUA),
            release=client.register_script(_RELEASE_LUA),
            snapshot=client.register_script(_SNAPSHOT_LUA),
        )
        self._connected = True
        self._head = max(int(seq or 0), self.start_seq)
        self._committed = int(committed or 0)
        self._listener = asyncio.create_task(
            self._listen_committed(), name=f"bus-committed-{self.incident}"
        )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Flags first, cancellation second: every loop also checks its flag, so a
        # cancellation swallowed inside redis-py still ends it within one block_ms.
        for sub in list(self._subs):
            sub._end()
        tasks = [t for t, _ in self._readers.values()]
        if self._listener is not None:
            tasks.append(self._listener)
        if self._poll_task is not None:
            tasks.append(self._poll_task)  # its GET holds a pooled connection
        await self._stop(tasks)
        for _, client in self._readers.values():
            await client.aclose()
        self._readers.clear()
        self._subs.clear()
        if self._redis is not None:
            await self._redis.aclose()
        self._connected = False

    async def _stop(self, tasks: list[asyncio.Task[None]]) -> None:
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=self.block_ms / 1000 + 2.0)
        for task in pending:
            # Closing its connection below makes it fail and notice the flag.
            log.warning("redis bus %s: task %s did not stop in time", self.incident, task)

    def _client(self) -> Redis:
        if self._redis is None:
            raise RuntimeError("RedisBus.start() has not been called")
        return self._redis

    def _script(self) -> _Scripts:
        if self._scripts is None:
            raise RuntimeError("RedisBus.start() has not been called")
        return self._scripts

    async def _call(self, what: str, op: Callable[[], Awaitable[Any]]) -> Any:
        """Run a command, retrying transient errors with backoff for a bounded time.

        Only idempotent operations come here (the publish script dedups by token).
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        backoff = _BACKOFF_MIN_S
        failed = False
        while True:
            try:
                result = await op()
            except (*_TRANSIENT, ResponseError) as exc:
                if isinstance(exc, ResponseError) and not str(exc).startswith("NOTOPEN"):
                    raise
                # NOTOPEN: Redis is back but not yet opened by the recorder; wait as for
                # a reconnect (the recorder opens it within a second of being back).
                self._errors += 1
                self._connected = False
                if self._down_at is None:
                    self._down_at = loop.time()
                # Bounded by the outage, not by each call: once Redis has been away for
                # the retry time, a call fails after one try, and callers queued behind
                # the publish lock do not each wait the whole retry time again.
                deadline = max(self._down_at + self._publish_retry_s, started)
                if loop.time() + backoff > deadline:
                    # One exception type for "Redis is away", whatever redis-py raised.
                    raise BusUnavailable(
                        f"redis bus {self.incident}: {what} failed: {exc}"
                    ) from exc
                if not failed:
                    log.warning("redis bus %s: %s failed (%s); retrying", self.incident, what, exc)
                failed = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX_S)
                continue
            if failed:
                self._reconnects += 1
                log.info("redis bus %s: %s recovered", self.incident, what)
            self._connected = True
            self._down_at = None
            return result

    # --- publish / subscribe -----------------------------------------------------------

    async def publish(self, events: Sequence[Event]) -> list[Event]:
        return await self._publish(events, uuid.uuid4().hex)

    async def _publish(self, events: Sequence[Event], token: str) -> list[Event]:
        if not events:
            return []
        self._check(events)
        # The stream holds events without seq; the stream id is the seq.
        payload = [event_to_json(e if e.seq is None else with_seq(e, None)) for e in events]
        keys = [self.key_seq, self.key_stream, f"{self._prefix}:dedup:{token}", self.key_opened]
        args: list[str | int | bytes] = [
            self.maxlen,
            self.start_seq,
            self._dedup_ttl_ms,
            int(self.gated),
            *payload,
        ]
        script = self._script().publish
        async with self._publish_lock:
            first = int(await self._call("publish", lambda: script(keys=keys, args=args)))
        stamped = [with_seq(e, first + i) for i, e in enumerate(events)]
        self._head = max(self._head, first + len(events) - 1)
        return stamped

    async def ensure_seq_at_least(self, seq: int) -> None:
        """Continue numbering after `seq` in every process (e.g. the recorder's last seq)."""
        script = self._script().raise_seq
        keys = [self.key_seq, self.key_stream]
        current = await self._call("ensure_seq_at_least", lambda: script(keys=keys, args=[seq]))
        self._head = max(self._head, int(current))

    async def open_run(self, seq: int) -> bool:
        """Open this run of Redis for gated publishers, numbering after `seq` (the
        recorder's highest); True if it was not open before (Redis restarted, or first
        use). Cheap when already open: the recorder calls it every fraction of a second."""
        script = self._script().open
        keys = [self.key_seq, self.key_stream, self.key_opened]
        current, opened = await self._call("open", lambda: script(keys=keys, args=[seq]))
        self._head = max(self._head, int(current))
        return bool(opened)

    def subscribe(
        self,
        name: str,
        *,
        after: int = 0,
        maxsize: int = 10_000,
        overflow: Overflow = Overflow.BLOCK,
    ) -> Subscription:
        self._client()
        if self._closed:
            raise RuntimeError(f"bus for incident {self.incident!r} is closed")
        sub = Subscription(
            name, after=after, maxsize=maxsize, overflow=overflow, on_close=self._on_sub_close
        )
        fresh = asyncio.Event()  # set on every (re)connect of this reader's client

        async def connected(conn: Any) -> None:
            # redis-py also reconnects a stale pooled socket without an error (a reader
            # that waited for room while Redis restarted): every new connection is
            # noted, so the reader checks whether Redis went back behind it.
            await conn.on_connect()
            fresh.set()

        # Its own connection: XREAD BLOCK holds it, and CLIENT LIST can name it.
        client = Redis.from_url(
            self.url,
            client_name=_client_name("cockpit-sub", name),
            socket_connect_timeout=2.0,
            socket_timeout=self.block_ms / 1000 + 5.0,
            # Reconnects are ours (backoff, resume point, counting), not redis-py's.
            retry=Retry(NoBackoff(), 0),
            redis_connect_func=connected,
        )
        task = asyncio.create_task(self._read(sub, client, fresh), name=f"bus-sub-{name}")
        self._readers[id(sub)] = (task, client)
        self._subs.append(sub)
        return sub

    async def _on_sub_close(self, sub: Subscription) -> None:
        self._forget(sub)
        reader = self._readers.pop(id(sub), None)
        if reader is not None:
            task, client = reader
            await self._stop([task])
            await client.aclose()

    async def _read(self, sub: Subscription, client: Redis, fresh: asyncio.Event) -> None:
        last = sub.last_seq
        last_id: str | None = None  # the event at `last`, to know it again after an outage
        count = min(self.read_count, sub.maxsize)
        backoff = _BACKOFF_MIN_S
        failing = False
        read_once = False  # a first XREAD answered on this subscription's connection
        try:
            while not sub._done:
                try:
                    # The first connection is no reconnect: a process starting on a new
                    # Redis takes its numbering from the recorder, not from the stream.
                    reconnected = fresh.is_set() and read_once
                    fresh.clear()
                    if (failing or reconnected) and last and not sub.follow_rewind:
                        gone = await self._rewound(client, last, last_id)
                        if gone:
                            sub._fail(
                                Rewound(f"subscription {sub.name!r}: {gone}; resync from the log")
                            )
                            return
                    resp = await client.xread(
                        {self.key_stream: f"0-{last}"}, count=count, block=self.block_ms
                    )
                except _TRANSIENT as exc:
                    self._errors += 1
                    sub._set_connected(False)
                    if not failing:
                        log.warning(
                            "redis bus %s: subscription %r lost its connection (%s); "
                            "reconnecting from seq %d",
                            self.incident,
                            sub.name,
                            exc,
                            last,
                        )
                    failing = True
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, _BACKOFF_MAX_S)
                    continue
                read_once = True
                if failing:
                    self._reconnects += 1
                    failing = False
                    backoff = _BACKOFF_MIN_S
                    sub._set_connected(True)
                    log.info("redis bus %s: subscription %r reconnected", self.incident, sub.name)
                if not resp:
                    continue
                entries = cast(list[tuple[bytes, dict[bytes, bytes]]], cast(Any, resp)[0][1])
                batch: list[Event] = []
                for raw_id, fields in entries:
                    seq = _seq_of(raw_id)
                    if seq <= last:
                        continue
                    if seq != last + 1:
                        # Trimmed away (or never in Redis): the consumer cannot go on.
                        sub._fail(
                            Overflowed(
                                f"subscription {sub.name!r}: seq {last + 1}..{seq - 1} are "
                                f"no longer in {self.key_stream}; resync from a snapshot"
                            )
                        )
                        return
                    last, last_id = seq, None
                    sub.fetched = seq
                    try:
                        event = parse_event(fields[b"e"])
                    except (InvalidInput, KeyError) as exc:
                        # A peer speaking another vocabulary version; skip, don't stall.
                        self._errors += 1
                        log.error(
                            "redis bus %s: unreadable event seq %d: %s", self.incident, seq, exc
                        )
                        continue
                    last_id = event.id
                    batch.append(with_seq(event, seq))
                if last > self._head:
                    self._head = last
                if not batch:
                    continue
                if sub.overflow is Overflow.BLOCK:
                    # Stop reading until there is room: Redis is the buffer.
                    await sub._wait_room(len(batch))
                sub._offer(batch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("redis bus %s: subscription %r failed", self.incident, sub.name)
            self._errors += 1
            sub._fail(exc)

    async def _rewound(self, client: Redis, last: int, last_id: str | None) -> str | None:
        """After an outage: has Redis gone back behind what this reader took (it lost its
        last writes)? Then the seqs after the stream's end will name other events."""
        at = await client.xrange(self.key_stream, min=f"0-{last}", max=f"0-{last}")
        if at:
            if last_id is None:
                return None
            try:
                now_id = parse_event(cast(Any, at)[0][1][b"e"]).id
            except (InvalidInput, KeyError):
                return None
            return None if now_id == last_id else f"seq {last} names another event now"
        top = await client.xrevrange(self.key_stream, count=1)
        end = _seq_of(cast(Any, top)[0][0]) if top else 0
        # Not there but later ones are: trimmed, which the next read reports as a gap.
        return None if end > last else f"{self.key_stream} went back from seq {last} to {end}"

    # --- commit watermark --------------------------------------------------------------

    async def mark_committed(self, seq: int) -> None:
        script = self._script().commit
        keys = [self.key_committed]
        args: list[str | int] = [seq, self.channel_committed]
        current = await self._call("mark_committed", lambda: script(keys=keys, args=args))
        self._note_committed(int(current))

    async def _poll_committed(self) -> None:
        # Single flight: a thousand waiters timing out together cost one GET, not 1000.
        if self._poll_task is None or self._poll_task.done():
            self._poll_task = asyncio.create_task(self._read_committed())
        await asyncio.shield(self._poll_task)

    async def _read_committed(self) -> None:
        try:
            value = await self._client().get(self.key_committed)
        except _TRANSIENT:
            self._errors += 1
            return
        self._note_committed(int(value or 0))

    async def _listen_committed(self) -> None:
        backoff = _BACKOFF_MIN_S
        failing = False
        while not self._closed:
            pubsub = self._client().pubsub()
            try:
                await pubsub.subscribe(self.channel_committed)
                # Anything published while we were not subscribed is in the key.
                await self._poll_committed()
                # A round trip worked: /healthz need not wait for the next publish to say so.
                self._connected = True
                self._down_at = None
                if failing:
                    self._reconnects += 1
                    failing = False
                    log.info("redis bus %s: commit listener reconnected", self.incident)
                backoff = _BACKOFF_MIN_S
                while not self._closed:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if msg is not None and msg.get("type") == "message":
                        self._note_committed(int(msg["data"]))
            except _TRANSIENT as exc:
                self._errors += 1
                self._connected = False
                if not failing:
                    log.warning("redis bus %s: commit listener lost (%s)", self.incident, exc)
                failing = True
            except Exception:
                # Keep listening whatever happens; wait_committed also polls the key.
                self._errors += 1
                failing = True
                log.exception("redis bus %s: commit listener failed", self.incident)
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py
            if self._closed:
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX_S)

    # --- leader lease, snapshot --------------------------------------------------------

    async def try_lead(self, role: str, owner: str, ttl_s: float) -> bool:
        script = self._script().lead
        keys = [f"{self._prefix}:lead:{role}"]
        args: list[str | int] = [owner, max(1, int(ttl_s * 1000))]
        return bool(await self._call("try_lead", lambda: script(keys=keys, args=args)))

    async def release_lead(self, role: str, owner: str) -> None:
        script = self._script().release
        keys = [f"{self._prefix}:lead:{role}"]
        await self._call("release_lead", lambda: script(keys=keys, args=[owner]))

    async def put_snapshot(self, seq: int, data: bytes) -> None:
        script = self._script().snapshot
        keys = [self.key_snapshot]
        await self._call("put_snapshot", lambda: script(keys=keys, args=[seq, data]))

    async def trim(self, upto: int) -> None:
        """Drop the stream's entries up to seq `upto`, exactly (every 30 s at most, so
        the exact trim's cost does not matter): what the recorder has committed and a
        shared snapshot covers."""
        client = self._client()
        minid = f"0-{upto + 1}"
        await self._call(
            "trim", lambda: client.xtrim(self.key_stream, minid=minid, approximate=False)
        )

    async def get_snapshot(self) -> tuple[int, bytes] | None:
        client = self._client()
        seq, data = await self._call(
            "get_snapshot", lambda: client.hmget(self.key_snapshot, ["seq", "data"])
        )
        if seq is None or data is None:
            return None
        return int(seq), bytes(data)

    def stats(self) -> dict[str, object]:
        connected = self._connected and all(s.connected for s in self._subs)
        out = self._base_stats(connected=connected and not self._closed)
        out["stream"] = self.key_stream
        return out
