"""Simulated robots behind a small rosbridge v2 server (WebSocket, JSON).

One `RosbridgeServer` per robot, as on a real robot: it answers the operations the
cockpit uses the way rosbridge_server does — `subscribe` (with `id`, `type`,
`throttle_rate`, `queue_length`), `unsubscribe` (by id, or every subscription of the
topic), a `status` message at level "error" for an unknown topic, a mismatched type, a
frame that is not JSON or an operation it does not offer — and publishes each subscribed
topic at its own rate, no faster than the subscription's throttle_rate. Several
subscriptions of one client to one topic share one stream, as in rosbridge.

The robots of the demo (sim time t_s counts from the alarm, as in `feeds.sim.scenario`):

* `robot-ros-1` — a firefighting robot with a gas meter, patrolling a loop downwind of
  the harbour fire through the smoke: NavSatFix (ROS 2 stamps), CO (std_msgs/Float32),
  H2S (a custom message with its value in `concentration`), O2 and CH4 from the same
  plume the hazmat vehicle measures, its temperature rising near the fire, its battery
  draining.
* `robot-ros-2` — a ROS 1 robot without GPS, reporting nav_msgs/Odometry in an
  east-north-up odom frame whose origin is set upwind of the fire (secs/nsecs stamps).

Every message is pure in (t_s, now): a restarted server continues where the robot is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from cockpit.geo import euler_to_quaternion
from feeds.sim.geo import LatLon, Polyline, destination, haversine_m, offset
from feeds.sim.plume import Plume
from feeds.sim.scenario import FIRE, WIND_FROM_DEG, WIND_SPEED_MPS

__all__ = [
    "RosbridgeServer",
    "SimRobot",
    "SimTopic",
    "demo_robots",
    "gas_robot",
    "odom_robot",
]

log = logging.getLogger("feeds.sim.rosbridge")

Make = Callable[[float, datetime], dict[str, Any]]  # (sim time, wall time) → msg


@dataclass(frozen=True)
class SimTopic:
    type: str
    rate_hz: float
    make: Make


@dataclass(frozen=True)
class SimRobot:
    entity: str
    callsign: str
    topics: dict[str, SimTopic]  # ROS topic name → topic
    # The cockpit's settings for this robot, less the url (see `settings`).
    config: dict[str, Any] = field(default_factory=dict)

    def settings(self, url: str) -> dict[str, Any]:
        """The `rosbridge.<entity>` settings that connect the cockpit to this robot."""
        return {"url": url, "callsign": self.callsign, **self.config}


# --- message builders -----------------------------------------------------------------


def _stamp(now: datetime, ros1: bool) -> dict[str, int]:
    ns = int(now.timestamp() * 1e9)
    sec, nsec = divmod(ns, 1_000_000_000)
    return {"secs": sec, "nsecs": nsec} if ros1 else {"sec": sec, "nanosec": nsec}


def _header(now: datetime, frame_id: str, ros1: bool = False) -> dict[str, Any]:
    head: dict[str, Any] = {"stamp": _stamp(now, ros1), "frame_id": frame_id}
    return {"seq": 0, **head} if ros1 else head  # ROS 1 headers carry a sequence number


def _battery(now: datetime, t_s: float, full: float, ros1: bool) -> dict[str, Any]:
    """A 6S Li-ion pack losing about 1 % a minute (null: not measured, as rosbridge
    renders NaN)."""
    pct = max(0.05, full - t_s / 6000.0)
    msg: dict[str, Any] = {
        "header": _header(now, "battery", ros1),
        "voltage": round(19.8 + 5.4 * pct, 3),
        "temperature": 31.5,
        "current": -4.2,
        "charge": None,
        "capacity": None,
        "design_capacity": 20.0,
        "percentage": round(pct, 4),
        "power_supply_status": 2,  # DISCHARGING
        "power_supply_health": 1,  # GOOD
        "power_supply_technology": 2,  # LION
        "present": True,
        "cell_voltage": [],
        "cell_temperature": [],
        "location": "main",
        "serial_number": "",
    }
    if ros1:
        del msg["temperature"], msg["cell_temperature"]  # ROS 1 Melodic's BatteryState
    return msg


def _temperature(now: datetime, at: LatLon, ros1: bool) -> dict[str, Any]:
    """The robot's outside temperature: 12 °C ambient, radiant heat near the fire."""
    d = haversine_m(FIRE, at)
    celsius = 12.0 + 260.0 / (1.0 + (d / 22.0) ** 2)
    return {
        "header": _header(now, "temp_sensor", ros1),
        "temperature": round(celsius, 2),
        "variance": 0.25,
    }


