"""Things that report telemetry in a scenario: the `Actor` protocol and vehicles.

An actor is a pure function of sim time: `step(t_s)` gives its native telemetry
messages for that moment, without `observed_at` (the scenario stamps every message of a
tick with the one injected wall-clock time). Drones, robots and sensors join later as
further actors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from feeds.sim.geo import LatLon
from feeds.sim.motion import Itinerary, MotionState
from feeds.sim.plume import Plume

__all__ = [
    "Actor",
    "Crew",
    "GasMeter",
    "Instrument",
    "Reading",
    "Station",
    "Vehicle",
    "WaterTank",
]

Reading = dict[str, float | str]  # {"value": ..., "unit": ...}
_ENTITY = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@runtime_checkable
class Actor(Protocol):
    """Anything in the scenario that sends native telemetry."""

    @property
    def entity(self) -> str: ...

    def step(self, t_s: float) -> list[dict[str, Any]]:
        """Telemetry messages at sim time t_s (seconds since the alarm), minus observed_at."""
        ...


class Instrument(Protocol):
    """Something on board that contributes readings."""

    def read(self, t_s: float, state: MotionState, arrival_s: float) -> dict[str, Reading]: ...


@dataclass(frozen=True)
class Crew:
    persons: int

    def read(self, t_s: float, state: MotionState, arrival_s: float) -> dict[str, Reading]:
        return {"crew": {"value": self.persons, "unit": "persons"}}


@dataclass(frozen=True)
class WaterTank:
    """Full until `start_after_s` after arrival, then drains at flow_lps for drain_s
    (first attack from the tank) and holds (a hydrant line takes over)."""

    capacity_l: float
    flow_lps: float = 0.0
    start_after_s: float = 60.0
    drain_s: float = 0.0

    def read(self, t_s: float, state: MotionState, arrival_s: float) -> dict[str, Reading]:
        used = self.flow_lps * min(max(t_s - arrival_s - self.start_after_s, 0.0), self.drain_s)
        return {"water": {"value": round(max(self.capacity_l - used, 0.0)), "unit": "l"}}


@dataclass(frozen=True)
class GasMeter:
    plume: Plume

    def read(self, t_s: float, state: MotionState, arrival_s: float) -> dict[str, Reading]:
        return {"co": {"value": round(self.plume.co_ppm(state.position, t_s), 1), "unit": "ppm"}}


@dataclass(frozen=True)
class Station:
    name: str  # short, as in the messages' meta: "FW 1"
    label: str  # "Feuerwache 1 (Mitte), Steinstraße"
    position: LatLon


@dataclass(frozen=True)
class Vehicle:
    """A fire-brigade vehicle: where it is (its itinerary) and what it reports."""

    entity: str
    callsign: str
    vehicle: str  # the short type, e.g. "HLF 20"
    station: Station
    wave: int  # 1 = first alarm, 2 = second alarm ("Nachalarmierung")
    alarm_s: float
    route: Itinerary
    instruments: tuple[Instrument, ...] = ()
    organisation: str = "BF Dortmund"

    def __post_init__(self) -> None:
        if not _ENTITY.match(self.entity):
            raise ValueError(f"entity id must be lowercase [a-z0-9-]: {self.entity!r}")
        if len(self.callsign) > 64:
            raise ValueError(f"callsign too long: {self.callsign!r}")

    @property
    def arrival_s(self) -> float:
        return self.route.arrival_s

    def state_at(self, t_s: float) -> MotionState:
        return self.route.state_at(t_s)

    def step(self, t_s: float) -> list[dict[str, Any]]:
        state = self.state_at(t_s)
        message: dict[str, Any] = {
            "entity": self.entity,
            "kind": "unit",
            "callsign": self.callsign,
            "position": {
                "lat": round(state.position[0], 6),
                "lon": round(state.position[1], 6),
                "heading_deg": round(state.heading_deg, 1) % 360.0,
                "speed_mps": round(state.speed_mps, 2),
            },
        }
        readings: dict[str, Reading] = {}
        for instrument in self.instruments:
            readings.update(instrument.read(t_s, state, self.arrival_s))
        if readings:
            message["readings"] = readings
        message["meta"] = {
            "vehicle": self.vehicle,
            "organisation": self.organisation,
            "station": self.station.name,
        }
        return [message]
