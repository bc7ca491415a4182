"""The rules, each alone on hand-made pictures (both sides of every threshold), then in
the fold: hazard zones that turn with the wind, units inside them, silence over time."""

from __future__ import annotations

import math
from typing import Any

import pytest

from cockpit.events import (
    ClockEvent,
    Context,
    Detection,
    DetectionEvent,
    Event,
    Hazard,
    HazardEvent,
    HazardRemoved,
    HazardRemovedEvent,
    Position,
    PositionEvent,
    Reading,
    Readings,
    ReadingsEvent,
    Source,
    Status,
    StatusEvent,
    WeatherEvent,
    WeatherObservation,
    with_seq,
)
from cockpit.geo import bearing_deg, destination, distance_m
from cockpit.rules import links, thresholds, water, wind, zones
from cockpit.rules.config import RuleConfig
from cockpit.situation import Situation
from tests.factories import at, numbered, position, readings

CFG = RuleConfig()
FIRE = (51.5270, 7.4445)


def entity(kind: str = "robot", **values: float) -> dict[str, Any]:
    return {
        "id": "e-1",
        "kind": kind,
        "lat": None,
        "lon": None,
        "last_reported": 0.0,
        "status": {},
        "readings": {k: {"value": v, "unit": "", "observed_at": 0.0} for k, v in values.items()},
    }


def rules_of(wishes: list[Any]) -> dict[str, str]:
    return {w.rule: w.severity for w in wishes}


# --- each rule alone ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gas", "below", "warning", "critical"),
    [
        ("co", 32.9, 33.0, 200.0),
        ("h2s", 4.9, 5.0, 10.0),
        ("ch4", 9.9, 10.0, 20.0),
        ("lel", 9.9, 10.0, 20.0),
    ],
)
def test_gas_over_its_limits(gas: str, below: float, warning: float, critical: float) -> None:
    assert thresholds.gas_threshold(entity(**{gas: below}), CFG) == []
    assert rules_of(thresholds.gas_threshold(entity(**{gas: warning}), CFG)) == {
        f"gas_threshold.{gas}": "warning"
    }
    assert rules_of(thresholds.gas_threshold(entity(**{gas: critical}), CFG)) == {
        f"gas_threshold.{gas}": "critical"
    }


def test_oxygen_alarms_when_it_falls() -> None:
    assert thresholds.gas_threshold(entity(o2=20.9), CFG) == []
    assert thresholds.gas_threshold(entity(o2=19.1), CFG) == []
    assert rules_of(thresholds.gas_threshold(entity(o2=18.9), CFG)) == {
        "gas_threshold.o2": "warning"
    }
    assert rules_of(thresholds.gas_threshold(entity(o2=16.5), CFG)) == {
        "gas_threshold.o2": "critical"
    }


def test_gas_text_names_gas_value_and_unit_in_german() -> None:
    (wish,) = thresholds.gas_threshold(entity(co=45.25), CFG)
    assert wish.text == "CO 45,2 ppm" or wish.text == "CO 45,3 ppm"


def test_battery_low_both_sides() -> None:
    assert thresholds.battery_low(entity(battery=25.0), CFG) == []
    assert rules_of(thresholds.battery_low(entity(battery=24.0), CFG)) == {"battery_low": "warning"}
    assert rules_of(thresholds.battery_low(entity(battery=9.0), CFG)) == {"battery_low": "critical"}
    ent = entity()
    ent["status"] = {"battery_pct": 12.0}  # the status wins over a reading
    assert rules_of(thresholds.battery_low(ent, CFG)) == {"battery_low": "warning"}


def test_link_lost_for_robots_and_drones_only() -> None:
    for kind in ("robot", "drone"):
        ent = entity(kind)
        ent["status"] = {"link": "ok"}
        assert links.link_lost(ent, CFG) == []
        ent["status"] = {"link": "lost"}
        assert rules_of(links.link_lost(ent, CFG)) == {"link_lost": "critical"}
        ent["status"] = {"link": "degraded"}
        assert rules_of(links.link_lost(ent, CFG)) == {"link_lost": "warning"}
    unit = entity("unit")
    unit["status"] = {"link": "lost"}
    assert links.link_lost(unit, CFG) == []


