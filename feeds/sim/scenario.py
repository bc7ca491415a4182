"""The demo incident: "Brand Lagerhalle Hafen", a warehouse fire in Dortmund's harbour.

Ten vehicles of the Berufsfeuerwehr Dortmund turn out from four fire stations in two
alarm waves, drive hand-written routes along real main streets (coordinates written
from memory: approximate, but on the right streets and on land), and keep moving a
little on scene: the ELW sets up the command post, the turntable ladder repositions,
an ambulance takes a patient to the Klinikum Nord and comes back, and the hazmat
measurement vehicle circles the Nordstadt downwind, measuring CO in the smoke plume.

`Scenario.messages_at(t_s, now)` is pure: sim time and wall-clock time are passed in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from feeds.sim.actors import Actor, Crew, GasMeter, Instrument, Station, Vehicle, WaterTank
from feeds.sim.geo import LatLon, offset
from feeds.sim.motion import Drive, Patrol, itinerary
from feeds.sim.plume import Plume

__all__ = [
    "FIRE",
    "STATIONS",
    "Incident",
    "Scenario",
    "format_observed_at",
    "harbour_fire",
]


@dataclass(frozen=True)
class Incident:
    name: str
    address: str
    location: LatLon
    wind_from_deg: float
    wind_speed_mps: float


def format_observed_at(now: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a Z: 2026-11-26T10:00:00.123Z."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Scenario:
    incident: Incident
    actors: tuple[Actor, ...]
    second_alarm_s: float

    @property
    def vehicles(self) -> tuple[Vehicle, ...]:
        return tuple(a for a in self.actors if isinstance(a, Vehicle))

    def messages_at(self, t_s: float, now: datetime) -> list[dict[str, Any]]:
        """Every actor's native telemetry at sim time t_s, stamped observed_at=now."""
        if not (math.isfinite(t_s) and t_s >= 0):
            raise ValueError(f"sim time must be finite and >= 0, got {t_s!r}")
        observed_at = format_observed_at(now)
        out: list[dict[str, Any]] = []
        for actor in self.actors:
            for body in actor.step(t_s):
                # Same key order as the documented format: observed_at after callsign.
                message: dict[str, Any] = {
                    k: body[k] for k in ("entity", "kind", "callsign") if k in body
                }
                message["observed_at"] = observed_at
                message.update((k, v) for k, v in body.items() if k not in message)
                out.append(message)
        return out


# --- the harbour fire ------------------------------------------------------------------

# The burning warehouse on Speicherstraße, on the quay of the harbour basin.
FIRE: LatLon = (51.5287, 7.4441)
WIND_FROM_DEG = 235.0  # south-westerly: the smoke drifts north-east over the Nordstadt
WIND_SPEED_MPS = 4.0
SECOND_ALARM_S = 30.0

STATIONS: dict[str, Station] = {
    s.name: s
    for s in (
        Station("FW 1", "Feuerwache 1 (Mitte), Steinstraße", (51.5196, 7.4542)),
        Station("FW 2", "Feuerwache 2, Eving", (51.5452, 7.4801)),
        Station("FW 3", "Feuerwache 3, Neuasseln", (51.5233, 7.5868)),
        Station("FW 9", "Feuerwache 9, Mengede", (51.5668, 7.3833)),
    )
}
KLINIKUM_NORD: LatLon = (51.5341, 7.4632)  # Klinikum Dortmund Nord, Münsterstraße

# Junctions shared by several routes.
MALL_BORN: LatLon = (51.5268, 7.4686)  # Mallinckrodtstraße / Bornstraße
MALL_MUENSTER: LatLon = (51.5252, 7.4604)  # Mallinckrodtstraße / Münsterstraße
MALL_SCHUETZEN: LatLon = (51.5262, 7.4493)  # Mallinckrodtstraße / Schützenstraße
MALL_SPEICHER: LatLon = (51.5267, 7.4452)  # Mallinckrodtstraße / Speicherstraße
SPEICHER_1: LatLon = (51.5276, 7.4444)  # Speicherstraße, heading north along the basin
SPEICHER_2: LatLon = (51.5286, 7.4434)

