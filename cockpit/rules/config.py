"""The thresholds every rule reads, in one frozen record built from the settings.

Defaults follow German fire-service practice where there is one (named per field); the
settings (`rules` table) override any of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["GasLimit", "RuleConfig", "SectorStep"]


@dataclass(frozen=True, slots=True)
class GasLimit:
    label: str
    unit: str
    warning: float
    critical: float
    falling: bool = False  # oxygen: danger when the value drops


@dataclass(frozen=True, slots=True)
class SectorStep:
    """Below `below_mps` of wind the downwind sector opens `angle_deg` in all."""

    below_mps: float
    angle_deg: float


# Warning levels follow the Einsatztoleranzwerte (vfdb 10/01) where one exists, and the
# A1/A2 alarm levels of fire-service multi-gas meters otherwise (Ex: 10/20 % UEG; O2:
# 19/17 Vol-%).
_GAS_LIMITS: Mapping[str, GasLimit] = {
    "co": GasLimit("CO", "ppm", 33.0, 200.0),
    "h2s": GasLimit("H₂S", "ppm", 5.0, 10.0),
    "hcn": GasLimit("HCN", "ppm", 3.5, 10.0),
    "nh3": GasLimit("NH₃", "ppm", 54.0, 150.0),
    "cl2": GasLimit("Cl₂", "ppm", 0.5, 1.0),
    "ch4": GasLimit("CH₄", "% UEG", 10.0, 20.0),
    "lel": GasLimit("Ex", "% UEG", 10.0, 20.0),
    "o2": GasLimit("O₂", "Vol-%", 19.0, 17.0, falling=True),
}

# The sector widens as the wind weakens, in the steps of the MET model used for hazmat
# measurement teams; below 1 m/s there is no direction worth trusting: the whole circle.
_SECTOR_STEPS: tuple[SectorStep, ...] = (
    SectorStep(1.0, 360.0),
    SectorStep(3.0, 90.0),
    SectorStep(5.0, 60.0),
    SectorStep(float("inf"), 45.0),
)


@dataclass(frozen=True, slots=True)
class RuleConfig:
    gas: Mapping[str, GasLimit] = field(default_factory=lambda: dict(_GAS_LIMITS))
    battery_warning_pct: float = 25.0
    battery_critical_pct: float = 10.0
    # Entities of these kinds raise an alert when stale (units and sensors are many and
    # often park their trackers; robots and drones going silent is an emergency).
    stale_kinds: tuple[str, ...] = ("robot", "drone")
    # A feed that delivered before and has been silent this long raises an alert. Only
    # feeds that report continuously: CAP warnings and A.D.Le.R. detections are rare.
    feed_stale_s: Mapping[str, float] = field(
        default_factory=lambda: {
            "telemetry": 60.0,
            "mavlink": 30.0,
            "rosbridge": 30.0,
            "cot": 300.0,
            "ttn": 1800.0,
        }
    )
    wind_shift_deg: float = 45.0
    wind_shift_window_s: float = 600.0
    wind_calm_mps: float = 0.5  # below this a direction is noise, not a shift
    # Water gauges: warning mark per device (cm); a rise faster than this (cm/h).
    water_marks_cm: Mapping[str, float] = field(default_factory=dict)
    water_rise_cm_h: float = 10.0
    # FwDV 500: the Gefahrenbereich is at least 50 m around the source.
    danger_radius_m: float = 50.0
    sector_length_m: float = 1000.0
    sector_steps: tuple[SectorStep, ...] = _SECTOR_STEPS
    # Fire detections that, once confirmed, are hazard sources like a drawn hazard.
    fire_categories: tuple[str, ...] = ("fire", "hotspot", "smoke")
    # Who raises an alert on entering a hazard zone.
    zone_kinds: tuple[str, ...] = ("unit", "person")
    # First responders (A.D.Le.R.): how close counts as arrived, how old a position may be
    # for a responder to be offered, how many are offered per detection.
    responder_arrival_m: float = 30.0
    responder_position_max_age_s: float = 600.0
    responder_candidates: int = 5

    def sector_angle(self, wind_mps: float) -> float:
        for step in self.sector_steps:
            if wind_mps < step.below_mps:
                return step.angle_deg
        return self.sector_steps[-1].angle_deg if self.sector_steps else 45.0