def test_entity_stale_after_its_kinds_limit() -> None:
    limits = {"robot": 10.0, "unit": 30.0}
    robot = entity("robot")
    assert links.stale(robot, 10.0, limits, CFG) == []
    assert rules_of(links.stale(robot, 10.5, limits, CFG)) == {"stale": "warning"}
    unit = entity("unit")  # not a watched kind by default
    assert links.stale(unit, 1000.0, limits, CFG) == []


def test_feed_stale_only_after_the_feeds_limit() -> None:
    last = {"telemetry": 0.0, "ttn": 0.0}
    assert links.feed_stale(last, 60.0, CFG) == {}
    assert set(links.feed_stale(last, 61.0, CFG)) == {"telemetry"}
    assert set(links.feed_stale(last, 1801.0, CFG)) == {"telemetry", "ttn"}


def test_water_mark_and_rise() -> None:
    cfg = RuleConfig(water_marks_cm={"e-1": 400.0}, water_rise_cm_h=10.0)
    assert water.water(entity("sensor", water_level=400.0, water_rise=10.0), cfg) == []
    assert rules_of(water.water(entity("sensor", water_level=401.0), cfg)) == {
        "water.level": "critical"
    }
    assert rules_of(water.water(entity("sensor", water_rise=10.5), cfg)) == {
        "water.rise": "warning"
    }
    # no mark configured for this gauge: the level alone never alarms
    assert water.water(entity("sensor", water_level=9999.0), RuleConfig()) == []


def test_wind_shift_over_45_degrees_within_10_minutes() -> None:
    steady = [(0.0, 270.0, 4.0), (300.0, 300.0, 4.0), (590.0, 310.0, 4.0)]
    assert wind.wind_shift(steady, 590.0, CFG) == []  # 40°
    turned = [(0.0, 270.0, 4.0), (300.0, 300.0, 4.0), (590.0, 320.0, 4.0)]
    assert rules_of(wind.wind_shift(turned, 590.0, CFG)) == {"wind_shift": "warning"}
    # the same turn spread over more than the window is no shift
    slow = [(0.0, 270.0, 4.0), (601.0, 320.0, 4.0)]
    assert wind.wind_shift(slow, 601.0, CFG) == []
    # across north: 350° -> 20° is 30°, not 330°
    assert wind.wind_shift([(0.0, 350.0, 4.0), (60.0, 20.0, 4.0)], 60.0, CFG) == []
    # calm readings carry no direction
    assert wind.wind_shift([(0.0, 90.0, 0.2), (60.0, 270.0, 4.0)], 60.0, CFG) == []


def test_sector_opens_wider_as_the_wind_weakens() -> None:
    angles = [CFG.sector_angle(v) for v in (8.0, 5.0, 4.0, 2.0, 0.5)]
    assert angles == sorted(angles)
    assert angles[0] == 45.0 and angles[-1] == 360.0


def _sector(wind_from: float, speed: float) -> dict[str, Any]:
    src: zones.Source = {
        "id": "h1",
        "lat": FIRE[0],
        "lon": FIRE[1],
        "label": "Brand",
        "severity": "critical",
        "polygon": None,
    }
    w = {"station": "ws", "dir_deg": wind_from, "speed_mps": speed, "observed_at": 0.0}
    danger, sector = zones.zones_for(src, w, CFG)
    assert danger["kind"] == "danger_area" and sector["kind"] == "downwind_sector"
    return sector


def test_sector_points_downwind_and_contains_what_lies_there() -> None:
    sector = _sector(270.0, 4.0)  # wind from the west: smoke to the east
    geom = sector["geometry"]
    east = destination(*FIRE, 90.0, 500.0)
    west = destination(*FIRE, 270.0, 500.0)
    assert zones.contains(geom, *east)
    assert not zones.contains(geom, *west)
    # 60° in all at 4 m/s: 25° off the axis is inside, 35° is not
    assert zones.contains(geom, *destination(*FIRE, 115.0, 500.0))
    assert not zones.contains(geom, *destination(*FIRE, 125.0, 500.0))
    beyond = destination(*FIRE, 90.0, CFG.sector_length_m + 50)
    assert not zones.contains(geom, *beyond)


