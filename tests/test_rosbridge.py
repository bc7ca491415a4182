"""rosbridge v2 feed: ROS messages shaped as their definitions say, as rosbridge renders
them (ROS 1 and ROS 2 stamps, null for NaN), the simulator's real rosbridge server on a
free port against a started cockpit (picture, /healthz, the robot's server killed and
restarted), garbage frames, and hypothesis on anything a robot might send."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cockpit.events import (
    Event,
    PositionEvent,
    ReadingsEvent,
    StatusEvent,
    event_to_json,
    parse_event,
)
from cockpit.geo import distance_m, euler_to_quaternion, local_ne
from cockpit.settings import RosRobot, SettingsError, load_settings
from feeds.rosbridge import BadMessage, GasTopic, Robot, RosbridgeTranslator, subscribe_ops
from feeds.rosbridge_client import BACKOFF_CAP_S, RobotLink, RosbridgeFeed
from feeds.sim.rosbridge import RosbridgeServer, gas_robot, odom_robot

NOW = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)
SEC = int(NOW.timestamp())
LAT, LON = 51.5287, 7.4441
STAMP = NOW - timedelta(milliseconds=750)  # the headers' default stamp, just received

ROBOT = Robot(
    entity="robot-2",
    url="ws://10.0.0.5:9090",
    callsign="Robo 2",
    origin=(LAT, LON, 90.0),  # east-north-up odom frame
    throttle_ms=200,
    fix="/gps/fix",
    odom="/odom",
    battery="/battery_state",
    temperature="/temp",
    gases={
        "co": GasTopic("/gas/co", "std_msgs/Float32", "data", "ppm"),
        "ch4": GasTopic("/gas/ch4", "std_msgs/Float32", "data", "%UEG"),
        "h2s": GasTopic("/gas/h2s", "acme_msgs/GasReading", "reading.value", "ppm"),
    },
)


# --- messages as the ROS message definitions and rosbridge shape them ------------------------


def ros2_header(
    sec: int = SEC - 1, nanosec: int = 250_000_000, frame: str = "gps"
) -> dict[str, Any]:
    return {"stamp": {"sec": sec, "nanosec": nanosec}, "frame_id": frame}


def ros1_header(
    secs: int = SEC - 1, nsecs: int = 250_000_000, frame: str = "gps"
) -> dict[str, Any]:
    return {"seq": 4711, "stamp": {"secs": secs, "nsecs": nsecs}, "frame_id": frame}


def navsatfix(
    lat: float | None = LAT,
    lon: float | None = LON,
    status: int = 0,
    header: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "header": header or ros2_header(),
        "status": {"status": status, "service": 1},
        "latitude": lat,
        "longitude": lon,
        "altitude": 71.5,
        "position_covariance": [4.0, 0.0, 0.0, 0.0, 9.0, 0.0, 0.0, 0.0, 16.0],
        "position_covariance_type": 2,
    }


def odometry(
    x: float, y: float, yaw_deg: float, vx: float = 0.5, header: dict[str, Any] | None = None
) -> dict[str, Any]:
    w, qx, qy, qz = euler_to_quaternion(0.0, 0.0, yaw_deg)
    return {
        "header": header or ros1_header(frame="odom"),
        "child_frame_id": "base_link",
        "pose": {
            "pose": {
                "position": {"x": x, "y": y, "z": 0.0},
                "orientation": {"x": qx, "y": qy, "z": qz, "w": w},
            },
            "covariance": [0.09 if i in (0, 7) else 0.0 for i in range(36)],
        },
        "twist": {
            "twist": {
                "linear": {"x": vx, "y": 0.0, "z": 0.0},
                "angular": {"x": 0.0, "y": 0.0, "z": 0.1},
            },
            "covariance": [0.0] * 36,
        },
    }


def battery_state(percentage: Any = 0.5, voltage: Any = 24.1) -> dict[str, Any]:
    return {  # ROS 2 sensor_msgs/BatteryState, every field
        "header": ros2_header(frame="battery"),
        "voltage": voltage,
        "temperature": None,
        "current": -3.5,
        "charge": None,
        "capacity": None,
        "design_capacity": 20.0,
        "percentage": percentage,
        "power_supply_status": 2,
        "power_supply_health": 1,
        "power_supply_technology": 2,
        "present": True,
        "cell_voltage": [4.01, 4.02],
        "cell_temperature": [],
        "location": "main",
        "serial_number": "",
    }


def temperature(celsius: Any = 48.5, header: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"header": header or ros2_header(frame="temp"), "temperature": celsius, "variance": 0.25}


def publish(topic: str, msg: Any) -> str:
    return json.dumps({"op": "publish", "topic": topic, "msg": msg})


def translate(*frames: str, robot: Robot = ROBOT, now: datetime = NOW) -> list[Event]:
    tr = RosbridgeTranslator("test-incident", robot)
    for frame in frames:
        tr.feed(frame, now)
    out = tr.due(now)
    for ev in out:  # what goes to the bus is a valid event that round-trips
        assert parse_event(event_to_json(ev)) == ev
    return out


def only(events: list[Event], kind: type[Any]) -> Any:
    (ev,) = [e for e in events if isinstance(e, kind)]
    return ev


# --- NavSatFix ----------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [ros2_header(), ros1_header()], ids=["ros2", "ros1"])
def test_navsatfix_becomes_a_position_stamped_by_its_header(header: dict[str, Any]) -> None:
    ev = only(translate(publish("/gps/fix", navsatfix(header=header))), PositionEvent)
    p = ev.payload
    assert (p.entity, p.entity_kind, p.callsign) == ("robot-2", "robot", "Robo 2")
    assert (p.lat, p.lon, p.alt_m) == (LAT, LON, 71.5)
    assert p.accuracy_m == 3.0  # sqrt of the larger of the east/north variances
    assert ev.observed_at == STAMP
    assert ev.source.feed == "rosbridge" and ev.source.device == "robot-2"


def test_a_stamp_later_than_the_server_clock_is_clamped_and_unset_or_old_ones_ignored() -> None:
    for header, expected in [
        (ros2_header(SEC + 3600), NOW),  # robot clock an hour ahead: never in the future
        (ros2_header(0, 0), NOW),  # ROS: zero stamp = not set
        (ros1_header(SEC - 3600), NOW),  # an hour behind: the receive time is better
        (ros1_header(SEC - 2, 0), NOW - timedelta(seconds=2)),
        (ros2_header(SEC, 250_000_000), NOW),  # 250 ms ahead of the server: clamped
    ]:
        (ev,) = translate(publish("/gps/fix", navsatfix(header=header)), now=NOW)
        assert ev.observed_at == expected, header


@pytest.mark.parametrize(
    ("lat", "lon", "status"),
    [(LAT, LON, -1), (None, None, 0), (0.0, 0.0, 0), (float("nan"), LON, 0)],
    ids=["no-fix", "null", "zero-zero", "nan"],
)
def test_a_fix_without_a_position_draws_nothing_and_is_not_a_reject(
    lat: float | None, lon: float | None, status: int
) -> None:
    tr = RosbridgeTranslator("test-incident", ROBOT)
    tr.feed(publish("/gps/fix", navsatfix(lat, lon, status)), NOW)
    assert tr.due(NOW) == [] and tr.counts["skipped"] == 1


@pytest.mark.parametrize(
    ("msg", "named"),
    [
        ({**navsatfix(), "latitude": "51.5"}, "latitude"),
        ({**navsatfix(), "latitude": 91.0}, "out of range"),
        ({**navsatfix(), "status": {"status": "fix"}}, "status.status"),
        ({**navsatfix(), "header": {"stamp": {"sec": "x"}}}, "header.stamp.sec"),
        ({k: v for k, v in navsatfix().items() if k != "longitude"}, "longitude"),
    ],
)
def test_a_malformed_navsatfix_is_rejected_naming_the_field(msg: Any, named: str) -> None:
    with pytest.raises(BadMessage, match=named.replace(".", r"\.")) as err:
        translate(publish("/gps/fix", msg))
    assert "/gps/fix" in str(err.value)


# --- Odometry -----------------------------------------------------------------------------------


def test_odometry_is_placed_from_the_origin_with_heading_and_speed() -> None:
    ev = only(translate(publish("/odom", odometry(30.0, 40.0, 90.0, vx=0.8))), PositionEvent)
    north, east = local_ne((LAT, LON), (ev.payload.lat, ev.payload.lon))
    assert abs(east - 30.0) < 0.01 and abs(north - 40.0) < 0.01  # ENU: x east, y north
    assert ev.payload.heading_deg == pytest.approx(0.0, abs=1e-6)  # yaw 90° in ENU = north
    assert ev.payload.speed_mps == pytest.approx(0.8)
    assert ev.payload.accuracy_m == pytest.approx(0.3)
    assert ev.observed_at == STAMP  # ROS 1 stamp


def test_odometry_origin_heading_rotates_the_frame() -> None:
    # The odom +x axis points north (heading 0): +y, to its left, points west.
    robot = Robot(entity="robot-3", url="ws://h:9090", origin=(LAT, LON, 0.0), odom="/odom")
    ev = only(translate(publish("/odom", odometry(10.0, 5.0, 0.0)), robot=robot), PositionEvent)
    north, east = local_ne((LAT, LON), (ev.payload.lat, ev.payload.lon))
    assert abs(north - 10.0) < 0.01 and abs(east + 5.0) < 0.01
    assert ev.payload.heading_deg == pytest.approx(0.0, abs=1e-6)
    ev = only(translate(publish("/odom", odometry(0, 0, -90.0)), robot=robot), PositionEvent)
    assert ev.payload.heading_deg == pytest.approx(90.0)  # turned right: east


def test_odometry_with_a_null_orientation_has_no_heading_and_nan_position_is_a_reject() -> None:
    msg = odometry(1.0, 2.0, 0.0)
    msg["pose"]["pose"]["orientation"] = {"x": None, "y": None, "z": None, "w": None}
    ev = only(translate(publish("/odom", msg)), PositionEvent)
    assert ev.payload.heading_deg is None
    msg["pose"]["pose"]["position"]["x"] = None
    with pytest.raises(BadMessage, match="position"):
        translate(publish("/odom", msg))
    with pytest.raises(BadMessage, match="from the origin"):
        translate(publish("/odom", odometry(2e5, 0.0, 0.0)))


def test_with_fix_and_odometry_the_fix_wins_while_there_is_one() -> None:
    tr = RosbridgeTranslator("test-incident", ROBOT)  # ROBOT has both
    tr.feed(publish("/gps/fix", navsatfix()), NOW)
    tr.feed(publish("/odom", odometry(100.0, 0.0, 0.0)), NOW + timedelta(seconds=1))
    (ev,) = tr.due(NOW + timedelta(seconds=1))
    assert (ev.payload.lat, ev.payload.lon) == (LAT, LON)  # type: ignore[union-attr]
    later = NOW + timedelta(seconds=6)  # no fix for 6 s: odometry takes over
    tr.feed(publish("/gps/fix", navsatfix(status=-1)), later)
    tr.feed(publish("/odom", odometry(100.0, 0.0, 0.0)), later)
    (ev,) = tr.due(later)
    assert distance_m((LAT, LON), (ev.payload.lat, ev.payload.lon)) == pytest.approx(100.0, abs=0.1)  # type: ignore[union-attr]


# --- BatteryState, Temperature, gases -----------------------------------------------------------


def test_battery_state_gives_the_percentage_and_the_voltage() -> None:
    events = translate(publish("/battery_state", battery_state(0.734, 24.1)))
    status = only(events, StatusEvent).payload
    assert status.battery_pct == 73.4 and status.link == "ok"
    readings = only(events, ReadingsEvent).payload.values
    assert readings["battery_v"].value == 24.1 and readings["battery_v"].unit == "V"


def test_battery_percentage_nan_is_unknown_and_out_of_range_is_a_reject() -> None:
    events = translate(publish("/battery_state", battery_state(None)))  # rosbridge's NaN
    assert not [e for e in events if isinstance(e, StatusEvent)]
    assert only(events, ReadingsEvent).payload.values["battery_v"].value == 24.1
    bare_nan = publish("/battery_state", battery_state(0.5)).replace(
        '"percentage": 0.5', '"percentage": NaN'
    )
    assert "NaN" in bare_nan  # some bridges send the bare token
    assert not [e for e in translate(bare_nan) if isinstance(e, StatusEvent)]
    with pytest.raises(BadMessage, match=r"percentage 73\.0 outside 0\.\.1"):
        translate(publish("/battery_state", battery_state(73.0)))


@pytest.mark.parametrize(
    "header", [ros2_header(frame="t"), ros1_header(frame="t")], ids=["ros2", "ros1"]
)
def test_temperature_becomes_a_reading_in_celsius(header: dict[str, Any]) -> None:
    ev = only(translate(publish("/temp", temperature(48.5, header))), ReadingsEvent)
    assert ev.payload.values["temperature"].value == 48.5
    assert ev.payload.values["temperature"].unit == "°C"
    with pytest.raises(BadMessage, match="temperature"):
        translate(publish("/temp", temperature("hot")))


def test_gases_come_from_the_configured_topic_type_and_field() -> None:
    custom = {
        "header": ros2_header(frame="gas"),
        "reading": {"value": 3.5, "alarm": False},
        "gas": "H2S",
    }
    events = translate(
        publish("/gas/co", {"data": 87.25}),
        publish("/gas/ch4", {"data": 12}),  # an integer is a number too
        publish("/gas/h2s", custom),
    )
    values = {n: (r.value, r.unit) for e in events for n, r in e.payload.values.items()}  # type: ignore[union-attr]
    assert values == {"co": (87.25, "ppm"), "ch4": (12.0, "%UEG"), "h2s": (3.5, "ppm")}
    h2s = [e for e in events if "h2s" in e.payload.values]  # type: ignore[union-attr]
    assert h2s[0].observed_at == STAMP  # the custom message's header
    for bad, named in [
        ({"data": "high"}, "not a number"),
        ({"data": True}, "not a number"),
        ({"value": 1.0}, "'data' missing"),
        ({"data": -4.0}, "not a concentration"),
    ]:
        with pytest.raises(BadMessage, match=named):
            translate(publish("/gas/co", bad))


def test_one_topic_can_feed_two_readings() -> None:
    robot = Robot(
        entity="robot-4",
        url="ws://h:9090",
        gases={
            "co": GasTopic("/gas", "acme/Multi", "co", "ppm"),
            "o2": GasTopic("/gas", "acme/Multi", "o2", "Vol-%"),
        },
    )
    events = translate(publish("/gas", {"co": 30.0, "o2": 20.1}), robot=robot)
    assert {n for e in events for n in e.payload.values} == {"co", "o2"}  # type: ignore[union-attr]
    assert len({op["id"] for op in subscribe_ops(robot)}) == 2


# --- the protocol frames ------------------------------------------------------------------------


def test_subscribe_ops_are_shaped_as_the_protocol_says() -> None:
    ops = {op["topic"]: op for op in subscribe_ops(ROBOT)}
    assert ops["/gps/fix"] == {
        "op": "subscribe",
        "id": "cockpit:robot-2:fix",
        "topic": "/gps/fix",
        "type": "sensor_msgs/NavSatFix",
        "throttle_rate": 200,
        "queue_length": 1,
    }
    assert ops["/odom"]["type"] == "nav_msgs/Odometry"
    assert ops["/gas/h2s"]["type"] == "acme_msgs/GasReading"
    assert len(ops) == 7


@pytest.mark.parametrize(
    ("frame", "named"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"topic": "/gps/fix"}', "op"),
        ('{"op": "publish", "msg": {}}', "topic"),
        ('{"op": "publish", "topic": "/gps/fix", "msg": [1]}', "msg"),
        ('{"op": "status", "level": 3, "msg": "x"}', "status"),
        (b"\xff\xfe", "not JSON"),
        ("[" * 100_000 + "]" * 100_000, "not JSON"),  # deeper than any parser recursion
        (publish("/gas/co", {"data": 1.0, "pad": "x" * 300_000}), "larger than"),
    ],
)
def test_bad_frames_are_rejected_with_a_reason(frame: str | bytes, named: str) -> None:
    tr = RosbridgeTranslator("test-incident", ROBOT)
    with pytest.raises(BadMessage, match=named):
        tr.feed(frame, NOW)


def test_status_and_other_operations_are_not_rejects() -> None:
    tr = RosbridgeTranslator("test-incident", ROBOT)
    err = "subscribe: Cannot infer topic type for topic /temp as it is not yet advertised"
    tr.feed(
        json.dumps(
            {"op": "status", "id": "cockpit:robot-2:temperature", "level": "error", "msg": err}
        ),
        NOW,
    )
    tr.feed(
        json.dumps({"op": "service_response", "service": "/x", "values": {}, "result": True}), NOW
    )
    tr.feed(publish("/some/other/topic", {"data": 1}), NOW)
    assert tr.last_status == f"error: {err}"
    assert (tr.counts["status"], tr.counts["ignored"]) == (1, 2)
    assert tr.due(NOW) == []


def test_a_robot_at_100_hz_is_thinned_to_the_throttle_and_the_latest_wins() -> None:
    tr = RosbridgeTranslator("test-incident", ROBOT)  # throttle_ms = 200
    sent: list[Event] = []
    for i in range(100):  # one second at 100 Hz, drained every 10 ms
        now = NOW + timedelta(milliseconds=10 * i)
        tr.feed(publish("/gas/co", {"data": float(i)}), now)
        sent += tr.due(now)
    sent += tr.due(NOW + timedelta(seconds=2))
    values = [e.payload.values["co"].value for e in sent]  # type: ignore[union-attr]
    assert 5 <= len(values) <= 7  # one per 200 ms, plus the held last one
    assert values[-1] == 99.0  # the newest message is never lost


# --- settings -----------------------------------------------------------------------------------


def test_the_documented_toml_example_loads(tmp_path: Path) -> None:
    cfg = tmp_path / "cockpit.toml"
    cfg.write_text(
        """
