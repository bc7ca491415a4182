"""Silence rules: a robot or drone whose link is lost, an entity or a feed gone stale."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cockpit.rules.config import RuleConfig
from cockpit.rules.wish import AlertWish, fmt

__all__ = ["feed_stale", "link_lost", "stale"]


def link_lost(entity: Mapping[str, Any], cfg: RuleConfig) -> list[AlertWish]:
    """What the entity's own link reports (rosbridge, MAVLink): lost or degraded."""
    if entity["kind"] not in ("robot", "drone"):
        return []
    link = (entity.get("status") or {}).get("link")
    if link == "lost":
        return [AlertWish("link_lost", "critical", "Verbindung verloren", (("state", "lost"),))]
    if link == "degraded":
        return [AlertWish("link_lost", "warning", "Verbindung gestört", (("state", "degraded"),))]
    return []


def stale(
    entity: Mapping[str, Any], now: float, stale_after: Mapping[str, float], cfg: RuleConfig
) -> list[AlertWish]:
    """An entity of a watched kind that has not reported for longer than its kind's limit."""
    kind = entity["kind"]
    if kind not in cfg.stale_kinds:
        return []
    silent = now - entity["last_reported"]
    if silent <= stale_after.get(kind, 60.0):
        return []
    seconds = str(round(silent))
    return [AlertWish("stale", "warning", f"Keine Meldung seit {seconds} s", (("s", seconds),))]


def feed_stale(
    last_by_feed: Mapping[str, float], now: float, cfg: RuleConfig
) -> dict[str, AlertWish]:
    """Per feed that has delivered before: an alert once it has been silent too long."""
    out: dict[str, AlertWish] = {}
    for feed, last in last_by_feed.items():
        silent = now - last
        if silent > cfg.feed_stale_s.get(feed, float("inf")):
            minutes = fmt(silent / 60.0)
            out[feed] = AlertWish(
                "feed_stale",
                "warning",
                f"Zuleitung {feed}: seit {minutes} min keine Daten",
                (("feed", feed), ("min", minutes)),
            )
    return out
