"""First responders (A.D.Le.R.): the registry, the nearest offered with an ETA, alerting
on dispatch, their answers and arrival — in the fold alone, and through the real routes
of a served cockpit as a commander and the A.D.Le.R. platform use them."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import secrets
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cockpit.auth import AuthStore
from cockpit.events import (
    Context,
    Detection,
    DetectionEvent,
    DetectionTransition,
    DetectionTransitionEvent,
    InvalidInput,
    Position,
    PositionEvent,
    Responder,
    ResponderCall,
    ResponderCallEvent,
    ResponderEvent,
    Source,
    with_seq,
)
from cockpit.geo import offset
from cockpit.rules.responders import eta_s
from cockpit.situation import Situation
from feeds.adler import parse_answer, parse_responders
from tests.serving import Served, serve
from tests.test_adler import FIRE, report
from tests.test_api import client

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


class Log:
    """Events for the fold, numbered, each a second after the one before."""

    def __init__(self) -> None:
        self.sit = Situation(incident="t")
        self.n = 0

    def add(self, payload: Any, kind: type, actor: str = "el", dt: float | None = None) -> Any:
        self.n += 1
        at = T0 + timedelta(seconds=self.n if dt is None else dt)
        ev = kind(
            incident="t",
            source=Source(feed="ui", device="el"),
            observed_at=at,
            received_at=at,
            context=Context(actor=actor),
            payload=payload,
        )
        return self.sit.apply(with_seq(ev, self.n))

    def responder(self, rid: str, north_m: float, travel: str = "car", **kw: Any) -> None:
        self.add(
            Responder(
                id=rid, callsign=f"EH {rid}", qualifications=("paramedic",), travel=travel, **kw
            ),  # type: ignore[arg-type]
            ResponderEvent,
        )
        self.move(rid, north_m)

    def move(self, rid: str, north_m: float, dt: float | None = None) -> None:
        lat, lon = offset(*FIRE, north_m, 0.0)
        self.add(Position(entity=rid, entity_kind="person", lat=lat, lon=lon), PositionEvent, dt=dt)

    def detection(self, det_id: str = "d1", source: str = "adler", dt: float | None = None) -> None:
        self.add(
            Detection(id=det_id, source=source, category="fall", lat=FIRE[0], lon=FIRE[1]),  # type: ignore[arg-type]
            DetectionEvent,
            dt=dt,
        )

    def step(self, to: str, det_id: str = "d1") -> None:
        self.add(DetectionTransition(id=det_id, to=to), DetectionTransitionEvent)  # type: ignore[arg-type]

    def call(self, rid: str, state: str, det_id: str = "d1") -> None:
        self.add(ResponderCall(detection=det_id, responder=rid, state=state), ResponderCallEvent)  # type: ignore[arg-type]

    def det(self, det_id: str = "d1") -> dict[str, Any]:
        return self.sit.detections[det_id]


def test_the_nearest_available_responders_are_offered_with_an_eta() -> None:
    log = Log()
    log.responder("far", 1500)
    log.responder("near", 300, travel="foot")
    log.responder("mid", 700, travel="bike")
    log.responder("off", 100, available=False)
    log.detection()
    offer = log.det()["candidates"]
    assert [c["responder"] for c in offer] == ["near", "mid", "far"]  # "off": unavailable
    near = offer[0]
    assert near["distance_m"] == 300 and near["callsign"] == "EH near"
    assert near["eta_s"] == round(eta_s(300, "foot"), -1) and near["eta_s"] > 60
    # The one nearest on foot may still be slower than a car further away: the ETA says so.
    assert offer[2]["eta_s"] < offer[0]["eta_s"]


def test_a_stale_position_and_a_video_detection_get_no_offer() -> None:
    log = Log()
    log.responder("old", 200)
    log.responder("fresh", 900)
    log.detection("cam", source="video")
    assert log.det("cam")["candidates"] == []  # hotspots are for crews, not first aiders
    log.move("fresh", 900, dt=1000)  # "old" last seen ~990 s before: over the 600 s limit
    log.detection(dt=1001)
    assert [c["responder"] for c in log.det()["candidates"]] == ["fresh"]


def test_alert_answer_arrival_moves_the_detection_on_scene_and_frees_at_close() -> None:
    log = Log()
    log.responder("a", 400)
    log.responder("b", 800)
    log.detection()
    log.step("confirmed")
    log.step("dispatched")
    log.call("a", "alerted")
    assert log.det()["calls"]["a"]["state"] == "alerted"
    assert [c["responder"] for c in log.det()["candidates"]] == ["b"]  # a is engaged
    log.call("a", "accepted")
    log.move("a", 100)  # on the way: 100 m out
    assert log.det()["calls"]["a"]["state"] == "accepted"
    assert log.det()["state"] == "dispatched"
    log.move("a", 20)  # within 30 m: there
    call = log.det()["calls"]["a"]
    assert (call["state"], call["by"]) == ("arrived", "a")  # seen arriving by its position
    assert log.det()["state"] == "on_scene"
    journal = [j["text"] for j in log.sit.journal]
    assert any("EH a (Rettungssanitäter) alarmiert" in t for t in journal)
    assert any("eingetroffen" in t for t in journal)
    assert any("Kräfte vor Ort" in t for t in journal)
    view = log.sit.view(T0.timestamp() + 100)
    (ra,) = [r for r in view["responders"] if r["id"] == "a"]
    assert ra["busy"] == "d1" and ra["lat"] is not None and ra["age_s"] >= 0
    log.step("closed")
    view = log.sit.view(T0.timestamp() + 100)
    assert all(r["busy"] is None for r in view["responders"])


def test_out_of_order_call_steps_change_nothing() -> None:
    log = Log()
    log.responder("a", 400)
    log.detection()
    log.step("confirmed")
    log.call("a", "accepted")  # never alerted
    assert log.det()["calls"] == {}
    log.call("a", "alerted")
    log.detection("d2")
    log.step("confirmed", "d2")
    log.call("a", "alerted", "d2")  # engaged with d1 already
    assert log.det("d2")["calls"] == {}
    log.call("a", "declined")
    log.call("a", "alerted", "d2")  # free again
    assert log.det("d2")["calls"]["a"]["state"] == "alerted"


def test_a_snapshot_keeps_responders_and_calls() -> None:
    log = Log()
    log.responder("a", 400)
    log.detection()
    log.step("confirmed")
    log.call("a", "alerted")
    again = Situation.restore(log.sit.snapshot())
    now = T0.timestamp() + 50
    assert again.view(now)["responders"] == log.sit.view(now)["responders"]
    assert again.view(now)["detections"] == log.sit.view(now)["detections"]


# --- through the routes ------------------------------------------------------------


@pytest.fixture
async def served(tmp_path: Path) -> Any:
    async with serve(tmp_path / "data") as s:
        with AuthStore(tmp_path / "data" / "auth.sqlite") as auth:
            s.tokens["adler"] = auth.add_device("adler-gw", ["adler"])
            s.tokens["phone"] = auth.add_device("phones", ["telemetry"])
        yield s


def _at(north_m: float) -> tuple[float, float]:
    return offset(*FIRE, north_m, 0.0)


async def _position(c: httpx.AsyncClient, s: Served, rid: str, north_m: float) -> None:
    lat, lon = _at(north_m)
    body = {
        "entity": rid,
        "kind": "person",
        "observed_at": datetime.now(UTC).isoformat(),
        "position": {"lat": lat, "lon": lon},
    }
    r = await c.post("/api/v1/ingest/telemetry", json=body, headers=s.device("phone"))
    assert r.status_code == 202, r.text


async def _answer(
    c: httpx.AsyncClient, s: Served, rid: str, answer: str, device: str = "adler"
) -> httpx.Response:
    body = {
        "detection": "adler-4711",
        "responder": rid,
        "answer": answer,
        "observed_at": datetime.now(UTC).isoformat(),
    }
    return await c.post("/api/v1/ingest/adler/answer", json=body, headers=s.device(device))


async def _situation(c: httpx.AsyncClient) -> dict[str, Any]:
    r = await c.get("/api/v1/situation")
    assert r.status_code == 200, r.text
    return r.json()


async def _setup(c: httpx.AsyncClient, s: Served) -> None:
    """Three responders: two from the platform's registry, one registered by hand."""
    registry = [
        {"id": "eh-01", "callsign": "Ersthelfer 01", "qualifications": ["paramedic"]},
        {"id": "eh-02", "callsign": "Ersthelfer 02", "qualifications": ["nurse"], "travel": "bike"},
    ]
    r = await c.post("/api/v1/ingest/adler/responders", json=registry, headers=s.device("adler"))
    assert r.status_code == 202, r.text
    r = await c.put(
        "/api/v1/responders/eh-03",
        json={"callsign": "Ersthelfer 03", "qualifications": ["doctor"], "travel": "foot"},
    )
    assert r.status_code == 201, r.text
    for rid, north in (("eh-01", 900), ("eh-02", 250), ("eh-03", 500)):
        await _position(c, s, rid, north)
    r = await c.post("/api/v1/ingest/adler", json=report(), headers=s.device("adler"))
    assert r.status_code == 202, r.text