[rosbridge.robot-2]
url = "ws://10.0.0.5:9090"
callsign = "Robo 2"
origin = [51.52, 7.44, 0]
throttle_ms = 200
[rosbridge.robot-2.topics]
fix = "/gps/fix"
odom = "/odom"
battery = "/battery_state"
temperature = "/temp"
gas.co = {topic = "/gas/co", type = "std_msgs/Float32", field = "data", unit = "ppm"}
gas.ch4 = {topic = "/gas/ch4", unit = "%UEG"}
"""
    )
    robot = load_settings(cfg).rosbridge["robot-2"]
    assert robot.origin == (51.52, 7.44, 0.0) and robot.topics.gas["ch4"].field == "data"
    assert load_settings().rosbridge == {}  # off by default


def test_the_example_in_the_configuration_docs_loads(tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()
    block = doc.split("```toml\n[rosbridge.robot-2]", 1)[1].split("```", 1)[0]
    cfg = tmp_path / "cockpit.toml"
    cfg.write_text("[rosbridge.robot-2]" + block)
    robot = load_settings(cfg).rosbridge["robot-2"]
    assert robot.origin == (51.52, 7.44, 90.0)
    assert set(robot.topics.gas) == {"co", "ch4", "h2s"}
    assert robot.topics.gas["h2s"].field == "reading.value"


@pytest.mark.parametrize(
    ("robot", "named"),
    [
        ({"url": "http://10.0.0.5:9090"}, "rosbridge.robot-2.url"),
        ({"url": "ws://h:9090", "topics": {"odom": "/odom"}}, "needs origin"),
        ({"url": "ws://h:9090", "origin": [51.5, 7.4, 400]}, "rosbridge.robot-2.origin.2"),
        ({"url": "ws://h:9090", "topics": {"gas": {"co": {"topic": "gas co"}}}}, "gas.co.topic"),
        (
            {"url": "ws://h:9090", "topics": {"gas": {"co": {"topic": "/co", "field": "a..b"}}}},
            "gas.co.field",
        ),
        ({"url": "ws://h:9090", "topics": {"lidar": "/scan"}}, "topics.lidar"),
        ({"url": "ws://h:9090", "throttle_ms": -1}, "throttle_ms"),
    ],
)
def test_bad_robot_settings_name_the_key(robot: dict[str, Any], named: str) -> None:
    with pytest.raises(SettingsError, match=named.replace(".", r"\.")):
        load_settings(rosbridge={"robot-2": robot})


# --- hypothesis: nothing a robot sends makes the translator raise anything but BadMessage -------

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=25,
)
_keys = st.sampled_from(
    ["header", "stamp", "sec", "nanosec", "secs", "nsecs", "latitude", "longitude", "status",
     "pose", "position", "orientation", "x", "y", "w", "twist", "linear", "percentage",
     "voltage", "temperature", "data", "reading", "value", "position_covariance",
     "position_covariance_type", "covariance"]
)  # fmt: skip
_ros_like = st.recursive(
    _json,
    lambda inner: st.dictionaries(_keys, inner, max_size=6),
    max_leaves=30,
)
_TOPICS = ["/gps/fix", "/odom", "/battery_state", "/temp", "/gas/co", "/gas/h2s", "/other"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    topic=st.sampled_from(_TOPICS),
    msg=_ros_like,
    op=st.sampled_from(["publish", "status", "subscribe", "fragment", 7]),
    level=_json,
    raw=st.binary(max_size=64),
)
def test_no_input_makes_the_translator_fail(
    topic: str, msg: Any, op: Any, level: Any, raw: bytes
) -> None:
    tr = RosbridgeTranslator("test-incident", ROBOT)
    frames: list[str | bytes] = [
        json.dumps({"op": op, "topic": topic, "msg": msg, "level": level}),
        json.dumps(msg),
        raw,
    ]
    for frame in frames:
        with contextlib.suppress(BadMessage):
            tr.feed(frame, NOW)
    for ev in tr.due(NOW):  # whatever came through is a valid event
        assert parse_event(event_to_json(ev)) == ev


# --- the client against the simulator's real rosbridge server ------------------------------------


async def wait_for(cond: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await cond():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def robot_of(entity: str, cfg: dict[str, Any]) -> Robot:
    r = RosRobot.model_validate(cfg)
    t = r.topics
    return Robot(
        entity=entity,
        url=r.url,
        callsign=r.callsign,
        origin=r.origin,
        throttle_ms=r.throttle_ms,
        fix=t.fix,
        odom=t.odom,
        battery=t.battery,
        temperature=t.temperature,
        gases={n: GasTopic(g.topic, g.type, g.field, g.unit) for n, g in t.gas.items()},
    )


async def test_the_client_subscribes_and_hears_the_server_refuse_an_unknown_topic() -> None:
    sim = gas_robot()
    async with RosbridgeServer(sim) as server:
        cfg = sim.settings(server.url)
        cfg["topics"]["battery"] = "/no/such/topic"
        robot = robot_of(sim.entity, cfg)
        got: list[Event] = []

        async def on_events(events: list[Event]) -> None:
            got.extend(events)

        link = RobotLink(RosbridgeTranslator("test-incident", robot), on_events)
        link.start()
        try:

            async def have_gas() -> bool:
                return any(isinstance(e, ReadingsEvent) and "co" in e.payload.values for e in got)

            await wait_for(have_gas)
            subs = [op for op in server.received if op["op"] == "subscribe"]
            topics = {"/gps/fix", "/no/such/topic", "/temperature", "/gas/co", "/gas/h2s"}
            assert {op["topic"] for op in subs} == {*topics, "/gas/o2", "/gas/ch4"}
            assert all(
                op["throttle_rate"] == 200 and op["id"].startswith("cockpit:") for op in subs
            )
            assert link.translator.last_status is not None
            assert "/no/such/topic" in link.translator.last_status
            assert isinstance(got[0], StatusEvent) and got[0].payload.link == "ok"
            assert link.stats()["rejects"] == 0
        finally:
            await link.aclose()


async def test_the_simulated_server_answers_ops_as_rosbridge_does() -> None:
    """The simulator is only worth its tests if it speaks the protocol: subscribe with ids
    and type, status errors, unsubscribe by id, service calls."""
    from websockets.asyncio.client import connect

    async with RosbridgeServer(gas_robot()) as server, connect(server.url) as ws:

        async def send(**op: Any) -> None:
            await ws.send(json.dumps(op))

        async def next_op(op: str) -> dict[str, Any]:
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if frame["op"] == op:
                    return dict(frame)

        await send(op="subscribe", id="s1", topic="/no/such/topic")
        status = await next_op("status")
        assert status["level"] == "error" and status["id"] == "s1"
        assert "/no/such/topic" in status["msg"]
        await send(op="subscribe", id="s2", topic="/gas/co", type="sensor_msgs/NavSatFix")
        assert "type" in (await next_op("status"))["msg"]
        await ws.send("{not json")
        assert (await next_op("status"))["level"] == "error"
        await send(op="call_service", id="c1", service="/rosapi/topics", args={})
        reply = await next_op("service_response")
        assert (reply["id"], reply["result"]) == ("c1", False)

        # Two subscriptions (ROS 2 type spelling) share one stream; it ends with the last.
        await send(op="subscribe", id="a", topic="/gas/co", type="std_msgs/msg/Float32")
        await send(op="subscribe", id="b", topic="/gas/co", throttle_rate=0, queue_length=1)
        msg = await next_op("publish")
        assert msg["topic"] == "/gas/co" and isinstance(msg["msg"]["data"], float)
        await send(op="unsubscribe", id="a", topic="/gas/co")
        assert (await next_op("publish"))["topic"] == "/gas/co"
        await send(op="unsubscribe", id="b", topic="/gas/co")
        await send(op="subscribe", id="f", topic="/gps/fix", type="sensor_msgs/NavSatFix")
        while (await next_op("publish"))["topic"] != "/gps/fix":
            pass  # at most a message already on its way
        for _ in range(8):  # 5 Hz fixes; the 2 Hz CO stream would show up among them
            frame = await next_op("publish")
            assert frame["topic"] == "/gps/fix"
            assert set(frame["msg"]) >= {"header", "status", "latitude", "longitude"}
            assert set(frame["msg"]["header"]["stamp"]) == {"sec", "nanosec"}


def test_backoff_doubles_to_the_cap_with_jitter() -> None:
    low = RobotLink(RosbridgeTranslator("i", ROBOT), _ignore, rng=lambda: 0.0)
    high = RobotLink(RosbridgeTranslator("i", ROBOT), _ignore, rng=lambda: 1.0)
    assert [round(low.backoff_s(n), 2) for n in range(8)] == [
        0.4,
        0.8,
        1.6,
        3.2,
        6.4,
        12.8,
        24.0,
        24.0,
    ]
    assert [round(high.backoff_s(n), 2) for n in range(8)] == [
        0.6,
        1.2,
        2.4,
        4.8,
        9.6,
        19.2,
        30.0,
        30.0,
    ]
    assert max(high.backoff_s(n) for n in range(100)) == BACKOFF_CAP_S


async def _ignore(events: list[Event]) -> None:
    return None


async def test_an_unreachable_robot_is_lost_then_down_and_comes_up_when_it_starts() -> None:
    """Nothing listens at the robot's address: its link is announced lost at once, is
    "reconnecting" while the delays grow, "down" once they reach the cap; when its
    rosbridge starts, the link comes up by itself (small delays here: the same logic)."""

    sim = gas_robot()
    server = RosbridgeServer(sim)
    await server.start()
    port = server.port
    await server.close()  # a free port that we know, with nothing behind it
    got: list[Event] = []
    states: list[str] = []

    async def on_events(events: list[Event]) -> None:
        got.extend(events)

    robot = robot_of(sim.entity, sim.settings(f"ws://127.0.0.1:{port}"))
    link = RobotLink(
        RosbridgeTranslator("test-incident", robot),
        on_events,
        on_state=lambda _robot, state: states.append(state),
        backoff=(0.05, 0.4),
    )
    feed = RosbridgeFeed([link])
    feed.start()
    try:

        async def down() -> bool:
            return feed.state == "down"

        await wait_for(down)
        assert states[0] == "reconnecting" and "down" in states
        links = [e.payload.link for e in got if isinstance(e, StatusEvent)]
        assert links == ["lost"]  # announced once, not on every retry
        assert "ConnectionRefused" in str(link.stats()["last_error"])

        server = RosbridgeServer(sim, port=port)
        await server.start()

        async def up() -> bool:
            return feed.state == "connected" and any(isinstance(e, PositionEvent) for e in got)

        await wait_for(up)
        links = [e.payload.link for e in got if isinstance(e, StatusEvent) and e.payload.link]
        assert links[:2] == ["lost", "ok"]
        assert feed.stats()["robots"][sim.entity]["connects"] == 1
    finally:
        await feed.aclose()
        await server.close()


def _leaves(obj: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a message, containers included (they get replaced too)."""
    out = [path] if path else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _leaves(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _leaves(v, (*path, i))
    return out


_VALID = [
    ("/gps/fix", navsatfix()),
    ("/gps/fix", navsatfix(header=ros1_header())),
    ("/odom", odometry(3.0, 4.0, 30.0)),
    ("/battery_state", battery_state()),
    ("/temp", temperature()),
    ("/gas/h2s", {"header": ros2_header(), "reading": {"value": 3.5}}),
]
_MUTATIONS = [(topic, msg, path) for topic, msg in _VALID for path in _leaves(msg)]


@settings(max_examples=300, deadline=None)
@given(target=st.sampled_from(_MUTATIONS), value=_json, drop=st.booleans())
def test_a_valid_message_with_any_one_field_changed_never_breaks_the_translator(
    target: tuple[str, dict[str, Any], tuple[Any, ...]], value: Any, drop: bool
) -> None:
    """Reaches the handlers (random JSON rarely looks like a NavSatFix): each field of a
    real message replaced by anything, or left out."""
    topic, msg, path = target
    mutated = json.loads(json.dumps(msg))
    parent = mutated
    for key in path[:-1]:
        parent = parent[key]
    if drop and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    tr = RosbridgeTranslator("test-incident", ROBOT)
    with contextlib.suppress(BadMessage):
        tr.feed(publish(topic, mutated), NOW)
    for ev in tr.due(NOW):
        assert parse_event(event_to_json(ev)) == ev


_frames = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200),
    _json.map(json.dumps),
    st.tuples(st.sampled_from(_TOPICS), _ros_like).map(lambda tm: publish(*tm)),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=st.lists(_frames, min_size=1, max_size=40))
