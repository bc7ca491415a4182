"""The Things Stack v3 feed: uplinks shaped exactly as TTS documents them (Integrations →
Data Formats: end_device_ids, received_at, uplink_message{f_port, f_cnt, frm_payload,
decoded_payload, rx_metadata[], settings, received_at, locations}), the webhook route on a
started server, the MQTT subscription against the real Mosquitto on 127.0.0.1:1883
(skipped when none answers), and hostile input."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cockpit.auth import AuthStore
from cockpit.events import (
    Event,
    InvalidInput,
    PositionEvent,
    ReadingsEvent,
    WeatherEvent,
    event_to_json,
    parse_event,
)
from feeds.ttn import (
    TtnTranslator,
    convert,
    parse_message,
    parse_value,
    profiles_from,
)

T0 = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)
HARBOUR = (51.527, 7.4445)  # Dortmund harbour
GATEWAY = (51.5136, 7.4653)
BROKER = ("127.0.0.1", 1883)


def iso(t: datetime) -> str:
    """RFC 3339 with nanoseconds, as TTS writes its times."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


def uplink(
    device: str,
    decoded: dict[str, Any] | None,
    *,
    at: datetime = T0,
    app: str = "fw-dortmund",
    locations: dict[str, dict[str, Any]] | None = None,
    gateways: list[tuple[str, float, tuple[float, float] | None]] | None = None,
    f_cnt: int = 42,
) -> dict[str, Any]:
    """An uplink message as The Things Stack sends it (empty fields omitted, as TTS does)."""
    gws = gateways if gateways is not None else [("gw-hafen", 7.5, GATEWAY)]
    rx = []
    for i, (gw, snr, loc) in enumerate(gws):
        meta: dict[str, Any] = {
            "gateway_ids": {"gateway_id": gw, "eui": f"B827EBFFFE8B{i:04X}"},
            "time": iso(at - timedelta(milliseconds=20)),
            "timestamp": 2020514315 + i,
            "rssi": -80 - i,
            "channel_rssi": -80 - i,
            "snr": snr,
            "uplink_token": base64.b64encode(secrets.token_bytes(24)).decode(),
            "channel_index": 2,
            "received_at": iso(at - timedelta(milliseconds=10)),
        }
        if loc is not None:
            meta["location"] = {
                "latitude": loc[0],
                "longitude": loc[1],
                "altitude": 95,
                "source": "SOURCE_REGISTRY",
            }
        rx.append(meta)
    msg: dict[str, Any] = {
        "session_key_id": "AXA50WCtBvbnDpGOmu2Rpg==",
        "f_port": 2,
        "f_cnt": f_cnt,
        "frm_payload": base64.b64encode(b"\x01\x02\x03\x04").decode(),
        "rx_metadata": rx,
        "settings": {
            "data_rate": {
                "lora": {"bandwidth": 125000, "spreading_factor": 7, "coding_rate": "4/5"}
            },
            "frequency": "868100000",
            "timestamp": 2020514315,
            "time": iso(at - timedelta(milliseconds=20)),
        },
        "received_at": iso(at),
        "consumed_airtime": "0.061696s",
        "network_ids": {"net_id": "000013", "tenant_id": "ttn", "cluster_id": "eu1"},
    }
    if decoded is not None:
        msg["decoded_payload"] = decoded
    if locations:
        msg["locations"] = locations
    return {
        "end_device_ids": {
            "device_id": device,
            "application_ids": {"application_id": app},
            "dev_eui": "70B3D57ED0051234",
            "join_eui": "0000000000000000",
            "dev_addr": "260B1234",
        },
        "correlation_ids": ["as:up:01HF3N6GZ7Y3K9ZQ", "gs:uplink:01HF3N6GZ"],
        "received_at": iso(at + timedelta(milliseconds=40)),
        "uplink_message": msg,
    }


def user_location(lat: float, lon: float) -> dict[str, dict[str, Any]]:
    return {
        "user": {"latitude": lat, "longitude": lon, "altitude": 80, "source": "SOURCE_REGISTRY"}
    }


PROFILES = profiles_from(
    {
        "wetter-hafen": {"type": "weather", "callsign": "Wetter Hafen"},
        "pegel-ruhr-1": {
            "type": "water_gauge",
            "callsign": "Pegel Ruhr",
            "lat": 51.4300,
            "lon": 7.4800,
            "fields": {"lvl": {"reading": "water_level", "unit": "mm", "scale": 1.0}},
        },
        "luft-1": {"type": "air_quality", "callsign": "Luft 1", "lat": 51.52, "lon": 7.45},
        "huge-1": {"fields": {"v": {"reading": "v", "scale": 1e300}, "w": {"reading": "co2"}}},
    }
)


