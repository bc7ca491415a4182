"""What every rule returns: the alerts it wants active now.

A rule never raises or clears an alert itself; the fold compares what the rules want
with what is active, and raises, escalates or clears (`cockpit.situation`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["AlertSeverity", "AlertWish", "fmt"]

AlertSeverity = Literal["warning", "critical"]


@dataclass(frozen=True, slots=True)
class AlertWish:
    """An alert a rule wants active for one subject (an entity or a feed).

    `rule` is `family` or `family.detail` (one alert per detail, e.g. per gas); `text` is
    German, `params` fill the UI's own translation of the family.
    """

    rule: str
    severity: AlertSeverity
    text: str
    params: tuple[tuple[str, str], ...] = ()

    @property
    def family(self) -> str:
        return self.rule.split(".", 1)[0]


def fmt(value: float, digits: int = 1) -> str:
    """A number the German way (decimal comma)."""
    return f"{value:.{digits}f}".replace(".", ",")
