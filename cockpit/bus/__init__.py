"""The event bus: one ordered, gap-free stream of events per incident.

Publishers hand in batches; the bus stamps each event with the next sequence number
(`seq`, 1, 2, 3, ... per incident) and delivers batches to every subscription in seq
order. Two implementations share one contract:

* `MemoryBus`: the embedded default for a single process. Seqs are stamped
  synchronously inside the event loop, so stamping is atomic without locks around
  the counter.
* `RedisBus`: several processes on one incident. A Lua script allocates seqs and
  XADDs the batch in one step (stream ids `0-<seq>`), so seqs stay contiguous and
  ordered across processes; each subscription reads the stream with XREAD.

Each subscription has a bounded local queue (bounded in events, not batches) and an
overflow policy, chosen by what the consumer can tolerate (see `Overflow`).
"""

from __future__ import annotations

from cockpit.bus.base import Bus, BusUnavailable, Overflow, Overflowed, Rewound, Subscription
from cockpit.bus.memory import MemoryBus
from cockpit.bus.redis_streams import RedisBus

__all__ = [
    "Bus",
    "BusUnavailable",
    "MemoryBus",
    "Overflow",
    "Overflowed",
    "RedisBus",
    "Rewound",
    "Subscription",
    "make_bus",
]


def make_bus(incident: str, redis_url: str | None, *, start_seq: int = 0) -> Bus:
    """Redis when a URL is configured (several processes), else the embedded bus."""
    if redis_url:
        return RedisBus(incident, redis_url, start_seq=start_seq)
    return MemoryBus(incident, start_seq=start_seq)