def run(tr: TtnTranslator, message: dict[str, Any], now: datetime | None = None) -> list[Event]:
    """Through the whole path a route takes: JSON bytes, parse, translate, and every event
    still the same after a JSON round trip (the log's)."""
    up = parse_message(json.dumps(message).encode())
    events = tr.translate(up, incident="test", received_at=now or T0 + timedelta(seconds=1))
    for e in events:
        assert parse_event(event_to_json(e)) == e
    return events


def of(events: list[Event], cls: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, cls)]


# --- parsing ---------------------------------------------------------------------------


def test_a_weather_station_is_a_weather_event_with_its_registry_location() -> None:
    tr = TtnTranslator(PROFILES)
    decoded = {
        "windSpeed": "18 km/h",
        "wind_direction": 270,
        "gust": 7.5,
        "temperature": "30.11 °C",
        "humidity": "12 %",
        "pressure": "1013.2hPa",
        "rain": 0.4,
        "battery": 88,
        "status": "ok",
    }
    events = run(tr, uplink("wetter-hafen", decoded, locations=user_location(*HARBOUR)))
    kinds = [e.kind for e in events]
    assert kinds == ["entity.registered", "position", "weather", "readings"]
    (w,) = of(events, WeatherEvent)
    p = w.payload
    assert p.station == "wetter-hafen" and p.callsign == "Wetter Hafen"
    assert (p.lat, p.lon) == HARBOUR
    assert p.wind_speed_mps == pytest.approx(5.0)
    assert p.wind_dir_deg == 270 and p.gust_mps == 7.5
    assert p.temperature_c == pytest.approx(30.11) and p.humidity_pct == 12
    assert p.pressure_hpa == pytest.approx(1013.2) and p.precipitation_mm == 0.4
    (r,) = of(events, ReadingsEvent)
    assert {k: (v.value, v.unit) for k, v in r.payload.values.items()} == {"battery": (88, "%")}
    assert w.observed_at == T0 and w.received_at == T0 + timedelta(seconds=1)
    assert w.source.feed == "ttn" and w.source.device == "wetter-hafen"
    # Registered once: the next uplink brings no second registration.
    again = run(tr, uplink("wetter-hafen", decoded, at=T0 + timedelta(minutes=5)))
    assert [e.kind for e in again] == ["position", "weather", "readings"]


def test_a_water_gauge_without_a_rate_gets_one_from_its_last_two_levels() -> None:
    tr = TtnTranslator(PROFILES)
    first = run(tr, uplink("pegel-ruhr-1", {"lvl": 1500}))
    (r1,) = of(first, ReadingsEvent)
    assert r1.payload.values["water_level"].value == 150.0  # mm → cm
    assert r1.payload.values["water_level"].unit == "cm"
    assert "water_rise" not in r1.payload.values
    (pos,) = of(first, PositionEvent)
    assert (pos.payload.lat, pos.payload.lon) == (51.43, 7.48)  # the profile's, not the gateway's
    assert pos.payload.callsign == "Pegel Ruhr" and pos.payload.entity_kind == "sensor"
    later = T0 + timedelta(minutes=15)
    second = run(tr, uplink("pegel-ruhr-1", {"lvl": "1.56 m"}, at=later), later)
    (r2,) = of(second, ReadingsEvent)
    assert r2.payload.values["water_level"].value == pytest.approx(156.0)
    assert r2.payload.values["water_rise"].value == pytest.approx(24.0)  # 6 cm in 15 min
    assert r2.payload.values["water_rise"].unit == "cm/h"
    # A late uplink (older than the last) gives no rate and does not move the memory.
    late = run(tr, uplink("pegel-ruhr-1", {"lvl": 1400}, at=T0 + timedelta(minutes=1)), later)
    assert "water_rise" not in of(late, ReadingsEvent)[0].payload.values


def test_a_water_gauge_that_sends_its_rate_keeps_it() -> None:
    tr = TtnTranslator(profiles_from({"pegel-2": {"type": "water_gauge"}}))
    run(tr, uplink("pegel-2", {"water_level": 100}))
    later = T0 + timedelta(hours=1)
    events = run(
        tr, uplink("pegel-2", {"waterLevel": 130, "rise_rate": "2,5 cm/h"}, at=later), later
    )
    values = of(events, ReadingsEvent)[0].payload.values
    assert values["water_level"].value == 130 and values["water_rise"].value == 2.5
    # Only a gateway heard it and it has no position of its own: placed at the gateway.
    (pos,) = of(events, PositionEvent)
    assert (pos.payload.lat, pos.payload.lon) == GATEWAY


