"""Where a person on the move is at time t: street-like random walks and errands (pure).

A `Track` is a chain of straight segments in time (standing still is a segment from a
point to itself). Walks are drawn lazily from a seeded random generator, block by block
along a street grid: mostly straight on at a corner, sometimes a turn, now and then a
stop (a shop, a chat), and always back towards the centre when the next block would
leave the district. The same seed gives the same walk, whatever times are asked for.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise

from feeds.sim.geo import LatLon, bearing_deg, destination, haversine_m
from feeds.sim.motion import MotionState

__all__ = ["GRID_DEG", "Segment", "Track", "errand", "street_walk"]

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
) -> Iterator[Segment]:
    """Block by block from `start`, for ever, staying within radius_m of `centre`."""
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
        direction = (direction + turn) % 4
        block = rng.uniform(*BLOCK_M)
        there = _step(here, direction, block)
        if haversine_m(there, centre) > radius_m:
            # Back into the district: the grid direction that brings us closest to it.
            direction = min(range(4), key=lambda d: haversine_m(_step(here, d, block), centre))
            there = _step(here, direction, block)
        heading = bearing_deg(here, there)
        yield Segment(t, t + block / speed_mps, here, there, heading)
        here, t = there, t + block / speed_mps


def errand(
    start: LatLon, goal: LatLon, t0: float, speed_mps: float, rng: random.Random
) -> list[Segment]:
    """Straight-ish from `start` to `goal` (one dog-leg, as streets make you); the last
    segment ends at the goal at the arrival time."""
    if not (speed_mps > 0 and math.isfinite(speed_mps)):
        raise ValueError(f"speed must be positive, got {speed_mps!r}")
    distance = haversine_m(start, goal)
    points = [start]
    if distance > 40.0:
        course = bearing_deg(start, goal)
        half = destination(start, course, distance / 2)
        side = rng.choice((-90.0, 90.0))
        points.append(destination(half, course + side, min(0.1 * distance, 80.0)))
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
