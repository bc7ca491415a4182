"""The bus contract: overflow policies, subscriptions, the `Bus` protocol, shared parts."""

from __future__ import annotations

import asyncio
import enum
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Protocol, cast

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from cockpit.events import Event

__all__ = ["Bus", "BusUnavailable", "Overflow", "Overflowed", "Rewound", "Subscription"]


# Errors after which a Redis connection is worth retrying; anything else is a bug or a
# misconfiguration and is surfaced instead of retried forever.
_TRANSIENT = (RedisConnectionError, RedisTimeoutError, OSError)
_BACKOFF_MIN_S = 0.1
# A refused connect costs Redis nothing, and every second of backoff is a second the
# cockpit stays behind after Redis is back: try at least once a second.
_BACKOFF_MAX_S = 1.0


class Overflow(enum.StrEnum):
    """What happens when a subscription's queue is full; chosen per consumer."""

    # Publisher (memory) or reader (Redis) waits for space: for lossless consumers
    # such as the recorder and the fold.
    BLOCK = "block"
    # The subscription is closed and flagged overflowed; the consumer must resync from
    # a snapshot: for browser clients, which must never hold the bus back.
    DISCONNECT = "disconnect"
    # The oldest queued batch is dropped and counted: for lossy consumers (metrics).
    DROP_OLDEST = "drop_oldest"


class BusUnavailable(ConnectionError):
    """The bus (Redis) did not answer within the retry time; the operation may or may not
    have taken effect (a publish retried later is deduplicated only within the bus)."""


class Overflowed(Exception):
    """Raised by iterating a subscription that lost events and cannot continue."""


class Rewound(Overflowed):
    """The bus went back behind what the subscription had read (Redis lost its last
    writes): the seqs after it will be reused for other events, so what the consumer
    built from the lost ones must be rebuilt from the log."""


class Subscription:
    """An async iterator of batches: non-empty lists of events, seq set, in seq order.

    The queue bound `maxsize` counts events, not batches. A batch that alone exceeds
    `maxsize` is still admitted into an empty queue; otherwise a BLOCK publisher could
    never make progress.
    """

    def __init__(
        self,
        name: str,
        *,
        after: int,
        maxsize: int,
        overflow: Overflow,
        on_close: Callable[[Subscription], Awaitable[None]] | None = None,
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        if after < 0:
            raise ValueError(f"after must be >= 0, got {after}")
        self.name = name
        self.maxsize = maxsize
        self.overflow = Overflow(overflow)
        self.dropped = 0
        self.overflowed = False
        # Redis readers flip this while reconnecting; memory subscriptions stay True.
        self.connected = True
        self.down_since: float | None = None  # wall time the connection was lost
        # Highest seq the bus has taken for it, queued or still in the reader's hands.
        self.fetched = after
        # On a bus that went back (Rewound): keep reading after the last seq instead of
        # failing. Only for the recorder, whose log is what the numbering continues from.
        self.follow_rewind = False
        self._queue: deque[list[Event]] = deque()
        self._depth = 0
        self._last = after  # highest seq accepted into the queue
        self._ended = False  # no more input: drain what is queued, then stop
        self._closed = False  # consumer closed it: stop at once
        self._error: BaseException | None = None
        self._readable = asyncio.Event()
        self._room = asyncio.Event()
        self._on_close = on_close

    # --- consumer side ---------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[list[Event]]:
        return self

    async def __anext__(self) -> list[Event]:
        while True:
            if self._error is not None:
                raise self._error
            if self._queue:
                batch = self._queue.popleft()
                self._depth -= len(batch)
                self._room.set()
                return batch
            if self._ended or self._closed:
                raise StopAsyncIteration
            self._readable.clear()
            await self._readable.wait()

    async def close(self) -> None:
        """Stop the subscription now; queued batches are discarded."""
        if self._closed:
            return
        self._closed = True
        self._queue.clear()
        self._depth = 0
        self._wake()
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            await on_close(self)

    @property
    def depth(self) -> int:
        """Events queued and not yet taken by the consumer."""
        return self._depth

    @property
    def last_seq(self) -> int:
        """Seq of the newest event accepted into the queue (or `after` if none yet)."""
        return self._last

    def stats(self) -> dict[str, object]:
        return {
            "name": self.name,
            "overflow": str(self.overflow),
            "depth": self._depth,
            "maxsize": self.maxsize,
            "last_seq": self._last,
            "dropped": self.dropped,
            "overflowed": self.overflowed,
            "connected": self.connected,
            "down_since": self.down_since,
        }

    # --- producer side (the bus) -------------------------------------------------------

    def _set_connected(self, connected: bool) -> None:
        if connected:
            self.down_since = None
        elif self.connected:
            self.down_since = time.time()
        self.connected = connected

    @property
    def _done(self) -> bool:
        return self._ended or self._closed or self._error is not None

    def _has_room(self, n: int) -> bool:
        return self._done or self._depth == 0 or self._depth + n <= self.maxsize

    async def _wait_room(self, n: int) -> None:
        while not self._has_room(n):
            self._room.clear()
            await self._room.wait()

    def _offer(self, batch: list[Event]) -> None:
        """Enqueue without waiting; BLOCK callers must have awaited `_wait_room` first."""
        if self._done or not batch:
            return
        last = cast(int, batch[-1].seq)
        if last <= self._last:
            return
        if cast(int, batch[0].seq) <= self._last:
            # Only for a subscriber whose `after` lies inside this batch.
            batch = [e for e in batch if cast(int, e.seq) > self._last]
        first = cast(int, batch[0].seq)
        if first != self._last + 1:
            # "No gaps" is a promise: a consumer that missed events must resync.
            self._fail(
                Overflowed(
                    f"subscription {self.name!r} missed seq {self._last + 1}..{first - 1}; "
                    "resync from a snapshot"
                )
            )
            return
        n = len(batch)
        if self._depth and self._depth + n > self.maxsize:
            if self.overflow is Overflow.DISCONNECT:
                self._fail(
                    Overflowed(
                        f"subscription {self.name!r} overflowed at seq {self._last} "
                        f"(maxsize {self.maxsize}); resync from a snapshot"
                    )
                )
                return
            if self.overflow is Overflow.DROP_OLDEST:
                while self._queue and self._depth + n > self.maxsize:
                    old = self._queue.popleft()
                    self._depth -= len(old)
                    self.dropped += len(old)
            # BLOCK: the caller waited for room; a concurrent replay may overshoot a bit.
        self._queue.append(batch)
        self._depth += n
        self._last = last
        self.fetched = max(self.fetched, last)
        self._readable.set()

    def _fail(self, error: BaseException) -> None:
        if self._error is not None or self._closed:
            return
        self._error = error
        self.overflowed = isinstance(error, Overflowed)
        self._queue.clear()
        self._depth = 0
        self._wake()

    def _end(self) -> None:
        self._ended = True
        self._wake()

    def _wake(self) -> None:
        self._readable.set()
        self._room.set()


class Bus(Protocol):
    """The contract both buses keep; see the module docstring."""

    incident: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, events: Sequence[Event]) -> list[Event]: ...

    def subscribe(
        self,
        name: str,
        *,
        after: int = 0,
        maxsize: int = 10_000,
        overflow: Overflow = Overflow.BLOCK,
    ) -> Subscription: ...

    async def ensure_seq_at_least(self, seq: int) -> None: ...

    async def open_run(self, seq: int) -> bool: ...

    @property
    def head(self) -> int: ...

    @property
    def committed(self) -> int: ...

    async def mark_committed(self, seq: int) -> None: ...

    # `timeout` is part of the contract: a bounded wait is the point of this call.
    async def wait_committed(self, seq: int, timeout: float) -> bool: ...  # noqa: ASYNC109

    async def try_lead(self, role: str, owner: str, ttl_s: float) -> bool: ...

    async def release_lead(self, role: str, owner: str) -> None: ...

    async def put_snapshot(self, seq: int, data: bytes) -> None: ...

    async def trim(self, upto: int) -> None: ...

    async def get_snapshot(self) -> tuple[int, bytes] | None: ...

    def stats(self) -> dict[str, object]: ...


