"""Where a person on the move is at time t: street-like random walks and errands (pure).

A `Track` is a chain of straight segments in time (standing still is a segment from a
point to itself). Walks are drawn lazily from a seeded random generator, block by block
along a street grid: mostly straight on at a corner, sometimes a turn, now and then a
stop (a shop, a chat), always back towards the centre when the next block would leave
the district, and never across water (`Water`: the base map's harbour basins). The
same seed gives the same walk, whatever times are asked for.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from feeds.sim.geo import LatLon, bearing_deg, destination, haversine_m
from feeds.sim.motion import MotionState

__all__ = ["GRID_DEG", "Segment", "Track", "Water", "errand", "street_walk"]

# The Nordstadt's streets run roughly north-south and east-west, a few degrees turned.
GRID_DEG = 8.0
BLOCK_M = (70.0, 160.0)


@dataclass(frozen=True)
class Segment:
    """From a (at t0) to b (at t1) in a straight line at constant speed."""

    t0: float
    t1: float
    a: LatLon
    b: LatLon
    heading_deg: float

    def at(self, t: float) -> MotionState:
        span = self.t1 - self.t0
        if span <= 0 or self.a == self.b:
            return MotionState(self.b if t >= self.t1 else self.a, self.heading_deg, 0.0)
        f = min(max((t - self.t0) / span, 0.0), 1.0)
        point = (self.a[0] + (self.b[0] - self.a[0]) * f, self.a[1] + (self.b[1] - self.a[1]) * f)
        speed = haversine_m(self.a, self.b) / span if f < 1.0 else 0.0
        return MotionState(point, self.heading_deg, speed)


class Track:
    """Segments drawn on demand from an endless (or finite) iterator, kept for look-up."""

    def __init__(self, segments: Iterator[Segment]) -> None:
        self._source = segments
        self._segments: list[Segment] = []
        self._starts: list[float] = []
        self._exhausted = False

    def _extend_to(self, t: float) -> None:
        while not self._exhausted and (not self._segments or self._segments[-1].t1 <= t):
            try:
                seg = next(self._source)
            except StopIteration:
                self._exhausted = True
                break
            self._segments.append(seg)
            self._starts.append(seg.t0)

    def at(self, t: float) -> MotionState:
        self._extend_to(t)
        if not self._segments:
            raise ValueError("a track needs at least one segment")
        i = max(bisect_right(self._starts, t) - 1, 0)
        return self._segments[i].at(t)


@dataclass(frozen=True)
class Water:
    """Polygons nobody walks or drives across (the harbour basins, the canal)."""

    polygons: tuple[tuple[LatLon, ...], ...] = ()

    @classmethod
    def from_geojson(cls, doc: dict[str, Any]) -> Water:
        """The outer rings of the features of class `water` ([lon, lat] pairs)."""
        rings = []
        for f in doc.get("features", []):
            geom = f.get("geometry") or {}
            if (f.get("properties") or {}).get("class") != "water":
                continue
            if geom.get("type") == "Polygon":
                ring = geom["coordinates"][0]
                rings.append(tuple((float(p[1]), float(p[0])) for p in ring))
        return cls(tuple(rings))

    def contains(self, p: LatLon) -> bool:
        return any(_inside(p, ring) for ring in self.polygons)

    def crosses(self, a: LatLon, b: LatLon) -> bool:
        """Whether the straight way from a to b gets wet (sampled every 5 m)."""
        if not self.polygons:
            return False
        n = max(1, math.ceil(haversine_m(a, b) / 5.0))
        return any(
            self.contains((a[0] + (b[0] - a[0]) * i / n, a[1] + (b[1] - a[1]) * i / n))
            for i in range(n + 1)
        )


def _inside(p: LatLon, ring: tuple[LatLon, ...]) -> bool:
    """Ray casting in the lat/lon plane (fine over a few kilometres)."""
    y, x = p
    inside = False
    for (y1, x1), (y2, x2) in pairwise((*ring, ring[0])):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def _step(here: LatLon, direction: int, block_m: float) -> LatLon:
    return destination(here, (GRID_DEG + 90.0 * direction) % 360.0, block_m)


def street_walk(
    start: LatLon,
    t0: float,
    speed_mps: float,
    rng: random.Random,
    *,
    centre: LatLon,
    radius_m: float,
    pause_p: float = 0.15,
    water: Water = Water(),
) -> Iterator[Segment]:
    """Block by block from `start`, for ever, staying within radius_m of `centre` and
    out of the water."""
    if not (speed_mps > 0 and math.isfinite(speed_mps)):
        raise ValueError(f"speed must be positive, got {speed_mps!r}")
    here, t = start, t0
    direction = rng.randrange(4)  # 0 = along the grid northwards, then clockwise
    while True:
        if rng.random() < pause_p:
            dwell = rng.uniform(20.0, 120.0)
            heading = (GRID_DEG + 90.0 * direction) % 360.0
            yield Segment(t, t + dwell, here, here, heading)
            t += dwell
        turn = rng.choices((0, 1, 3, 2), weights=(55, 20, 20, 5))[0]
        block = rng.uniform(*BLOCK_M)
        wanted = (direction + turn) % 4
        if haversine_m(_step(here, wanted, block), centre) > radius_m:
            # Back into the district: the grid directions that bring us closest first.
            order = sorted(range(4), key=lambda d: haversine_m(_step(here, d, block), centre))
        else:  # as wanted, else straight on, right, left, back
            order = [wanted, *((direction + k) % 4 for k in (0, 1, 3, 2))]
        dry = [d for d in order if not water.crosses(here, _step(here, d, block))]
        if not dry:  # a quay corner with short blocks all round: wait, then try again
            yield Segment(t, t + 10.0, here, here, (GRID_DEG + 90.0 * direction) % 360.0)
            t += 10.0
            continue
        direction = dry[0]
        there = _step(here, direction, block)
        heading = bearing_deg(here, there)
        yield Segment(t, t + block / speed_mps, here, there, heading)
        here, t = there, t + block / speed_mps


def errand(
    start: LatLon,
    goal: LatLon,
    t0: float,
    speed_mps: float,
    rng: random.Random,
    water: Water = Water(),
) -> list[Segment]:
    """Straight-ish from `start` to `goal` (one dog-leg, as streets make you, on the dry
    side where there is one); the last segment ends at the goal at the arrival time."""
    if not (speed_mps > 0 and math.isfinite(speed_mps)):
        raise ValueError(f"speed must be positive, got {speed_mps!r}")
    distance = haversine_m(start, goal)
    points = [start]
    if distance > 40.0:
        course = bearing_deg(start, goal)
        half = destination(start, course, distance / 2)
        first = rng.choice((-90.0, 90.0))
        lateral = min(0.1 * distance, 80.0)
        bends = [destination(half, course + side, lateral) for side in (first, -first)]
        dry = [b for b in bends if not (water.crosses(start, b) or water.crosses(b, goal))]
        points.append((dry or bends)[0])
    points.append(goal)
    out: list[Segment] = []
    t = t0
    for a, b in pairwise(points):
        leg = haversine_m(a, b)
        if leg > 0:
            out.append(Segment(t, t + leg / speed_mps, a, b, bearing_deg(a, b)))
            t += leg / speed_mps
    if not out:  # already there
        out.append(Segment(t0, t0, goal, goal, 0.0))
    return out