async def test_the_whole_call_through_the_routes(served: Served) -> None:
    async with client(served) as c:
        await _setup(c, served)
        (det,) = (await _situation(c))["detections"]
        assert [x["responder"] for x in det["candidates"]] == ["eh-02", "eh-03", "eh-01"]
        assert det["candidates"][0]["distance_m"] == 250 and det["candidates"][0]["age_s"] >= 0
        assert (await _step_to(c, "confirmed")).status_code == 201
        r = await _step_to(c, "dispatched")
        assert r.status_code == 201, r.text
        assert r.json()["alerted"] == ["eh-02", "eh-03"]  # the nearest two (the default)
        assert (await _answer(c, served, "eh-02", "accepted")).status_code == 202
        assert (await _answer(c, served, "eh-03", "declined")).status_code == 202
        await _position(c, served, "eh-02", 10)  # there: the cockpit sees it arrive
        # ... and the platform's own "arrived" a moment later is a repeat, not an error
        r = await _answer(c, served, "eh-02", "arrived")
        assert r.status_code == 200 and r.json()["repeat"] is True, r.text
        pic = await _situation(c)
        (det,) = pic["detections"]
        assert det["calls"]["eh-02"]["state"] == "arrived"
        assert det["calls"]["eh-03"]["state"] == "declined"
        assert det["state"] == "on_scene"
        # eh-03 declined: free again and offered; eh-02 is engaged here
        assert [x["responder"] for x in det["candidates"]] == []  # on scene: no more offers
        busy = {r["id"]: r["busy"] for r in pic["responders"]}
        assert busy == {"eh-01": None, "eh-02": "adler-4711", "eh-03": None}
        texts = [j["text"] for j in pic["journal"] if j["ref"] == "adler-4711"]
        assert any("Ersthelfer 02 (Pflegekraft) zugesagt" in t for t in texts)
        assert any("Ersthelfer 03 (Arzt) abgesagt" in t for t in texts)
        # a later alert of the one who declined, by hand
        r = await c.post("/api/v1/detections/adler-4711/alert", json={"responders": ["eh-03"]})
        assert r.status_code == 201 and r.json()["alerted"] == ["eh-03"], r.text
        then = pic["at"]
        past = (await c.get("/api/v1/situation", params={"at": then})).json()
        (was,) = past["detections"]
        assert was["calls"] == det["calls"]  # the log gives back every step


