"""Threshold rules over one entity's latest readings and status.

Pure functions: given an entity's state they say which alerts should be active now.
The fold raises, escalates and clears alerts from what they return.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["GAS_LIMITS", "AlertWish", "GasLimit", "battery_low", "gas_threshold", "wishes"]

AlertSeverity = Literal["warning", "critical"]


@dataclass(frozen=True, slots=True)
class AlertWish:
    """An alert a rule wants active for an entity (severity and German text)."""

    rule: str
    severity: AlertSeverity
    text: str
    params: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class GasLimit:
    label: str
    unit: str
    warning: float
    critical: float
    falling: bool = False  # oxygen: danger when the value drops


# Warning levels follow the Einsatztoleranzwerte (vfdb 10/01) where one exists, and the
# usual A1/A2 alarm levels of fire-service multi-gas meters otherwise.
GAS_LIMITS: Mapping[str, GasLimit] = {
    "co": GasLimit("CO", "ppm", 33.0, 200.0),
    "h2s": GasLimit("H₂S", "ppm", 5.0, 10.0),
    "hcn": GasLimit("HCN", "ppm", 3.5, 10.0),
    "nh3": GasLimit("NH₃", "ppm", 54.0, 150.0),
    "cl2": GasLimit("Cl₂", "ppm", 0.5, 1.0),
    "lel": GasLimit("Ex (UEG)", "%", 10.0, 20.0),
    "o2": GasLimit("O₂", "Vol-%", 19.0, 17.0, falling=True),
}


def _fmt(value: float) -> str:
    return f"{value:.1f}".replace(".", ",")


def gas_threshold(readings: Mapping[str, Mapping[str, Any]]) -> list[AlertWish]:
    wishes: list[AlertWish] = []
    for name, limit in GAS_LIMITS.items():
        reading = readings.get(name)
        if reading is None:
            continue
        value = float(reading["value"])
        if limit.falling:
            severity: AlertSeverity | None = (
                "critical"
                if value <= limit.critical
                else "warning"
                if value <= limit.warning
                else None
            )
        else:
            severity = (
                "critical"
                if value >= limit.critical
                else "warning"
                if value >= limit.warning
                else None
            )
        if severity is not None:
            wishes.append(
                AlertWish(
                    rule=f"gas_threshold.{name}",
                    severity=severity,
                    text=f"{limit.label} {_fmt(value)} {limit.unit}",
                    params=(("gas", limit.label), ("value", _fmt(value)), ("unit", limit.unit)),
                )
            )
    return wishes


def battery_low(battery_pct: float | None) -> list[AlertWish]:
    if battery_pct is None or battery_pct >= 25.0:
        return []
    severity: AlertSeverity = "critical" if battery_pct < 10.0 else "warning"
    return [
        AlertWish(
            rule="battery_low",
            severity=severity,
            text=f"Akku {_fmt(battery_pct)} %",
            params=(("value", _fmt(battery_pct)),),
        )
    ]


def wishes(entity: Mapping[str, Any]) -> list[AlertWish]:
    """Every alert the threshold rules want active for this entity."""
    status = entity.get("status") or {}
    battery = status.get("battery_pct")
    if battery is None:
        reading = entity["readings"].get("battery")
        battery = None if reading is None else float(reading["value"])
    return gas_threshold(entity["readings"]) + battery_low(battery)
