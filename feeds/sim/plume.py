"""A crude smoke plume: carbon monoxide downwind of the fire (pure, deterministic).

Not dispersion science, just enough for a plausible demo: a Gaussian-ish plume that
widens with distance, thins as 1/x^1.2, ramps up as the fire develops, and flickers a
little. Upwind of the fire only the background level is measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from feeds.sim.geo import LatLon, bearing_deg, haversine_m

__all__ = ["Plume"]


@dataclass(frozen=True)
class Plume:
    source: LatLon
    wind_from_deg: float  # meteorological: where the wind comes from
    wind_speed_mps: float = 4.0
    strength: float = 1000.0  # ppm·m/s at 100 m on the axis, fully developed
    background_ppm: float = 0.4
    develop_s: float = 900.0  # fire grows from half to full strength over this time
    max_ppm: float = 500.0

    @property
    def downwind_deg(self) -> float:
        return (self.wind_from_deg + 180.0) % 360.0

    def intensity(self, t_s: float) -> float:
        """0.5 at the alarm, rising linearly to 1 after develop_s."""
        return 0.5 + 0.5 * min(max(t_s, 0.0) / self.develop_s, 1.0)

    def co_ppm(self, at: LatLon, t_s: float) -> float:
        """CO concentration at `at`, sim time t_s, in ppm."""
        d = haversine_m(self.source, at)
        theta = math.radians(bearing_deg(self.source, at) - self.downwind_deg)
        x, y = d * math.cos(theta), d * math.sin(theta)  # along / across the wind
        if x <= 5.0:
            return self.background_ppm
        sigma_y = 0.2 * math.pow(x, 0.9) + 8.0
        axis = self.strength / (self.wind_speed_mps * math.pow(x / 100.0, 1.2))
        flicker = 1.0 + 0.15 * math.sin(t_s / 7.0 + d / 40.0)
        c = axis * self.intensity(t_s) * flicker * math.exp(-(y * y) / (2 * sigma_y * sigma_y))
        return min(self.background_ppm + c, self.max_ppm)