def test_air_quality_names_and_units() -> None:
    tr = TtnTranslator(PROFILES)
    decoded = {"pm2_5": "8,4 µg/m³", "PM10": 17, "no2": "21 ug/m3", "co2": "0.5 ppm", "noise": 45}
    values = of(run(tr, uplink("luft-1", decoded)), ReadingsEvent)[0].payload.values
    assert {k: (v.value, v.unit) for k, v in values.items()} == {
        "pm25": (pytest.approx(8.4), "µg/m³"),
        "pm10": (17, "µg/m³"),
        "no2": (21, "µg/m³"),
        "co2": (0.5, "ppm"),
        "noise": (45, ""),
    }


def test_an_unprofiled_device_shows_every_numeric_field_at_its_own_location() -> None:
    tr = TtnTranslator(PROFILES)
    decoded = {
        "Temp": "21,5 °C",
        "soil": {"moisture": "33 %", "temp": 12.25},
        "rssi_hist": [1, 2, 3],
        "label": "Keller",
        "alarm": True,
        "latitude": 51.5301,
        "longitude": 7.4502,
        "weird key!": 3,
    }
    frm_payload_location = {
        "frm-payload": {"latitude": 51.5301, "longitude": 7.4502, "source": "SOURCE_GPS"}
    }
    events = run(tr, uplink("eui-70b3d57ed0051234", decoded, locations=frm_payload_location))
    reg = events[0]
    assert reg.kind == "entity.registered"
    assert reg.payload.entity_kind == "sensor" and reg.payload.callsign == "eui-70b3d57ed0051234"
    assert reg.payload.meta["position_from"] == "device"
    (pos,) = of(events, PositionEvent)
    assert (pos.payload.lat, pos.payload.lon) == (51.5301, 7.4502)
    values = of(events, ReadingsEvent)[0].payload.values
    assert {k: (v.value, v.unit) for k, v in values.items()} == {
        "Temp": (21.5, "°C"),
        "soil_moisture": (33, "%"),
        "soil_temp": (12.25, ""),
        "weird_key": (3, ""),
    }


def test_an_unprofiled_device_with_only_its_gateways_location() -> None:
    tr = TtnTranslator()
    gateways = [
        ("gw-far", -12.0, (51.40, 7.30)),
        ("gw-near", 9.25, GATEWAY),
        ("gw-none", 11.0, None),
    ]
    events = run(tr, uplink("sensor-7", {"temperature": "86 °F"}, gateways=gateways))
    (pos,) = of(events, PositionEvent)
    assert (pos.payload.lat, pos.payload.lon) == GATEWAY  # the best-heard gateway with a place
    assert events[0].payload.meta["position_from"] == "gateway"
    t = of(events, ReadingsEvent)[0].payload.values["temperature"]
    assert (round(t.value, 3), t.unit) == (30.0, "°C")
    # Observed when the network server received it (never later than our own arrival).
    assert pos.observed_at == T0
    early = run(TtnTranslator(), uplink("sensor-7", {"x": 1}), T0 - timedelta(seconds=30))
    assert all(e.observed_at == T0 - timedelta(seconds=30) for e in early)


def test_no_location_anywhere_still_gives_readings() -> None:
    events = run(TtnTranslator(), uplink("sensor-8", {"co2": 415}, gateways=[("gw", 5, None)]))
    assert [e.kind for e in events] == ["entity.registered", "readings"]


def test_values_with_units_and_decimal_commas() -> None:
    assert parse_value("30.11 °C") == (30.11, "°C")
    assert parse_value("12 %") == (12.0, "%")
    assert parse_value("1013.2hPa") == (1013.2, "hPa")
    assert parse_value("3,5 m/s") == (3.5, "m/s")
    assert parse_value(" -4 ") == (-4.0, "")
    assert parse_value("1e3 Pa") == (1000.0, "Pa")
    bad_ones = ("n/a", "", "°C", "NaN", "inf", "1e999 K", True, None, [1], float("nan"), 10**400)
    for bad in (*bad_ones, {"a": 1}, "1.2.3"):
        assert parse_value(bad) is None, bad
    assert convert(36.0, "km/h", "m/s") == pytest.approx(10.0)
    assert convert(10.0, "kn", "m/s") == pytest.approx(5.14444)
    assert convert(212.0, "°F", "°C") == pytest.approx(100.0)
    assert convert(1.5, "m", "cm") == pytest.approx(150.0)
    assert convert(2.0, "cm", "mm") == pytest.approx(20.0)
    assert convert(101325.0, "Pa", "hPa") == pytest.approx(1013.25)
    assert convert(5.0, "%", "°C") is None  # not convertible: left out


def test_bad_values_are_left_out_and_the_rest_kept() -> None:
    tr = TtnTranslator(PROFILES)
    decoded = {
        "temperature": "hot",
        "humidity": "140 %",
        "wind_speed": "12 °C",
        "wind_direction": "NW",
        "pressure": "1002 mbar",
    }
    events = run(tr, uplink("wetter-hafen", decoded, locations=user_location(*HARBOUR)))
    p = of(events, WeatherEvent)[0].payload
    assert p.pressure_hpa == 1002 and p.wind_dir_deg == 315
    assert p.temperature_c is None and p.humidity_pct is None and p.wind_speed_mps is None