def _float32(value: float) -> dict[str, Any]:
    return {"data": round(value, 3)}


def _navsatfix(now: datetime, at: LatLon) -> dict[str, Any]:
    return {
        "header": _header(now, "gps"),
        "status": {"status": 0, "service": 1},  # STATUS_FIX, SERVICE_GPS
        "latitude": round(at[0], 8),
        "longitude": round(at[1], 8),
        "altitude": 72.4,
        "position_covariance": [2.25, 0.0, 0.0, 0.0, 2.25, 0.0, 0.0, 0.0, 9.0],
        "position_covariance_type": 2,  # COVARIANCE_TYPE_DIAGONAL_KNOWN
    }


# --- the gas robot -----------------------------------------------------------------------

_DOWNWIND = (WIND_FROM_DEG + 180.0) % 360.0


def _loop_downwind() -> Polyline:
    """A loop through the smoke: out along one flank, across the axis, back the other."""
    pts = [
        destination(FIRE, _DOWNWIND - 30.0, 50.0),
        destination(FIRE, _DOWNWIND - 12.0, 150.0),
        destination(FIRE, _DOWNWIND + 12.0, 150.0),
        destination(FIRE, _DOWNWIND + 30.0, 50.0),
    ]
    return Polyline.of([*pts, pts[0]])


def gas_robot(entity: str = "robot-ros-1", callsign: str = "Roboter 1 (ROS)") -> SimRobot:
    plume = Plume(FIRE, WIND_FROM_DEG, WIND_SPEED_MPS)
    path = _loop_downwind()
    speed = 1.2  # m/s: a tracked robot at walking pace

    def where(t_s: float) -> LatLon:
        return path.at((t_s * speed) % path.length_m)[0]

    def co(t_s: float) -> float:
        return plume.co_ppm(where(t_s), t_s)

    def h2s(t_s: float, now: datetime) -> dict[str, Any]:
        # A custom message type, as many gas-sensor drivers publish: value in a field.
        return {
            "header": _header(now, "gas_sensor"),
            "gas": "H2S",
            "concentration": round(0.015 * co(t_s), 3),
            "unit": "ppm",
        }

    topics = {
        "/gps/fix": SimTopic(
            "sensor_msgs/msg/NavSatFix", 5.0, lambda t, n: _navsatfix(n, where(t))
        ),
        "/battery_state": SimTopic(
            "sensor_msgs/msg/BatteryState", 1.0, lambda t, n: _battery(n, t, 0.93, False)
        ),
        "/temperature": SimTopic(
            "sensor_msgs/msg/Temperature", 2.0, lambda t, n: _temperature(n, where(t), False)
        ),
        "/gas/co": SimTopic("std_msgs/msg/Float32", 2.0, lambda t, n: _float32(co(t))),
        "/gas/h2s": SimTopic("sim_msgs/msg/GasConcentration", 2.0, h2s),
        "/gas/o2": SimTopic(
            "std_msgs/msg/Float32", 2.0, lambda t, n: _float32(20.9 - min(co(t) * 0.004, 2.5))
        ),
        "/gas/ch4": SimTopic(
            "std_msgs/msg/Float32", 2.0, lambda t, n: _float32(min(co(t) * 0.02, 100.0))
        ),
    }
    gas = {
        "co": {"topic": "/gas/co", "type": "std_msgs/msg/Float32", "unit": "ppm"},
        "h2s": {
            "topic": "/gas/h2s",
            "type": "sim_msgs/msg/GasConcentration",
            "field": "concentration",
            "unit": "ppm",
        },
        "o2": {"topic": "/gas/o2", "type": "std_msgs/msg/Float32", "unit": "Vol-%"},
        "ch4": {"topic": "/gas/ch4", "type": "std_msgs/msg/Float32", "unit": "%UEG"},
    }
    config = {
        "throttle_ms": 200,
        "topics": {
            "fix": "/gps/fix",
            "battery": "/battery_state",
            "temperature": "/temperature",
            "gas": gas,
        },
    }
    return SimRobot(entity, callsign, topics, config)


# --- the odometry robot ------------------------------------------------------------------