async def _step_to(c: httpx.AsyncClient, to: str, **more: Any) -> httpx.Response:
    return await c.post("/api/v1/detections/adler-4711/transition", json={"to": to, **more})


async def test_refusals_name_the_field_and_the_reason(served: Served) -> None:
    async with client(served) as c:
        await _setup(c, served)
        # alerting before it is confirmed
        r = await c.post("/api/v1/detections/adler-4711/alert", json={"responders": ["eh-01"]})
        assert r.status_code == 409 and r.json()["errors"][0]["field"] == "detection", r.text
        # an answer to no alert
        r = await _answer(c, served, "eh-01", "accepted")
        assert r.status_code == 409, r.text
        assert r.json()["errors"][0]["state"] == "none"
        assert (await _step_to(c, "confirmed")).status_code == 201
        r = await c.post("/api/v1/detections/adler-4711/alert", json={"responders": ["nobody"]})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "responders.0"
        r = await _step_to(c, "dispatched", responders=["eh-01", "eh-01"])
        assert r.status_code == 422, r.text
        # nothing half-applied: the refused dispatch left the detection confirmed
        (det,) = (await _situation(c))["detections"]
        assert det["state"] == "confirmed" and det["calls"] == {}
        r = await _step_to(c, "dispatched", responders=["eh-01"])
        assert r.status_code == 201 and r.json()["alerted"] == ["eh-01"]
        r = await c.post("/api/v1/detections/adler-4711/alert", json={"responders": ["eh-01"]})
        assert r.status_code == 409 and "alerted already" in r.json()["errors"][0]["reason"]
        r = await c.put("/api/v1/responders/eh-09", json={"callsign": "X", "qualifications": []})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "qualifications"
        r = await c.post(
            "/api/v1/ingest/adler/responders",
            json={"id": "eh-9", "callsign": "X", "qualifications": ["wizard"]},
            headers=served.device("adler"),
        )
        assert r.status_code == 422 and "qualifications" in r.json()["errors"][0]["field"]
        health = (await c.get("/healthz")).json()["feeds"]["adler"]
        assert health["rejected"] >= 2
    async with client(served, "viewer") as c:
        r = await c.post("/api/v1/detections/adler-4711/alert", json={"responders": ["eh-02"]})
        assert r.status_code == 403
        r = await c.put(
            "/api/v1/responders/eh-09", json={"callsign": "X", "qualifications": ["doctor"]}
        )
        assert r.status_code == 403
    async with httpx.AsyncClient(base_url=served.url) as c:  # a telemetry token may not
        r = await _answer(c, served, "eh-01", "accepted", device="phone")
        assert r.status_code == 403, r.text
        r = await c.post("/api/v1/ingest/adler/answer", json={})
        assert r.status_code == 401, r.text


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_no_bytes_break_the_registry_and_answer_parsers(raw: bytes) -> None:
    for parser in (parse_responders, parse_answer):
        with contextlib.suppress(InvalidInput):
            parser(raw)


