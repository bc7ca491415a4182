"""Limits of one process: ingest rate per device token, concurrent connections per
device token and per user, and what was refused.

Pure bookkeeping: no I/O, and the clock is passed in (tests drive it). Every process
keeps its own: with several web workers each enforces the limits by itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cockpit.settings import Settings

__all__ = ["SDP_MAX_BYTES", "Limits", "Slots", "TokenBucket"]

# Largest WHIP/WHEP SDP offer: a real one is a few KiB, even with many candidates.
SDP_MAX_BYTES = 64 * 1024
_MAX_BUCKETS = 10_000  # beyond this, full (idle) buckets are forgotten


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; a request of cost n takes n.

    Over any interval of length T it admits at most rate*T + burst: what it admits is
    paid from what it held at the start (<= burst) and what flowed in since (rate*T).
    """

    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("rate and burst must be > 0")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._at = clock()

    def _refill(self) -> float:
        now = self._clock()
        if now > self._at:  # a clock that steps back refills nothing
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
        return self._tokens

    def take(self, cost: float) -> float:
        """0.0 if admitted (the tokens are taken); else the seconds until `cost` would be
        (nothing is taken). A cost over the burst is never admitted: infinity."""
        tokens = self._refill()
        if cost <= tokens:
            self._tokens = tokens - cost
            return 0.0
        if cost > self.burst:
            return float("inf")
        return (cost - tokens) / self.rate

    def give(self, cost: float) -> None:
        """Put back what an admitted request did not use (it was not committed)."""
        self._tokens = min(self.burst, self._refill() + cost)

    def full(self) -> bool:
        return self._refill() >= self.burst


@dataclass
class Slots:
    """At most `limit` concurrent holders per key (a user's push streams, a device's
    WebSockets)."""

    limit: int
    active: Counter[str] = field(default_factory=Counter)

    def acquire(self, key: str) -> bool:
        if self.active[key] >= self.limit:
            return False
        self.active[key] += 1
        return True

    def release(self, key: str) -> None:
        self.active[key] -= 1
        if self.active[key] <= 0:
            del self.active[key]

    def total(self) -> int:
        return sum(self.active.values())


@dataclass
class Limits:
    """This process's limits and counters; `rate_per_s` 0 means no ingest rate limit."""

    rate_per_s: float
    burst: int
    ws_per_device: int
    streams_per_user: int
    clock: Callable[[], float]
    max_body_bytes: int = 0
    max_batch: int = 0
    buckets: dict[str, TokenBucket] = field(default_factory=dict)
    refused: Counter[str] = field(default_factory=Counter)
    streams: Slots = field(init=False)
    device_ws: Slots = field(init=False)

    def __post_init__(self) -> None:
        self.streams = Slots(self.streams_per_user)
        self.device_ws = Slots(self.ws_per_device)

    @classmethod
    def of(cls, settings: Settings, clock: Callable[[], float]) -> Limits:
        return cls(
            rate_per_s=settings.ingest_rate_per_s,
            burst=settings.ingest_burst,
            ws_per_device=settings.device_ws_connections,
            streams_per_user=settings.user_streams,
            clock=clock,
            max_body_bytes=settings.max_body_bytes,
            max_batch=settings.max_batch,
        )

    def admit(self, device: str, cost: int) -> float:
        """0.0 if `device` may send `cost` events now (they are counted); else the seconds
        to wait, counted as a refusal."""
        if self.rate_per_s <= 0:
            return 0.0
        bucket = self.buckets.get(device)
        if bucket is None:
            if len(self.buckets) >= _MAX_BUCKETS:
                self.buckets = {k: b for k, b in self.buckets.items() if not b.full()}
            bucket = self.buckets[device] = TokenBucket(self.rate_per_s, self.burst, self.clock)
        wait = bucket.take(cost)
        if wait > 0:
            self.refused["rate"] += 1
        return wait

    def refund(self, device: str, cost: int) -> None:
        """Events admitted but answered 503 (not committed): the device sends them again,
        and must not be refused for it after an outage."""
        bucket = self.buckets.get(device)
        if bucket is not None:
            bucket.give(cost)

    def rate_reason(self) -> str:
        return f"{self.rate_per_s:g} events/s per device token (bursts of {self.burst})"

    def view(self) -> dict[str, Any]:
        """For /healthz: the configured values and totals, never a token or a name."""
        return {
            "ingest_rate_per_s": self.rate_per_s,
            "ingest_burst": self.burst,
            "device_ws_connections": self.ws_per_device,
            "user_streams": self.streams_per_user,
            "max_body_bytes": self.max_body_bytes,
            "max_batch": self.max_batch,
            "sdp_max_bytes": SDP_MAX_BYTES,
            "per_process": True,
            "active": {"streams": self.streams.total(), "device_ws": self.device_ws.total()},
            "refused": {k: self.refused[k] for k in ("rate", "device_ws", "streams")},
        }