# Mallinckrodtstraße westwards from Bornstraße to the harbour, then into Speicherstraße.
MALLINCKRODT_WEST: tuple[LatLon, ...] = (
    MALL_BORN,
    (51.5262, 7.4645),
    MALL_MUENSTER,
    (51.5256, 7.4560),
    (51.5260, 7.4522),
    MALL_SCHUETZEN,
    (51.5264, 7.4470),
    MALL_SPEICHER,
    SPEICHER_1,
)
# From Mallinckrodtstraße / Schützenstraße only.
SCHUETZEN_TO_HAFEN = MALLINCKRODT_WEST[5:]
MUENSTER_TO_HAFEN = MALLINCKRODT_WEST[2:]

# FW 1 (Steinstraße, north of the Hauptbahnhof): west, then north on Schützenstraße.
ROUTE_FW1_SCHUETZEN: tuple[LatLon, ...] = (
    (51.5199, 7.4520),  # Steinstraße westwards
    (51.5203, 7.4500),
    (51.5222, 7.4497),  # Schützenstraße northwards
    (51.5243, 7.4495),
    *SCHUETZEN_TO_HAFEN,
)
# FW 1: east on Steinstraße, north on Münsterstraße, west on Mallinckrodtstraße.
ROUTE_FW1_MUENSTER: tuple[LatLon, ...] = (
    (51.5197, 7.4575),  # Steinstraße eastwards
    (51.5199, 7.4603),
    (51.5225, 7.4604),  # Münsterstraße northwards
    *MUENSTER_TO_HAFEN,
)
# FW 2 (Eving): south on Evinger Straße / Bornstraße (B 54), west on Mallinckrodtstraße.
ROUTE_FW2_BORNSTRASSE: tuple[LatLon, ...] = (
    (51.5447, 7.4762),
    (51.5410, 7.4738),  # Evinger Straße southwards
    (51.5370, 7.4716),
    (51.5330, 7.4700),  # becomes Bornstraße
    (51.5298, 7.4692),
    *MALLINCKRODT_WEST,
)
# FW 2: Evinger Straße, west on Burgweg, south through Lindenhorst and Schützenstraße.
ROUTE_FW2_BURGWEG: tuple[LatLon, ...] = (
    (51.5447, 7.4762),
    (51.5410, 7.4738),  # Evinger Straße
    (51.5402, 7.4680),  # Burgweg westwards
    (51.5395, 7.4610),
    (51.5384, 7.4550),
    (51.5370, 7.4505),
    (51.5335, 7.4497),  # southwards to Schützenstraße
    (51.5300, 7.4495),
    *SCHUETZEN_TO_HAFEN,
)
# FW 3 (Neuasseln): Asselner / Brackeler Hellweg, Kaiserstraße, Wall, Bornstraße.
ROUTE_FW3_HELLWEG: tuple[LatLon, ...] = (
    (51.5240, 7.5830),  # Asselner Hellweg westwards
    (51.5250, 7.5700),
    (51.5246, 7.5560),  # Brackel
    (51.5215, 7.5400),  # Brackeler Hellweg
    (51.5180, 7.5240),
    (51.5150, 7.5100),  # Körne, along the Westfaliendamm
    (51.5142, 7.4960),  # Kaiserstraße westwards
    (51.5138, 7.4820),
    (51.5135, 7.4735),  # Ostwall
    (51.5160, 7.4705),  # Burgwall
    (51.5180, 7.4690),
    (51.5210, 7.4686),  # Bornstraße northwards
    (51.5240, 7.4686),
    *MALLINCKRODT_WEST,
)
# FW 9 (Mengede): Emscherallee south-east, Huckarde, then east on Mallinckrodtstraße.
ROUTE_FW9_EMSCHERALLEE: tuple[LatLon, ...] = (
    (51.5655, 7.3862),
    (51.5610, 7.3925),  # Emscherallee
    (51.5560, 7.3985),
    (51.5505, 7.4040),
    (51.5450, 7.4085),  # Deusen
    (51.5400, 7.4120),
    (51.5360, 7.4160),  # Huckarde
    (51.5330, 7.4220),  # Huckarder Straße eastwards
    (51.5300, 7.4290),
    (51.5282, 7.4340),
    (51.5274, 7.4390),  # Mallinckrodtstraße eastwards
    (51.5269, 7.4430),
    MALL_SPEICHER,
    SPEICHER_1,
)
# Klinikum Nord from Speicherstraße: Mallinckrodtstraße east, Münsterstraße north.
ROUTE_TO_KLINIKUM: tuple[LatLon, ...] = (
    SPEICHER_1,
    MALL_SPEICHER,
    (51.5264, 7.4470),
    MALL_SCHUETZEN,
    (51.5260, 7.4522),
    (51.5256, 7.4560),
    MALL_MUENSTER,
    (51.5280, 7.4608),  # Münsterstraße northwards
    (51.5315, 7.4614),
    (51.5338, 7.4618),
    KLINIKUM_NORD,
)
# The measurement loop downwind: north on Schützenstraße, east, south, back west on
# Mallinckrodtstraße. The smoke axis crosses its northern half.
MEASUREMENT_LOOP: tuple[LatLon, ...] = (
    MALL_SCHUETZEN,
    (51.5290, 7.4495),
    (51.5330, 7.4497),
    (51.5333, 7.4530),
    (51.5335, 7.4560),
    (51.5300, 7.4560),
    (51.5256, 7.4560),
    (51.5260, 7.4522),
    MALL_SCHUETZEN,
)