def test_no_input_stops_the_link(frames: list[str | bytes]) -> None:
    """Whatever a robot's server sends, the link stays up and keeps translating."""

    async def run() -> None:
        async with RosbridgeServer(gas_robot()) as server:
            # Only a marker topic the server does not have: nothing but our frames arrive.
            robot = Robot(entity="robot-9", url=server.url, gases={"co": GasTopic("/marker")})
            link = RobotLink(RosbridgeTranslator("test-incident", robot), _ignore)
            link.start()
            try:

                async def connected() -> bool:
                    return link.state == "connected" and bool(server.clients)

                await wait_for(connected)
                for frame in frames:
                    await server.inject(frame)
                await server.inject(publish("/marker", {"data": 1.0}))

                async def heard_the_marker() -> bool:
                    return link.translator.counts["published"] == 1

                await wait_for(heard_the_marker)
                assert link.state == "connected" and link.counts["connects"] == 1
            finally:
                await link.aclose()

    asyncio.run(run())


# --- a started cockpit: the picture, /healthz, a robot server killed and restarted ---------------


async def test_a_cockpit_draws_ros_robots_and_recovers_when_a_robot_server_restarts(
    tmp_path: Path,
) -> None:
    from tests.serving import serve

    gas, odom = gas_robot(), odom_robot()
    server1 = RosbridgeServer(gas, start_s=600.0)  # ten minutes in: the smoke is there
    server2 = RosbridgeServer(odom)
    await server1.start()
    await server2.start()
    port1 = server1.port
    rosbridge = {gas.entity: gas.settings(server1.url), odom.entity: odom.settings(server2.url)}
    try:
        async with (
            serve(tmp_path / "data", rosbridge=rosbridge) as s,
            httpx.AsyncClient(base_url=s.url, timeout=10) as c,
        ):
            await s.login(c)

            async def robots() -> dict[str, Any]:
                entities = (await c.get("/api/v1/situation")).json()["entities"]
                return {e["id"]: e for e in entities if e["id"] in rosbridge}

            async def healthz() -> dict[str, Any]:
                return dict((await c.get("/healthz")).json())

            async def complete() -> bool:
                r = await robots()
                need = {"temperature", "co", "h2s", "o2", "ch4", "battery_v"}
                return (
                    len(r) == 2
                    and all(
                        e["lat"] is not None and e["status"].get("battery_pct") for e in r.values()
                    )
                    and need <= set(r[gas.entity]["readings"])
                    and "temperature" in r[odom.entity]["readings"]
                )

            await wait_for(complete)
            r = await robots()
            ros1, ros2 = r[gas.entity], r[odom.entity]
            assert ros1["kind"] == "robot" and ros1["callsign"] == "Roboter 1 (ROS)"
            assert ros1["status"]["link"] == "ok" and ros2["status"]["link"] == "ok"
            # the gas robot patrols the smoke downwind of the fire: CO well above background
            assert distance_m((ros1["lat"], ros1["lon"]), (51.5287, 7.4441)) < 200
            assert ros1["readings"]["co"]["unit"] == "ppm" and ros1["readings"]["co"]["value"] > 5
            assert ros1["readings"]["ch4"]["unit"] == "%UEG"
            assert 0 < ros1["status"]["battery_pct"] <= 100
            assert ros2["readings"]["temperature"]["unit"] == "°C"
            h = await healthz()
            feed = h["feeds"]["rosbridge"]
            assert feed["state"] == "connected"
            assert feed["links"] == {gas.entity: "connected", odom.entity: "connected"}
            assert feed["accepted"] > 0 and feed["last_message_at"] is not None
            per_robot = h["rosbridge"]["robots"][gas.entity]
            assert per_robot["messages"] > 0 and per_robot["rejects"] == 0
            assert per_robot["last_message_at"] is not None

            # The robot's rosbridge dies: the link is lost, in the picture and on /healthz.
            await server1.close()

            async def lost() -> bool:
                r, h = await robots(), await healthz()
                return (
                    r[gas.entity]["status"].get("link") == "lost"
                    and h["feeds"]["rosbridge"]["links"][gas.entity] != "connected"
                )

            await wait_for(lost)
            h = await healthz()
            assert h["feeds"]["rosbridge"]["state"] == "reconnecting"
            assert h["feeds"]["rosbridge"]["links"][odom.entity] == "connected"
            assert (await robots())[odom.entity]["status"]["link"] == "ok"
            before = (await robots())[gas.entity]["observed_at"]

            # ... and comes back on the same port: the feed recovers by itself.
            server1 = RosbridgeServer(gas, port=port1, start_s=server1.sim_time())
            await server1.start()

            async def recovered() -> bool:
                r, h = await robots(), await healthz()
                e = r[gas.entity]
                return (
                    e["status"].get("link") == "ok"
                    and e["observed_at"] > before
                    and h["feeds"]["rosbridge"]["state"] == "connected"
                )

            await wait_for(recovered)
            assert (await healthz())["rosbridge"]["robots"][gas.entity]["connects"] == 2
    finally:
        await server1.close()
        await server2.close()


