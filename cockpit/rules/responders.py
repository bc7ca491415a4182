"""Which first responders to offer for a detection: the nearest available ones, with an
estimate of when they could be there.

The estimate is deliberately simple and says so: straight-line distance times a detour
factor for streets, at a typical urban speed for the way the responder travels, plus the
time to set off. A.D.Le.R. and comparable first-responder apps rank by the same
straight-line distance; what matters to the commander is the order and the rough minutes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cockpit.geo import distance_m
from cockpit.rules.config import RuleConfig

__all__ = ["DETOUR", "SET_OFF_S", "SPEED_MPS", "busy_of", "candidates", "eta_s"]

# Streets are not straight lines: ~1.3 in German towns (network studies put it at 1.2-1.4).
DETOUR = 1.3
# Urban door-to-door speeds: brisk walk, city cycling, a car in town with lights.
SPEED_MPS: Mapping[str, float] = {"foot": 1.5, "bike": 4.5, "car": 8.0}
SET_OFF_S = 60.0  # shoes on, down the stairs, to the bike or car

OPEN_STATES = frozenset({"new", "confirmed", "dispatched", "on_scene"})
OFFER_STATES = frozenset({"new", "confirmed", "dispatched"})
# A responder with one of these calls to an open detection is not offered elsewhere.
ENGAGED = frozenset({"alerted", "accepted", "arrived"})


def eta_s(distance: float, travel: str) -> float:
    return SET_OFF_S + distance * DETOUR / SPEED_MPS.get(travel, SPEED_MPS["car"])


def busy_of(detections: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """responder id -> the open detection it is engaged with."""
    busy: dict[str, str] = {}
    for det in detections:
        if det["state"] not in OPEN_STATES:
            continue
        for rid, call in (det.get("calls") or {}).items():
            if call["state"] in ENGAGED:
                busy.setdefault(rid, det["id"])
    return busy


def candidates(
    det: Mapping[str, Any],
    responders: Mapping[str, Mapping[str, Any]],
    entities: Mapping[str, Mapping[str, Any]],
    busy: Mapping[str, str],
    t: float,
    cfg: RuleConfig,
) -> list[dict[str, Any]]:
    """The nearest available, free responders with a position no older than the limit,
    nearest first (distance rounded to 10 m and ETA to 10 s: a list that changes with
    every step a responder takes would only flicker)."""
    if det["state"] not in OFFER_STATES or det.get("lat") is None or det.get("lon") is None:
        return []
    here = (det["lat"], det["lon"])
    out: list[tuple[float, str, dict[str, Any]]] = []
    for rid, r in responders.items():
        if not r["available"] or rid in busy:
            continue
        ent = entities.get(rid)
        if ent is None or ent["lat"] is None or ent["observed_at"] is None:
            continue
        if t - ent["observed_at"] > cfg.responder_position_max_age_s:
            continue
        d = distance_m(here, (ent["lat"], ent["lon"]))
        out.append(
            (
                d,
                rid,
                {
                    "responder": rid,
                    "callsign": r["callsign"],
                    "qualifications": list(r["qualifications"]),
                    "travel": r["travel"],
                    "distance_m": int(round(d, -1)),
                    "eta_s": int(round(eta_s(d, r["travel"]), -1)),
                    "position_at": ent["observed_at"],
                },
            )
        )
    out.sort(key=lambda x: (x[0], x[1]))
    return [c for _, _, c in out[: cfg.responder_candidates]]
