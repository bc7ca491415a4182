"""The key readings of a recording as plot series, read in one streaming pass.

Every `readings`, `weather` and `status` event is read once, in seq order, straight from
the log (never folded); each value falls into one of a fixed number of time buckets per
series, which keeps its lowest and its highest value with their times. The plot draws
those: a peak or a dip survives the downsampling, and memory is bounded by series ×
buckets whatever the length of the recording.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from cockpit.recorder import read_only
from cockpit.rules.config import RuleConfig

__all__ = ["BUCKETS", "CATEGORIES", "MAX_SERIES", "Series", "category_of", "read_series"]

BUCKETS = 240
# The order the plots are shown in; at most this many series of each (the rest counted).
CATEGORIES: tuple[str, ...] = ("gas", "water", "temperature", "wind", "battery")
MAX_SERIES: Mapping[str, int] = {
    "gas": 40,
    "water": 10,
    "temperature": 10,
    "wind": 9,
    "battery": 16,
}
_WIND = ("wind_speed", "gust", "wind_dir")
_NAMED = {"temperature": "temperature", "water_level": "water", "battery": "battery"}
# Weather events name their values in the payload: (payload key, reading, unit).
_WEATHER = (
    ("wind_speed_mps", "wind_speed", "m/s"),
    ("gust_mps", "gust", "m/s"),
    ("wind_dir_deg", "wind_dir", "°"),
    ("temperature_c", "temperature", "°C"),
)


def category_of(name: str, cfg: RuleConfig) -> str | None:
    """Which plot family a reading belongs to, or None (not a key reading)."""
    if name in cfg.gas:
        return "gas"
    if name in _WIND:
        return "wind"
    return _NAMED.get(name)


@dataclass
class Series:
    entity: str
    name: str
    category: str
    unit: str = ""
    callsign: str | None = None
    count: int = 0
    # bucket -> [t of min, min, t of max, max]
    buckets: dict[int, list[float]] = field(default_factory=dict)

    def add(self, bucket: int, t: float, value: float) -> None:
        self.count += 1
        b = self.buckets.get(bucket)
        if b is None:
            self.buckets[bucket] = [t, value, t, value]
            return
        if value < b[1]:
            b[0], b[1] = t, value
        if value > b[3]:
            b[2], b[3] = t, value

    def points(self) -> list[tuple[float, float]]:
        """(t, value) in time order: each bucket's lowest and highest value."""
        out: list[tuple[float, float]] = []
        # Within a bucket the two extremes keep their own order in time.
        for i in sorted(self.buckets):
            t0, v0, t1, v1 = self.buckets[i]
            if (t0, v0) == (t1, v1):
                out.append((t0, v0))
            elif t0 <= t1:
                out.extend(((t0, v0), (t1, v1)))
            else:
                out.extend(((t1, v1), (t0, v0)))
        return out

    def extremes(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """((t, min), (t, max)) over the whole recording."""
        lo = min(self.buckets.values(), key=lambda b: b[1])
        hi = max(self.buckets.values(), key=lambda b: b[3])
        return (lo[0], lo[1]), (hi[2], hi[3])


@dataclass
class SeriesSet:
    series: dict[tuple[str, str], Series] = field(default_factory=dict)
    # Series not kept because their family had enough, by family.
    dropped: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    rows: int = 0  # events read

    def ordered(self) -> list[Series]:
        rank = {c: i for i, c in enumerate(CATEGORIES)}
        return sorted(self.series.values(), key=lambda s: (rank[s.category], s.entity, s.name))


class _Reading(msgspec.Struct):
    value: float
    unit: str | None = None


class _Payload(msgspec.Struct):
    """Only what the plots read; everything else in a body is skipped while decoding."""

    entity: str | None = None
    entity_kind: str | None = None
    station: str | None = None
    callsign: str | None = None
    values: dict[str, _Reading] = {}
    battery_pct: float | None = None
    wind_speed_mps: float | None = None
    gust_mps: float | None = None
    wind_dir_deg: float | None = None
    temperature_c: float | None = None


class _Body(msgspec.Struct):
    payload: _Payload


_decode = msgspec.json.Decoder(_Body).decode


def _values(kind: str, p: _Payload) -> tuple[str | None, list[tuple[str, float, str]]]:
    """(entity, [(reading, value, unit)]) of one event's payload."""
    if p.entity_kind == "person":
        return p.entity, []  # a person's phone (a responder's battery) is not for a debrief
    if kind == "readings":
        return p.entity, [(n, r.value, r.unit or "") for n, r in p.values.items()]
    if kind == "weather":
        return p.station, [
            (name, float(v), unit)
            for key, name, unit in _WEATHER
            if (v := getattr(p, key)) is not None
        ]
    battery = p.battery_pct  # status
    return p.entity, ([] if battery is None else [("battery", float(battery), "%")])


def read_series(
    path: Path, cfg: RuleConfig, first: float, last: float, buckets: int = BUCKETS
) -> SeriesSet:
    """Every key reading of the recording at `path`, bucketed over [first, last]."""
    out = SeriesSet()
    width = (last - first) / buckets if last > first else 1.0
    kept = {c: 0 for c in CATEGORIES}
    with read_only(path) as conn:
        cursor = conn.execute(
            "SELECT kind, received_at, observed_at, body FROM events "
            "WHERE kind IN ('readings', 'weather', 'status') ORDER BY seq"
        )
        for kind, received, observed, body in cursor:
            out.rows += 1
            payload = _decode(body).payload
            entity, values = _values(kind, payload)
            if not entity:
                continue
            # As the fold sees it: a value cannot be observed after it arrived.
            t = min(float(observed), float(received))
            bucket = min(buckets - 1, max(0, int((t - first) / width)))
            for name, value, unit in values:
                key = (entity, name)
                s = out.series.get(key)
                if s is None:
                    category = category_of(name, cfg)
                    if category is None:
                        continue
                    if kept[category] >= MAX_SERIES[category]:
                        out.dropped.setdefault(category, set()).add(key)
                        continue
                    kept[category] += 1
                    s = out.series[key] = Series(entity, name, category)
                s.unit = unit or s.unit
                if payload.callsign:
                    s.callsign = payload.callsign
                s.add(bucket, t, value)
    return out