class _BaseBus:
    """What both buses share: the subscription registry and the commit watermark."""

    kind = "base"

    def __init__(self, incident: str) -> None:
        self.incident = incident
        self._head = 0
        self._committed = 0
        self._commit_changed = asyncio.Event()
        self._subs: list[Subscription] = []
        self._closed = False
        self._overflows = 0
        self._errors = 0
        self._reconnects = 0

    @property
    def head(self) -> int:
        return self._head

    @property
    def committed(self) -> int:
        return self._committed

    def _check(self, events: Sequence[Event]) -> None:
        if self._closed:
            raise RuntimeError(f"bus for incident {self.incident!r} is closed")
        for e in events:
            if e.incident != self.incident:
                raise ValueError(
                    f"event {e.id} belongs to incident {e.incident!r}, "
                    f"not to this bus's {self.incident!r}"
                )

    def _note_committed(self, seq: int) -> None:
        # The watermark only moves forward, whatever order notifications arrive in.
        if seq > self._committed:
            self._committed = seq
            # Wake every waiter once, then give later waiters a fresh event.
            self._commit_changed.set()
            self._commit_changed = asyncio.Event()

    async def _poll_committed(self) -> None:
        """Re-read the watermark from its source; nothing to do in memory."""

    _poll_interval_s: float | None = None

    async def wait_committed(self, seq: int, timeout: float) -> bool:  # noqa: ASYNC109
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._committed < seq:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            changed = self._commit_changed
            step = (
                remaining
                if self._poll_interval_s is None
                else min(remaining, self._poll_interval_s)
            )
            try:
                async with asyncio.timeout(step):
                    await changed.wait()
            except TimeoutError:
                # A lost PUBLISH must not hang the waiter: look at the key itself.
                await self._poll_committed()
        return True

    def _forget(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)
            # Keep the count in stats after the subscription itself is gone.
            if sub.overflowed:
                self._overflows += 1

    def _base_stats(self, connected: bool) -> dict[str, object]:
        return {
            "kind": self.kind,
            "incident": self.incident,
            "head": self._head,
            "committed": self._committed,
            "connected": connected,
            "subscriptions": [s.stats() for s in self._subs],
            "overflows": self._overflows + sum(1 for s in self._subs if s.overflowed),
            "reconnects": self._reconnects,
            "errors": self._errors,
        }


# --- memory ---------------------------------------------------------------------------