def test_messages_that_are_not_uplinks_and_bad_shapes() -> None:
    tr = TtnTranslator()
    join = {
        "end_device_ids": {
            "device_id": "dev1",
            "application_ids": {"application_id": "app1"},
            "dev_eui": "0004A30B001C0530",
            "join_eui": "800000000000000C",
            "dev_addr": "00BCB929",
        },
        "correlation_ids": ["as:up:01..."],
        "received_at": "2020-02-12T15:15:45.787Z",
        "join_accept": {"session_key_id": "AXBSH1Pk6Z0G166", "received_at": "2020-02-17T07:49:00Z"},
    }
    up = parse_message(json.dumps(join))
    assert up.message_kind() == "join_accept"
    assert tr.translate(up, incident="t", received_at=T0) == []
    for bad, where in (
        (b"not json", "malformed"),
        (b"[]", "Expected `object`"),
        (json.dumps({"uplink_message": {}}).encode(), "end_device_ids"),
        (json.dumps({**join, "end_device_ids": {"device_id": 5}}).encode(), "device_id"),
        (json.dumps(uplink("d", None) | {"received_at": "yesterday"}).encode(), "received_at"),
    ):
        with pytest.raises(InvalidInput, match=where):
            parse_message(bad)
    not_an_id = parse_message(json.dumps(uplink("bad id!", {"x": 1})))
    with pytest.raises(InvalidInput, match="device_id"):
        tr.translate(not_an_id, incident="t", received_at=T0)


def test_profiles_are_checked_in_the_settings() -> None:
    from cockpit.settings import SettingsError, load_settings

    s = load_settings(
        None,
        ttn_profiles={"p1": {"type": "weather", "fields": {"ws": {"reading": "wind_speed"}}}},
    )
    assert s.ttn_profiles["p1"].fields["ws"].scale == 1.0
    with pytest.raises(SettingsError, match=r"ttn_profiles\.p1\.type"):
        load_settings(None, ttn_profiles={"p1": {"type": "volcano"}})
    with pytest.raises(SettingsError, match=r"ttn_profiles\.p1\.lat"):
        load_settings(None, ttn_profiles={"p1": {"lat": 91, "lon": 7}})


# --- hostile input ---------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=30,
)
_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400),
    st.text(max_size=30),
    st.builds(
        lambda n, u: f"{n} {u}", st.floats(), st.sampled_from(["°C", "km/h", "m", "%", "ppm", "x"])
    ),
    _json,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    device=st.sampled_from(["wetter-hafen", "pegel-ruhr-1", "luft-1", "huge-1", "free-1"]),
    decoded=st.dictionaries(
        st.one_of(st.text(max_size=12), st.sampled_from(["v", "w", "lvl", "temperature"])),
        _values,
        max_size=12,
    ),
    loc=st.tuples(st.floats(), st.floats()),
)
def test_no_decoded_payload_breaks_the_translator(
    device: str, decoded: dict[str, Any], loc: tuple[float, float]
) -> None:
    tr = TtnTranslator(PROFILES)
    msg = uplink(device, decoded, locations=user_location(*loc), gateways=[("gw", 1.0, loc)])
    try:
        data = json.dumps(msg, allow_nan=True).encode()
        up = parse_message(data)
    except (InvalidInput, ValueError):
        return
    for e in tr.translate(up, incident="t", received_at=T0):  # raises nothing else
        assert parse_event(event_to_json(e)) == e


@settings(max_examples=300, deadline=None)
@given(data=st.one_of(st.binary(max_size=300), _json.map(lambda v: json.dumps(v).encode())))
def test_random_bytes_are_invalid_input_or_a_message(data: bytes) -> None:
    try:
        up = parse_message(data)
    except InvalidInput:
        return
    with contextlib.suppress(InvalidInput):
        TtnTranslator().translate(up, incident="t", received_at=T0)


# --- the webhook route on a started server ---------------------------------------------


def _add_device(data_dir: Path, name: str, feeds: list[str]) -> str:
    with AuthStore(data_dir / "auth.sqlite") as auth:
        return auth.add_device(name, feeds)


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not await check():
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0.05)


async def _entity(c: httpx.AsyncClient, entity: str) -> dict[str, Any] | None:
    for e in (await c.get("/api/v1/situation")).json()["entities"]:
        if e["id"] == entity:
            return e  # type: ignore[no-any-return]
    return None


