"""The picture as a pure fold: determinism, staleness, alerts, warnings, snapshots."""

from __future__ import annotations

from datetime import timedelta

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cockpit.events import (
    Context,
    Detection,
    DetectionEvent,
    EntityRemoved,
    EntityRemovedEvent,
    Event,
    Hazard,
    HazardEvent,
    HazardRemoved,
    HazardRemovedEvent,
    Source,
    Warning,
    WarningEvent,
    WeatherEvent,
    WeatherObservation,
    with_seq,
)
from cockpit.situation import Situation
from tests.factories import T0, ack, at, journal, numbered, position, readings, status

NOW = T0.timestamp()


def fold(events: list[Event], **kw: object) -> Situation:
    sit = Situation(incident="test", **kw)  # type: ignore[arg-type]
    sit.apply_all(events)
    return sit


def test_entity_has_latest_position_age_and_goes_stale_by_kind() -> None:
    sit = fold(numbered([position("hlf-1", 51.5, 7.4, 0), position("hlf-1", 51.501, 7.401, 5)]))
    fresh = sit.view(NOW + 10)["entities"][0]
    assert (fresh["lat"], fresh["lon"]) == (51.501, 7.401)
    assert fresh["age_s"] == 5.0 and fresh["stale"] is False
    old = sit.view(NOW + 40)["entities"][0]  # units: stale after 30 s without a report
    assert old["age_s"] == 35.0 and old["stale"] is True
    drone = fold(numbered([position("uav-1", 51.5, 7.4, 0, kind="drone")]))
    assert drone.view(NOW + 6)["entities"][0]["stale"] is True  # drones: after 5 s


def test_stale_threshold_is_configurable_per_kind() -> None:
    sit = fold(numbered([position("hlf-1", 51.5, 7.4, 0)]), stale_after={"unit": 120.0})
    assert sit.view(NOW + 100)["entities"][0]["stale"] is False


def test_late_report_keeps_newer_position_but_counts_as_alive() -> None:
    sit = fold(
        numbered([position("rtw-1", 51.6, 7.5, 10), position("rtw-1", 51.5, 7.4, 2, received=12)])
    )
    ent = sit.view(NOW + 12)["entities"][0]
    assert (ent["lat"], ent["lon"]) == (51.6, 7.5)


def test_clock_running_ahead_is_capped_at_arrival() -> None:
    # A device whose clock is 10 minutes fast must not look fresher than it is.
    ev = position("robot-1", 51.5, 7.4, 600, received=0, kind="robot")
    sit = fold(numbered([ev]))
    ent = sit.view(NOW + 20)["entities"][0]
    assert ent["age_s"] == 20.0 and ent["stale"] is True


def test_track_is_bounded_and_ordered() -> None:
    events = numbered([position("dlk-1", 51.5 + i * 1e-4, 7.4, i) for i in range(50)])
    sit = fold(events, track_len=10)
    track = sit.view(NOW + 50)["entities"][0]["track"]
    assert len(track) == 10
    assert track[-1] == [51.5 + 49 * 1e-4, 7.4]
    assert track[0][0] < track[-1][0]


def test_gas_alert_raised_escalated_cleared_and_acknowledged() -> None:
    sit = Situation(incident="test")
    deltas = sit.apply(readings("robot-1", 0, 1, co=40.0))
    alert = sit.view(NOW)["alerts"][0]
    assert alert["severity"] == "warning" and alert["entity"] == "robot-1"
    assert "CO 40,0 ppm" in alert["text"]
    assert {d.layer for d in deltas} == {"entities", "alerts", "journal"}
    sit.apply(ack(alert["id"], 1, 2, actor="zugfuehrer"))
    acked = sit.alerts[alert["id"]]
    assert acked["acknowledged_by"] == "zugfuehrer"
    sit.apply(readings("robot-1", 2, 3, co=250.0))  # worse: must be seen again
    assert sit.alerts[alert["id"]]["severity"] == "critical"
    assert sit.alerts[alert["id"]]["acknowledged_by"] is None
    sit.apply(readings("robot-1", 3, 4, co=5.0))
    assert sit.alerts[alert["id"]]["active"] is False
    journal_texts = [j["text"] for j in sit.view(NOW + 4)["journal"]]
    assert journal_texts == ["CO 40,0 ppm", "Quittiert: CO 40,0 ppm", "CO 250,0 ppm"]