def test_a_unit_inside_a_zone_wants_an_alert_outside_not() -> None:
    sector = _sector(270.0, 4.0)
    sector["bbox"] = zones.bbox(sector["geometry"])
    inside = entity("unit")
    inside["lat"], inside["lon"] = destination(*FIRE, 90.0, 300.0)
    outside = entity("unit")
    outside["lat"], outside["lon"] = destination(*FIRE, 0.0, 300.0)
    assert rules_of(zones.zone_wishes(inside, [sector], CFG)) == {"in_zone.h1:sector": "warning"}
    assert zones.zone_wishes(outside, [sector], CFG) == []
    drone = entity("drone")  # drones fly over; they do not raise it
    drone["lat"], drone["lon"] = inside["lat"], inside["lon"]
    assert zones.zone_wishes(drone, [sector], CFG) == []


def test_nearest_fresh_station_gives_the_wind() -> None:
    near = {
        "id": "near",
        "callsign": None,
        "lat": FIRE[0] + 0.001,
        "lon": FIRE[1],
        "readings": {
            "wind_dir": {"value": 90.0, "observed_at": 0.0},
            "wind_speed": {"value": 3.0, "observed_at": 0.0},
        },
    }
    far = {
        "id": "far",
        "callsign": None,
        "lat": FIRE[0] + 0.05,
        "lon": FIRE[1],
        "readings": {
            "wind_dir": {"value": 200.0, "observed_at": 1000.0},
            "wind_speed": {"value": 3.0, "observed_at": 1000.0},
        },
    }
    assert zones.nearest_wind([near, far], *FIRE, 100.0, 900.0)["station"] == "near"
    got = zones.nearest_wind([near, far], *FIRE, 1000.0, 900.0)
    assert got["station"] == "far" and not got["stale"]  # the near one is stale by now
    only = zones.nearest_wind([near], *FIRE, 1000.0, 900.0)
    assert only["station"] == "near" and only["stale"]


# --- in the fold --------------------------------------------------------------------------


def _env(t: float, feed: str = "ui", actor: str | None = "el") -> dict[str, Any]:
    return {
        "incident": "test",
        "source": Source(feed=feed, device="dev-1"),  # type: ignore[arg-type]
        "observed_at": at(t),
        "received_at": at(t),
        "context": Context(actor=actor),
    }


def weather(t: float, wind_from: float, speed: float, station: str = "ws-1") -> Event:
    lat, lon = destination(*FIRE, 180.0, 400.0)
    return WeatherEvent(
        **_env(t, "ttn", None),
        payload=WeatherObservation(
            station=station, lat=lat, lon=lon, wind_dir_deg=wind_from, wind_speed_mps=speed
        ),
    )


def drawn(t: float, hid: str = "h1") -> Event:
    geometry = {"type": "Point", "coordinates": [FIRE[1], FIRE[0]]}
    return HazardEvent(**_env(t), payload=Hazard(id=hid, label="Brand Halle 3", geometry=geometry))


def tick(t: float) -> Event:
    return ClockEvent(**_env(t, "cockpit", None))


def active(sit: Situation, family: str) -> list[dict[str, Any]]:
    return [a for a in sit.alerts.values() if a["active"] and a["rule"] == family]


def axis(sit: Situation, source: str = "h1") -> float:
    """The sector's axis: the circular mean of the bearings to its rim."""
    ring = sit.hazards[f"{source}:sector"]["geometry"]["coordinates"][0]
    rim = [(p[1], p[0]) for p in ring if distance_m(FIRE, (p[1], p[0])) > 1.0]
    x = sum(math.cos(math.radians(bearing_deg(FIRE, p))) for p in rim)
    y = sum(math.sin(math.radians(bearing_deg(FIRE, p))) for p in rim)
    return math.degrees(math.atan2(y, x)) % 360.0