# Upwind of the fire, south-west of the warehouse; the odom frame is east-north-up.
ODOM_ORIGIN: tuple[float, float, float] = (*offset(FIRE, -70.0, -45.0), 90.0)
_ODOM_PATH = ((0.0, 0.0), (30.0, 0.0), (30.0, 20.0), (0.0, 20.0))  # x east, y north (m)


def _odom_pose(t_s: float, speed: float) -> tuple[float, float, float]:
    """(x, y, yaw) on the rectangle, driven anticlockwise at `speed`."""
    legs = [(a, b) for a, b in zip(_ODOM_PATH, (*_ODOM_PATH[1:], _ODOM_PATH[0]), strict=True)]
    lengths = [math.dist(a, b) for a, b in legs]
    s = (t_s * speed) % sum(lengths)
    for (a, b), length in zip(legs, lengths, strict=True):
        if s <= length:
            f = s / length
            yaw = math.atan2(b[1] - a[1], b[0] - a[0])
            return a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]), yaw
        s -= length
    return _ODOM_PATH[0][0], _ODOM_PATH[0][1], 0.0


def _odometry(now: datetime, t_s: float, speed: float) -> dict[str, Any]:
    x, y, yaw = _odom_pose(t_s, speed)
    w, qx, qy, qz = euler_to_quaternion(0.0, 0.0, math.degrees(yaw))
    cov = [0.0] * 36
    cov[0] = cov[7] = 0.04  # 20 cm
    return {
        "header": _header(now, "odom", ros1=True),
        "child_frame_id": "base_link",
        "pose": {
            "pose": {
                "position": {"x": round(x, 4), "y": round(y, 4), "z": 0.0},
                "orientation": {"x": qx, "y": qy, "z": qz, "w": w},
            },
            "covariance": cov,
        },
        "twist": {
            "twist": {
                "linear": {"x": speed, "y": 0.0, "z": 0.0},
                "angular": {"x": 0.0, "y": 0.0, "z": 0.0},
            },
            "covariance": [0.0] * 36,
        },
    }


def odom_robot(entity: str = "robot-ros-2", callsign: str = "Roboter 2 (ROS 1)") -> SimRobot:
    speed = 0.6

    def where(t_s: float) -> LatLon:
        x, y, _ = _odom_pose(t_s, speed)
        return offset((ODOM_ORIGIN[0], ODOM_ORIGIN[1]), y, x)  # ENU: x east, y north

    topics = {
        "/odom": SimTopic("nav_msgs/Odometry", 20.0, lambda t, n: _odometry(n, t, speed)),
        "/battery": SimTopic(
            "sensor_msgs/BatteryState", 1.0, lambda t, n: _battery(n, t, 0.71, True)
        ),
        "/temp": SimTopic(
            "sensor_msgs/Temperature", 1.0, lambda t, n: _temperature(n, where(t), True)
        ),
    }
    config = {
        "origin": list(ODOM_ORIGIN),
        "throttle_ms": 200,
        "topics": {"odom": "/odom", "battery": "/battery", "temperature": "/temp"},
    }
    return SimRobot(entity, callsign, topics, config)


def demo_robots() -> tuple[SimRobot, ...]:
    return (gas_robot(), odom_robot())


# --- the server ----------------------------------------------------------------------------


def _short_type(kind: str) -> str:
    """`pkg/msg/Type` (ROS 2) and `pkg/Type` (ROS 1) name the same type."""
    pkg, _, name = kind.rpartition("/")
    return f"{pkg.removesuffix('/msg')}/{name}"


@dataclass
class _Stream:
    """One client's stream of one topic: the ids subscribed and the smallest throttle."""

    throttles: dict[str | None, int] = field(default_factory=dict)  # id → throttle_rate ms
    task: asyncio.Task[None] | None = None