async def test_the_webhook_draws_the_sensor_and_counts_rejects(tmp_path: Path) -> None:
    from tests.serving import serve

    profiles = {
        "pegel-ruhr-1": {"type": "water_gauge", "callsign": "Pegel Ruhr", "lat": 51.43, "lon": 7.48}
    }
    async with serve(tmp_path / "data", ttn_profiles=profiles) as s:
        hook = {"Authorization": f"Bearer {_add_device(tmp_path / 'data', 'ttn-hook', ['ttn'])}"}
        now = datetime.now(UTC)
        async with httpx.AsyncClient(base_url=s.url, timeout=15) as c:
            await s.login(c)
            r = await c.post(
                "/api/v1/ingest/ttn",
                json=uplink(
                    "pegel-ruhr-1", {"water_level": "1,42 m"}, at=now - timedelta(minutes=10)
                ),
                headers=hook,
            )
            assert r.status_code == 202, r.text
            assert len(r.json()["seq"]) == 3  # registered, position, readings
            gauge = await _entity(c, "pegel-ruhr-1")
            assert gauge is not None
            assert gauge["kind"] == "sensor" and gauge["callsign"] == "Pegel Ruhr"
            assert (gauge["lat"], gauge["lon"]) == (51.43, 7.48)
            assert gauge["readings"]["water_level"]["value"] == pytest.approx(142.0)
            assert gauge["readings"]["water_level"]["unit"] == "cm"
            # Its next level, through the same translator: a rise rate appears.
            r = await c.post(
                "/api/v1/ingest/ttn",
                json=uplink("pegel-ruhr-1", {"water_level": 148}, at=now),
                headers=hook,
            )
            assert r.status_code == 202
            gauge = await _entity(c, "pegel-ruhr-1")
            rise = gauge["readings"]["water_rise"] if gauge else None
            assert rise is not None and rise["value"] == pytest.approx(36.0, rel=0.01)
            # A join-accept is valid and ignored.
            join = uplink("pegel-ruhr-1", None)
            join.pop("uplink_message")
            join["join_accept"] = {"session_key_id": "AXBSH1Pk6Z0G166", "received_at": iso(now)}
            r = await c.post("/api/v1/ingest/ttn", json=join, headers=hook)
            assert r.status_code == 202 and r.json() == {"seq": [], "ignored": "join_accept"}
            # Bad bodies: 422 naming the field, counted.
            r = await c.post("/api/v1/ingest/ttn", content=b"{oops", headers=hook)
            assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body"
            r = await c.post("/api/v1/ingest/ttn", json={"uplink_message": {}}, headers=hook)
            assert r.status_code == 422
            assert r.json()["errors"][0]["field"] == "end_device_ids"
            bad_time = uplink("pegel-ruhr-1", {"water_level": 1}) | {"received_at": "gestern"}
            r = await c.post("/api/v1/ingest/ttn", json=bad_time, headers=hook)
            assert r.status_code == 422 and r.json()["errors"][0]["field"] == "received_at"
            # No token, or a token for another feed.
            r = await c.post("/api/v1/ingest/ttn", json=uplink("x", {"a": 1}))
            assert r.status_code == 401
            r = await c.post(
                "/api/v1/ingest/ttn", json=uplink("x", {"a": 1}), headers=s.device("robot")
            )
            assert r.status_code == 403
            ttn = (await c.get("/healthz")).json()["feeds"]["ttn"]
            assert ttn["accepted"] == 5 and ttn["rejected"] == 5
            assert ttn["state"] == "idle"  # no broker configured: the route only
            assert ttn["last_message_at"] is not None
            assert await _entity(c, "x") is None


# --- MQTT against the real broker ------------------------------------------------------


def _broker_answers() -> bool:
    try:
        with socket.create_connection(BROKER, timeout=1.0):
            return True
    except OSError:
        return False


needs_broker = pytest.mark.skipif(not _broker_answers(), reason=f"no MQTT broker at {BROKER}")


async def _publish(topic: str, payload: bytes) -> None:
    import aiomqtt

    async with aiomqtt.Client(*BROKER, identifier=f"test-{secrets.token_hex(4)}") as client:
        await client.publish(topic, payload, qos=1)


