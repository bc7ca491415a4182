"""Privacy by design (issue 6, item 4): a detection's personal data reaches no one who
has not asked for it and may not see it, every view of it is in the audit log (written
before the data leaves), exports leave it out, and after the retention it is gone from
the picture, the log and the snapshots, while everything a crew needs stays.

Against the real app under uvicorn (tests/serving.py), one user of every role."""

from __future__ import annotations

import asyncio
import io
import secrets
import sqlite3
import zlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from cockpit import cli
from cockpit.audit import AUDIT_FILE, AuditLog
from cockpit.auth import PERSONAL_DATA_ROLES, ROLES, AuthStore
from cockpit.events import (
    Context,
    Detection,
    DetectionEvent,
    DetectionPurged,
    DetectionPurgedEvent,
    DetectionTransition,
    DetectionTransitionEvent,
    Source,
    event_to_json,
    parse_event,
    with_seq,
)
from cockpit.pipeline import situation_factory
from cockpit.privacy import redact_event_body, redact_snapshot
from cockpit.recorder import LogReader, Recorder, incident_folder, incident_path
from cockpit.replay import situation_at
from cockpit.settings import load_settings
from tests.serving import Served, serve, serve_in_thread
from tests.test_adler import report

SECRET = "Marcumar"  # the person's medication: must appear only where it may
DET = "adler-4711"
INCIDENT = "test-incident"
# One user per role; the commander, viewer and trainer come from tests/serving.py.
USERS = {
    "admin": "admin",
    "commander": "el",
    "operator": "op",
    "viewer": "viewer",
    "trainer": "trainer",
    "wall": "wall",
}


def _add_users(s: Served, data: Path) -> None:
    with AuthStore(data / "auth.sqlite") as auth:
        for role, name in USERS.items():
            if name not in s.passwords:
                s.passwords[name] = secrets.token_urlsafe(12)
                auth.add_user(name, role, s.passwords[name])
        s.tokens["adler"] = auth.add_device("adler-gw", ["adler"])


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    data = tmp_path / "data"
    async with serve(data) as s:
        _add_users(s, data)
        yield s


@pytest.fixture
async def as_role(served: Served) -> AsyncIterator[Any]:
    clients: list[httpx.AsyncClient] = []

    async def login(role: str) -> httpx.AsyncClient:
        c = httpx.AsyncClient(base_url=served.url, timeout=10)
        clients.append(c)
        await served.login(c, USERS[role])
        return c

    yield login
    for c in clients:
        await c.aclose()


async def _report(s: Served, body: dict[str, Any] | None = None) -> None:
    async with httpx.AsyncClient(base_url=s.url, timeout=10) as c:
        r = await c.post("/api/v1/ingest/adler", json=body or report(), headers=s.device("adler"))
        assert r.status_code == 202, r.text


async def _first_snapshot(c: httpx.AsyncClient) -> str:
    async with c.stream("GET", "/api/v1/stream") as stream:
        lines = stream.aiter_lines()
        assert await anext(lines) == "event: snapshot"
        return (await anext(lines)).removeprefix("data: ")


async def _audit(s: Served, **params: Any) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=s.url, timeout=10) as c:
        await s.login(c, "admin")
        r = await c.get("/api/v1/audit", params=params)
        assert r.status_code == 200, r.text
        entries: list[dict[str, Any]] = r.json()["entries"]
        return entries


def _det(body: dict[str, Any]) -> dict[str, Any]:
    (det,) = [d for d in body["detections"] if d["id"] == DET]
    return det


# -- every role, every read route -----------------------------------------------------


PICTURE = "snapshots/uav1/uav1-person-7-1234.jpg"  # a person seen on video (vision.py)


