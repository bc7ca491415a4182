"""The fold's shortcuts (issue 7: a seek folds thousands of events) give the same answers
as the plain code they stand in for: bit for bit, on any input hypothesis finds."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cockpit.geo import downwind_sector, to_geojson_polygon
from cockpit.rules import zones

FIRE = (51.5270, 7.4445)

_lat = st.floats(51.50, 51.56, allow_nan=False)
_lon = st.floats(7.40, 7.48, allow_nan=False)


def _polygon(points: list[tuple[float, float]]) -> dict[str, Any]:
    """A closed GeoJSON ring as drawn: any order, crossing itself or not."""
    coords = [[lon, lat] for lat, lon in points]
    return {"type": "Polygon", "coordinates": [[*coords, list(coords[0])]]}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    points=st.lists(st.tuples(_lat, _lon), min_size=3, max_size=12),
    probes=st.lists(st.tuples(_lat, _lon), min_size=1, max_size=20),
)
def test_a_prepared_ring_answers_like_the_ring(
    points: list[tuple[float, float]], probes: list[tuple[float, float]]
) -> None:
    geometry = _polygon(points)
    prepared = zones.prepare(geometry)
    # the probes, and the hard cases: every vertex, every vertex's latitude, edge midpoints
    ring = geometry["coordinates"][0]
    hard = [(p[1], p[0]) for p in ring]
    hard += [(p[1], q[0]) for p in ring for q in ring[:3]]
    hard += [((p[1] + q[1]) / 2, (p[0] + q[0]) / 2) for p, q in itertools.pairwise(ring)]
    for lat, lon in [*probes, *hard]:
        assert zones.contains_prepared(prepared, lat, lon) == zones.contains(geometry, lat, lon)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    wind_from=st.floats(0, 359.99),
    half_angle=st.floats(5, 180),
    probes=st.lists(st.tuples(st.floats(0, 359.99), st.floats(0, 2500)), max_size=30),
)
@example(wind_from=270.0, half_angle=180.0, probes=[(0.0, 500.0), (90.0, 500.0)])
def test_a_prepared_zone_answers_like_the_zone(
    wind_from: float, half_angle: float, probes: list[tuple[float, float]]
) -> None:
    """The zones the fold makes: danger circles (181 vertices) and downwind sectors."""
    from cockpit.geo import destination

    geometry = to_geojson_polygon(downwind_sector(*FIRE, wind_from, 2000.0, half_angle))
    prepared = zones.prepare(geometry)
    for bearing, metres in probes:
        lat, lon = destination(*FIRE, bearing, metres)
        assert zones.contains_prepared(prepared, lat, lon) == zones.contains(geometry, lat, lon)
    for lon, lat in geometry["coordinates"][0]:  # on the rim itself
        assert zones.contains_prepared(prepared, lat, lon) == zones.contains(geometry, lat, lon)