class RosbridgeServer:
    """One simulated robot's rosbridge server (see the module doc)."""

    def __init__(
        self,
        robot: SimRobot,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        start_s: float = 0.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.robot = robot
        self.host = host
        self._port = port
        self._clock = clock or (lambda: datetime.now(UTC))
        self._t0 = self._clock().timestamp() - start_s  # sim time 0, in wall seconds
        self._server: Server | None = None
        self.clients: set[ServerConnection] = set()
        self.received: list[dict[str, Any]] = []  # every op the clients sent, for tests

    def sim_time(self) -> float:
        return self._clock().timestamp() - self._t0

    @property
    def port(self) -> int:
        if self._server is not None:
            return int(next(iter(self._server.sockets)).getsockname()[1])
        return self._port

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await serve(self._handle, self.host, self._port, compression=None)
        self._port = self.port  # a restart binds the same port again

    async def close(self) -> None:
        """Stop the server and drop every client (the robot's rosbridge dies)."""
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
            self._server = None

    async def inject(self, frame: str | bytes) -> None:
        """Send a raw frame to every client (tests: garbage between real messages)."""
        for ws in list(self.clients):
            with contextlib.suppress(ConnectionClosed):
                await ws.send(frame)

    async def __aenter__(self) -> RosbridgeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- one client ------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        self.clients.add(ws)
        streams: dict[str, _Stream] = {}
        try:
            async for raw in ws:
                await self._op(ws, raw, streams)
        except ConnectionClosed:
            pass
        finally:
            self.clients.discard(ws)
            for stream in streams.values():
                if stream.task is not None:
                    stream.task.cancel()

    async def _status(self, ws: ServerConnection, level: str, msg: str, op_id: Any) -> None:
        status: dict[str, Any] = {"op": "status", "level": level, "msg": msg}
        if isinstance(op_id, str):
            status["id"] = op_id
        await ws.send(json.dumps(status))

    async def _op(
        self, ws: ServerConnection, raw: str | bytes, streams: dict[str, _Stream]
    ) -> None:
        try:
            op = json.loads(raw)
        except ValueError:
            await self._status(ws, "error", f"Unable to load JSON message: {str(raw)[:80]}", None)
            return
        if not isinstance(op, dict) or not isinstance(op.get("op"), str):
            await self._status(ws, "error", "Received a message without an op", None)
            return
        self.received.append(op)
        kind, op_id, topic = op["op"], op.get("id"), op.get("topic")
        if kind == "subscribe":
            await self._subscribe(ws, op, streams)
        elif kind == "unsubscribe":
            stream = streams.get(topic) if isinstance(topic, str) else None
            if stream is None or not isinstance(topic, str):
                return  # rosbridge ignores an unsubscribe it has nothing for
            if op_id is None:
                stream.throttles.clear()
            else:
                stream.throttles.pop(op_id, None)
            if not stream.throttles and stream.task is not None:
                stream.task.cancel()
                del streams[topic]
        elif kind in ("advertise", "unadvertise", "publish"):
            return  # a client publishing to the robot: accepted, and nobody listens
        elif kind == "call_service":
            # No services on this robot: rosbridge answers with a failed response.
            reply: dict[str, Any] = {
                "op": "service_response",
                "service": op.get("service"),
                "values": f"Service {op.get('service')} does not exist",
                "result": False,
            }
            if isinstance(op_id, str):
                reply["id"] = op_id
            await ws.send(json.dumps(reply))
        else:
            await self._status(ws, "error", f"Unknown operation: {kind}", op_id)

    async def _subscribe(
        self, ws: ServerConnection, op: dict[str, Any], streams: dict[str, _Stream]
    ) -> None:
        op_id, topic, kind = op.get("id"), op.get("topic"), op.get("type")
        throttle = op.get("throttle_rate", 0)
        if not isinstance(topic, str):
            await self._status(ws, "error", "subscribe: Expected a string for topic", op_id)
            return
        sim = self.robot.topics.get(topic)
        if sim is None:
            msg = (
                f"subscribe: Cannot infer topic type for topic {topic} as it is not yet advertised"
            )
            await self._status(ws, "error", msg, op_id)
            return
        if isinstance(kind, str) and _short_type(kind) != _short_type(sim.type):
            msg = f"subscribe: {topic} already has type {sim.type}, not {kind}"
            await self._status(ws, "error", msg, op_id)
            return
        if not isinstance(throttle, int) or isinstance(throttle, bool) or throttle < 0:
            throttle = 0
        stream = streams.setdefault(topic, _Stream())
        stream.throttles[op_id if isinstance(op_id, str) else None] = throttle
        if stream.task is None:
            stream.task = asyncio.create_task(self._publish(ws, topic, sim, stream))

    async def _publish(
        self, ws: ServerConnection, topic: str, sim: SimTopic, stream: _Stream
    ) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                now = self._clock()
                msg = sim.make(now.timestamp() - self._t0, now)
                await ws.send(json.dumps({"op": "publish", "topic": topic, "msg": msg}))
                # rosbridge sends at the lowest throttle_rate of a client's subscriptions
                throttle_s = min(stream.throttles.values(), default=0) / 1000.0
                await asyncio.sleep(max(1.0 / sim.rate_hz, throttle_s))
