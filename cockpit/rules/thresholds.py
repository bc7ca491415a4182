"""Threshold rules over one entity's latest readings and status: gases and battery."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cockpit.rules.config import GasLimit, RuleConfig
from cockpit.rules.wish import AlertSeverity, AlertWish, fmt

__all__ = ["battery_low", "gas_threshold"]


def _gas_severity(limit: GasLimit, value: float) -> AlertSeverity | None:
    if limit.falling:
        if value <= limit.critical:
            return "critical"
        return "warning" if value <= limit.warning else None
    if value >= limit.critical:
        return "critical"
    return "warning" if value >= limit.warning else None


# Spellings of the units the limits are given in; compared without spaces and case.
_UNITS: Mapping[str, frozenset[str]] = {
    "ppm": frozenset({"ppm"}),
    "%ueg": frozenset({"%ueg", "%lel", "ueg%", "lel%"}),
    "vol-%": frozenset({"vol-%", "vol%", "%vol", "%v/v", "%"}),
}


def _unit_ok(limit: GasLimit, unit: str) -> bool:
    """Whether a reading in `unit` can be compared with `limit` (no unit: assumed)."""
    key = (limit.unit, unit)
    ok = _UNIT_OK.get(key)
    if ok is None:
        given = unit.replace(" ", "").lower()
        wanted = limit.unit.replace(" ", "").lower()
        ok = not given or given == wanted or given in _UNITS.get(wanted, frozenset())
        if len(_UNIT_OK) >= 1024:  # units come from the feeds: keep this small
            _UNIT_OK.clear()
        _UNIT_OK[key] = ok
    return ok


# (limit's unit, reading's unit) -> comparable: every reading asks, few pairs exist.
_UNIT_OK: dict[tuple[str, str], bool] = {}


def gas_threshold(entity: Mapping[str, Any], cfg: RuleConfig) -> list[AlertWish]:
    """One alert per gas over its limit (under it, for oxygen). A reading in a unit the
    limit is not given in is not compared (50 ppm of methane is not 50 % UEG): it is an
    alert of its own, so that nobody trusts a gas nobody evaluates."""
    readings = entity["readings"]
    wishes: list[AlertWish] = []
    for name, limit in cfg.gas.items():
        reading = readings.get(name)
        if reading is None:
            continue
        unit = str(reading.get("unit") or "")
        if not _unit_ok(limit, unit):
            wishes.append(
                AlertWish(
                    rule=f"gas_threshold.{name}",
                    severity="warning",
                    text=f"{limit.label}: Einheit {unit} nicht auswertbar (erwartet {limit.unit})",
                    params=(
                        ("gas", limit.label),
                        ("unit", unit),
                        ("expected", limit.unit),
                        ("kind", "unit"),
                    ),
                )
            )
            continue
        value = float(reading["value"])
        severity = _gas_severity(limit, value)
        if severity is not None:
            wishes.append(
                AlertWish(
                    rule=f"gas_threshold.{name}",
                    severity=severity,
                    text=f"{limit.label} {fmt(value)} {limit.unit}",
                    params=(("gas", limit.label), ("value", fmt(value)), ("unit", limit.unit)),
                )
            )
    return wishes


def battery_low(entity: Mapping[str, Any], cfg: RuleConfig) -> list[AlertWish]:
    """The battery as the status reports it, else as a `battery` reading."""
    battery = (entity.get("status") or {}).get("battery_pct")
    if battery is None:
        reading = entity["readings"].get("battery")
        battery = None if reading is None else float(reading["value"])
    if battery is None or battery >= cfg.battery_warning_pct:
        return []
    severity: AlertSeverity = "critical" if battery < cfg.battery_critical_pct else "warning"
    return [
        AlertWish(
            rule="battery_low",
            severity=severity,
            text=f"Akku {fmt(battery)} %",
            params=(("value", fmt(battery)),),
        )
    ]