@needs_broker
async def test_mqtt_uplinks_reach_the_picture_and_garbage_is_a_reject(tmp_path: Path) -> None:
    from tests.serving import serve

    app = f"test-{secrets.token_hex(4)}@ttn"  # a topic of this test alone
    topic = f"v3/{app}/devices/+/up"
    async with (
        serve(tmp_path / "data", mqtt_url=f"mqtt://{BROKER[0]}:{BROKER[1]}", ttn_topic=topic) as s,
        httpx.AsyncClient(base_url=s.url, timeout=15) as c,
    ):
        await s.login(c)

        async def health() -> dict[str, Any]:
            return (await c.get("/healthz")).json()  # type: ignore[no-any-return]

        async def connected() -> bool:
            return (await health())["feeds"]["ttn"]["state"] == "connected"

        await _until(connected)
        h = await health()
        assert h["feeds"]["ttn"]["links"] == {"mqtt://127.0.0.1:1883": "connected"}
        assert h["ttn_mqtt"]["topic"] == topic
        now = datetime.now(UTC)
        one = uplink(
            "sensor-a",
            {"temperature": "21,5 °C"},
            app=app,
            locations=user_location(*HARBOUR),
            at=now,
        )
        await _publish(f"v3/{app}/devices/sensor-a/up", json.dumps(one).encode())

        async def drawn(entity: str) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                e = await _entity(c, entity)
                return e is not None and e["lat"] is not None

            return check

        await _until(await drawn("sensor-a"))
        a = await _entity(c, "sensor-a")
        assert a is not None and (a["lat"], a["lon"]) == HARBOUR
        assert a["readings"]["temperature"].items() >= {"value": 21.5, "unit": "°C"}.items()
        # Garbage, a wrong shape, and a device the topic does not name: rejects; the
        # subscription goes on and the next good uplink still arrives.
        await _publish(f"v3/{app}/devices/sensor-b/up", b"\xff\x00garbage")
        await _publish(f"v3/{app}/devices/sensor-b/up", b'{"end_device_ids": {}}')
        await _publish(f"v3/{app}/devices/sensor-z/up", json.dumps(one).encode())
        two = uplink(
            "sensor-b", {"co2": "612 ppm"}, app=app, at=now, gateways=[("gw", 3.0, GATEWAY)]
        )
        await _publish(f"v3/{app}/devices/sensor-b/up", json.dumps(two).encode())
        await _until(await drawn("sensor-b"))
        b = await _entity(c, "sensor-b")
        assert b is not None and (b["lat"], b["lon"]) == GATEWAY
        assert b["readings"]["co2"].items() >= {"value": 612, "unit": "ppm"}.items()

        # The picture shows an uplink before its commit is counted (drawn, then recorded).
        async def counted() -> bool:
            return bool((await health())["feeds"]["ttn"]["accepted"] >= 6)

        await _until(counted)
        ttn = (await health())["feeds"]["ttn"]
        assert ttn["rejected"] == 3 and ttn["accepted"] >= 6
        assert ttn["state"] == "connected"
        assert set(ttn["reject_reasons"]) == {
            "invalid uplink: body",
            "invalid uplink: end_device_ids.device_id",
        }


@needs_broker
async def test_a_broker_that_does_not_answer_is_down_and_the_server_serves(tmp_path: Path) -> None:
    from tests.serving import serve

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    secret = secrets.token_urlsafe(12)
    url = f"mqtt://fw-dortmund%40ttn:{secret}@127.0.0.1:{port}"
    async with (
        serve(tmp_path / "data", mqtt_url=url) as s,
        httpx.AsyncClient(base_url=s.url, timeout=15) as c,
    ):

        async def down() -> bool:
            return (await c.get("/healthz")).json()["feeds"]["ttn"]["state"] == "down"

        await _until(down, timeout=30)
        h = (await c.get("/healthz")).json()
        assert h["status"] == "ok" and h["ttn_mqtt"]["last_error"]
        assert h["ttn_mqtt"]["broker"] == f"mqtt://127.0.0.1:{port}"
        assert secret not in json.dumps(h)  # credentials never shown


# --- the simulator ---------------------------------------------------------------------


def test_the_simulated_sensors_read_as_the_demo_expects() -> None:
    from cockpit.settings import TtnProfile
    from feeds.sim.lorawan import DEMO_PROFILES, RISING, SENSORS, TURNING
    from feeds.sim.lorawan import uplink as sim_uplink

    # The demo's profiles pass the settings' own validation.
    for profile in DEMO_PROFILES.values():
        TtnProfile.model_validate(profile)
    tr = TtnTranslator(profiles_from(DEMO_PROFILES))
    seen: dict[str, dict[str, Any]] = {}
    for i, t_s in enumerate((0.0, 900.0, 1800.0)):
        now = T0 + timedelta(seconds=t_s)
        for s in SENSORS:
            events = run(tr, sim_uplink(s, t_s, now, i + 1), now + timedelta(seconds=1))
            pos = of(events, PositionEvent)
            assert pos, s.device
            dist = math.dist((pos[0].payload.lat, pos[0].payload.lon), HARBOUR)
            assert dist < 0.03, s.device  # within ~2 km of the harbour
            for w in of(events, WeatherEvent):
                seen.setdefault(s.device, {})[t_s] = w.payload
            for r in of(events, ReadingsEvent):
                seen.setdefault(s.device + ":r", {})[t_s] = r.payload.values
    stations = [s.device for s in SENSORS if s.kind == "weather"]
    assert len(stations) == 5
    for device in stations:
        for p in seen[device].values():  # every formatter's wind, temperature, pressure read
            assert 2.0 < p.wind_speed_mps < 7.0 and p.gust_mps > p.wind_speed_mps
            assert 0 <= p.wind_dir_deg <= 360 and 5 < p.temperature_c < 20
            assert 1000 < p.pressure_hpa < 1015 and p.humidity_pct is not None
    turning = seen[TURNING]
    assert turning[0.0].wind_dir_deg == pytest.approx(240, abs=1)
    assert turning[1800.0].wind_dir_deg == pytest.approx(320, abs=1)
    rising = seen[RISING + ":r"]
    assert rising[1800.0]["water_level"].value > rising[0.0]["water_level"].value
    assert rising[1800.0]["water_rise"].value == pytest.approx(18.0, abs=2.0)
    steady = seen["pegel-kanal:r"]
    assert abs(steady[1800.0]["water_rise"].value) < 3.0