async def test_garbage_from_a_robot_is_counted_and_the_connection_stays(tmp_path: Path) -> None:
    from tests.serving import serve

    sim = gas_robot()
    async with RosbridgeServer(sim) as server:
        rosbridge = {sim.entity: sim.settings(server.url)}
        async with (
            serve(tmp_path / "data", rosbridge=rosbridge) as s,
            httpx.AsyncClient(base_url=s.url, timeout=10) as c,
        ):

            async def stats() -> dict[str, Any]:
                return dict((await c.get("/healthz")).json()["rosbridge"]["robots"][sim.entity])

            async def connected() -> bool:
                return (await stats())["link"] == "connected"

            await wait_for(connected)
            garbage: list[str | bytes] = [
                "{not json",
                b"\x00\xff binary junk",
                "[]",
                json.dumps({"op": "publish", "topic": "/gps/fix", "msg": {"latitude": "north"}}),
                json.dumps({"op": "publish", "topic": "/battery_state", "msg": battery_state(7.5)}),
                json.dumps({"op": "publish", "topic": "/gas/co", "msg": {"data": "lots"}}),
            ]
            for frame in garbage:
                await server.inject(frame)

            async def counted() -> bool:
                return bool((await stats())["rejects"] >= len(garbage))

            await wait_for(counted)
            st_ = await stats()
            assert st_["link"] == "connected" and st_["connects"] == 1
            assert "percentage 7.5 outside 0..1" in str(st_["reject_reasons"]) or st_["last_reject"]
            health = (await c.get("/healthz")).json()["feeds"]["rosbridge"]
            assert health["rejected"] >= len(garbage) and health["state"] == "connected"
            messages = st_["messages"]

            async def still_flowing() -> bool:
                return bool((await stats())["messages"] > messages + 10)

            await wait_for(still_flowing)