def test_oxygen_alert_when_falling_and_battery_alert() -> None:
    sit = fold(numbered([readings("robot-1", 0, o2=18.0), status("uav-1", 1, battery=8.0)]))
    rules = {(a["detail"], a["severity"]) for a in sit.view(NOW + 1)["alerts"]}
    assert rules == {("gas_threshold.o2", "warning"), ("battery_low", "critical")}


def test_journal_keeps_author_and_time() -> None:
    sit = fold(numbered([journal("Wasserversorgung steht", 3, actor="el-1")]))
    entry = sit.view(NOW + 3)["journal"][0]
    assert entry["author"] == "el-1" and entry["text"] == "Wasserversorgung steht"
    assert entry["t"] == "2026-11-26T10:00:03.000000Z"


def _warning(
    wid: str,
    t: float,
    msg_type: str = "Alert",
    refs: tuple[str, ...] = (),
    expires_in: float = 3600,
) -> Event:
    return WarningEvent(
        incident="test",
        source=Source(feed="cap", device="dwd"),
        observed_at=at(t),
        received_at=at(t),
        payload=Warning(
            id=wid,
            sender="opendata@dwd.de",
            msg_type=msg_type,  # type: ignore[arg-type]
            references=list(refs),
            event="STARKREGEN",
            severity="Moderate",
            expires=at(t) + timedelta(seconds=expires_in),
        ),
    )


def test_cap_update_replaces_cancel_removes_and_expired_leave() -> None:
    sit = fold(numbered([_warning("w1", 0), _warning("w2", 10, "Update", ("w1",))]))
    shown = sit.view(NOW + 11)["warnings"]
    assert [w["id"] for w in shown] == ["w2"]
    assert shown[0]["received"] == "2026-11-26T10:00:10.000000Z" and shown[0]["age_s"] == 1.0
    sit.apply(with_seq(_warning("w3", 20, "Cancel", ("w2",)), 3))
    assert sit.view(NOW + 21)["warnings"] == []
    sit.apply(with_seq(_warning("w4", 30, expires_in=60), 4))
    assert len(sit.view(NOW + 60)["warnings"]) == 1
    assert sit.view(NOW + 91)["warnings"] == []


def test_redelivered_event_does_not_change_the_picture() -> None:
    events = numbered([readings("robot-1", 0, co=40.0), readings("robot-1", 1, co=50.0)])
    sit = fold(events)
    before = sit.snapshot()
    assert sit.apply(events[0]) == []
    assert sit.snapshot() == before


# --- determinism: restore(snapshot at k) + fold(rest) == fold(all) ----------------------

_entities = st.sampled_from(["hlf-1", "dlk-1", "robot-1", "uav-1"])
_t = st.integers(min_value=0, max_value=600)