@needs_broker
async def test_the_demo_sensors_over_the_real_broker_appear_in_the_picture(
    tmp_path: Path,
) -> None:
    from feeds.sim.lorawan import DEMO_PROFILES, SENSORS, run_lorawan
    from tests.serving import serve

    app = f"demo-{secrets.token_hex(4)}@ttn"
    stop = asyncio.Event()
    async with (
        serve(
            tmp_path / "data",
            mqtt_url="mqtt://127.0.0.1:1883",
            ttn_topic=f"v3/{app}/devices/+/up",
            ttn_profiles=DEMO_PROFILES,
        ) as s,
        httpx.AsyncClient(base_url=s.url, timeout=15) as c,
    ):
        await s.login(c)

        async def connected() -> bool:
            return (await c.get("/healthz")).json()["feeds"]["ttn"]["state"] == "connected"

        await _until(connected)
        sim = asyncio.create_task(
            run_lorawan("mqtt://127.0.0.1:1883", app=app, interval_s=0.3, stop=stop)
        )
        try:

            async def all_there() -> bool:
                entities = {
                    e["id"]: e for e in (await c.get("/api/v1/situation")).json()["entities"]
                }
                return all(
                    s.device in entities
                    and entities[s.device]["lat"] is not None
                    and (
                        "wind_speed" in entities[s.device]["readings"]
                        or "water_rise" in entities[s.device]["readings"]
                    )
                    for s in SENSORS
                )

            await _until(all_there, timeout=30)
        finally:
            stop.set()
            await asyncio.wait_for(sim, 10)
        entities = {e["id"]: e for e in (await c.get("/api/v1/situation")).json()["entities"]}
        assert entities["wetter-hafen"]["callsign"] == "Wetter Hafen"
        assert entities["pegel-emscher"]["readings"]["water_level"]["unit"] == "cm"
        assert (await c.get("/healthz")).json()["feeds"]["ttn"]["rejected"] == 0


# --- no input stops the subscription ---------------------------------------------------


