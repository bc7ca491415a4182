"""Hazard zones: the danger circle and downwind sector of each hazard source, and who
stands inside a zone.

A source is a hazard drawn by a user or a confirmed fire detection. Its sector points
downwind from the wind at the nearest weather station and opens wider as the wind
weakens (`RuleConfig.sector_steps`); it turns whenever that wind turns.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from cockpit.geo import LatLon, distance_m, downwind_sector, to_geojson_polygon
from cockpit.rules.config import RuleConfig
from cockpit.rules.wish import AlertSeverity, AlertWish

__all__ = [
    "Prepared",
    "Source",
    "Wind",
    "ZoneTest",
    "bbox",
    "contains",
    "contains_prepared",
    "mps",
    "nearest_wind",
    "prepare",
    "sources",
    "wishes_in_zones",
    "zone_tests",
    "zone_wishes",
    "zones_for",
]

Source = dict[str, Any]  # id, lat, lon, label, severity, polygon (drawn polygon or None)
Wind = dict[str, Any]  # station, callsign, dir_deg, speed_mps, observed_at, stale


def _centroid(ring: Sequence[Sequence[float]]) -> tuple[float, float]:
    """Mean of a GeoJSON ring's distinct vertices as (lat, lon): enough for a source
    point of a hand-drawn area a few hundred metres across."""
    points = list(ring[:-1]) if len(ring) > 1 and ring[0] == ring[-1] else list(ring)
    return (
        sum(p[1] for p in points) / len(points),
        sum(p[0] for p in points) / len(points),
    )


def _drawn_source(h: Mapping[str, Any]) -> Source | None:
    g = h.get("geometry") or {}
    try:
        if g.get("type") == "Point":
            lon, lat = float(g["coordinates"][0]), float(g["coordinates"][1])
            polygon = None
        elif g.get("type") == "Polygon":
            lat, lon = _centroid(g["coordinates"][0])
            polygon = g
        else:
            return None
    except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError):
        return None  # a geometry the map can draw but no source point follows from
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return None
    return {
        "id": h["id"],
        "lat": lat,
        "lon": lon,
        "label": h.get("label") or "",
        "severity": h.get("severity", "warning"),
        "polygon": polygon,
    }


def sources(
    hazards: Mapping[str, Mapping[str, Any]],
    detections: Mapping[str, Mapping[str, Any]],
    cfg: RuleConfig,
) -> list[Source]:
    """Every hazard source: drawn hazards, then confirmed fire detections with a place."""
    out = [
        s
        for h in hazards.values()
        if h.get("kind") == "drawn" and (s := _drawn_source(h)) is not None
    ]
    for d in detections.values():
        if (
            d.get("state") in ("confirmed", "dispatched", "on_scene")
            and d.get("category") in cfg.fire_categories
            and d.get("lat") is not None
            and d.get("lon") is not None
        ):
            out.append(
                {
                    "id": d["id"],
                    "lat": float(d["lat"]),
                    "lon": float(d["lon"]),
                    "label": d.get("summary") or d["category"],
                    "severity": "critical",
                    "polygon": None,
                }
            )
    return out


def nearest_wind(
    entities: Iterable[Mapping[str, Any]],
    lat: float,
    lon: float,
    now: float,
    stale_after_s: float,
) -> Wind | None:
    """The wind at the nearest station that reports one: a fresh station wins over a
    nearer stale one; with none fresh, the nearest stale one, marked stale."""
    best: tuple[bool, float, Mapping[str, Any]] | None = None
    for e in entities:
        readings = e["readings"]
        if "wind_dir" not in readings or "wind_speed" not in readings or e["lat"] is None:
            continue
        speed = readings["wind_speed"]
        if mps(float(speed["value"]), str(speed.get("unit") or "")) is None:
            continue
        observed = min(readings["wind_dir"]["observed_at"], readings["wind_speed"]["observed_at"])
        stale = now - observed > stale_after_s
        rank = (stale, distance_m((lat, lon), (e["lat"], e["lon"])), e)
        if best is None or rank[:2] < best[:2]:
            best = rank
    if best is None:
        return None
    stale, distance, e = best
    readings = e["readings"]
    return {
        "station": e["id"],
        "callsign": e.get("callsign"),
        "distance_m": round(distance),
        "dir_deg": float(readings["wind_dir"]["value"]),
        "speed_mps": mps(
            float(readings["wind_speed"]["value"]), str(readings["wind_speed"].get("unit") or "")
        ),
        "observed_at": min(
            readings["wind_dir"]["observed_at"], readings["wind_speed"]["observed_at"]
        ),
        "stale": stale,
    }


# Wind speed units a station may report in, as factors to m/s.
_TO_MPS = {"": 1.0, "m/s": 1.0, "km/h": 1 / 3.6, "kmh": 1 / 3.6, "kn": 0.514444, "kt": 0.514444}


def mps(value: float, unit: str) -> float | None:
    """A wind speed in m/s, or None for a unit nobody here knows."""
    factor = _TO_MPS.get(unit.replace(" ", "").lower())
    return None if factor is None else abs(value) * factor


def bbox(geometry: Mapping[str, Any]) -> tuple[float, float, float, float]:
    """(min lat, min lon, max lat, max lon) of a Polygon's outer ring."""
    ring = geometry["coordinates"][0]
    lats = [p[1] for p in ring]
    lons = [p[0] for p in ring]
    return (min(lats), min(lons), max(lats), max(lons))


