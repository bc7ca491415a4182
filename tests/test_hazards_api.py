"""Drawing and lifting hazard areas over HTTP: who may, what is refused and why, and what
the picture and the Einsatztagebuch show afterwards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serving import Served, serve
from tests.test_api import client

POINT = {"type": "Point", "coordinates": [7.4400, 51.5250]}
SQUARE = {
    "type": "Polygon",
    "coordinates": [
        [[7.440, 51.525], [7.441, 51.525], [7.441, 51.526], [7.440, 51.526], [7.440, 51.525]]
    ],
}


@pytest.fixture
async def served(tmp_path: Path) -> Any:
    async with serve(tmp_path / "data") as s:
        yield s


async def test_a_commander_draws_and_lifts_a_hazard(served: Served) -> None:
    async with client(served) as c:
        r = await c.post("/api/v1/hazards", json={"label": "Brand Halle 3", "geometry": POINT})
        assert r.status_code == 201, r.text
        hazard_id = r.json()["id"]
        sit = (await c.get("/api/v1/situation")).json()
        kinds = {h["id"]: h["kind"] for h in sit["hazards"]}
        assert kinds == {hazard_id: "drawn", f"{hazard_id}:danger": "danger_area"}
        assert sit["journal"][-1]["text"] == "Gefahrenbereich festgelegt: Brand Halle 3"
        assert sit["journal"][-1]["author"] == "el"
        # a zone follows its source: it cannot be lifted on its own
        r = await c.delete(f"/api/v1/hazards/{hazard_id}:danger")
        assert r.status_code == 409 and r.json()["errors"][0]["field"] == "hazard_id"
        r = await c.delete(f"/api/v1/hazards/{hazard_id}")
        assert r.status_code == 201
        sit = (await c.get("/api/v1/situation")).json()
        assert sit["hazards"] == []
        assert sit["journal"][-1]["text"].startswith("Gefahrenbereich aufgehoben")
        r = await c.delete(f"/api/v1/hazards/{hazard_id}")
        assert r.status_code == 404


async def test_a_drawn_polygon_is_its_own_danger_area(served: Served) -> None:
    async with client(served) as c:
        r = await c.post("/api/v1/hazards", json={"geometry": SQUARE, "severity": "warning"})
        assert r.status_code == 201
        sit = (await c.get("/api/v1/situation")).json()
        danger = next(h for h in sit["hazards"] if h["kind"] == "danger_area")
        assert danger["geometry"]["type"] == "Polygon"
        assert sorted(map(tuple, danger["geometry"]["coordinates"][0][:-1])) == sorted(
            map(tuple, SQUARE["coordinates"][0][:-1])
        )


async def test_only_writers_draw_and_nobody_anonymously(served: Served) -> None:
    for user in ("viewer", "trainer"):
        async with client(served, user) as c:
            r = await c.post("/api/v1/hazards", json={"geometry": POINT})
            assert r.status_code == 403, (user, r.text)
    async with client(served, None) as c:
        r = await c.post("/api/v1/hazards", json={"geometry": POINT})
        assert r.status_code == 401
        r = await c.delete("/api/v1/hazards/anything")
        assert r.status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"geometry": {"type": "Point", "coordinates": [7.44, 95.0]}},
            "geometry.Point.coordinates",
        ),
        ({"geometry": {"type": "Line", "coordinates": [7.44, 51.5]}}, "geometry"),
        (
            {
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[7.44, 51.5], [7.45, 51.5], [7.44, 51.6]]],
                }
            },
            "geometry.Polygon.coordinates.0",
        ),
        (
            {
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[7.44, 51.5], [7.45, 51.5], [7.44, 51.6], [7.46, 51.6]]],
                }
            },
            "geometry.Polygon.coordinates",
        ),
        ({"geometry": POINT, "severity": "huge"}, "severity"),
        ({"geometry": POINT, "colour": "red"}, "colour"),
        ({}, "geometry"),
    ],
)
async def test_a_bad_hazard_is_refused_naming_the_field(
    served: Served, body: dict[str, Any], field: str
) -> None:
    async with client(served) as c:
        r = await c.post("/api/v1/hazards", json=body)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == field, r.json()
        health = (await c.get("/healthz")).json()
        assert health["feeds"]["ui"]["reject_reasons"]["invalid hazard"] >= 1
        assert (await c.get("/api/v1/situation")).json()["hazards"] == []


_json = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=30,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.dictionaries(st.sampled_from(["label", "severity", "geometry", "x"]), _json))
async def test_no_body_breaks_the_route(served: Served, body: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as c:
        await served.login(c, "el")
        # json.dumps writes NaN and Infinity as JavaScript would: not JSON, and refused.
        raw = json.dumps(body).encode()
        r = await c.post(
            "/api/v1/hazards", content=raw, headers={"Content-Type": "application/json"}
        )
        assert r.status_code in (201, 422), r.text
        if r.status_code == 422:
            assert r.json()["errors"][0]["field"]
        assert (await c.get("/healthz")).status_code == 200


async def test_a_page_of_another_site_cannot_write_with_the_users_cookie(served: Served) -> None:
    """Another port of the same host is the same site for SameSite cookies: the browser
    would send the session along. Its Origin and Sec-Fetch-Site give it away."""
    async with client(served) as c:
        evil = {"Origin": "http://127.0.0.1:9999"}
        r = await c.post("/api/v1/hazards", json={"geometry": POINT}, headers=evil)
        assert r.status_code == 403 and r.json()["errors"][0]["field"] == "origin"
        r = await c.post(
            "/api/v1/journal", json={"text": "x"}, headers={"Sec-Fetch-Site": "same-site"}
        )
        assert r.status_code == 403
        assert (await c.get("/api/v1/situation")).json()["hazards"] == []
        # the cockpit's own page: same origin
        own = {"Origin": served.url, "Sec-Fetch-Site": "same-origin"}
        r = await c.post("/api/v1/hazards", json={"geometry": POINT}, headers=own)
        assert r.status_code == 201
