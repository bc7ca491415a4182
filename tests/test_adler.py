"""A.D.Le.R. detections over HTTP: the ingest route (schema, duplicates, refusals) and
their review by people (new -> confirmed/dismissed -> dispatched -> on_scene -> closed),
against the real app under uvicorn, as a commander, a viewer and a trainer see it."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cockpit.auth import AuthStore
from cockpit.detection_flow import NEXT
from cockpit.events import (
    Context,
    Detection,
    DetectionEvent,
    DetectionTransition,
    DetectionTransitionEvent,
    InvalidInput,
    Source,
    with_seq,
)
from cockpit.situation import Situation
from feeds.adler import parse
from tests.factories import numbered
from tests.serving import Served, serve
from tests.test_api import client

WHEN = (datetime.now(UTC) - timedelta(minutes=1)).replace(microsecond=0)
FIRE = (51.5139, 7.4653)


def report(det_id: str = "adler-4711", **over: Any) -> dict[str, Any]:
    """A detection as the A.D.Le.R. gateway posts it: a fall in a flat."""
    body: dict[str, Any] = {
        "id": det_id,
        "type": "fall",
        "confidence": 0.92,
        "time": WHEN.isoformat().replace("+00:00", "Z"),
        "device": "fall-sensor-17",
        "location": {
            "lat": FIRE[0],
            "lon": FIRE[1],
            "address": "Kampstraße 12, 44137 Dortmund",
            "floor": "3. OG links",
            "access": "Schlüsseltresor am Hauseingang, Code beim Pflegedienst",
        },
        "person": {
            "id": "p-8c1f",
            "age_group": "senior",
            "mobility": "walking_aid",
            "needs": ["hearing_impaired"],
            "medical": "Marcumar",
            "contact": "Tochter 0231 555 0123",
        },
    }
    body.update(over)
    return body


@pytest.fixture
async def served(tmp_path: Path) -> Any:
    async with serve(tmp_path / "data") as s:
        with AuthStore(tmp_path / "data" / "auth.sqlite") as auth:
            s.tokens["adler"] = auth.add_device("adler-gw", ["adler"])
        yield s


async def _post(c: httpx.AsyncClient, s: Served, body: Any) -> httpx.Response:
    return await c.post("/api/v1/ingest/adler", json=body, headers=s.device("adler"))


async def _detections(c: httpx.AsyncClient, **params: Any) -> dict[str, dict[str, Any]]:
    r = await c.get("/api/v1/situation", params=params)
    assert r.status_code == 200, r.text
    return {d["id"]: d for d in r.json()["detections"]}


async def _journal(c: httpx.AsyncClient, ref: str) -> list[dict[str, Any]]:
    return [j for j in (await c.get("/api/v1/situation")).json()["journal"] if j["ref"] == ref]


async def _step(c: httpx.AsyncClient, det_id: str, to: str, note: str = "") -> httpx.Response:
    return await c.post(f"/api/v1/detections/{det_id}/transition", json={"to": to, "note": note})


async def test_a_detection_arrives_keeping_the_person_apart(served: Served) -> None:
    async with client(served) as c:
        r = await _post(c, served, report())
        assert r.status_code == 202, r.text
        assert r.json()["id"] == "adler-4711" and len(r.json()["seq"]) == 1
        det = (await _detections(c, personal="true"))["adler-4711"]  # need to know
        health = (await c.get("/healthz")).json()["feeds"]["adler"]
        journal = await _journal(c, "adler-4711")
    assert len(journal) == 1 and "Marcumar" not in json.dumps(journal)  # nothing personal
    assert det["state"] == "new" and det["source"] == "adler" and det["category"] == "fall"
    assert (det["lat"], det["lon"]) == FIRE and det["device"] == "fall-sensor-17"
    assert det["address"] == "Kampstraße 12, 44137 Dortmund" and det["floor"] == "3. OG links"
    assert det["access"].startswith("Schlüsseltresor")
    # Everything about the person sits under one key, and nowhere else in the record.
    person = det["personal"]["person"]
    assert person["id"] == "p-8c1f" and person["medical"] == "Marcumar"
    outside = json.dumps({k: v for k, v in det.items() if k != "personal"})
    assert "Marcumar" not in outside and "0231" not in outside and "p-8c1f" not in outside
    assert health["state"] == "listening" and health["accepted"] == 1


async def test_repeated_reports_update_one_detection(served: Served) -> None:
    async with client(served) as c:
        for confidence in (0.5, 0.7, 0.95):
            r = await _post(c, served, report(confidence=confidence))
            assert r.status_code == 202, r.text
        dets = await _detections(c)
        journal = await _journal(c, "adler-4711")
    assert list(dets) == ["adler-4711"]
    assert dets["adler-4711"]["confidence"] == 0.95 and dets["adler-4711"]["reports"] == 3
    assert len(journal) == 1 and journal[0]["category"] == "detection"  # reported once


async def test_the_whole_review_is_in_the_journal_with_actor_and_time(served: Served) -> None:
    async with client(served) as c:
        assert (await _post(c, served, report())).status_code == 202
        for to, note in [
            ("confirmed", "Rückruf ohne Antwort"),
            ("dispatched", "RTW 1 und HLF 20 alarmiert"),
            ("on_scene", ""),
            ("closed", "Patientin an RD übergeben"),
        ]:
            r = await _step(c, "adler-4711", to, note)
            assert r.status_code == 201, r.text
            assert r.json()["state"] == to
        det = (await _detections(c))["adler-4711"]
        journal = await _journal(c, "adler-4711")
    assert det["state"] == "closed"
    assert [(h["from"], h["to"]) for h in det["history"]] == [
        ("new", "confirmed"),
        ("confirmed", "dispatched"),
        ("dispatched", "on_scene"),
        ("on_scene", "closed"),
    ]
    assert all(h["actor"] == "el" and h["at"] for h in det["history"])
    texts = [j["text"] for j in journal]
    assert texts[0].startswith("Meldung fall")
    assert texts[1:] == [
        "Meldung fall: bestätigt – Rückruf ohne Antwort",
        "Meldung fall: Kräfte entsandt – RTW 1 und HLF 20 alarmiert",
        "Meldung fall: Kräfte vor Ort",
        "Meldung fall: abgeschlossen – Patientin an RD übergeben",
    ]
    assert all(j["author"] == "el" for j in journal[1:])


async def test_a_devices_repeat_never_undoes_a_persons_step(served: Served) -> None:
    async with client(served) as c:
        await _post(c, served, report())
        assert (await _step(c, "adler-4711", "confirmed")).status_code == 201
        assert (await _step(c, "adler-4711", "dispatched")).status_code == 201
        r = await _post(c, served, report(confidence=0.99, person=None))
        assert r.status_code == 202
        det = (await _detections(c, personal="true"))["adler-4711"]
    assert det["state"] == "dispatched" and det["confidence"] == 0.99 and det["reports"] == 2
    assert det["personal"]["person"]["id"] == "p-8c1f"  # a report without the person keeps it
    assert len(det["history"]) == 2


@pytest.mark.parametrize(
    ("steps", "to", "current"),
    [
        ([], "dispatched", "new"),
        ([], "closed", "new"),
        (["confirmed"], "confirmed", "confirmed"),
        (["dismissed"], "dispatched", "dismissed"),
        (["confirmed", "dispatched", "on_scene", "closed"], "confirmed", "closed"),
    ],
)
async def test_an_invalid_step_is_refused_naming_state_and_choices(
    served: Served, steps: list[str], to: str, current: str
) -> None:
    async with client(served) as c:
        await _post(c, served, report())
        for step in steps:
            assert (await _step(c, "adler-4711", step)).status_code == 201
        r = await _step(c, "adler-4711", to)
        det = (await _detections(c))["adler-4711"]
    assert r.status_code == 409, r.text
    (err,) = r.json()["errors"]
    assert err["field"] == "to"
    assert f"{current} -> {to}" in err["reason"]
    for choice in NEXT[current]:
        assert choice in err["reason"]
    assert err["state"] == current and err["allowed"] == list(NEXT[current])
    if not NEXT[current]:
        assert "final" in err["reason"]
    assert det["state"] == current and len(det["history"]) == len(steps)


async def test_two_people_at_once_one_step_wins_and_the_other_hears_409(
    served: Served,
) -> None:
    async with client(served) as c:
        for i in range(5):  # the loser is caught before or after publishing: both 409
            det_id = f"adler-race-{i}"
            await _post(c, served, report(det_id))
            # Both confirm (confirm and dismiss could both stand: a dismissal can be undone).
            a, b = await asyncio.gather(
                _step(c, det_id, "confirmed", "A"), _step(c, det_id, "confirmed", "B")
            )
            assert sorted([a.status_code, b.status_code]) == [201, 409], (a.text, b.text)
            loser = a if a.status_code == 409 else b
            assert loser.json()["errors"][0]["state"] == "confirmed"
            det = (await _detections(c))[det_id]
            assert det["state"] == "confirmed" and len(det["history"]) == 1


async def test_a_dismissal_can_be_undone(served: Served) -> None:
    async with client(served) as c:
        await _post(c, served, report())
        assert (await _step(c, "adler-4711", "dismissed", "Fehlalarm?")).status_code == 201
        assert (await _step(c, "adler-4711", "confirmed", "doch: Hilferuf")).status_code == 201
        assert (await _detections(c))["adler-4711"]["state"] == "confirmed"


async def test_unknown_detection_and_bad_step_bodies(served: Served) -> None:
    async with client(served) as c:
        r = await _step(c, "nope", "confirmed")
        assert r.status_code == 404 and r.json()["errors"][0]["field"] == "detection_id"
        await _post(c, served, report())
        r = await _step(c, "adler-4711", "teleported")
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "to"
        r = await c.post(
            "/api/v1/detections/adler-4711/transition", json={"to": "confirmed", "x": 1}
        )
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "x"
        assert (await _detections(c))["adler-4711"]["state"] == "new"


@pytest.mark.parametrize("user", ["viewer", "trainer"])
async def test_viewers_and_trainers_cannot_review(served: Served, user: str) -> None:
    async with client(served) as c:
        assert (await _post(c, served, report())).status_code == 202
    async with client(served, user) as c:
        r = await _step(c, "adler-4711", "confirmed")
        assert r.status_code == 403 and r.json()["errors"][0]["field"] == "role"
        assert (await _detections(c))["adler-4711"]["state"] == "new"
    async with httpx.AsyncClient(base_url=served.url) as c:
        r = await _step(c, "adler-4711", "confirmed")
        assert r.status_code == 401


async def test_device_tokens(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as c:
        r = await c.post("/api/v1/ingest/adler", json=report())
        assert r.status_code == 401
        r = await c.post(
            "/api/v1/ingest/adler",
            json=report(),
            headers={"Authorization": "Bearer cdt_not-a-token"},
        )
        assert r.status_code == 401
        r = await c.post("/api/v1/ingest/adler", json=report(), headers=served.device("robot"))
        assert r.status_code == 403  # a telemetry device may not report detections
        health = (await c.get("/healthz")).json()["feeds"]["adler"]
    assert health["rejected"] == 3 and health["accepted"] == 0


def _without(body: dict[str, Any], *path: str) -> dict[str, Any]:
    out = copy.deepcopy(body)
    parent = out
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return out


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (report(type="meteor"), "type"),
        (report(confidence=1.5), "confidence"),
        (report(time="2026-11-26T10:00:00"), "time"),  # no zone: refused
        (report(id=""), "id"),
        (_without(report(), "device"), "device"),
        (_without(report(), "location"), "location"),
        (_without(report(), "location", "lon"), "location.lon"),
        (
            report(location={"floor": "EG"}),
            "location.address",
        ),  # no place at all
        (report(location={"lat": 95.0, "lon": 7.0}), "location.lat"),
        (report(person={"id": "p-1", "name": "Erika Mustermann"}), "person.name"),
        (report(person={"id": "p-1", "mobility": "flying"}), "person.mobility"),
        (report(colour="red"), "colour"),
    ],
)
async def test_a_bad_report_is_refused_naming_the_field(
    served: Served, body: dict[str, Any], field: str
) -> None:
    async with client(served) as c:
        r = await _post(c, served, body)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == field, r.json()
        health = (await c.get("/healthz")).json()["feeds"]["adler"]
        assert health["rejected"] == 1 and health["reject_reasons"]
        assert await _detections(c) == {}


async def test_a_body_over_the_limit_is_refused(served: Served) -> None:
    limit = served.settings.max_body_bytes
    body = report(summary="x" * 300)
    body["location"]["access"] = "y" * (limit + 1)
    async with client(served) as c:
        r = await _post(c, served, body)
        assert r.status_code == 413, r.text
        assert await _detections(c) == {}
        assert (await c.get("/healthz")).json()["feeds"]["adler"]["rejected"] == 1


async def test_the_schema_is_in_the_openapi_document(served: Served) -> None:
    async with client(served) as c:
        doc = (await c.get("/openapi.json")).json()
    body = doc["paths"]["/api/v1/ingest/adler"]["post"]["requestBody"]
    ref = body["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/AdlerDetection"
    schemas = doc["components"]["schemas"]
    props = schemas["AdlerDetection"]["properties"]
    assert set(props) >= {"id", "type", "confidence", "time", "device", "location", "person"}
    assert "smoke_alarm" in json.dumps(props["type"]) and "co_alarm" in json.dumps(props["type"])
    assert set(schemas["AdlerLocation"]["properties"]) == {
        "lat",
        "lon",
        "address",
        "floor",
        "access",
    }
    assert set(schemas["AdlerPerson"]["properties"]) == {
        "id",
        "age_group",
        "mobility",
        "needs",
        "medical",
        "contact",
    }
    assert "/api/v1/detections/{detection_id}/transition" in doc["paths"]


def test_a_video_detection_follows_the_same_review() -> None:
    """Video detections (source "video") re-report as a drone keeps seeing them: the
    picture keeps the person's state, and the hazard zone of a confirmed fire stays."""
    t0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)

    def env(s: float, feed: str, actor: str) -> dict[str, Any]:
        at = t0 + timedelta(seconds=s)
        return {
            "incident": "test",
            "source": Source(feed=feed, device=actor),  # type: ignore[arg-type]
            "observed_at": at,
            "received_at": at,
            "context": Context(actor=actor),
        }

    def seen(s: float) -> DetectionEvent:
        payload = Detection(
            id="uav-1-hotspot-1-1", source="video", category="hotspot", lat=FIRE[0], lon=FIRE[1]
        )
        return DetectionEvent(**env(s, "video", "video:uav-1"), payload=payload)

    def step(s: float, to: str) -> DetectionTransitionEvent:
        return DetectionTransitionEvent(
            **env(s, "ui", "el"),
            payload=DetectionTransition(id="uav-1-hotspot-1-1", to=to),  # type: ignore[arg-type]
        )

    events = [seen(0), step(1, "confirmed"), seen(2), step(3, "dismissed"), seen(4)]
    a, b = Situation(incident="test"), Situation(incident="test")
    a.apply_all(numbered(events))
    b.apply_all(numbered(events))
    det = a.detections["uav-1-hotspot-1-1"]
    assert det["state"] == "confirmed" and det["reports"] == 3  # "dismissed" was not allowed
    assert any(h.get("source") == "uav-1-hotspot-1-1" for h in a.hazards.values())
    assert a.detections == b.detections  # the same log, the same picture
    a.apply_all([with_seq(step(5, "closed"), len(events) + 1)])
    assert not any(h.get("source") == "uav-1-hotspot-1-1" for h in a.hazards.values())


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_no_bytes_make_the_parser_raise_anything_but_invalid_input(raw: bytes) -> None:
    with contextlib.suppress(InvalidInput):
        parse(raw)