def _slot(north_m: float, east_m: float) -> LatLon:
    """A parking place on scene, relative to the fire."""
    return offset(FIRE, north_m, east_m)


# Turnout: slow out of the station yard; approach: walking pace for the last stretch.
_GATE = {"start_m": 40.0, "start_mps": 4.0}
_APPROACH = {"end_m": 250.0, "end_mps": 5.5}


def _respond(wait_s: float, route: Sequence[LatLon], slot: LatLon, cruise_mps: float) -> Drive:
    """The alarm run with Sondersignal: station to its parking place on scene."""
    return Drive(wait_s, (*route, slot), cruise_mps, **_GATE, **_APPROACH)


def _shunt(wait_s: float, *via: LatLon) -> Drive:
    """A short manoeuvre on scene at walking pace."""
    return Drive(wait_s, via, 2.0)


def _vehicle(
    station: str,
    code: str,
    vehicle: str,
    *,
    wave: int,
    moves: Sequence[Drive | Patrol],
    crew: int,
    instruments: Sequence[Instrument] = (),
    number: int = 1,
) -> Vehicle:
    st = STATIONS[station]
    alarm_s = 0.0 if wave == 1 else SECOND_ALARM_S
    name = f"{st.name.removeprefix('FW ')}-{code}-{number}"
    return Vehicle(
        entity=f"fw-do-{name}".lower(),
        callsign=f"Florian Dortmund {name}",
        vehicle=vehicle,
        station=st,
        wave=wave,
        alarm_s=alarm_s,
        route=itinerary(st.position, moves, depart_s=alarm_s),
        instruments=(Crew(crew), *instruments),
    )


