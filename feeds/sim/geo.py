"""Small spherical geometry for the simulator: distances, bearings, polylines.

Pure functions on (lat, lon) pairs in degrees (WGS84, spherical earth). Accurate to well
under a metre over the few kilometres of an incident, which is all the simulator needs.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

__all__ = [
    "EARTH_RADIUS_M",
    "LatLon",
    "Polyline",
    "angle_diff_deg",
    "bearing_deg",
    "destination",
    "haversine_m",
    "interpolate",
    "offset",
]

EARTH_RADIUS_M = 6_371_008.8  # mean earth radius (IUGG)

LatLon = tuple[float, float]


def _normalise_deg(deg: float) -> float:
    """An angle in [0, 360) (guards the float edge where `x % 360` gives 360.0)."""
    deg = deg % 360.0
    return 0.0 if deg >= 360.0 else deg


def haversine_m(a: LatLon, b: LatLon) -> float:
    """Great-circle distance between two points, in metres."""
    lat1, lon1 = math.radians(a[0]), math.radians(a[1])
    lat2, lon2 = math.radians(b[0]), math.radians(b[1])
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def bearing_deg(a: LatLon, b: LatLon) -> float:
    """Initial bearing from a to b, clockwise from true north, in [0, 360)."""
    lat1, lat2 = math.radians(a[0]), math.radians(b[0])
    dlon = math.radians(b[1] - a[1])
    x = math.sin(dlon) * math.cos(lat2)
    y = math.cos(lat1) * math.sin(lat2) - math.sin(lat1) * math.cos(lat2) * math.cos(dlon)
    return _normalise_deg(math.degrees(math.atan2(x, y)))


def destination(a: LatLon, bearing: float, distance_m: float) -> LatLon:
    """The point reached from a after distance_m along the great circle at `bearing`."""
    lat1, lon1 = math.radians(a[0]), math.radians(a[1])
    brg = math.radians(bearing)
    d = distance_m / EARTH_RADIUS_M
    lat2 = math.asin(math.sin(lat1) * math.cos(d) + math.cos(lat1) * math.sin(d) * math.cos(brg))
    lon2 = lon1 + math.atan2(
        math.sin(brg) * math.sin(d) * math.cos(lat1),
        math.cos(d) - math.sin(lat1) * math.sin(lat2),
    )
    return (math.degrees(lat2), (math.degrees(lon2) + 540.0) % 360.0 - 180.0)


def offset(a: LatLon, north_m: float, east_m: float) -> LatLon:
    """The point north_m north and east_m east of a (metres; negative is south/west)."""
    if north_m == 0 and east_m == 0:
        return a
    return destination(a, math.degrees(math.atan2(east_m, north_m)), math.hypot(north_m, east_m))


def angle_diff_deg(a: float, b: float) -> float:
    """The smaller angle between two bearings, in [0, 180]."""
    d = abs(a - b) % 360.0
    return 360.0 - d if d > 180.0 else d


def interpolate(path: Sequence[LatLon], distance_m: float) -> tuple[LatLon, float]:
    """Point and heading at distance_m along path (clamped to its ends)."""
    return Polyline.of(path).at(distance_m)


@dataclass(frozen=True)
class Polyline:
    """A path of at least two distinct points with its cumulative lengths cached."""

    points: tuple[LatLon, ...]
    cumulative_m: tuple[float, ...]

    @classmethod
    def of(cls, points: Sequence[LatLon]) -> Polyline:
        """Build from points; consecutive duplicates (closer than 1 cm) are dropped."""
        kept: list[LatLon] = []
        for p in points:
            lat, lon = float(p[0]), float(p[1])
            if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
                raise ValueError(f"not a coordinate: {p!r}")
            if not kept or haversine_m(kept[-1], (lat, lon)) >= 0.01:
                kept.append((lat, lon))
        if len(kept) < 2:
            raise ValueError("a polyline needs at least two distinct points")
        cumulative = [0.0]
        for a, b in pairwise(kept):
            cumulative.append(cumulative[-1] + haversine_m(a, b))
        return cls(tuple(kept), tuple(cumulative))

    @property
    def length_m(self) -> float:
        return self.cumulative_m[-1]

    @property
    def start(self) -> LatLon:
        return self.points[0]

    @property
    def end(self) -> LatLon:
        return self.points[-1]

    def heading_at_start(self) -> float:
        return bearing_deg(self.points[0], self.points[1])

    def heading_at_end(self) -> float:
        return bearing_deg(self.points[-2], self.points[-1])

    def reversed(self) -> Polyline:
        return Polyline.of(self.points[::-1])

    def at(self, distance_m: float) -> tuple[LatLon, float]:
        """Point and heading (bearing of the segment being travelled) at distance_m.

        At a vertex the heading is that of the segment leaving it; at the far end that of
        the last segment. Distances outside [0, length] are clamped.
        """
        s = min(max(distance_m, 0.0), self.length_m)
        i = min(bisect_right(self.cumulative_m, s) - 1, len(self.points) - 2)
        a, b = self.points[i], self.points[i + 1]
        seg = self.cumulative_m[i + 1] - self.cumulative_m[i]
        f = (s - self.cumulative_m[i]) / seg
        point = (a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f)
        return point, bearing_deg(a, b)
