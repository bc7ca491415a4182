"""Water gauges: a level above its warning mark, or rising too fast."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cockpit.rules.config import RuleConfig
from cockpit.rules.wish import AlertWish, fmt

__all__ = ["water"]


def _cm(reading: Mapping[str, Any]) -> float:
    value = float(reading["value"])
    return value * 100.0 if reading.get("unit") == "m" else value


def water(entity: Mapping[str, Any], cfg: RuleConfig) -> list[AlertWish]:
    readings = entity["readings"]
    wishes: list[AlertWish] = []
    level = readings.get("water_level")
    mark = cfg.water_marks_cm.get(entity["id"])
    if level is not None and mark is not None and _cm(level) > mark:
        over = _cm(level) - mark
        wishes.append(
            AlertWish(
                "water.level",
                "critical",
                f"Pegel {fmt(_cm(level), 0)} cm, {fmt(over, 0)} cm über Warnmarke",
                (("kind", "level"), ("level", fmt(_cm(level), 0)), ("over", fmt(over, 0))),
            )
        )
    rise = readings.get("water_rise")
    if rise is not None:
        rate = float(rise["value"]) * (100.0 if rise.get("unit") == "m/h" else 1.0)
        if rate > cfg.water_rise_cm_h:
            wishes.append(
                AlertWish(
                    "water.rise",
                    "warning",
                    f"Pegel steigt {fmt(rate)} cm/h",
                    (("kind", "rise"), ("rate", fmt(rate))),
                )
            )
    return wishes