@pytest.mark.parametrize("role", ROLES)
async def test_no_read_route_carries_personal_data_unless_a_role_that_may_asks(
    served: Served, as_role: Any, role: str
) -> None:
    """The table: by default no route gives anyone the person; asked for, the personal
    roles get it (audited, one entry per view) and the others 403 naming their role."""
    await _report(served)
    picture = incident_folder(served.settings.data_dir, INCIDENT) / PICTURE
    picture.parent.mkdir(parents=True)
    picture.write_bytes(b"\xff\xd8 a person \xff\xd9")
    c = await as_role(role)
    at = (await c.get("/api/v1/situation")).json()["at"]
    default_reads = {
        "situation": await c.get("/api/v1/situation"),
        "situation?at=": await c.get("/api/v1/situation", params={"at": at}),
        "events": await c.get("/api/v1/events"),
    }
    for route, r in default_reads.items():
        assert r.status_code == 200, (route, r.text)
        assert SECRET not in r.text and "p-8c1f" not in r.text, route
        if route != "events":
            det = _det(r.json())
            assert det["personal"] is None and det["personal_held"] is True, route
            assert det["address"] and det["floor"] and det["access"], route  # a crew needs them
    stream = await _first_snapshot(c)
    assert SECRET not in stream and '"personal_held":true' in stream
    assert await _audit(served) == []  # nothing personal was sent: nothing to record

    asked = {
        "situation": await c.get("/api/v1/situation", params={"personal": "true"}),
        "situation?at=": await c.get("/api/v1/situation", params={"at": at, "personal": "1"}),
        "events": await c.get("/api/v1/events", params={"personal": "true"}),
        "personal": await c.get(f"/api/v1/detections/{DET}/personal"),
        "picture": await c.get(f"/api/v1/files/{PICTURE}"),
    }
    entries = await _audit(served)
    if role not in PERSONAL_DATA_ROLES:
        for route, r in asked.items():
            assert r.status_code == 403, (route, r.text)
            assert repr(role) in r.json()["errors"][0]["reason"], route
            assert SECRET not in r.text, route
        assert entries == []
        return
    for route, r in asked.items():
        assert r.status_code == 200, (route, r.text)
        assert SECRET in r.text or route == "picture", route
    assert asked["picture"].content.startswith(b"\xff\xd8")
    assert _det(asked["situation"].json())["personal"]["person"]["medical"] == SECRET
    assert _det(asked["situation?at="].json())["personal_held"] is True
    assert [(e["action"], e["records"]) for e in reversed(entries)] == [
        ("situation", [DET]),
        ("situation", [DET]),
        ("events", [DET]),
        ("detection_personal", [DET]),
        ("snapshot", ["uav1-person-7"]),
    ]
    for e in entries:
        assert e["user"] == USERS[role] and e["role"] == role and e["incident"] == INCIDENT
        assert e["at"].endswith("Z")
    assert entries[3]["detail"] == f"at={at}"  # which picture of the incident was read
    assert entries[0]["detail"] == PICTURE


async def test_asking_where_nothing_is_personal_writes_no_entry(
    served: Served, as_role: Any
) -> None:
    await _report(served, report(person=None))
    c = await as_role("commander")
    assert (await c.get("/api/v1/situation", params={"personal": "true"})).status_code == 200
    assert (await c.get("/api/v1/events", params={"personal": "true"})).status_code == 200
    r = await c.get(f"/api/v1/detections/{DET}/personal")
    assert r.status_code == 200 and r.json()["personal"] is None
    assert await _audit(served) == []


async def test_no_audit_entry_no_personal_data(served: Served, as_role: Any) -> None:
    """The entry is committed before the data is sent: when it cannot be written, the
    answer is 503 and holds nothing of the person; reads without it go on."""
    await _report(served)
    c = await as_role("commander")
    served.app.state.services.audit.close()  # the audit log is gone (disk, permissions)
    for url, params in [
        ("/api/v1/situation", {"personal": "true"}),
        ("/api/v1/events", {"personal": "true"}),
        (f"/api/v1/detections/{DET}/personal", {}),
    ]:
        r = await c.get(url, params=params)
        assert r.status_code == 503, (url, r.text)
        assert SECRET not in r.text and r.json()["errors"][0]["field"] == "audit"
    r = await c.get("/api/v1/situation")
    assert r.status_code == 200 and _det(r.json())["personal_held"] is True