@pytest.fixture(scope="module")
def mqtt_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One server subscribed to a topic of this module alone (hypothesis reuses it)."""
    if not _broker_answers():
        pytest.skip(f"no MQTT broker at {BROKER}")
    from tests.serving import serve_in_thread

    app = f"fuzz-{secrets.token_hex(4)}@ttn"
    data_dir = tmp_path_factory.mktemp("ttn-fuzz") / "data"
    url = f"mqtt://{BROKER[0]}:{BROKER[1]}"
    with (
        serve_in_thread(data_dir, mqtt_url=url, ttn_topic=f"v3/{app}/devices/+/up") as served,
        httpx.Client(base_url=served.url, timeout=15) as c,
    ):
        r = c.post("/api/v1/session", json={"username": "el", "password": served.passwords["el"]})
        assert r.status_code == 200
        for _ in range(300):
            if c.get("/healthz").json()["feeds"]["ttn"]["state"] == "connected":
                break
            time.sleep(0.05)
        hook = {"Authorization": f"Bearer {_add_device(data_dir, 'ttn-hook', ['ttn'])}"}
        yield app, c, hook


_payloads = st.one_of(
    st.binary(max_size=200),
    _json.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.text(max_size=8), _values, max_size=8).map(
        lambda d: json.dumps(uplink("fuzzed", d), allow_nan=True).encode()
    ),
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(payloads=st.lists(_payloads, min_size=1, max_size=8))
def test_no_message_stops_the_subscription(mqtt_server: Any, payloads: list[bytes]) -> None:
    import paho.mqtt.publish as publish

    app, c, _ = mqtt_server
    before = c.get("/healthz").json()["ttn_mqtt"]["messages"]
    probe = f"probe-{secrets.token_hex(4)}"
    good = json.dumps(uplink(probe, {"co2": 400}, at=datetime.now(UTC))).encode()
    msgs: list[Any] = [(f"v3/{app}/devices/fuzzed/up", p, 0, False) for p in payloads]
    msgs.append((f"v3/{app}/devices/{probe}/up", good, 0, False))
    publish.multiple(msgs, hostname=BROKER[0], port=BROKER[1])  # in order, one connection
    deadline = datetime.now(UTC) + timedelta(seconds=20)
    while True:
        ids = {e["id"] for e in c.get("/api/v1/situation").json()["entities"]}
        if probe in ids:
            break
        assert datetime.now(UTC) < deadline, "the good uplink after the fuzzed ones never came"
        time.sleep(0.02)
    h = c.get("/healthz").json()
    assert h["ttn_mqtt"]["messages"] == before + len(payloads) + 1
    assert h["ttn_mqtt"]["errors"] == 0  # every bad one was a counted reject, not a crash
    assert h["feeds"]["ttn"]["state"] == "connected"


# --- a broker that goes away and comes back --------------------------------------------


class _Mosquitto:
    """A Mosquitto of this test alone, on a free port, that the test stops and restarts."""

    def __init__(self, tmp: Path) -> None:
        from tests.procs import free_port

        self.port = free_port()
        self.tmp = tmp
        self.proc: Any = None

    def start(self) -> None:
        import subprocess

        with (self.tmp / "mosquitto.log").open("ab") as log:  # the child keeps its own fd
            self.proc = subprocess.Popen(
                [self.exe(), "-p", str(self.port)], stdout=log, stderr=log, stdin=subprocess.DEVNULL
            )
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    @staticmethod
    def exe() -> str:
        import shutil

        return shutil.which("mosquitto") or "/usr/sbin/mosquitto"


@pytest.mark.skipif(not Path(_Mosquitto.exe()).exists(), reason="no mosquitto binary")
async def test_the_subscription_comes_back_after_the_broker_restarts(tmp_path: Path) -> None:
    import paho.mqtt.publish as publish

    from tests.serving import serve

    broker = _Mosquitto(tmp_path)
    broker.start()
    try:
        async with (
            serve(tmp_path / "data", mqtt_url=f"mqtt://127.0.0.1:{broker.port}") as s,
            httpx.AsyncClient(base_url=s.url, timeout=15) as c,
        ):
            await s.login(c)

            def state_is(*states: str) -> Callable[[], Awaitable[bool]]:
                async def check() -> bool:
                    return (await c.get("/healthz")).json()["feeds"]["ttn"]["state"] in states

                return check

            async def send_until_drawn(device: str) -> None:
                body = json.dumps(uplink(device, {"co2": 420}, at=datetime.now(UTC)))
                topic = f"v3/app@ttn/devices/{device}/up"
                await asyncio.to_thread(
                    publish.single, topic, body, hostname="127.0.0.1", port=broker.port
                )

                async def drawn() -> bool:
                    return await _entity(c, device) is not None

                await _until(drawn)

            await _until(state_is("connected"))
            await send_until_drawn("before-1")
            broker.stop()
            await _until(state_is("reconnecting", "down"))
            broker.start()
            await _until(state_is("connected"), timeout=60)
            await send_until_drawn("after-1")
            h = (await c.get("/healthz")).json()
            assert h["ttn_mqtt"]["connects"] == 2
            assert h["feeds"]["ttn"]["rejected"] == 0
    finally:
        broker.stop()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(body=_payloads)
def test_no_webhook_body_breaks_the_route(mqtt_server: Any, body: bytes) -> None:
    _, c, hook = mqtt_server
    before = c.get("/healthz").json()["feeds"]["ttn"]["rejected"]
    r = c.post("/api/v1/ingest/ttn", content=body, headers=hook)
    assert r.status_code in (202, 422), r.text
    after = c.get("/healthz").json()["feeds"]["ttn"]["rejected"]
    if r.status_code == 422:
        assert r.json()["errors"][0]["field"] and after == before + 1
    else:
        assert after == before and "seq" in r.json()


def test_a_broker_url_that_cannot_be_used_is_refused_naming_it(tmp_path: Path) -> None:
    from cockpit.settings import SettingsError, load_settings
    from feeds.ttn_mqtt import parse_broker_url

    b = parse_broker_url("mqtts://fw%40ttn:s3cr%2Ft@broker.example:8884")
    assert (b.host, b.port, b.tls, b.username, b.password) == (
        "broker.example",
        8884,
        True,
        "fw@ttn",
        "s3cr/t",
    )
    assert b.display() == "mqtts://broker.example:8884"
    assert parse_broker_url("mqtt://127.0.0.1").port == 1883
    with pytest.raises(SettingsError, match="mqtt_url"):
        load_settings(None, data_dir=tmp_path, mqtt_url="http://broker")
    with pytest.raises(SettingsError, match=r"mqtt_url \(COCKPIT_MQTT_URL\).*out of range"):
        load_settings(None, data_dir=tmp_path, mqtt_url="mqtt://broker:99999")