async def test_two_alerts_of_one_responder_at_once_only_one_holds(served: Served) -> None:
    """Two commanders alert the same responder to two detections at the same moment."""
    async with client(served) as c:
        await _setup(c, served)
        other = report("adler-4712")
        r = await c.post("/api/v1/ingest/adler", json=other, headers=served.device("adler"))
        assert r.status_code == 202
        for d in ("adler-4711", "adler-4712"):
            r = await c.post(f"/api/v1/detections/{d}/transition", json={"to": "confirmed"})
            assert r.status_code == 201
        a, b = await asyncio.gather(
            c.post("/api/v1/detections/adler-4711/alert", json={"responders": ["eh-01"]}),
            c.post("/api/v1/detections/adler-4712/alert", json={"responders": ["eh-01"]}),
        )
        alerted = [x.json().get("alerted", []) for x in (a, b) if x.status_code == 201]
        assert sum(len(x) for x in alerted) == 1, (a.text, b.text)
        dets = {d["id"]: d for d in (await _situation(c))["detections"]}
        held = [d for d in dets.values() if "eh-01" in d["calls"]]
        assert len(held) == 1


class _Platform:
    """The A.D.Le.R. platform's alert endpoint: a real HTTP server in a thread, failing the
    first `fail` requests with 503 (the platform restarting)."""

    def __init__(self, fail: int = 0) -> None:
        self.got: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.fail = fail
        platform = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if platform.fail > 0:
                    platform.fail -= 1
                    self.send_response(503)
                else:
                    platform.got.append((dict(self.headers), json.loads(body)))
                    self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def test_alerts_reach_the_platform_without_personal_data(tmp_path: Path) -> None:
    platform = _Platform(fail=1)
    secret = secrets.token_urlsafe(16)
    try:
        async with serve(
            tmp_path / "data", adler_alert_url=platform.url, adler_alert_token=secret
        ) as s:
            with AuthStore(tmp_path / "data" / "auth.sqlite") as auth:
                s.tokens["adler"] = auth.add_device("adler-gw", ["adler"])
                s.tokens["phone"] = auth.add_device("phones", ["telemetry"])
            async with client(s) as c:
                await _setup(c, s)
                assert (await _step_to(c, "confirmed")).status_code == 201
                assert (await _step_to(c, "dispatched")).status_code == 201
                for _ in range(100):  # the first try fails: a retry a second later
                    if len(platform.got) == 2:
                        break
                    await asyncio.sleep(0.1)
                assert (await _step_to(c, "closed")).status_code == 201  # stand down
                for _ in range(100):
                    if len(platform.got) == 4:
                        break
                    await asyncio.sleep(0.1)
                health = (await c.get("/healthz")).json()["feeds"]["adler_out"]
    finally:
        platform.close()
    sent = [(b["state"], b["responder"]) for _, b in platform.got]
    assert sorted(sent[:2]) == [("alerted", "eh-02"), ("alerted", "eh-03")]
    assert sorted(sent[2:]) == [("released", "eh-02"), ("released", "eh-03")]
    headers, body = platform.got[0]
    assert headers["Authorization"] == f"Bearer {secret}" and headers["Idempotency-Key"]
    assert body["detection"]["address"] == "Kampstraße 12, 44137 Dortmund"
    assert body["detection"]["access"].startswith("Schlüsseltresor")
    text = json.dumps(platform.got)
    assert "Marcumar" not in text and "p-8c1f" not in text and "personal" not in text
    assert health["accepted"] == 4 and health["rejected"] == 1
    assert health["reject_reasons"] == {"HTTP 503": 1} and health["state"] == "connected"