async def test_the_audit_log_is_for_admins_newest_first_since_and_limit(
    served: Served, as_role: Any
) -> None:
    await _report(served)
    c = await as_role("operator")
    for _ in range(3):
        assert (await c.get(f"/api/v1/detections/{DET}/personal")).status_code == 200
        await asyncio.sleep(0.01)
    entries = await _audit(served)
    assert len(entries) == 3 and [e["id"] for e in entries] == sorted(
        (e["id"] for e in entries), reverse=True
    )
    assert len(await _audit(served, limit=2)) == 2
    assert [e["id"] for e in await _audit(served, since=entries[1]["at"])] == [entries[0]["id"]]
    for role in ROLES:
        if role == "admin":
            continue
        other = await as_role(role)
        r = await other.get("/api/v1/audit")
        assert r.status_code == 403 and repr(role) in r.json()["errors"][0]["reason"], role
    admin = await as_role("admin")
    r = await admin.get("/api/v1/audit", params={"since": "yesterday"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "since"


async def test_the_audit_survives_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with serve(data) as s:
        _add_users(s, data)
        await _report(s)
        async with httpx.AsyncClient(base_url=s.url, timeout=10) as c:
            await s.login(c, "el")
            assert (await c.get(f"/api/v1/detections/{DET}/personal")).status_code == 200
    with AuditLog(data / AUDIT_FILE) as audit:
        (entry,) = audit.entries()
    assert (entry.user, entry.action, entry.records) == ("el", "detection_personal", [DET])
    assert (data / AUDIT_FILE).stat().st_mode & 0o077 == 0  # private to the server's user
    # ... and not in the incident's log, which is replayed and exported.
    assert b"detection_personal" not in incident_path(data, INCIDENT).read_bytes()


def test_a_wall_user_is_added_from_the_command_line(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("wand-display-1\n"))
    args = ["user", "add", "lagewand", "--role", "wall", "--password-stdin"]
    assert cli.main([*args, "--data-dir", str(tmp_path)]) == 0
    with AuthStore(tmp_path / "auth.sqlite") as auth:
        user = auth.verify_password("lagewand", "wand-display-1")
    assert user is not None and user.role == "wall"


async def test_a_wall_display_reads_and_never_writes(served: Served, as_role: Any) -> None:
    await _report(served)
    c = await as_role("wall")
    assert (await c.get("/api/v1/situation")).status_code == 200
    r = await c.post("/api/v1/journal", json={"text": "Lage unverändert"})
    assert r.status_code == 403 and "'wall'" in r.json()["errors"][0]["reason"]
    r = await c.post(f"/api/v1/detections/{DET}/transition", json={"to": "confirmed"})
    assert r.status_code == 403


def test_the_fold_empties_only_the_personal_part_when_purged() -> None:
    """`detection.purged`: the person leaves the picture (and every browser, by a delta),
    nothing else changes; ids the picture does not hold, or without a person, are no-ops."""
    sit = situation_factory(load_settings(None), INCIDENT)(None)
    t0 = datetime.now(UTC) - timedelta(hours=1)
    person = {"person": {"id": "p-1", "medical": SECRET}}
    sit.apply(
        with_seq(
            DetectionEvent(
                **_env(t0),
                payload=Detection(
                    id=DET,
                    source="adler",
                    category="fall",
                    address="Kampstraße 12",
                    personal=person,
                ),
            ),
            1,
        )
    )
    before = dict(sit.detections[DET])
    purge = DetectionPurgedEvent(
        **_env(datetime.now(UTC)), payload=DetectionPurged(ids=[DET, "adler-unknown"])
    )
    raw = event_to_json(with_seq(purge, 2))
    assert parse_event(raw) == with_seq(purge, 2)  # the vocabulary round-trips it
    (delta,) = sit.apply(parse_event(raw))
    after = sit.detections[DET]
    assert after["personal"] is None and delta.data is not None
    assert delta.data["personal_held"] is False and SECRET not in str(delta.data)
    assert {k: v for k, v in after.items() if k != "personal"} == {
        k: v for k, v in before.items() if k != "personal"
    }
    again = DetectionPurgedEvent(**_env(datetime.now(UTC)), payload=DetectionPurged(ids=[DET]))
    assert sit.apply(with_seq(again, 3)) == []  # nothing left to purge


def test_a_report_after_the_purge_began_keeps_its_person() -> None:
    """The purge picks a detection, then the same person falls again before its event is
    folded: the new report starts a new retention and its data stays."""
    sit = situation_factory(load_settings(None), INCIDENT)(None)
    t0 = datetime.now(UTC) - timedelta(hours=80)

    def fall(seq: int, at: datetime) -> DetectionEvent:
        return with_seq(
            DetectionEvent(
                **_env(at),
                payload=Detection(
                    id=DET, source="adler", category="fall", personal={"person": {"id": "p-1"}}
                ),
            ),
            seq,
        )

    sit.apply(fall(1, t0))
    picked_at = sit.seq  # the purge picks DET here ...
    sit.apply(fall(2, datetime.now(UTC)))  # ... and the person falls again
    purge = DetectionPurgedEvent(
        **_env(datetime.now(UTC)), payload=DetectionPurged(ids=[DET], upto=picked_at)
    )
    assert sit.apply(with_seq(purge, 3)) == []
    assert sit.detections[DET]["personal"] == {"person": {"id": "p-1"}}


# -- export ---------------------------------------------------------------------------


def _personal_in_file(path: Path) -> tuple[bool, bool]:
    """(personal data in the events, in the snapshots) of a recording file."""
    conn = sqlite3.connect(path)
    try:
        events = any(
            SECRET.encode() in bytes(b) for (b,) in conn.execute("SELECT body FROM events")
        )
        snaps = any(
            SECRET.encode() in zlib.decompress(b)
            for (b,) in conn.execute("SELECT body FROM snapshots")
        )
    finally:
        conn.close()
    return events, snaps


async def _recorded_incident(data: Path) -> str:
    """An incident with a person's detection, a review step and a snapshot holding the
    person; returns the time (ISO) after the step."""
    async with serve(data, snapshot_every_s=1.0) as s:
        _add_users(s, data)
        await _report(s)
        async with httpx.AsyncClient(base_url=s.url, timeout=10) as c:
            await s.login(c, "el")
            r = await c.post(f"/api/v1/detections/{DET}/transition", json={"to": "confirmed"})
            assert r.status_code == 201, r.text
            await asyncio.sleep(1.1)
            await _report(s, report(confidence=0.5))  # folded after 1 s: a snapshot is due
            at: str = (await c.get("/api/v1/situation")).json()["at"]
            await asyncio.sleep(0.2)
    assert _personal_in_file(incident_path(data, INCIDENT)) == (True, True)  # a real test
    return at


async def test_an_export_has_no_personal_data_unless_the_admin_asks(tmp_path: Path) -> None:
    data = tmp_path / "data"
    at = await _recorded_incident(data)
    out = tmp_path / "export.sqlite"
    assert cli.main(["export", INCIDENT, str(out), "--data-dir", str(data)]) == 0
    assert _personal_in_file(out) == (False, False)
    assert SECRET.encode() not in out.read_bytes()  # not even in free pages
    with AuditLog(data / AUDIT_FILE) as audit:
        assert audit.entries() == []  # nothing personal left the data dir

    full = tmp_path / "full.sqlite"
    args = ["export", INCIDENT, str(full), "--include-personal", "--data-dir", str(data)]
    assert cli.main(args) == 0
    assert _personal_in_file(full) == (True, True)
    with AuditLog(data / AUDIT_FILE) as audit:
        (entry,) = audit.entries()
    assert entry.action == "export" and entry.records == [DET] and entry.role == "cli"
    assert entry.user.startswith("os:") and str(full) in entry.detail

    # The redacted export replays elsewhere: the detection, its state and its history.
    other = tmp_path / "other"
    assert cli.main(["import", str(out), "--data-dir", str(other)]) == 0
    reader = LogReader(incident_path(other, INCIDENT))
    try:
        factory = situation_factory(load_settings(None, data_dir=other), INCIDENT, reader.meta)
        t = datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()
        det = (await asyncio.to_thread(situation_at, reader, t, factory)).detections[DET]
    finally:
        reader.close()
    assert det["state"] == "confirmed" and det["history"][0]["actor"] == "el"
    assert det["address"].startswith("Kampstraße") and det["reports"] == 2
    assert det["personal"] is None


# -- retention ------------------------------------------------------------------------


async def test_the_retention_purge_keeps_the_operational_record_and_the_replay(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    retention = dict(
        personal_retention_h=3 / 3600, personal_purge_every_s=0.2, snapshot_every_s=1.0
    )
    path = incident_path(data, INCIDENT)
    async with serve(data, **retention) as s:
        _add_users(s, data)
        async with httpx.AsyncClient(base_url=s.url, timeout=10) as c:
            await s.login(c, "el")
            await _report(s, report(time=datetime.now(UTC).isoformat()))
            r = await c.post(
                f"/api/v1/detections/{DET}/transition", json={"to": "confirmed", "note": "Rückruf"}
            )
            assert r.status_code == 201
            held = await c.get("/api/v1/situation", params={"personal": "true"})
            assert SECRET in held.text  # within the retention: still there
            await asyncio.sleep(1.1)
            await _report(s, report("adler-co-1", type="co_alarm", person=None))  # a snapshot
            before = (await c.get("/api/v1/situation")).json()["at"]
            for _ in range(20):  # the writer thread saves it
                if _personal_in_file(path)[1]:
                    break
                await asyncio.sleep(0.05)
            assert _personal_in_file(path) == (True, True)  # what the purge must rewrite
            for _ in range(100):  # purged 3 s after the step, checked every 0.2 s
                live = await c.get("/api/v1/situation", params={"personal": "true"})
                log = await c.get("/api/v1/events", params={"personal": "true"})
                kinds = [e["kind"] for e in log.json()["events"]]
                if not _det(live.json())["personal_held"] and "detection.purged" in kinds:
                    break  # folded, and committed to the log
                await asyncio.sleep(0.1)
            past = await c.get("/api/v1/situation", params={"at": before, "personal": "true"})
            stream = await _first_snapshot(c)
            journal = [j for j in live.json()["journal"] if j["ref"] == DET]
            health = (await c.get("/healthz")).json()["personal_purge"]
        entries = await _audit(s)
    assert health["purged"] == 1 and health["rounds"] >= 1 and health["last_error"] is None
    assert health["retention_h"] == retention["personal_retention_h"]
    for r in (live, past, log):
        assert r.status_code == 200 and SECRET not in r.text
    assert SECRET not in stream and '"personal_held":false' in stream
    for det in (_det(live.json()), _det(past.json())):  # now, and replayed from the log
        assert det["personal"] is None and det["personal_held"] is False
        assert det["state"] == "confirmed" and det["history"][0]["note"] == "Rückruf"
        assert det["category"] == "fall" and det["address"].startswith("Kampstraße")
        assert det["floor"] == "3. OG links" and det["access"].startswith("Schlüsseltresor")
        assert (det["lat"], det["lon"]) == (51.5139, 7.4653)
    assert len(journal) == 2  # the report and the step
    assert "detection.purged" in kinds
    purge = [e for e in entries if e["action"] == "purge"]
    assert purge and purge[-1]["records"] == [DET] and purge[-1]["user"] == "cockpit"
    assert _personal_in_file(path) == (False, False)
    wal = Path(f"{path}-wal")
    assert SECRET.encode() not in path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


# -- purge from the command line -------------------------------------------------------

OLD = datetime.now(UTC) - timedelta(hours=80)


def _env(t: datetime, **ctx: Any) -> dict[str, Any]:
    return {
        "incident": INCIDENT,
        "source": Source(feed="adler", device="gw"),
        "observed_at": t,
        "received_at": t,
        "context": Context(**ctx),
    }


async def _record(data: Path) -> None:
    """Straight into a log (no server): an old fall with a person, an old person seen on
    video with its picture, and a recent fall whose person is still within retention."""
    folder = incident_folder(data, INCIDENT) / "snapshots" / "uav1"
    folder.mkdir(parents=True)
    (folder / "uav1-person-1-99.jpg").write_bytes(b"\xff\xd8 a person \xff\xd9")
    person = {"person": {"id": "p-1", "medical": SECRET}}
    events = [
        DetectionEvent(
            **_env(OLD),
            payload=Detection(
                id=DET, source="adler", category="fall", address="Kampstraße 12", personal=person
            ),
        ),
        DetectionTransitionEvent(
            **_env(OLD + timedelta(minutes=1), actor="el"),
            payload=DetectionTransition(id=DET, to="confirmed"),
        ),
        DetectionEvent(
            **_env(OLD),
            payload=Detection(
                id="uav1-person-1",
                source="video",
                category="person",
                lat=51.5,
                lon=7.4,
                personal={"snapshot": "snapshots/uav1/uav1-person-1-99.jpg"},
            ),
        ),
        DetectionEvent(
            **_env(datetime.now(UTC)),
            payload=Detection(
                id="adler-new", source="adler", category="fall", personal={"person": {"id": "x"}}
            ),
        ),
    ]
    rec = Recorder(incident_path(data, INCIDENT), INCIDENT)
    rec.open()
    await rec.append([with_seq(ev, i + 1) for i, ev in enumerate(events)])
    factory = situation_factory(load_settings(None, data_dir=data), INCIDENT)
    sit = factory(None)
    for i, ev in enumerate(events):
        sit.apply(with_seq(ev, i + 1))
    rec.save_snapshot(sit.seq, sit.received_at, sit.snapshot())
    await rec.close()


async def test_purge_personal_from_the_command_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await _record(data)
    path = incident_path(data, INCIDENT)
    picture = incident_folder(data, INCIDENT) / "snapshots" / "uav1" / "uav1-person-1-99.jpg"
    # While a process records the incident, it purges itself: the command refuses.
    rec = Recorder(path, INCIDENT)
    rec.open()
    try:
        assert cli.main(["purge-personal", "--data-dir", str(data)]) == 2
    finally:
        await rec.close()
    assert _personal_in_file(path) == (True, True) and picture.exists()

    assert cli.main(["purge-personal", "--data-dir", str(data)]) == 0  # default: 72 h
    assert _personal_in_file(path) == (False, False) and not picture.exists()
    reader = LogReader(path)
    try:
        factory = situation_factory(load_settings(None, data_dir=data), INCIDENT, reader.meta)
        sit = situation_at(reader, datetime.now(UTC).timestamp() + 1, factory)
    finally:
        reader.close()
    old, video, new = (
        sit.detections[DET],
        sit.detections["uav1-person-1"],
        sit.detections["adler-new"],
    )
    assert old["personal"] is None and old["state"] == "confirmed" and old["history"]
    assert old["address"] == "Kampstraße 12"
    assert video["personal"] is None and (video["lat"], video["lon"]) == (51.5, 7.4)
    assert new["personal"] == {"person": {"id": "x"}}  # within the retention: kept
    with AuditLog(data / AUDIT_FILE) as audit:
        (entry,) = audit.entries()
    assert entry.action == "purge" and entry.records == [DET, "uav1-person-1"]
    assert entry.user.startswith("os:") and entry.detail == "older than 72 h"

    assert cli.main(["purge-personal", "--older-than-h", "0", "--data-dir", str(data)]) == 0
    assert SECRET.encode() not in path.read_bytes()
    reader = LogReader(path)
    try:
        assert all(not getattr(ev.payload, "personal", None) for ev in reader.events(0))
    finally:
        reader.close()


# -- input from outside ---------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data: Path = tmp_path_factory.mktemp("privacyfuzz")
    with serve_in_thread(data) as s:
        _add_users(s, data)
        with httpx.Client(base_url=s.url, timeout=10) as c:
            r = c.post("/api/v1/ingest/adler", json=report(), headers=s.device("adler"))
            assert r.status_code == 202, r.text
        yield s


@pytest.fixture(scope="module")
def fuzz_clients(fuzz_served: Served) -> Iterator[dict[str, httpx.Client]]:
    """A logged-in client per role (logging in for every example would be slow)."""
    clients = {}
    for role, name in USERS.items():
        c = httpx.Client(base_url=fuzz_served.url, timeout=10)
        r = c.post(
            "/api/v1/session", json={"username": name, "password": fuzz_served.passwords[name]}
        )
        assert r.status_code == 200
        clients[role] = c
    yield clients
    for c in clients.values():
        c.close()


_BOOL = TypeAdapter(bool)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=st.text(max_size=12) | st.sampled_from(["true", "1", "yes", "on", "TRUE", "0"]))
def test_any_personal_param_gives_data_only_to_a_role_that_may_and_asked(
    fuzz_clients: dict[str, httpx.Client], value: str
) -> None:
    try:
        asked: bool | None = _BOOL.validate_python(value)
    except ValidationError:
        asked = None
    for role in ("viewer", "wall", "operator"):
        for url in ("/api/v1/situation", "/api/v1/events"):
            r = fuzz_clients[role].get(url, params={"personal": value})
            assert r.status_code < 500, r.text
            if asked is None:
                assert r.status_code == 422 and r.json()["errors"][0]["field"] == "personal"
            elif asked and role not in PERSONAL_DATA_ROLES:
                assert r.status_code == 403
            else:
                assert r.status_code == 200
            assert (SECRET in r.text) == (asked is True and role in PERSONAL_DATA_ROLES)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(since=st.text(max_size=40) | st.datetimes(timezones=st.timezones()).map(datetime.isoformat))
def test_any_since_is_read_or_refused_naming_it(
    fuzz_clients: dict[str, httpx.Client], since: str
) -> None:
    r = fuzz_clients["admin"].get("/api/v1/audit", params={"since": since})
    assert r.status_code in (200, 422), r.text
    if r.status_code == 422:
        assert r.json()["errors"][0]["field"] == "since"
    else:
        assert isinstance(r.json()["entries"], list)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(
    personal=st.none() | st.dictionaries(st.text(min_size=1, max_size=10), _json, max_size=4),
    summary=st.text(max_size=40) | st.just('"personal":{"x":1}'),
    only_this=st.booleans(),
)
def test_redaction_empties_any_personal_part_and_nothing_else(
    personal: dict[str, Any] | None, summary: str, only_this: bool
) -> None:
    """Whatever a device put under `personal` (and whatever the rest says), the redacted
    event is a valid event equal to the original but for an empty `personal`."""
    event = with_seq(
        DetectionEvent(
            **_env(datetime.now(UTC)),
            payload=Detection(
                id=DET, source="adler", category="fall", summary=summary, personal=personal
            ),
        ),
        1,
    )
    raw = event_to_json(event)
    ids = {DET} if only_this else {"someone-else"}
    out = redact_event_body(raw, ids)
    if not personal or not only_this:
        assert out is None  # nothing to change
        return
    assert out is not None
    again = parse_event(out)
    assert again.payload.personal is None  # type: ignore[union-attr]
    assert again == msgspec.structs.replace(
        event, payload=msgspec.structs.replace(event.payload, personal=None)
    )
    snap = {"detections": {DET: {"id": DET, "personal": personal, "summary": summary}}}
    assert redact_snapshot(snap, ids) == [DET]
    assert snap["detections"][DET] == {"id": DET, "personal": None, "summary": summary}
