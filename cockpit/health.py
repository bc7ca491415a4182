"""Per-feed counters for `/healthz`: what arrived, what was rejected and why."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FeedHealth", "Health"]

_MAX_REASONS = 50  # distinct reject reasons kept per feed; the rest count as "other"


@dataclass
class FeedHealth:
    accepted: int = 0
    rejected: int = 0
    connections: int = 0
    last_message: float | None = None
    last_reject: str | None = None
    reasons: Counter[str] = field(default_factory=Counter)

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
