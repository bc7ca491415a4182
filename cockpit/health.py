"""Per-feed counters for `/healthz`: what arrived, what was rejected and why."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = ["FeedHealth", "Health"]

_MAX_REASONS = 50  # distinct reject reasons kept per feed; the rest count as "other"

# How a feed's connection is doing. "idle": nothing configured to connect or listen
# (routes only); "listening": a socket waits for senders; "connected"/"reconnecting"/
# "down" for links the cockpit opens itself (a broker, a robot).
FeedState = Literal["idle", "listening", "connected", "reconnecting", "down"]


@dataclass
class FeedHealth:
    accepted: int = 0
    rejected: int = 0
    connections: int = 0
    last_message: float | None = None
    last_reject: str | None = None
    reasons: Counter[str] = field(default_factory=Counter)
    state: FeedState = "idle"
    # One line per outgoing link (e.g. each robot's rosbridge): name -> state.
    links: dict[str, FeedState] = field(default_factory=dict)

    def accept(self, n: int, now: float) -> None:
        self.accepted += n
        self.last_message = now

    def reject(self, reason: str, now: float) -> None:
        self.rejected += 1
        self.last_reject = reason
        key = reason if reason in self.reasons or len(self.reasons) < _MAX_REASONS else "other"
        self.reasons[key] += 1
        self.last_message = now

    def view(self, now: float) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "connections": self.connections,
            "state": self.state,
            "links": dict(self.links),
            "last_message_at": None
            if self.last_message is None
            else datetime.fromtimestamp(self.last_message, UTC).isoformat(),
            "last_message_age_s": None
            if self.last_message is None
            else round(now - self.last_message, 3),
            "last_reject": self.last_reject,
            "reject_reasons": dict(self.reasons.most_common(10)),
        }


@dataclass
class Health:
    feeds: dict[str, FeedHealth] = field(default_factory=dict)

    def feed(self, name: str) -> FeedHealth:
        fh = self.feeds.get(name)
        if fh is None:
            fh = self.feeds[name] = FeedHealth()
        return fh

    def view(self, now: float) -> dict[str, Any]:
        return {name: fh.view(now) for name, fh in sorted(self.feeds.items())}