def harbour_fire() -> Scenario:
    """The demo scenario: "Brand Lagerhalle Hafen", Speicherstraße, Dortmund."""
    plume = Plume(FIRE, WIND_FROM_DEG, WIND_SPEED_MPS)
    rtw_slot = _slot(-110, 45)
    hospital_run = (*ROUTE_TO_KLINIKUM,)
    dlk_slot = _slot(-12, -18)
    gw_slot = _slot(-70, 35)

    vehicles = (
        # --- first alarm (t = 0) ---------------------------------------------------
        _vehicle(
            "FW 1",
            "ELW1",
            "ELW 1",
            wave=1,
            crew=3,
            moves=(
                _respond(15, ROUTE_FW1_MUENSTER, _slot(-95, -5), 15.0),
                # the command post ("Einsatzleitung") upwind, at the street corner
                _shunt(150, _slot(-120, -8), _slot(-140, 20)),
            ),
        ),
        _vehicle(
            "FW 1",
            "HLF20",
            "HLF 20",
            wave=1,
            crew=9,
            instruments=(WaterTank(2000, flow_lps=6.5, start_after_s=45, drain_s=180),),
            moves=(_respond(20, ROUTE_FW1_SCHUETZEN, _slot(-30, -8), 13.0),),
        ),
        _vehicle(
            "FW 1",
            "DLK23",
            "DLK 23-12",
            wave=1,
            crew=3,
            moves=(
                _respond(25, ROUTE_FW1_SCHUETZEN, dlk_slot, 12.0),
                # turntable ladder to the north end of the warehouse ...
                _shunt(200, _slot(8, -22), _slot(30, -12)),
                # ... and later round to the east side, where the roof has opened
                _shunt(600, _slot(40, 8), _slot(20, 28)),
            ),
        ),
        _vehicle(
            "FW 1",
            "RTW",
            "RTW",
            wave=1,
            crew=2,
            moves=(
                _respond(18, ROUTE_FW1_SCHUETZEN, rtw_slot, 14.0),
                # an injured worker to the Klinikum Nord (no Sondersignal), then back
                Drive(540, hospital_run, 11.0, end_m=60, end_mps=4.0),
                Drive(420, (*hospital_run[::-1], rtw_slot), 12.0, **_GATE, **_APPROACH),
            ),
        ),
        _vehicle(
            "FW 1",
            "NEF",
            "NEF",
            wave=1,
            crew=2,
            moves=(_respond(10, ROUTE_FW1_MUENSTER, _slot(-100, 60), 15.5),),
        ),
        _vehicle(
            "FW 2",
            "HLF20",
            "HLF 20",
            wave=1,
            crew=9,
            instruments=(WaterTank(2000, flow_lps=5.0, start_after_s=60, drain_s=150),),
            moves=(_respond(25, ROUTE_FW2_BORNSTRASSE, _slot(15, -25), 14.0),),
        ),
        # --- second alarm (t = 30 s) -----------------------------------------------
        _vehicle(
            "FW 9",
            "TLF4000",
            "TLF 4000",
            wave=2,
            crew=3,
            instruments=(WaterTank(4000, flow_lps=10.0, start_after_s=60, drain_s=240),),
            moves=(_respond(25, ROUTE_FW9_EMSCHERALLEE, _slot(-45, -40), 13.5),),
        ),
        _vehicle(
            "FW 9",
            "RTW",
            "RTW",
            wave=2,
            crew=2,
            moves=(_respond(15, ROUTE_FW9_EMSCHERALLEE, _slot(-125, 10), 15.0),),
        ),
        _vehicle(
            "FW 3",
            "RW",
            "RW",
            wave=2,
            crew=3,
            moves=(_respond(35, ROUTE_FW3_HELLWEG, _slot(-55, 20), 15.5),),
        ),
        _vehicle(
            "FW 2",
            "GW-Mess",
            "GW-Mess",
            wave=2,
            crew=3,
            instruments=(GasMeter(plume),),
            moves=(
                _respond(30, ROUTE_FW2_BURGWEG, gw_slot, 13.0),
                # report to the ELW, then measure downwind, round and round
                Drive(90, (SPEICHER_1, MALL_SPEICHER, (51.5264, 7.4470), MALL_SCHUETZEN), 8.0),
                Patrol(0, MEASUREMENT_LOOP, 7.0),
            ),
        ),
    )
    incident = Incident(
        name="Brand Lagerhalle Hafen",
        address="Speicherstraße, 44147 Dortmund (Hafen)",
        location=FIRE,
        wind_from_deg=WIND_FROM_DEG,
        wind_speed_mps=WIND_SPEED_MPS,
    )
    return Scenario(incident, vehicles, SECOND_ALARM_S)