def test_sector_turns_with_the_wind_and_alerts_follow_the_unit() -> None:
    crew_east = destination(*FIRE, 90.0, 400.0)
    sit = Situation(incident="test")
    sit.apply_all(
        numbered(
            [
                weather(0, 270.0, 4.0),
                drawn(1),
                position("hlf-1", *crew_east, 2, kind="unit", callsign="HLF 1"),
            ]
        )
    )
    assert sit.hazards["h1:danger"]["kind"] == "danger_area"
    assert abs(axis(sit) - 90.0) < 5
    (alert,) = active(sit, "in_zone")
    assert alert["entity"] == "hlf-1" and alert["severity"] == "warning"
    assert any(j["ref"] == alert["id"] for j in sit.journal)  # in the Einsatztagebuch
    # the wind turns to come from the east: the sector swings west, the crew is clear
    sit.apply(_seq(weather(60, 90.0, 4.0), 4))
    assert abs(axis(sit) - 270.0) < 5
    assert active(sit, "in_zone") == []
    assert alert["cleared_at"] is not None


def test_walking_into_the_danger_area_is_critical() -> None:
    sit = Situation(incident="test")
    sit.apply_all(numbered([drawn(0), position("trupp-1", *FIRE, 1, kind="person")]))
    (alert,) = active(sit, "in_zone")
    assert alert["severity"] == "critical" and alert["detail"] == "in_zone.h1:danger"
    assert "h1:sector" not in sit.hazards  # no station reports wind: no sector


def test_removing_the_hazard_removes_its_zones_and_clears_alerts() -> None:
    sit = Situation(incident="test")
    events = [weather(0, 270.0, 4.0), drawn(1), position("hlf-1", *FIRE, 2)]
    events.append(HazardRemovedEvent(**_env(3), payload=HazardRemoved(id="h1")))
    sit.apply_all(numbered(events))
    assert not [h for h in sit.hazards if h.startswith("h1")]
    assert active(sit, "in_zone") == []


def test_a_confirmed_fire_detection_is_a_source() -> None:
    def det(t: float, state: str) -> Event:
        return DetectionEvent(
            **_env(t, "video"),
            payload=Detection(
                id="det-1",
                source="video",
                category="hotspot",
                lat=FIRE[0],
                lon=FIRE[1],
                state=state,
            ),  # type: ignore[arg-type]
        )

    sit = Situation(incident="test")
    sit.apply_all(numbered([weather(0, 270.0, 4.0), det(1, "new")]))
    assert "det-1:sector" not in sit.hazards  # not yet confirmed
    sit.apply(_seq(det(2, "confirmed"), 3))
    assert abs(axis(sit, "det-1") - 90.0) < 5


def test_silence_raises_stale_on_the_clock_and_a_report_clears_it() -> None:
    sit = Situation(incident="test")
    sit.apply_all(numbered([position("robot-1", *FIRE, 0, kind="robot"), tick(10)]))
    assert active(sit, "stale") == []  # 10 s is the robot's limit: not yet
    sit.apply_all([_seq(tick(11), 3)])
    (alert,) = active(sit, "stale")
    assert alert["entity"] == "robot-1"
    sit.apply_all([_seq(position("robot-1", *FIRE, 12, kind="robot"), 4)])
    assert active(sit, "stale") == []


def test_a_silent_feed_raises_and_clears() -> None:
    sit = Situation(incident="test")
    sit.apply_all(numbered([position("hlf-1", *FIRE, 0), tick(60)]))
    assert active(sit, "feed_stale") == []
    sit.apply_all([_seq(tick(61), 3)])
    (alert,) = active(sit, "feed_stale")
    assert alert["params"]["feed"] == "telemetry" and alert["entity"] is None
    sit.apply_all([_seq(position("hlf-1", *FIRE, 62), 4)])
    assert active(sit, "feed_stale") == []


def test_link_lost_from_the_robots_status() -> None:
    def link(t: float, state: str) -> Event:
        return StatusEvent(
            **_env(t, "rosbridge", None),
            payload=Status(entity="robot-1", entity_kind="robot", link=state),  # type: ignore[arg-type]
        )

    sit = Situation(incident="test")
    sit.apply_all(numbered([link(0, "ok"), link(1, "lost")]))
    (alert,) = active(sit, "link_lost")
    assert alert["severity"] == "critical"
    sit.apply_all([_seq(link(2, "ok"), 3)])
    assert active(sit, "link_lost") == []