@st.composite
def _event(draw: st.DrawFn) -> Event:
    kind = draw(
        st.sampled_from(
            [
                "pos",
                "read",
                "status",
                "journal",
                "ack",
                "warn",
                "hazard",
                "unhazard",
                "remove",
                "weather",
            ]
        )
    )
    t = draw(_t)
    received = t + draw(st.integers(min_value=-30, max_value=30))
    ent = draw(_entities)
    if kind == "pos":
        return position(
            ent,
            draw(st.floats(51.4, 51.6)),
            draw(st.floats(7.3, 7.6)),
            t,
            received=max(0, received),
            heading_deg=draw(st.none() | st.floats(0, 360)),
        )
    if kind == "read":
        return readings(
            ent,
            t,
            co=draw(st.floats(0, 400)),
            o2=draw(st.floats(15, 21)),
            battery=draw(st.floats(0, 100)),
        )
    if kind == "status":
        return status(ent, t, battery=draw(st.none() | st.floats(0, 100)))
    if kind == "journal":
        return journal(draw(st.text(min_size=1, max_size=20)), t)
    if kind == "ack":
        rule = draw(st.sampled_from(["gas_threshold.co", "gas_threshold.o2", "battery_low"]))
        return ack(f"{rule}:{ent}:{draw(st.integers(1, 40))}", t)
    if kind == "warn":
        wid = f"w{draw(st.integers(1, 4))}"
        refs = (f"w{draw(st.integers(1, 4))}",)
        return _warning(
            wid,
            t,
            draw(st.sampled_from(["Alert", "Update", "Cancel"])),
            refs,
            draw(st.integers(1, 900)),
        )
    src = Source(feed="ui", device="el")
    env = {
        "incident": "test",
        "source": src,
        "observed_at": at(t),
        "received_at": at(t),
        "context": Context(actor="el"),
    }
    hid = f"h{draw(st.integers(1, 3))}"
    if kind == "hazard":
        geom = {"type": "Point", "coordinates": [7.4, 51.5]}
        return HazardEvent(**env, payload=Hazard(id=hid, label="Gefahrenbereich", geometry=geom))  # type: ignore[arg-type]
    if kind == "unhazard":
        return HazardRemovedEvent(**env, payload=HazardRemoved(id=hid))  # type: ignore[arg-type]
    if kind == "remove":
        return EntityRemovedEvent(**env, payload=EntityRemoved(entity=ent))  # type: ignore[arg-type]
    return WeatherEvent(
        **env,  # type: ignore[arg-type]
        payload=WeatherObservation(
            station="ws-1",
            lat=51.52,
            lon=7.44,
            wind_speed_mps=draw(st.floats(0, 30)),
            wind_dir_deg=draw(st.floats(0, 360)),
        ),
    )


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(_event(), min_size=1, max_size=60), st.data())
def test_restore_snapshot_then_fold_rest_equals_fold_all(
    events: list[Event], data: st.DataObject
) -> None:
    events = numbered(events)
    k = data.draw(st.integers(min_value=0, max_value=len(events)))
    whole = fold(events, track_len=8, journal_len=20)
    head = fold(events[:k], track_len=8, journal_len=20)
    # The snapshot goes through JSON, as it does on disk and over Redis.
    stored = orjson.loads(orjson.dumps(head.snapshot()))
    resumed = Situation.restore(stored, track_len=8, journal_len=20)
    resumed.apply_all(events[k:])
    assert resumed.snapshot() == whole.snapshot()
    now = NOW + 700
    assert resumed.view(now) == whole.view(now)


def test_detections_and_hazards_say_how_old_they_are() -> None:
    env = {
        "incident": "test",
        "source": Source(feed="ui", device="el"),
        "context": Context(actor="el"),
    }
    geom = {
        "type": "Polygon",
        "coordinates": [[[7.44, 51.52], [7.45, 51.52], [7.45, 51.53], [7.44, 51.52]]],
    }
    sit = fold(
        numbered(
            [
                HazardEvent(
                    **env,
                    observed_at=at(5),
                    received_at=at(5),
                    payload=Hazard(id="h1", geometry=geom),
                ),  # type: ignore[arg-type]
                DetectionEvent(
                    **env,  # type: ignore[arg-type]
                    observed_at=at(8),
                    received_at=at(8),
                    payload=Detection(
                        id="d1", source="manual", category="person", lat=51.52, lon=7.44
                    ),
                ),
            ]
        )
    )
    view = sit.view(NOW + 20)
    assert view["hazards"][0]["age_s"] == 15.0 and view["hazards"][0]["drawn_at"].endswith(
        "05.000000Z"
    )
    assert view["detections"][0]["age_s"] == 12.0