async def test_a_robot_that_drops_every_session_at_once_backs_off() -> None:
    """A robot that accepts and closes at once (a topic too big for a frame) must not be
    redialled at the first backoff step forever: the backoff only resets after a session
    that held."""
    import websockets

    accepted = 0

    async def drop(ws: Any) -> None:
        nonlocal accepted
        accepted += 1
        await ws.recv()  # the first subscribe, then gone
        await ws.close(code=1009)

    server = await websockets.serve(drop, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    got: list[Event] = []

    async def on_events(events: list[Event]) -> None:
        got.extend(events)

    sim = gas_robot()
    robot = robot_of(sim.entity, sim.settings(f"ws://127.0.0.1:{port}"))
    link = RobotLink(RosbridgeTranslator("test-incident", robot), on_events, backoff=(0.05, 0.4))
    feed = RosbridgeFeed([link])
    feed.start()
    try:

        async def redialled() -> bool:
            return accepted >= 6

        await wait_for(redialled)
        # Each drop doubles the wait (0.05, 0.1, 0.2, 0.4 s ...): the sixth session comes
        # at the earliest ~1 s after the first, not ~0.25 s as with a reset each time.
        delays = [link.backoff_base_s(n) for n in range(5)]
        assert delays == [0.05, 0.1, 0.2, 0.4, 0.4]
        assert link.stats()["attempt"] >= 5
    finally:
        await feed.aclose()
        server.close()
        await server.wait_closed()