def test_an_alert_url_without_a_token_is_refused(tmp_path: Path) -> None:
    from cockpit.live import _adler_alerts
    from cockpit.settings import SettingsError, load_settings

    settings = load_settings(None, data_dir=tmp_path, adler_alert_url="http://127.0.0.1:9/x")
    with pytest.raises(SettingsError, match="COCKPIT_ADLER_ALERT_TOKEN"):
        _adler_alerts(settings, None, None)  # type: ignore[arg-type]


def test_the_alerts_of_a_refused_dispatch_ring_no_one() -> None:
    """Two commanders dispatch at once, each with the nearest responder: the second
    dispatch is refused in the fold, and so are the alerts it carried."""
    log = Log()
    log.responder("a", 300)
    log.responder("b", 600)
    log.detection()
    log.step("confirmed")
    first = DetectionTransition(id="d1", to="dispatched")
    log.add(first, DetectionTransitionEvent)
    log.call("a", "alerted")
    refused = log.add(DetectionTransition(id="d1", to="dispatched"), DetectionTransitionEvent)
    assert refused == []
    # The refused step's own alert names it as its parent.
    log.n += 1
    at = T0 + timedelta(seconds=log.n)
    step_id = log.sit._refused[-1]
    ev = ResponderCallEvent(
        incident="t",
        source=Source(feed="ui", device="el2"),
        observed_at=at,
        received_at=at,
        context=Context(actor="el2", parent=step_id),
        payload=ResponderCall(detection="d1", responder="b", state="alerted"),
    )
    log.sit.apply(with_seq(ev, log.n))
    assert set(log.det()["calls"]) == {"a"}
    again = Situation.restore(log.sit.snapshot())  # the refusal survives a snapshot
    assert list(again._refused) == list(log.sit._refused)


def test_closing_stands_down_whoever_was_called() -> None:
    log = Log()
    log.responder("a", 300)
    log.responder("b", 600)
    log.detection()
    log.step("confirmed")
    log.step("dispatched")
    log.call("a", "alerted")
    log.call("b", "alerted")
    log.call("b", "accepted")
    log.step("closed")
    calls = log.det()["calls"]
    assert {k: c["state"] for k, c in calls.items()} == {"a": "released", "b": "released"}
    assert any("Helfer entlassen: EH a, EH b" in j["text"] for j in log.sit.journal)
    view = log.sit.view(T0.timestamp() + 100)
    assert all(r["busy"] is None for r in view["responders"])


def test_a_phone_gone_quiet_is_no_longer_offered() -> None:
    log = Log()
    log.responder("quiet", 200)
    log.responder("loud", 800)
    log.detection()
    assert [c["responder"] for c in log.det()["candidates"]] == ["quiet", "loud"]
    log.move("loud", 800, dt=1200)  # 20 min on: only "loud" still reports
    view = log.sit.view(T0.timestamp() + 1201)
    (det,) = view["detections"]
    assert [c["responder"] for c in det["candidates"]] == ["loud"]
    assert det["candidates"][0]["age_s"] < 5  # its age is its last report's


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 7), st.floats(0, 3000), st.booleans()), min_size=1, max_size=40
    )
)
def test_re_ranking_one_mover_gives_the_offer_a_full_re_ranking_would(
    moves: list[tuple[int, float, bool]],
) -> None:
    """Only detections a moving responder could enter or leave are re-ranked: the offers
    are still exactly those of ranking everyone again."""
    log = Log()
    for i in range(8):
        log.responder(f"r{i}", 200.0 * (i + 1))
    log.detection()
    log.detection("d2")
    for i, north, available in moves:
        if not available:
            log.add(
                Responder(
                    id=f"r{i}", callsign=f"EH r{i}", qualifications=("nurse",), available=False
                ),
                ResponderEvent,
            )
        else:
            log.move(f"r{i}", north)
    t = T0.timestamp() + log.n
    full = Situation.restore(log.sit.snapshot())
    full._reoffer(t, log.n + 1)  # everyone re-ranked
    for d in ("d1", "d2"):
        got = [(c["responder"], c["distance_m"]) for c in log.sit.detections[d]["candidates"]]
        want = [(c["responder"], c["distance_m"]) for c in full.detections[d]["candidates"]]
        assert got == want
