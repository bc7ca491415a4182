"""Wind shift: the direction at a station turning by more than a limit within a window.

A turn of the wind turns the smoke: crews placed upwind may suddenly stand in it.
"""

from __future__ import annotations

from collections.abc import Iterable

from cockpit.rules.config import RuleConfig
from cockpit.rules.wish import AlertWish, fmt

__all__ = ["angle_between", "wind_shift"]


def angle_between(a: float, b: float) -> float:
    """The smaller angle between two directions, 0..180°."""
    d = abs(a - b) % 360.0
    return 360.0 - d if d > 180.0 else d


def wind_shift(
    history: Iterable[tuple[float, float, float]], now: float, cfg: RuleConfig
) -> list[AlertWish]:
    """`history`: (time, direction from °, speed m/s), oldest first, at one station.

    Compares the latest direction with each within the window; calm readings carry no
    direction and are left out.
    """
    recent = [
        (t, d)
        for t, d, speed in history
        if now - t <= cfg.wind_shift_window_s and speed >= cfg.wind_calm_mps
    ]
    if len(recent) < 2:
        return []
    _, latest = recent[-1]
    turned = max(angle_between(latest, d) for _, d in recent[:-1])
    if turned <= cfg.wind_shift_deg:
        return []
    minutes = fmt(cfg.wind_shift_window_s / 60.0, 0)
    return [
        AlertWish(
            "wind_shift",
            "warning",
            f"Winddrehung {fmt(turned, 0)}° in {minutes} min, jetzt aus {fmt(latest, 0)}°",
            (("deg", fmt(turned, 0)), ("min", minutes), ("dir", fmt(latest, 0))),
        )
    ]