def test_wind_shift_in_the_fold() -> None:
    sit = Situation(incident="test")
    sit.apply_all(numbered([weather(0, 270.0, 4.0), weather(300, 330.0, 4.0)]))
    (alert,) = active(sit, "wind_shift")
    assert alert["entity"] == "ws-1"


def test_gas_rules_still_fire_from_readings() -> None:
    sit = Situation(incident="test")
    sit.apply_all(numbered([readings("robot-1", 0, co=250.0)]))
    (alert,) = active(sit, "gas_threshold")
    assert alert["severity"] == "critical"


def test_zones_and_alerts_survive_snapshot_and_restore() -> None:
    crew_east = destination(*FIRE, 90.0, 400.0)
    events = numbered(
        [weather(0, 270.0, 4.0), drawn(1), position("hlf-1", *crew_east, 2, kind="unit")]
    )
    sit = Situation(incident="test")
    sit.apply_all(events)
    copy = Situation.restore(sit.snapshot())
    turn = _seq(weather(60, 90.0, 4.0), 4)
    sit.apply(turn)
    copy.apply(turn)
    assert copy.hazards == sit.hazards
    assert copy.alerts == sit.alerts
    assert active(copy, "in_zone") == []


def _seq(ev: Event, seq: int) -> Event:
    return with_seq(ev, seq)


def test_the_clock_is_due_only_when_time_alone_changes_something() -> None:
    sit = Situation(incident="test")
    assert sit.next_deadline() is None  # nothing that could go stale
    sit.apply_all(numbered([position("robot-1", *FIRE, 0, kind="robot"), weather(0, 270.0, 4.0)]))
    sit.apply_all([_seq(drawn(0), 3)])
    t0 = at(0).timestamp()
    assert sit.next_deadline() == t0 + 10.0  # the robot's limit comes first
    sit.apply_all([_seq(tick(11), 4)])
    # the robot is alerted; next: the telemetry feed's 60 s
    assert sit.next_deadline() == t0 + 60.0
    sit.apply_all([_seq(tick(61), 5)])
    # next: the wind under the sector turns old (a sensor's 900 s), then the TTN feed's
    assert sit.next_deadline() == t0 + 900.0
    sit.apply_all([_seq(tick(901), 6)])
    assert sit.hazards["h1:sector"]["wind"]["stale"] is True
    assert sit.next_deadline() == t0 + 1800.0
    sit.apply_all([_seq(tick(1801), 7)])
    assert sit.next_deadline() is None  # everything that can go stale has


def test_an_alert_that_comes_back_soon_is_the_same_alert() -> None:
    """A crew at the edge of the sector in a wobbling wind: one alert going on and off,
    not a new alert and journal line each time; once acknowledged, a new one."""
    edge = destination(*FIRE, 90.0, 400.0)
    sit = Situation(incident="test")
    sit.apply_all(
        numbered(
            [
                weather(0, 270.0, 4.0),
                drawn(1),
                position("hlf-1", *edge, 2),
                weather(10, 90.0, 4.0),  # away
                weather(20, 270.0, 4.0),  # back
                weather(30, 90.0, 4.0),
                weather(40, 270.0, 4.0),
            ]
        )
    )
    zone_alerts = [a for a in sit.alerts.values() if a["rule"] == "in_zone"]
    assert len(zone_alerts) == 1 and zone_alerts[0]["active"]
    lines = [j for j in sit.journal if j["ref"] == zone_alerts[0]["id"]]
    assert len(lines) == 1
    from tests.factories import ack

    sit.apply_all([_seq(weather(50, 90.0, 4.0), 8), _seq(ack(zone_alerts[0]["id"], 51), 9)])
    sit.apply_all([_seq(weather(60, 270.0, 4.0), 10)])
    assert len([a for a in sit.alerts.values() if a["rule"] == "in_zone"]) == 2


