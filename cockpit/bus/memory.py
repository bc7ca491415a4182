"""The in-memory bus: the embedded default for a single process."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from typing import cast

from cockpit.bus.base import (
    Overflow,
    Subscription,
    _BaseBus,
)
from cockpit.events import Event, with_seq

__all__ = ["MemoryBus"]


class MemoryBus(_BaseBus):
    """The embedded bus: one process, no external services.

    `history` keeps the last N events so that `subscribe(after=k)` can replay them when
    k >= head - N; with the default 0 nothing is kept and `after` must be >= head.
    """

    kind = "memory"

    def __init__(self, incident: str, *, start_seq: int = 0, history: int = 0) -> None:
        super().__init__(incident)
        if start_seq < 0 or history < 0:
            raise ValueError("start_seq and history must be >= 0")
        self._head = start_seq
        self._history: deque[Event] | None = deque(maxlen=history) if history else None
        # Held from "wait for room" to "delivered to all": batches reach every
        # subscriber in seq order even when a BLOCK subscriber makes a publisher wait.
        self._publish_lock = asyncio.Lock()
        self._leases: dict[str, tuple[str, float]] = {}
        self._snapshot: tuple[int, bytes] | None = None

    async def start(self) -> None:
        """Nothing to connect; present so callers treat both buses alike."""

    async def close(self) -> None:
        self._closed = True
        for sub in list(self._subs):
            sub._end()
        self._subs.clear()

    async def publish(self, events: Sequence[Event]) -> list[Event]:
        if not events:
            return []
        self._check(events)
        n = len(events)
        async with self._publish_lock:
            # Wait before stamping: a publish cancelled here leaves no trace, so a batch
            # is either delivered to everyone or to no one.
            for sub in list(self._subs):
                if sub.overflow is Overflow.BLOCK and not sub._has_room(n):
                    await sub._wait_room(n)
            if self._closed:
                raise RuntimeError(f"bus for incident {self.incident!r} is closed")
            # From here on there is no await: stamping and delivery are atomic.
            first = self._head + 1
            stamped = [with_seq(e, first + i) for i, e in enumerate(events)]
            self._head += n
            if self._history is not None:
                self._history.extend(stamped)
            overflowed = []
            for sub in self._subs:
                # Each subscriber gets its own list: consumers may mutate what they get.
                sub._offer(stamped.copy())
                if sub._error is not None:
                    overflowed.append(sub)
            for sub in overflowed:
                # Stop delivering to it; its consumer sees Overflowed on next iteration.
                self._forget(sub)
        return stamped

    async def open_run(self, seq: int) -> bool:
        """Nothing to open in memory: the bus lives and dies with its recorder."""
        await self.ensure_seq_at_least(seq)
        return False

    async def ensure_seq_at_least(self, seq: int) -> None:
        """Continue numbering after `seq` (e.g. the last seq in the recorder's log)."""
        async with self._publish_lock:  # not in the middle of someone's publish
            if seq > self._head:
                self._head = seq
                if self._history is not None:
                    # Kept events would no longer end at head: replay across the jump
                    # would look like a gap, so forget them.
                    self._history.clear()

    def subscribe(
        self,
        name: str,
        *,
        after: int = 0,
        maxsize: int = 10_000,
        overflow: Overflow = Overflow.BLOCK,
    ) -> Subscription:
        if self._closed:
            raise RuntimeError(f"bus for incident {self.incident!r} is closed")
        kept = len(self._history) if self._history is not None else 0
        oldest = self._head - kept + 1  # oldest seq still replayable
        if after + 1 < oldest:
            raise ValueError(
                f"memory bus for {self.incident!r} no longer holds seq {after + 1}..{oldest - 1} "
                f"(head {self._head}, history {kept}); subscribe with after >= {oldest - 1} "
                "or resync from a snapshot"
            )
        sub = Subscription(
            name, after=after, maxsize=maxsize, overflow=overflow, on_close=self._on_sub_close
        )
        if self._history is not None and after < self._head:
            # Replayed past the bound on purpose: history is already bounded.
            sub._offer([e for e in self._history if cast(int, e.seq) > after])
        self._subs.append(sub)
        return sub

    async def _on_sub_close(self, sub: Subscription) -> None:
        self._forget(sub)

    async def mark_committed(self, seq: int) -> None:
        self._note_committed(seq)

    async def try_lead(self, role: str, owner: str, ttl_s: float) -> bool:
        now = time.monotonic()
        holder = self._leases.get(role)
        if holder is None or holder[0] == owner or holder[1] <= now:
            self._leases[role] = (owner, now + ttl_s)
            return True
        return False

    async def release_lead(self, role: str, owner: str) -> None:
        holder = self._leases.get(role)
        if holder is not None and holder[0] == owner:
            del self._leases[role]

    async def put_snapshot(self, seq: int, data: bytes) -> None:
        # Never replace a newer picture with an older one.
        if self._snapshot is None or seq >= self._snapshot[0]:
            self._snapshot = (seq, bytes(data))

    async def get_snapshot(self) -> tuple[int, bytes] | None:
        return self._snapshot

    async def trim(self, upto: int) -> None:
        """Nothing to do: the history is a bounded deque in this process."""

    def stats(self) -> dict[str, object]:
        out = self._base_stats(connected=not self._closed)
        out["history"] = len(self._history) if self._history is not None else 0
        return out


# --- redis ----------------------------------------------------------------------------

# The last seq handed out: the counter, or, if the counter was lost (deleted, Redis
# restored from an older dump), the stream's last id, so that an id is never reused.
# Defines `cur` for the script that follows it.
#   KEYS[1]: counter, KEYS[2]: stream
