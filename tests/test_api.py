"""The HTTP/WS contract of DESIGN.md against the real app under uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets

from cockpit.api.pages import PAGES
from tests.serving import Served, serve

# Two minutes ago: in the past (a future time would be capped at arrival) and stale.
OBS_DT = (datetime.now(UTC) - timedelta(minutes=2)).replace(microsecond=0)
OBS = OBS_DT.strftime("%Y-%m-%dT%H:%M:%SZ")


def msg(entity: str = "robot-1", **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "entity": entity,
        "kind": "robot",
        "callsign": "Robo 1",
        "observed_at": OBS,
        "position": {
            "lat": 51.5139,
            "lon": 7.4653,
            "alt_m": 95.0,
            "heading_deg": 90,
            "speed_mps": 1.2,
        },
        "readings": {"co": {"value": 12.0, "unit": "ppm"}, "battery": {"value": 80, "unit": "%"}},
    }
    base.update(over)
    return base


@pytest.fixture
async def served(tmp_path: Path) -> Any:
    async with serve(tmp_path / "data") as s:
        yield s


@contextlib.asynccontextmanager
async def client(s: Served, user: str | None = "el") -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=s.url, timeout=10) as c:
        if user:
            await s.login(c, user)
        yield c


async def test_healthz_is_anonymous_and_reports_feeds(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as c:
        r = await c.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["incident"] == "test-incident"
    assert body["pipeline"]["recording"] is True
    assert set(body["event_loop"]) >= {"last_ms", "max_10s_ms", "max_1min_ms", "max_ms"}
    telemetry = body["feeds"]["telemetry"]
    assert telemetry["state"] == "listening" and telemetry["last_message_at"] is None


async def test_healthz_shows_a_feeds_last_message_time_and_counts(served: Served) -> None:
    async with client(served) as c:
        r = await c.post("/api/v1/ingest/telemetry", json=msg(), headers=served.device())
        assert r.status_code == 202
        r = await c.post("/api/v1/ingest/telemetry", json={"entity": ""}, headers=served.device())
        assert r.status_code == 422
        feed = (await c.get("/healthz")).json()["feeds"]["telemetry"]
    assert feed["accepted"] == 2 and feed["rejected"] == 1  # a position and a readings event
    last = datetime.fromisoformat(feed["last_message_at"])
    assert abs((datetime.now(UTC) - last).total_seconds()) < 60


def _all_routes(routes: list[Any]) -> list[Any]:
    """Flatten included routers (FastAPI wraps them)."""
    out: list[Any] = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        out.extend(_all_routes(inner.routes) if inner is not None else [route])
    return out


async def test_every_route_but_healthz_and_login_needs_credentials(served: Served) -> None:
    open_paths = {"/healthz", "/login"}
    checked = 0
    async with httpx.AsyncClient(base_url=served.url) as c:
        for route in _all_routes(served.app.routes):
            path = getattr(route, "path", "")
            methods = getattr(route, "methods", None)
            if path in open_paths or not methods:
                continue
            url = path.replace("{alert_id}", "x").replace("{name}", "swagger-ui.css")
            for method in methods - {"HEAD", "OPTIONS"}:
                if (method, path) == ("POST", "/api/v1/session"):
                    continue  # that is the log-in
                r = await c.request(method, url, content=b"{}")
                if path in PAGES:  # a page sends a person to the log-in and back
                    assert r.status_code == 303, (method, path, r.status_code)
                    assert r.headers["location"] == f"/login?next={path}"
                else:
                    assert r.status_code == 401, (method, path, r.status_code)
                    assert r.json()["errors"][0]["field"] in {"session", "authorization"}
                checked += 1
    assert checked >= 10
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(served.ws_url + "/ws/ingest/telemetry"):
            pass


async def test_ingest_single_and_batch_then_read_situation_and_log(served: Served) -> None:
    async with client(served) as c:
        r = await c.post("/api/v1/ingest/telemetry", json=msg(), headers=served.device())
        assert r.status_code == 202, r.text
        assert r.json()["seq"] == [1, 2]  # position + readings
        batch = [msg(f"robot-{i}") for i in range(2, 6)]
        r = await c.post("/api/v1/ingest/telemetry", json=batch, headers=served.device())
        assert r.status_code == 202 and len(r.json()["seq"]) == 8
        sit = (await c.get("/api/v1/situation")).json()
        ids = [e["id"] for e in sit["entities"]]
        assert ids == ["robot-1", "robot-2", "robot-3", "robot-4", "robot-5"]
        robot = sit["entities"][0]
        assert robot["callsign"] == "Robo 1" and robot["lat"] == 51.5139
        assert robot["readings"]["co"] == {
            "value": 12.0,
            "unit": "ppm",
            "observed_at": OBS_DT.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
            "age_s": robot["readings"]["co"]["age_s"],
            "stale": True,
        }
        assert robot["stale"] is True  # two minutes without a report from a robot
        log = (await c.get("/api/v1/events", params={"since": 4})).json()
        assert [e["seq"] for e in log["events"]] == list(range(5, 11)) and log["next"] == 10


async def test_device_token_is_limited_to_its_feeds(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as c:
        r = await c.post("/api/v1/ingest/telemetry", json=msg(), headers=served.device("weather"))
        assert r.status_code == 403 and "telemetry" in r.json()["errors"][0]["reason"]
        r = await c.post(
            "/api/v1/ingest/telemetry", json=msg(), headers={"Authorization": "Bearer cdt_nope"}
        )
        assert r.status_code == 401
        # A person's session is no device token either.
        await served.login(c)
        r = await c.post("/api/v1/ingest/telemetry", json=msg())
        assert r.status_code == 401


async def test_viewer_and_trainer_cannot_write_commander_can(served: Served) -> None:
    for user in ("viewer", "trainer"):
        async with client(served, user) as c:
            r = await c.post("/api/v1/journal", json={"text": "Lage unklar"})
            assert r.status_code == 403 and r.json()["errors"][0]["field"] == "role"
    async with client(served, "el") as c:
        r = await c.post("/api/v1/journal", json={"text": "Erkundung läuft"})
        assert r.status_code == 201
        journal = (await c.get("/api/v1/situation")).json()["journal"]
        assert journal[-1]["text"] == "Erkundung läuft" and journal[-1]["author"] == "el"


BAD_BODIES: list[tuple[bytes, str, int]] = [
    (b"{not json", "", 422),
    (orjson.dumps(msg(position={"lat": 91, "lon": 7.4})), "position.lat", 422),
    (orjson.dumps(msg(position={"lat": 51, "lon": -181})), "position.lon", 422),
    (
        orjson.dumps(msg(position={"lat": 51, "lon": 7, "heading_deg": 361})),
        "position.heading_deg",
        422,
    ),
    (orjson.dumps(msg(position={"lat": "north", "lon": 7})), "position.lat", 422),
    (orjson.dumps(msg(kind="submarine")), "kind", 422),
    (orjson.dumps(msg(colour="red")), "colour", 422),
    (orjson.dumps(msg(observed_at="2026-11-26T10:00:00")), "observed_at", 422),
    (orjson.dumps(msg("robot-1\n")), "entity", 422),  # looks like robot-1, is not
    (orjson.dumps(msg(readings={"co": {"value": "12"}})), "readings.*.value", 422),
    (orjson.dumps(msg("robot-1")).replace(b"robot-1", b"robot-\xff"), "body", 422),
    (orjson.dumps([]), "body", 422),
    (orjson.dumps([msg()] * 1001), "body", 413),
    (b"[" + b" " * (1 << 20) + b"]", "body", 413),
]


@pytest.mark.parametrize(("body", "field", "status"), BAD_BODIES)
async def test_bad_input_is_named_counted_and_not_applied(
    served: Served, body: bytes, field: str, status: int
) -> None:
    async with client(served) as c:
        before = (await c.get("/healthz")).json()
        r = await c.post(
            "/api/v1/ingest/telemetry",
            content=body,
            headers={**served.device(), "Content-Type": "application/json"},
        )
        assert r.status_code == status, r.text
        err = r.json()
        assert err["errors"], err
        if field:
            assert any(e["field"].startswith(field) for e in err["errors"]), err
        assert all(e["reason"] for e in err["errors"])
        after = (await c.get("/healthz")).json()
        rej = lambda h: h["feeds"].get("telemetry", {}).get("rejected", 0)  # noqa: E731
        assert rej(after) == rej(before) + 1
        assert (await c.get("/api/v1/situation")).json()["entities"] == []
        # ... and the server keeps serving.
        r = await c.post("/api/v1/ingest/telemetry", json=msg(), headers=served.device())
        assert r.status_code == 202


async def test_batch_with_one_bad_message_applies_nothing(served: Served) -> None:
    batch = [msg("robot-1"), msg("robot-2", position={"lat": 100, "lon": 7})]
    async with client(served) as c:
        r = await c.post("/api/v1/ingest/telemetry", json=batch, headers=served.device())
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "1.position.lat"
        assert (await c.get("/api/v1/situation")).json()["entities"] == []


async def test_websocket_ingest_acknowledges_in_order_and_names_errors(served: Served) -> None:
    async with websockets.connect(
        served.ws_url + "/ws/ingest/telemetry", additional_headers=served.device()
    ) as ws:
        await ws.send(orjson.dumps(msg("robot-1")))
        await ws.send(orjson.dumps(msg("robot-2", position={"lat": 1, "lon": 200})))
        await ws.send(orjson.dumps([msg("robot-3"), msg("robot-4")]))
        await ws.send(orjson.dumps(msg("robot-5")).replace(b"robot-5", b"robot-\xff"))
        await ws.send(orjson.dumps(msg("robot-6")))
        replies = [orjson.loads(await ws.recv()) for _ in range(5)]
    assert replies[0] == {"seq": [1, 2]}
    assert replies[1]["errors"][0]["field"] == "position.lon"
    assert replies[2] == {"seq": [3, 4, 5, 6]}
    assert "UTF-8" in replies[3]["errors"][0]["reason"]  # and the connection lives on
    assert replies[4] == {"seq": [7, 8]}


async def test_acknowledging_an_alert_is_journalled_once(served: Served) -> None:
    async with client(served) as c:
        hot = msg(readings={"co": {"value": 60.0, "unit": "ppm"}})
        await c.post("/api/v1/ingest/telemetry", json=hot, headers=served.device())
        alert = (await c.get("/api/v1/situation")).json()["alerts"][0]
        assert alert["rule"] == "gas_threshold" and alert["severity"] == "warning"
        r = await c.post(f"/api/v1/alerts/{alert['id']}/ack")
        assert r.status_code == 201
        r = await c.post(f"/api/v1/alerts/{alert['id']}/ack")
        assert r.status_code == 409
        r = await c.post("/api/v1/alerts/nope/ack")
        assert r.status_code == 404
        sit = (await c.get("/api/v1/situation")).json()
        assert sit["alerts"][0]["acknowledged_by"] == "el"
        assert [j["category"] for j in sit["journal"]] == ["alert", "ack"]


async def test_stream_sends_snapshot_then_deltas_without_gap(served: Served) -> None:
    async with client(served) as c:
        await c.post("/api/v1/ingest/telemetry", json=msg("robot-1"), headers=served.device())
        async with c.stream("GET", "/api/v1/stream") as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            lines = r.aiter_lines()
            events: list[tuple[str, Any]] = []
            kind = ""
            posted = False
            async for line in lines:
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    events.append((kind, orjson.loads(line[6:])))
                    if not posted:
                        posted = True
                        await c.post(
                            "/api/v1/ingest/telemetry", json=msg("robot-2"), headers=served.device()
                        )
                    else:
                        break
    (k0, snap), (k1, delta) = events
    assert (
        k0 == "snapshot" and snap["seq"] == 2 and [e["id"] for e in snap["entities"]] == ["robot-1"]
    )
    assert k1 == "delta" and [d["seq"] for d in delta["deltas"]] == [3, 4]
    assert delta["deltas"][0]["id"] == "robot-2"


async def test_situation_at_a_past_time_from_the_log(served: Served) -> None:
    async with client(served) as c:
        await c.post("/api/v1/ingest/telemetry", json=msg("robot-1"), headers=served.device())
        first = (await c.get("/api/v1/situation")).json()
        await asyncio.sleep(0.05)
        await c.post("/api/v1/ingest/telemetry", json=msg("robot-2"), headers=served.device())
        past = (await c.get("/api/v1/situation", params={"at": first["at"]})).json()
        assert [e["id"] for e in past["entities"]] == ["robot-1"]
        assert past["entities"] == first["entities"]
        r = await c.get("/api/v1/situation", params={"at": "yesterday"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "at"


async def test_no_default_credentials_exist(tmp_path: Path) -> None:
    from cockpit.auth import AuthStore

    with AuthStore(tmp_path / "fresh.sqlite") as fresh:
        assert fresh.list_users() == [] and fresh.list_devices() == []
    async with serve(tmp_path / "data") as s, httpx.AsyncClient(base_url=s.url) as c:
        for user, password in [
            ("admin", "admin"),
            ("admin", "password"),
            ("root", "root"),
            ("einsatzleitung", "einsatzleitung"),
            ("el", ""),
        ]:
            r = await c.post("/api/v1/session", json={"username": user, "password": password})
            assert r.status_code in (401, 422), (user, r.status_code)
            assert "set-cookie" not in r.headers
