"""Where a vehicle is at sim time t: speed profiles, legs and itineraries (pure).

An itinerary starts parked somewhere and is a chain of moves: each `Drive` follows a
polyline from where the previous move ended, after waiting `wait_s`; a final `Patrol`
circles a closed path for ever. Everything is computed from t alone, so the same t
always gives the same position, live or replayed, in any order.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field

from feeds.sim.geo import LatLon, Polyline, haversine_m

__all__ = [
    "Drive",
    "Itinerary",
    "Leg",
    "MotionState",
    "Patrol",
    "SpeedProfile",
    "itinerary",
]

# A move must start where the previous one ended (metres): routes are hand-written,
# a bigger gap is a typo and would make the vehicle jump.
_MAX_GAP_M = 1.0


@dataclass(frozen=True)
class MotionState:
    position: LatLon
    heading_deg: float
    speed_mps: float


@dataclass(frozen=True)
class SpeedProfile:
    """Constant speed per stretch of a path: (from_m, to_m, speed_mps), contiguous."""

    stretches: tuple[tuple[float, float, float], ...]
    start_times_s: tuple[float, ...]  # time offset at which each stretch is entered
    duration_s: float

    @classmethod
    def build(
        cls,
        length_m: float,
        cruise_mps: float,
        *,
        start_m: float = 0.0,
        start_mps: float = 0.0,
        end_m: float = 0.0,
        end_mps: float = 0.0,
    ) -> SpeedProfile:
        """Slow out of the gate (start_m at start_mps), cruise, slow into the scene."""
        for v in (cruise_mps, start_mps or 1.0, end_mps or 1.0):
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(f"speeds must be positive and finite, got {v!r}")
        a = min(start_m, length_m / 2) if start_mps else 0.0
        b = min(end_m, length_m - a) if end_mps else 0.0
        raw = [
            (0.0, a, start_mps),
            (a, length_m - b, cruise_mps),
            (length_m - b, length_m, end_mps),
        ]
        stretches = tuple(s for s in raw if s[1] - s[0] > 1e-9)
        times, t = [], 0.0
        for s0, s1, v in stretches:
            times.append(t)
            t += (s1 - s0) / v
        return cls(stretches, tuple(times), t)

    def at(self, dt_s: float) -> tuple[float, float]:
        """(distance travelled, current speed) dt_s after the start; 0 speed once done."""
        if dt_s >= self.duration_s:
            return self.stretches[-1][1], 0.0
        i = max(bisect_right(self.start_times_s, dt_s) - 1, 0)
        s0, _s1, v = self.stretches[i]
        return s0 + v * (dt_s - self.start_times_s[i]), v


@dataclass(frozen=True)
class Leg:
    """One stretch of movement along a path, starting at depart_s (sim seconds)."""

    depart_s: float
    path: Polyline
    profile: SpeedProfile
    loop: bool = False  # circle the (closed) path for ever

    @property
    def end_s(self) -> float:
        return math.inf if self.loop else self.depart_s + self.profile.duration_s

    def state_at(self, t_s: float) -> MotionState:
        dt = t_s - self.depart_s
        if self.loop:
            v = self.profile.stretches[0][2]
            point, heading = self.path.at((v * dt) % self.path.length_m)
            return MotionState(point, heading, v)
        s, v = self.profile.at(dt)
        point, heading = self.path.at(s)
        return MotionState(point, heading, v)


@dataclass(frozen=True)
class Drive:
    """Wait wait_s after the previous move ends (or after t=0), then drive `via`.

    `via` lists the waypoints after the current position; the last one is the goal.
    """

    wait_s: float
    via: Sequence[LatLon]
    cruise_mps: float
    start_m: float = 0.0
    start_mps: float = 0.0
    end_m: float = 0.0
    end_mps: float = 0.0


@dataclass(frozen=True)
class Patrol:
    """Wait wait_s, then circle `circuit` (first point = current position) for ever."""

    wait_s: float
    circuit: Sequence[LatLon]
    speed_mps: float


@dataclass(frozen=True)
class Itinerary:
    """Parked at `start` (facing start_heading_deg) until the first leg departs."""

    start: LatLon
    start_heading_deg: float
    legs: tuple[Leg, ...]
    _departs: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_departs", tuple(leg.depart_s for leg in self.legs))

    @property
    def arrival_s(self) -> float:
        """When the first leg (the approach) ends."""
        return self.legs[0].end_s if self.legs else 0.0

    @property
    def end_s(self) -> float:
        """When the last leg ends (inf if it is a patrol; 0 if never moving)."""
        return self.legs[-1].end_s if self.legs else 0.0

    def state_at(self, t_s: float) -> MotionState:
        i = bisect_right(self._departs, t_s) - 1
        if i < 0:
            return MotionState(self.start, self.start_heading_deg, 0.0)
        return self.legs[i].state_at(t_s)


def itinerary(start: LatLon, moves: Sequence[Drive | Patrol], *, depart_s: float) -> Itinerary:
    """Chain moves from `start`; the first departs at depart_s + its wait_s."""
    legs: list[Leg] = []
    here, t = start, depart_s
    for move in moves:
        if move.wait_s < 0:
            raise ValueError("wait_s must be >= 0")
        if legs and legs[-1].loop:
            raise ValueError("nothing can follow a patrol")
        t += move.wait_s
        if isinstance(move, Drive):
            path = Polyline.of([here, *move.via])
            profile = SpeedProfile.build(
                path.length_m,
                move.cruise_mps,
                start_m=move.start_m,
                start_mps=move.start_mps,
                end_m=move.end_m,
                end_mps=move.end_mps,
            )
            leg = Leg(t, path, profile)
        else:
            path = Polyline.of(move.circuit)
            for p in (path.start, path.end):
                if haversine_m(p, here) > _MAX_GAP_M:
                    raise ValueError(f"patrol must start and end at {here}, not {p}")
            leg = Leg(t, path, SpeedProfile.build(path.length_m, move.speed_mps), loop=True)
        legs.append(leg)
        here, t = path.end, leg.end_s
    heading = legs[0].path.heading_at_start() if legs else 0.0
    return Itinerary(start, heading, tuple(legs))