_json = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=25,
)
_keys = ["id", "type", "confidence", "time", "device", "location", "person", "summary", "x"]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    over=st.dictionaries(st.sampled_from(_keys), _json, max_size=3),
    drop=st.lists(st.sampled_from(_keys), max_size=2),
)
async def test_no_body_breaks_the_route(
    served: Served, over: dict[str, Any], drop: list[str]
) -> None:
    body = {k: v for k, v in report(det_id="fuzz").items() if k not in drop} | over
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as c:
        await served.login(c, "el")
        before = _stable(await _detections(c))
        # json.dumps writes NaN and Infinity as JavaScript would: not JSON, and refused.
        r = await c.post(
            "/api/v1/ingest/adler",
            content=json.dumps(body).encode(),
            headers={**served.device("adler"), "content-type": "application/json"},
        )
        assert r.status_code in (202, 422), r.text
        after = _stable(await _detections(c))
        if r.status_code == 422:
            assert r.json()["errors"][0]["field"]
            assert after == before  # nothing of a bad body applied
        else:
            assert after["fuzz"]["reports"] == before.get("fuzz", {}).get("reports", 0) + 1
        assert (await c.get("/healthz")).status_code == 200


def _stable(dets: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The detections without their age (which grows while the test runs)."""
    return {k: {f: v for f, v in d.items() if f != "age_s"} for k, d in dets.items()}


async def test_the_log_gives_back_each_step(served: Served) -> None:
    """The picture at a past time is rebuilt from the recorded log: the review steps are
    in it, and folding them again gives the same detection."""
    async with client(served) as c:
        await _post(c, served, report())
        assert (await _step(c, "adler-4711", "confirmed", "Rückruf ohne Antwort")).is_success
        then = (await c.get("/api/v1/situation")).json()
        await asyncio.sleep(0.05)
        assert (await _step(c, "adler-4711", "dispatched")).status_code == 201
        past = (await c.get("/api/v1/situation", params={"at": then["at"]})).json()
    (was,) = [d for d in then["detections"] if d["id"] == "adler-4711"]
    (again,) = [d for d in past["detections"] if d["id"] == "adler-4711"]
    assert again["state"] == "confirmed" and again["history"][0]["note"] == "Rückruf ohne Antwort"
    assert _stable({"d": again}) == _stable({"d": was})


async def test_an_address_alone_is_a_place_and_a_clock_ahead_is_capped(served: Served) -> None:
    ahead = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    body = report("adler-co-1", type="co_alarm", time=ahead, person=None)
    body["location"] = {"address": "Mallinckrodtstraße 40, 44145 Dortmund", "floor": "EG"}
    async with client(served) as c:
        r = await _post(c, served, body)
        assert r.status_code == 202, r.text
        det = (await _detections(c))["adler-co-1"]
        (ev,) = (await c.get("/api/v1/events", params={"kind": "detection"})).json()["events"]
    assert det["lat"] is None and det["address"].startswith("Mallinckrodt")
    assert det["personal"] is None
    assert ev["observed_at"] <= ev["received_at"]  # a device's clock ahead: capped


async def test_personal_data_only_for_the_roles_that_need_it(served: Served) -> None:
    """The person's data never rides the push stream, and only commander, operator and
    admin get it, when they ask — from the picture or its own route (tests/test_privacy.py
    has every role on every route)."""
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as c:
        await served.login(c, "el")  # a commander
        assert (await _post(c, served, report())).status_code == 202
        det = (await _detections(c))["adler-4711"]
        assert det["personal"] is None and det["personal_held"] is True  # not asked for
        det = (await _detections(c, personal="true"))["adler-4711"]
        assert det["personal"]["person"]["medical"]
        r = await c.get("/api/v1/detections/adler-4711/personal")
        assert r.status_code == 200 and r.json()["personal"]["person"]["id"]
        async with c.stream("GET", "/api/v1/stream") as stream:
            lines = stream.aiter_lines()
            assert await anext(lines) == "event: snapshot"
            snap = orjson.loads((await anext(lines)).removeprefix("data: "))
        (streamed,) = snap["detections"]
        assert streamed["personal"] is None and streamed["personal_held"] is True
    for role in ("viewer", "trainer"):
        async with httpx.AsyncClient(base_url=served.url, timeout=10) as c:
            await served.login(c, role)
            det = (await _detections(c))["adler-4711"]
            assert det["personal"] is None and det["personal_held"] is True, role
            assert det["address"] and det["floor"]  # what a crew needs stays
            events = (await c.get("/api/v1/events")).json()["events"]
            assert all(not e["payload"].get("personal") for e in events), role
            r = await c.get("/api/v1/detections/adler-4711/personal")
            assert r.status_code == 403, role