@lru_cache(maxsize=1024, typed=True)
def _ring(
    lat: float, lon: float, wind_from_deg: float, length_m: float, half_angle_deg: float
) -> tuple[LatLon, ...]:
    """`downwind_sector`, remembered: zones are redrawn whenever any station reports or
    time passes, but a source and its wind rarely move; a circle is 181 geodesic points.
    A pure function of its arguments, so the zones are the same as drawn afresh."""
    return tuple(downwind_sector(lat, lon, wind_from_deg, length_m, half_angle_deg))


def _circle(lat: float, lon: float, radius_m: float) -> dict[str, Any]:
    return to_geojson_polygon(_ring(lat, lon, 0.0, radius_m, 180.0))


def zones_for(source: Source, wind: Wind | None, cfg: RuleConfig) -> list[dict[str, Any]]:
    """The danger area and (with a wind) the downwind sector of one source."""
    src = source["id"]
    label = source["label"]
    danger = source["polygon"] or _circle(source["lat"], source["lon"], cfg.danger_radius_m)
    zones: list[dict[str, Any]] = [
        {
            "id": f"{src}:danger",
            "kind": "danger_area",
            "source": src,
            "label": label,
            "severity": "critical",
            "geometry": danger,
            "radius_m": None if source["polygon"] else cfg.danger_radius_m,
        }
    ]
    if wind is not None:
        angle = cfg.sector_angle(wind["speed_mps"])
        ring = _ring(
            source["lat"], source["lon"], wind["dir_deg"], cfg.sector_length_m, angle / 2.0
        )
        zones.append(
            {
                "id": f"{src}:sector",
                "kind": "downwind_sector",
                "source": src,
                "label": label,
                "severity": "warning",
                "geometry": to_geojson_polygon(ring),
                "angle_deg": angle,
                "length_m": cfg.sector_length_m,
                "wind": dict(wind),
            }
        )
    return zones


def contains(geometry: Mapping[str, Any], lat: float, lon: float) -> bool:
    """Point in the Polygon's outer ring (even-odd rule on lon/lat: fine at the size of
    an incident, away from the poles and the antimeridian)."""
    ring = geometry["coordinates"][0]
    inside = False
    j = len(ring) - 1
    for i in range(len(ring)):
        xi, yi = ring[i][0], ring[i][1]
        xj, yj = ring[j][0], ring[j][1]
        if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


# A Polygon's outer ring prepared for many point tests: its distinct vertex latitudes,
# sorted, and per band between two of them the edges that cross it, as (yi, xi, dx, dy).
Prepared = tuple[tuple[float, ...], tuple[tuple[tuple[float, float, float, float], ...], ...]]


