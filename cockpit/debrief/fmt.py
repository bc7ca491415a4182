"""How the debrief writes times and numbers, in the reader's language and time zone."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, tzinfo

from cockpit.i18n import Lang

__all__ = ["Fmt"]


@dataclass(frozen=True, slots=True)
class Fmt:
    lang: Lang
    tz: tzinfo | None  # None: this machine's local time, with its summer time rules
    start: float  # the recording's first event: relative times count from here
    span_s: float = 0.0  # how long the recording is

    def at(self, t: float) -> datetime:
        return (
            datetime.fromtimestamp(t, self.tz)
            if self.tz
            else datetime.fromtimestamp(t).astimezone()
        )

    def clock(self, t: float) -> str:
        """10:01:05"""
        return self.at(t).strftime("%H:%M:%S")

    def short(self, t: float) -> str:
        """10:01 (axis ticks); with seconds when the whole is shorter than 10 minutes."""
        pattern = "%H:%M:%S" if self.span_s < 600 else "%H:%M"
        return self.at(t).strftime(pattern)

    def date_time(self, t: float) -> str:
        return self.at(t).strftime(
            "%d.%m.%Y %H:%M:%S" if self.lang == "de" else "%Y-%m-%d %H:%M:%S"
        )

    def zone(self) -> str:
        """The zone the times are in, e.g. `CET (UTC+01:00)`."""
        at = self.at(self.start)
        offset = at.strftime("%z")
        return f"{at.tzname()} (UTC{offset[:3]}:{offset[3:]})" if offset else str(at.tzname())

    @staticmethod
    def duration(seconds: float) -> str:
        """h:mm:ss"""
        s = max(0, math.floor(seconds))  # as the clock shows it: whole seconds passed
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"

    def since(self, t: float) -> str:
        """+0:20:05 since the start (− before it)."""
        d = t - self.start
        return ("+" if d >= 0 else "−") + self.duration(abs(d))

    def num(self, v: float) -> str:
        text = f"{v:.4g}" if abs(v) < 1e6 else f"{v:.0f}"
        if "e" in text:
            text = f"{v:.2f}"
        return text.replace(".", ",") if self.lang == "de" else text
