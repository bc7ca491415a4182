"""LoRaWAN sensors around the demo incident, published as The Things Stack v3 would: uplink
JSON (the documented shape) on `v3/{app}@{tenant}/devices/{device}/up` of an MQTT broker.

Five weather stations around Dortmund harbour (the wind at one of them turns slowly over
the hour) and two water gauges (one rising). Their payload formatters differ on purpose,
as real ones do: snake_case numbers, camelCase strings with units, a German decimal
comma, a level in millimetres. `DEMO_PROFILES` is what the demo configures for them.

`uplink(sensor, t_s, now, f_cnt)` is pure; `run_lorawan` publishes every `interval_s`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt

from feeds.sim.geo import LatLon, offset
from feeds.ttn_mqtt import BrokerUrl, parse_broker_url

__all__ = ["DEMO_PROFILES", "SENSORS", "Sensor", "run_lorawan", "topic_for", "uplink"]

log = logging.getLogger("feeds.sim.lorawan")

CENTRE: LatLon = (51.527, 7.4445)  # Dortmund harbour, the demo's map centre
GATEWAY: LatLon = offset(CENTRE, 350.0, -420.0)  # on the harbour office roof


@dataclass(frozen=True)
class Sensor:
    device: str
    callsign: str
    kind: str  # weather | water_gauge
    where: LatLon
    style: int  # which of the payload formatters it speaks
    send_location: bool = True  # its registry location rides along as `locations.user`


SENSORS: tuple[Sensor, ...] = (
    Sensor("wetter-hafen", "Wetter Hafen", "weather", offset(CENTRE, 250, 300), 0),
    Sensor("wetter-speicher", "Wetter Speicherstraße", "weather", offset(CENTRE, -600, 200), 1),
    Sensor("wetter-nordstadt", "Wetter Nordstadt", "weather", offset(CENTRE, 900, -350), 2),
    Sensor("wetter-kanal", "Wetter Kanal", "weather", offset(CENTRE, -150, -800), 0),
    Sensor("wetter-fredenbaum", "Wetter Fredenbaum", "weather", offset(CENTRE, 1200, 700), 1),
    Sensor("pegel-kanal", "Pegel Kanal", "water_gauge", offset(CENTRE, -300, -500), 3),
    Sensor(
        "pegel-emscher",
        "Pegel Emscher",
        "water_gauge",
        offset(CENTRE, 1500, 400),
        4,
        send_location=False,  # placed by its profile
    ),
)
TURNING = "wetter-nordstadt"  # the station whose wind turns
RISING = "pegel-emscher"

DEMO_PROFILES: dict[str, dict[str, Any]] = {
    s.device: {"type": s.kind, "callsign": s.callsign} for s in SENSORS
} | {
    "pegel-emscher": {
        "type": "water_gauge",
        "callsign": "Pegel Emscher",
        "lat": round(offset(CENTRE, 1500, 400)[0], 6),
        "lon": round(offset(CENTRE, 1500, 400)[1], 6),
        "fields": {"lvl": {"reading": "water_level", "unit": "mm"}},
    }
}


def _wobble(device: str, t_s: float, period_s: float) -> float:
    """A smooth, per-sensor wobble in [-1, 1] (the same every run)."""
    phase = int(hashlib.sha256(device.encode()).hexdigest()[:6], 16) % 628 / 100
    return math.sin(2 * math.pi * t_s / period_s + phase)


def _weather(s: Sensor, t_s: float) -> dict[str, Any]:
    w = _wobble(s.device, t_s, 300.0)
    speed = 4.2 + 1.3 * w  # m/s, a fresh breeze from the south-west
    gust = speed * 1.6
    direction = 235.0 + 10.0 * _wobble(s.device, t_s, 900.0)
    if s.device == TURNING:  # veering through the hour: west-south-west to north-west
        direction = 240.0 + 80.0 * (0.5 - 0.5 * math.cos(2 * math.pi * t_s / 3600.0))
    temp = 11.5 + 0.8 * _wobble(s.device, t_s, 1800.0)
    humidity = 72.0 + 6.0 * w
    pressure = 1008.4 + 0.3 * w
    if s.style == 0:  # numbers in SI units
        return {
            "wind_speed": round(speed, 2),
            "wind_direction": round(direction % 360, 1),
            "wind_gust": round(gust, 2),
            "temperature": round(temp, 2),
            "humidity": round(humidity, 1),
            "pressure": round(pressure, 1),
            "rain": 0.0,
            "battery": 91,
        }
    if s.style == 1:  # camelCase, strings with units, km/h
        return {
            "windSpeed": f"{speed * 3.6:.1f} km/h",
            "windDirection": f"{direction % 360:.0f}°",
            "windGust": f"{gust * 3.6:.1f} km/h",
            "airTemperature": f"{temp:.2f} °C",
            "relativeHumidity": f"{humidity:.0f} %",
            "barometricPressure": f"{pressure:.1f}hPa",
            "rainfall": "0.2 mm",
        }
    # a German formatter: decimal commas
    return {
        "Station": {"battery": "3,61 V"},
        "wind_speed": f"{speed:.1f} m/s".replace(".", ","),
        "wind_dir": round(direction % 360),
        "gust": f"{gust:.1f} m/s".replace(".", ","),
        "temp": f"{temp:.1f} °C".replace(".", ","),
        "humidity": f"{humidity:.0f} %",
        "pressure": f"{pressure:.1f} hPa".replace(".", ","),
        "precipitation": "0,0 mm",
    }


def _gauge(s: Sensor, t_s: float) -> dict[str, Any]:
    if s.device == RISING:  # after the heavy rain: 18 cm an hour
        level_cm = 212.0 + 18.0 * t_s / 3600.0 + 0.15 * _wobble(s.device, t_s, 120.0)
        return {"lvl": round(level_cm * 10), "battery": 77}
    level_cm = 145.0 + 0.6 * _wobble(s.device, t_s, 1200.0)
    return {"water_level": f"{level_cm / 100:.3f} m", "temperature": 9.4}


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def uplink(
    s: Sensor, t_s: float, now: datetime, f_cnt: int, app: str = "cockpit-demo"
) -> dict[str, Any]:
    """The uplink message TTS would send for sensor `s` at sim time `t_s`."""
    decoded = _weather(s, t_s) if s.kind == "weather" else _gauge(s, t_s)
    frm = json.dumps(decoded, separators=(",", ":")).encode()[:51]  # stands in for bytes
    gw_time = now - timedelta(milliseconds=25)
    msg: dict[str, Any] = {
        "session_key_id": base64.b64encode(
            hashlib.sha256(s.device.encode()).digest()[:16]
        ).decode(),
        "f_port": 2,
        "f_cnt": f_cnt,
        "frm_payload": base64.b64encode(frm).decode(),
        "decoded_payload": decoded,
        "rx_metadata": [
            {
                "gateway_ids": {"gateway_id": "gw-hafen-dortmund", "eui": "B827EBFFFE8B3A21"},
                "time": _iso(gw_time),
                "timestamp": int(t_s * 1e6) % 2**32,
                "rssi": -97,
                "channel_rssi": -97,
                "snr": 6.25,
                "location": {
                    "latitude": GATEWAY[0],
                    "longitude": GATEWAY[1],
                    "altitude": 96,
                    "source": "SOURCE_REGISTRY",
                },
                "uplink_token": base64.b64encode(secrets.token_bytes(24)).decode(),
                "received_at": _iso(gw_time),
            }
        ],
        "settings": {
            "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 9}},
            "coding_rate": "4/5",
            "frequency": "868300000",
            "timestamp": int(t_s * 1e6) % 2**32,
            "time": _iso(gw_time),
        },
        "received_at": _iso(now),
        "consumed_airtime": "0.205824s",
        "network_ids": {"net_id": "000013", "tenant_id": "ttn", "cluster_id": "eu1"},
    }
    if s.send_location:
        msg["locations"] = {
            "user": {
                "latitude": round(s.where[0], 6),
                "longitude": round(s.where[1], 6),
                "altitude": 72,
                "source": "SOURCE_REGISTRY",
            }
        }
    dev_eui = "70B3D57ED005" + hashlib.sha256(s.device.encode()).hexdigest()[:4].upper()
    return {
        "end_device_ids": {
            "device_id": s.device,
            "application_ids": {"application_id": app.split("@")[0]},
            "dev_eui": dev_eui,
            "join_eui": "0000000000000000",
            "dev_addr": "260B" + dev_eui[-4:],
        },
        "correlation_ids": [f"as:up:{secrets.token_hex(13).upper()}"],
        "received_at": _iso(now + timedelta(milliseconds=30)),
        "uplink_message": msg,
    }


def topic_for(app: str, device: str) -> str:
    """The TTS topic of a device's uplinks (`app` as `{application id}@{tenant id}`)."""
    return f"v3/{app}/devices/{device}/up"


async def run_lorawan(
    broker: str | BrokerUrl,
    *,
    app: str = "cockpit-demo@ttn",
    interval_s: float = 10.0,
    start_s: float = 0.0,
    stop: asyncio.Event | None = None,
    sensors: tuple[Sensor, ...] = SENSORS,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Publish every sensor's uplink every `interval_s` until `stop`; reconnects."""
    b = parse_broker_url(broker) if isinstance(broker, str) else broker
    stop = stop or asyncio.Event()
    t0 = start_s - time.monotonic()
    f_cnt = 0
    while not stop.is_set():
        try:
            async with aiomqtt.Client(
                b.host,
                b.port,
                username=b.username,
                password=b.password,
                identifier=f"cockpit-sim-{secrets.token_hex(4)}",
            ) as client:
                while not stop.is_set():
                    f_cnt += 1
                    for s in sensors:
                        body = uplink(s, t0 + time.monotonic(), clock(), f_cnt, app)
                        await client.publish(topic_for(app, s.device), json.dumps(body), qos=0)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), interval_s)
        except aiomqtt.MqttError as exc:
            log.warning("LoRaWAN simulator: broker %s: %s", b.display(), exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 2.0)