def prepare(geometry: Mapping[str, Any]) -> Prepared:
    """The ring of `geometry` cut into latitude bands for `contains_prepared`.

    Within the band [ys[k], ys[k+1]) the edges `contains` would count are always the same
    (an edge counts for lat when it runs from at or below lat to above it), so a test
    looks at those edges only: two for a convex zone instead of all 181 of a danger circle.
    Remembered by the ring's coordinates: a seek restores the same zones again and again.
    """
    ring = geometry["coordinates"][0]
    key = tuple(map(tuple, ring))
    done = _PREPARED.get(key)
    if done is None:
        done = _prepare(ring)
        if len(_PREPARED) >= 512:
            _PREPARED.pop(next(iter(_PREPARED)))  # the oldest
        _PREPARED[key] = done
    return done


_PREPARED: dict[tuple[tuple[float, ...], ...], Prepared] = {}


def _prepare(ring: Sequence[Sequence[float]]) -> Prepared:
    ys = sorted({float(p[1]) for p in ring})
    bands: list[list[tuple[float, float, float, float]]] = [[] for _ in range(len(ys) - 1)]
    j = len(ring) - 1
    for i in range(len(ring)):
        xi, yi = ring[i][0], ring[i][1]
        xj, yj = ring[j][0], ring[j][1]
        j = i
        lo, hi = (yi, yj) if yi < yj else (yj, yi)
        if lo == hi:
            continue  # horizontal: never counted
        # the same differences `contains` computes, so the same crossing to the last bit
        edge = (yi, xi, xj - xi, yj - yi)
        for k in range(bisect_right(ys, lo) - 1, bisect_right(ys, hi) - 1):
            bands[k].append(edge)
    return tuple(ys), tuple(tuple(b) for b in bands)


def contains_prepared(prepared: Prepared, lat: float, lon: float) -> bool:
    """`contains` on a prepared ring: the same answer for every point, bit for bit."""
    ys, bands = prepared
    k = bisect_right(ys, lat) - 1
    if k < 0 or k >= len(bands):
        return False  # below or above the ring: no edge crosses
    inside = False
    for yi, xi, dx, dy in bands[k]:
        if lon < dx * (lat - yi) / dy + xi:
            inside = not inside
    return inside


_ZONE_TEXT = {
    "danger_area": "Im Gefahrenbereich",
    "downwind_sector": "Im Windsektor",
    "drawn": "Im Gefahrenbereich",
}


# A zone ready for point tests: its bounding box (min lat, min lon, max lat, max lon),
# its prepared ring and the zone.
ZoneTest = tuple[float, float, float, float, Prepared, Mapping[str, Any]]


def zone_tests(zones: Iterable[Mapping[str, Any]]) -> list[ZoneTest]:
    """The zones that have a bounding box (`bbox`), as flat tuples: the fold tests every
    unit's position against every zone, so the test reads no dicts."""
    out: list[ZoneTest] = []
    for z in zones:
        box = z.get("bbox")
        if box is None:
            continue  # not indexed: never matched
        prepared = z.get("prepared") or prepare(z["geometry"])
        out.append((box[0], box[1], box[2], box[3], prepared, z))
    return out


def zone_wishes(
    entity: Mapping[str, Any], zones: Iterable[Mapping[str, Any]], cfg: RuleConfig
) -> list[AlertWish]:
    """One alert per zone the entity stands in (kinds in `cfg.zone_kinds` only)."""
    return wishes_in_zones(entity, zone_tests(zones), cfg)


def wishes_in_zones(
    entity: Mapping[str, Any], tests: Iterable[ZoneTest], cfg: RuleConfig
) -> list[AlertWish]:
    """`zone_wishes` over zones made ready by `zone_tests`."""
    if entity["kind"] not in cfg.zone_kinds or entity["lat"] is None:
        return []
    lat, lon = entity["lat"], entity["lon"]
    wishes: list[AlertWish] = []
    for lat0, lon0, lat1, lon1, prepared, z in tests:
        if not (lat0 <= lat <= lat1 and lon0 <= lon <= lon1):
            continue
        if not contains_prepared(prepared, lat, lon):
            continue
        where = _ZONE_TEXT.get(z["kind"], _ZONE_TEXT["drawn"])
        label = z.get("label") or ""
        severity: AlertSeverity = "warning" if z["kind"] == "downwind_sector" else "critical"
        wishes.append(
            AlertWish(
                f"in_zone.{z['id']}",
                severity,
                f"{where}{': ' + label if label else ''}",
                (("zone", z["kind"]), ("label", label)),
            )
        )
    return wishes