def test_an_alert_back_after_five_minutes_is_a_new_alert() -> None:
    sit = Situation(incident="test")
    sit.apply_all(
        numbered(
            [
                readings("robot-1", 0, co=50.0),
                readings("robot-1", 1, co=10.0),
                readings("robot-1", 302, co=50.0),
            ]
        )
    )
    assert len([a for a in sit.alerts.values() if a["rule"] == "gas_threshold"]) == 2


def test_removing_an_entity_clears_its_alerts() -> None:
    from tests.factories import removed

    sit = Situation(incident="test")
    sit.apply_all(
        numbered([drawn(0), position("trupp-1", *FIRE, 1, kind="person"), removed("trupp-1", 2)])
    )
    assert active(sit, "in_zone") == []
    assert sit.view(at(3).timestamp())["alerts"][0]["active"] is False


def test_a_gas_in_a_unit_its_limit_is_not_in_is_flagged_not_compared() -> None:
    def gas(name: str, value: float, unit: str) -> dict[str, Any]:
        ent = entity()
        ent["readings"][name] = {"value": value, "unit": unit, "observed_at": 0.0}
        return ent

    (wish,) = thresholds.gas_threshold(gas("ch4", 50.0, "ppm"), CFG)
    assert wish.severity == "warning" and "Einheit ppm" in wish.text
    assert rules_of(thresholds.gas_threshold(gas("ch4", 25.0, "%LEL"), CFG)) == {
        "gas_threshold.ch4": "critical"
    }
    assert rules_of(thresholds.gas_threshold(gas("ch4", 25.0, "%UEG"), CFG)) == {
        "gas_threshold.ch4": "critical"
    }
    assert thresholds.gas_threshold(gas("o2", 20.9, "%"), CFG) == []
    assert rules_of(thresholds.gas_threshold(gas("co", 40.0, ""), CFG)) == {
        "gas_threshold.co": "warning"
    }


def test_wind_in_kmh_is_read_as_kmh() -> None:
    """18 km/h is 5 m/s: the narrow sector; as m/s it would be 45° too, but 9 km/h
    (2.5 m/s) must open 90°, not the 45° that 9 m/s would give."""
    station = ReadingsEvent(
        incident="test",
        source=Source(feed="telemetry", device="dev-1"),
        observed_at=at(0),
        received_at=at(0),
        payload=Readings(
            entity="ws-2",
            entity_kind="sensor",
            values={
                "wind_dir": Reading(value=270.0, unit="°"),
                "wind_speed": Reading(value=9.0, unit="km/h"),
            },
        ),
    )
    where = PositionEvent(
        incident="test",
        source=Source(feed="telemetry", device="dev-1"),
        observed_at=at(0),
        received_at=at(0),
        payload=Position(entity="ws-2", entity_kind="sensor", lat=FIRE[0], lon=FIRE[1] + 0.001),
    )
    sit = Situation(incident="test")
    sit.apply_all(numbered([where, station, drawn(1)]))
    sector = sit.hazards["h1:sector"]
    assert sector["angle_deg"] == 90.0 and abs(sector["wind"]["speed_mps"] - 2.5) < 1e-9


def test_a_wind_shift_clears_when_the_turn_has_left_the_window() -> None:
    sit = Situation(incident="test")
    sit.apply_all(numbered([weather(0, 270.0, 4.0), weather(300, 330.0, 4.0)]))
    assert active(sit, "wind_shift")
    deadline = sit.next_deadline()
    assert deadline is not None and deadline <= at(600).timestamp()
    for n, t in enumerate((601, 901, 2000), start=3):
        sit.apply_all([_seq(tick(t), n)])
    assert active(sit, "wind_shift") == []


def test_a_link_state_alone_does_not_make_a_silent_robot_look_alive() -> None:
    def link(t: float, state: str) -> Event:
        return StatusEvent(
            **_env(t, "rosbridge", None),
            payload=Status(entity="robot-1", entity_kind="robot", link=state),  # type: ignore[arg-type]
        )

    sit = Situation(incident="test")
    sit.apply_all(numbered([position("robot-1", *FIRE, 0, kind="robot"), link(8, "lost")]))
    view = sit.view(at(11).timestamp())
    (robot,) = view["entities"]
    assert robot["stale"] is True and robot["age_s"] == 11.0
