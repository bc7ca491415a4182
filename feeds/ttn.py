"""The Things Stack v3 (LoRaWAN) uplink messages → events. Pure: no sockets, no clock.

The same JSON comes over MQTT (`v3/{app}@{tenant}/devices/{device}/up`) and from a
webhook (the "uplink message" path); both end here. What is read, and why:

* `end_device_ids.device_id` is the entity id (and the weather station id).
* `uplink_message.decoded_payload` (the application's payload formatter output) holds the
  values. A device profile from the settings maps fields to readings (name, unit, scale);
  a profile `type` (weather, water_gauge, air_quality) brings the field names common
  codecs use (`wind_speed`, `windSpeed`, `temperature`, `pm2_5` … matched without case or
  `_`). A device without a profile still appears: each numeric field becomes a reading
  under its own name (nested objects flattened with `_`), non-numeric fields are left out.
* Values may be numbers or strings with a unit (`"30.11 °C"`, `"3,5 m/s"`: a German
  decimal comma is read as a point). Readings with a fixed unit (wind in m/s, water level
  in cm, temperature in °C …) are converted; a value whose unit cannot be converted, or
  that is out of physical range, is left out, never the whole uplink.
* Weather fields of a weather profile become one `weather` event (the fold names them
  `wind_speed`, `wind_dir` — where the wind comes FROM — …); everything else is a
  `readings` event of a `sensor` entity.
* Water gauges that send no rise rate get `water_rise` (cm/h) from their last two levels.
* Position: the profile's fixed one, else the device's own (`uplink_message.locations`,
  its payload's latitude/longitude), else the location of the gateway that heard it best
  (highest SNR). 0,0 is "not set" (TTS omits empty fields, so a missing one reads 0).
* `observed_at`: the Network Server's reception time (`uplink_message.received_at`, else
  the best gateway's `time`, else the message's `received_at`), never later than the
  cockpit's own arrival time.

Bad input raises `InvalidInput` (msgspec's error, the field path in its message), like
every other parser of the cockpit.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, Literal

import msgspec

from cockpit.events import (
    EntityKind,
    EntityRegistered,
    EntityRegisteredEvent,
    Event,
    Position,
    PositionEvent,
    Reading,
    Readings,
    ReadingsEvent,
    Source,
    WeatherEvent,
    WeatherObservation,
    checked,
    decode,
    new_event_id,
)

__all__ = [
    "MESSAGE_KINDS",
    "ApplicationUp",
    "DeviceProfile",
    "FieldMap",
    "ProfileType",
    "TtnTranslator",
    "convert",
    "flatten",
    "parse_message",
    "parse_value",
    "profiles_from",
    "reading_name",
]

FEED = "ttn"
ProfileType = Literal["weather", "water_gauge", "air_quality"]
# Other kinds of application messages TTS sends on the same webhook / MQTT client; an
# uplink carries `uplink_message`. They are valid, and carry nothing for the picture.
MESSAGE_KINDS = (
    "uplink_message",
    "uplink_normalized",
    "join_accept",
    "downlink_ack",
    "downlink_nack",
    "downlink_sent",
    "downlink_failed",
    "downlink_queued",
    "downlink_queue_invalidated",
    "location_solved",
    "service_data",
)
_MAX_FIELDS = 64  # readings per uplink (the Readings event's bound)
_MAX_DEPTH = 3  # nesting of decoded_payload objects that is flattened
_MAX_STRING = 64  # longer strings are never values
_MEMORY = 10_000  # devices remembered (registration, last water level)

# --- message shape (only what is read; TTS adds fields over versions: unknown ones pass) --


class _Struct(msgspec.Struct, frozen=True, kw_only=True):
    pass


class ApplicationIds(_Struct, frozen=True, kw_only=True):
    application_id: str = ""


class EndDeviceIds(_Struct, frozen=True, kw_only=True):
    device_id: str
    application_ids: ApplicationIds = msgspec.field(default_factory=ApplicationIds)
    dev_eui: str | None = None
    dev_addr: str | None = None


class GatewayIds(_Struct, frozen=True, kw_only=True):
    gateway_id: str = ""
    eui: str | None = None


class Location(_Struct, frozen=True, kw_only=True):
    # Empty fields are omitted by TTS: a missing coordinate is 0.
    latitude: float = 0.0
    longitude: float = 0.0
    altitude: float | None = None
    source: str | None = None


class RxMetadata(_Struct, frozen=True, kw_only=True):
    gateway_ids: GatewayIds = msgspec.field(default_factory=GatewayIds)
    time: datetime | None = None
    received_at: datetime | None = None
    rssi: float | None = None
    snr: float | None = None
    location: Location | None = None


class UplinkMessage(_Struct, frozen=True, kw_only=True):
    f_port: int = 0
    f_cnt: int = 0
    frm_payload: str | None = None
    decoded_payload: dict[str, Any] | None = None
    rx_metadata: list[RxMetadata] = msgspec.field(default_factory=list)
    settings: dict[str, Any] | None = None
    received_at: datetime | None = None
    locations: dict[str, Location] = msgspec.field(default_factory=dict)


class ApplicationUp(_Struct, frozen=True, kw_only=True):
    end_device_ids: EndDeviceIds
    received_at: datetime | None = None
    uplink_message: UplinkMessage | None = None
    simulated: bool = False
    # Present on the other message kinds; kept only to say what was ignored.
    join_accept: dict[str, Any] | None = None
    downlink_ack: dict[str, Any] | None = None
    downlink_nack: dict[str, Any] | None = None
    downlink_sent: dict[str, Any] | None = None
    downlink_failed: dict[str, Any] | None = None
    downlink_queued: dict[str, Any] | None = None
    downlink_queue_invalidated: dict[str, Any] | None = None
    location_solved: dict[str, Any] | None = None
    service_data: dict[str, Any] | None = None
    uplink_normalized: dict[str, Any] | None = None

    def message_kind(self) -> str:
        """Which kind of application message this is (`uplink_message`, `join_accept` …)."""
        for name in MESSAGE_KINDS:
            if getattr(self, name) is not None:
                return name
        return "unknown"


_DECODER = msgspec.json.Decoder(ApplicationUp)


def parse_message(data: bytes | str) -> ApplicationUp:
    """One TTS application message (JSON); raises `InvalidInput` naming the field."""
    return decode(_DECODER, data)


# --- profiles --------------------------------------------------------------------------


class FieldMap(_Struct, frozen=True, kw_only=True):
    """How one decoded field becomes a reading: `value * scale` in `unit` (the unit the
    device sends in; converted to the reading's fixed unit where it has one)."""

    reading: str
    unit: str = ""
    scale: float = 1.0


class DeviceProfile(_Struct, frozen=True, kw_only=True):
    kind: EntityKind = "sensor"
    type: ProfileType | None = None
    callsign: str | None = None
    lat: float | None = None
    lon: float | None = None
    alt_m: float | None = None
    fields: dict[str, FieldMap] = msgspec.field(default_factory=dict)


def profiles_from(raw: Mapping[str, Any]) -> dict[str, DeviceProfile]:
    """Profiles from plain config data (device id → table); raises `InvalidInput`."""
    return msgspec.convert(dict(raw), dict[str, DeviceProfile])


# Readings with a fixed unit: name -> unit. Names follow the cockpit's conventions.
FIXED_UNITS: dict[str, str] = {
    "wind_speed": "m/s",
    "wind_dir": "°",
    "gust": "m/s",
    "temperature": "°C",
    "humidity": "%",
    "pressure": "hPa",
    "precipitation": "mm",
    "water_level": "cm",
    "water_rise": "cm/h",
    "pm10": "µg/m³",
    "pm25": "µg/m³",
    "no2": "µg/m³",
    "co2": "ppm",
    "battery": "%",
}
# Weather readings → WeatherObservation attribute.
_WEATHER_ATTR = {
    "wind_speed": "wind_speed_mps",
    "wind_dir": "wind_dir_deg",
    "gust": "gust_mps",
    "temperature": "temperature_c",
    "humidity": "humidity_pct",
    "pressure": "pressure_hpa",
    "precipitation": "precipitation_mm",
}
_WEATHER_RANGE = {
    "wind_speed": (0.0, 120.0),
    "wind_dir": (0.0, 360.0),
    "gust": (0.0, 150.0),
    "temperature": (-90.0, 70.0),
    "humidity": (0.0, 100.0),
    "pressure": (800.0, 1100.0),
    "precipitation": (0.0, 500.0),
}

# Field names codecs use, matched after lower-casing and dropping `_`, `-`, `.`, spaces.
_ALIASES: dict[str, tuple[str, ...]] = {
    "wind_speed": ("windspeed", "windspeedavg", "windavg", "wind", "wspd", "spdavg"),
    "wind_dir": ("winddirection", "winddir", "winddirn", "wdir", "diravg", "winddirectionavg"),
    "gust": ("gust", "windgust", "gustspeed", "windgustspeed", "spdgst", "windspeedmax"),
    "temperature": (
        "temperature",
        "temp",
        "airtemperature",
        "airtemp",
        "tempc",
        "temperaturec",
    ),
    "humidity": ("humidity", "relativehumidity", "rh", "airhumidity", "hum"),
    "pressure": ("pressure", "airpressure", "barometricpressure", "baropress", "atmpressure"),
    "precipitation": ("precipitation", "rain", "rainfall", "rainmm", "rainamount", "precip"),
    "water_level": ("waterlevel", "level", "wasserstand", "pegel", "stage"),
    "water_rise": ("waterrise", "riserate", "levelrate", "waterlevelrate", "levelchange"),
    "pm10": ("pm10", "pm100"),
    "pm25": ("pm25", "pm2p5"),
    "no2": ("no2",),
    "co2": ("co2", "carbondioxide"),
    "battery": ("battery", "batterypct", "batterylevel", "bat", "batt"),
}
_TYPE_READINGS: dict[str, tuple[str, ...]] = {
    "weather": (
        "wind_speed",
        "wind_dir",
        "gust",
        "temperature",
        "humidity",
        "pressure",
        "precipitation",
        "battery",
    ),
    "water_gauge": ("water_level", "water_rise", "temperature", "battery"),
    "air_quality": ("pm10", "pm25", "no2", "co2", "temperature", "humidity", "battery"),
}
_LAT_KEYS = ("latitude", "lat")
_LON_KEYS = ("longitude", "lon", "lng", "long")


def _norm(name: str) -> str:
    return re.sub(r"[\s_.\-]", "", name).lower()


def _defaults(ptype: str | None) -> dict[str, str]:
    """normalised field name -> reading, for a profile type."""
    if ptype is None:
        return {}
    return {alias: r for r in _TYPE_READINGS[ptype] for alias in _ALIASES[r]}


# --- values ----------------------------------------------------------------------------

_NUMBER = re.compile(
    r"^\s*(?P<num>[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d{1,3})?)\s*(?P<unit>[^\d\s.,+-].{0,15})?$"
)


def parse_value(value: Any) -> tuple[float, str] | None:
    """A number, or a string with a number and maybe a unit → (value, unit); else None."""
    if isinstance(value, bool):
        return None  # a flag, not a measurement
    if isinstance(value, int | float):
        try:
            v = float(value)
        except OverflowError:  # JSON integers have no bound
            return None
        return (v, "") if math.isfinite(v) else None
    if not isinstance(value, str) or len(value) > _MAX_STRING:
        return None
    m = _NUMBER.match(value)
    if m is None:
        return None
    try:
        v = float(m["num"].replace(",", "."))
    except ValueError:
        return None
    unit = (m["unit"] or "").strip()
    return (v, unit) if math.isfinite(v) else None


# unit spelling → (dimension, factor to the base unit, offset); base units: m/s, °C, hPa,
# mm (precipitation), cm (level), cm/h, %, °, µg/m³, ppm.
_UNITS: dict[str, tuple[str, float, float]] = {}


def _units(dim: str, factor: float, offset: float, *names: str) -> None:
    for name in names:
        _UNITS[_unit_key(name)] = (dim, factor, offset)


def _unit_key(unit: str) -> str:
    return unit.strip().replace(" ", "").replace("³", "3").replace("μ", "µ").lower()


_units("speed", 1.0, 0.0, "m/s", "mps", "ms", "m/sec")
_units("speed", 1 / 3.6, 0.0, "km/h", "kmh", "kph", "km/std")
_units("speed", 0.514444, 0.0, "kn", "kt", "kts", "knots", "knot")
_units("speed", 0.44704, 0.0, "mph")
_units("temp", 1.0, 0.0, "°c", "c", "degc", "celsius", "℃")
_units("temp", 5 / 9, -32 * 5 / 9, "°f", "f", "degf", "fahrenheit", "℉")
_units("temp", 1.0, -273.15, "k", "kelvin")
_units("pressure", 1.0, 0.0, "hpa", "mbar", "mb")
_units("pressure", 0.01, 0.0, "pa")
_units("pressure", 10.0, 0.0, "kpa")
_units("pressure", 1000.0, 0.0, "bar")
_units("pressure", 33.8639, 0.0, "inhg")
_units("length", 0.1, 0.0, "mm")
_units("length", 1.0, 0.0, "cm")
_units("length", 100.0, 0.0, "m")
_units("length", 2.54, 0.0, "in", '"')
_units("rate", 1.0, 0.0, "cm/h")
_units("rate", 0.1, 0.0, "mm/h")
_units("rate", 100.0, 0.0, "m/h")
_units("rate", 1 / 24, 0.0, "cm/d")
_units("rate", 60.0, 0.0, "cm/min")
_units("pct", 1.0, 0.0, "%", "%rh", "pct", "percent")
_units("angle", 1.0, 0.0, "°", "deg", "degrees", "grad")
_units("conc", 1.0, 0.0, "µg/m3", "ug/m3", "ugm3", "µg/m³")
_units("conc", 1000.0, 0.0, "mg/m3")
_units("ppm", 1.0, 0.0, "ppm")
_units("ppm", 0.001, 0.0, "ppb")

# What each fixed unit measures, and the factor from the base unit of that dimension to
# it (water levels and precipitation share "length", in cm; precipitation wants mm).
_TARGET: dict[str, tuple[str, float]] = {
    "m/s": ("speed", 1.0),
    "°C": ("temp", 1.0),
    "hPa": ("pressure", 1.0),
    "mm": ("length", 10.0),
    "cm": ("length", 1.0),
    "cm/h": ("rate", 1.0),
    "%": ("pct", 1.0),
    "°": ("angle", 1.0),
    "µg/m³": ("conc", 1.0),
    "ppm": ("ppm", 1.0),
}
_COMPASS = {
    p: i * 22.5
    for i, p in enumerate(
        "N NNE NE ENE E ESE SE SSE S SSW SW WSW W WNW NW NNW".split()  # noqa: SIM905
    )
}


def convert(value: float, unit: str, target: str) -> float | None:
    """`value` in `unit` → `target` (a fixed unit); None where it cannot be converted.
    No unit means the value is already in the target unit."""
    if not unit or _unit_key(unit) == _unit_key(target):
        return value
    src = _UNITS.get(_unit_key(unit))
    dst = _TARGET.get(target)
    if src is None or dst is None or src[0] != dst[0]:
        return None
    return (value * src[1] + src[2]) * dst[1]


_BAD_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def reading_name(name: str) -> str | None:
    """A field name as a reading name (the `Name` pattern), or None if nothing is left."""
    cleaned = _BAD_NAME.sub("_", name).strip("_")[:64]
    return cleaned or None


def flatten(payload: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(path, value) of every leaf, nested objects joined with `_`, bounded in depth and
    count; lists are not measurements and are skipped."""
    count = 0
    stack: list[tuple[str, Mapping[str, Any], int]] = [("", payload, 0)]
    while stack:
        prefix, obj, depth = stack.pop()
        for key, value in obj.items():
            path = f"{prefix}_{key}" if prefix else str(key)
            if isinstance(value, Mapping):
                if depth + 1 < _MAX_DEPTH:
                    stack.append((path, value, depth + 1))
                continue
            count += 1
            if count > 4 * _MAX_FIELDS:
                return
            yield path, value


# --- translation -----------------------------------------------------------------------


def _valid(lat: float, lon: float) -> bool:
    return (
        math.isfinite(lat)
        and math.isfinite(lon)
        and -90 <= lat <= 90
        and -180 <= lon <= 180
        and not (abs(lat) < 1e-4 and abs(lon) < 1e-4)
    )


def _alt(alt: float | None) -> float | None:
    return alt if alt is not None and math.isfinite(alt) and -500 <= alt <= 20000 else None


class TtnTranslator:
    """Uplinks → events, with a small memory per device (registration, last water level).

    One per process, shared by the webhook route and the MQTT subscription, so a water
    gauge's rise rate comes out the same whichever way its uplinks arrive."""

    def __init__(self, profiles: Mapping[str, DeviceProfile] | None = None) -> None:
        self.profiles = dict(profiles or {})
        self._defaults = {name: _defaults(p.type) for name, p in self.profiles.items()}
        # device -> (time, level cm) of its last water level; LRU-bounded.
        self._levels: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._registered: OrderedDict[str, None] = OrderedDict()

    def translate(self, up: ApplicationUp, *, incident: str, received_at: datetime) -> list[Event]:
        """The events of one message; [] for messages other than uplinks."""
        msg = up.uplink_message
        if msg is None:
            return []
        device = up.end_device_ids.device_id
        profile = self.profiles.get(device)
        observed = self._observed_at(up, msg, received_at)
        if not _ID.match(device):
            raise msgspec.ValidationError("not a valid device id - at `$.end_device_ids.device_id`")
        source = Source(feed="ttn", device=device)
        kind: EntityKind = profile.kind if profile else "sensor"
        callsign = ((profile.callsign if profile else None) or device)[:64]
        values, position_fields = self._values(device, profile, msg.decoded_payload or {})
        level = self._derive_rise(device, values, observed.timestamp())
        where = self._where(profile, msg, position_fields)

        def envelope() -> dict[str, Any]:
            return {
                "id": new_event_id(),
                "incident": incident,
                "source": source,
                "observed_at": observed,
                "received_at": received_at,
            }

        events: list[Event] = []
        if device not in self._registered:
            events.append(
                EntityRegisteredEvent(
                    **envelope(),
                    payload=EntityRegistered(
                        entity=device,
                        entity_kind=kind,
                        callsign=callsign,
                        meta=_meta(up, profile, where),
                    ),
                )
            )
        if where is not None:
            lat, lon, alt, _ = where
            events.append(
                PositionEvent(
                    **envelope(),
                    payload=Position(
                        entity=device,
                        entity_kind=kind,
                        callsign=callsign,
                        lat=lat,
                        lon=lon,
                        alt_m=alt,
                    ),
                )
            )
        weather = {}
        if profile is not None and profile.type == "weather":
            weather = {n: values.pop(n)[0] for n in list(values) if n in _WEATHER_ATTR}
        if weather:
            events.append(
                WeatherEvent(
                    **envelope(),
                    payload=WeatherObservation(
                        station=device,
                        callsign=callsign,
                        lat=where[0] if where else None,
                        lon=where[1] if where else None,
                        **{_WEATHER_ATTR[n]: v for n, v in weather.items()},
                    ),
                )
            )
        if values:
            readings = {n: Reading(value=v, unit=u[:16]) for n, (v, u) in values.items()}
            events.append(
                ReadingsEvent(
                    **envelope(),
                    payload=Readings(
                        entity=device, entity_kind=kind, callsign=callsign, values=readings
                    ),
                )
            )
        out = [checked(e) for e in events]  # raises InvalidInput naming the path
        self._remember(self._registered, device, None)  # only what was accepted counts
        if level is not None:
            self._remember(self._levels, device, level)
        return out

    # -- parts --

    @staticmethod
    def _observed_at(up: ApplicationUp, msg: UplinkMessage, received_at: datetime) -> datetime:
        best = _best_gateway(msg.rx_metadata)
        when = msg.received_at or (best.time if best else None) or up.received_at or received_at
        if when.tzinfo is None:
            return received_at
        return min(when, received_at)

    def _values(
        self, device: str, profile: DeviceProfile | None, payload: Mapping[str, Any]
    ) -> tuple[dict[str, tuple[float, str]], dict[str, float]]:
        """Readings (name -> value, unit) and any latitude/longitude the payload holds."""
        fields = profile.fields if profile else {}
        by_norm = {_norm(k): m for k, m in fields.items()}
        defaults = self._defaults.get(device, {})
        values: dict[str, tuple[float, str]] = {}
        position: dict[str, float] = {}
        for path, raw in flatten(payload):
            key = _norm(path)
            if key in _LAT_KEYS or key in _LON_KEYS:
                coord = parse_value(raw)
                if coord is not None:
                    position["lat" if key in _LAT_KEYS else "lon"] = coord[0]
                continue
            mapping = fields.get(path) or by_norm.get(key)
            name = mapping.reading if mapping else defaults.get(key) or reading_name(path)
            if name == "wind_dir" and isinstance(raw, str) and raw.strip().upper() in _COMPASS:
                parsed: tuple[float, str] | None = (_COMPASS[raw.strip().upper()], "°")
            else:
                parsed = parse_value(raw)
            if parsed is None:
                continue  # not a measurement: left out, not an error
            value, unit = parsed
            if mapping is not None:
                value, unit = value * mapping.scale, unit or mapping.unit
            if name is None or name in values or not _NAME.match(name):
                continue
            result = _in_fixed_unit(name, value, unit)
            if result is None:
                continue
            values[name] = result
            if len(values) >= _MAX_FIELDS:
                break
        return values, position

    def _derive_rise(
        self, device: str, values: dict[str, tuple[float, str]], t: float
    ) -> tuple[float, float] | None:
        """Adds `water_rise` from the device's last level if it sent none; returns the
        (time, level) to remember once the uplink is accepted."""
        level = values.get("water_level")
        if level is None:
            return None
        last = self._levels.get(device)
        if last is not None and t <= last[0]:
            return None  # an old uplink, late: neither a rate nor the new last level
        if "water_rise" not in values and last is not None and t - last[0] <= 6 * 3600:
            rise = (level[0] - last[1]) / ((t - last[0]) / 3600.0)
            if math.isfinite(rise):
                values["water_rise"] = (round(rise, 3), "cm/h")
        return t, level[0]

    @staticmethod
    def _where(
        profile: DeviceProfile | None, msg: UplinkMessage, payload_pos: Mapping[str, float]
    ) -> tuple[float, float, float | None, str] | None:
        """(lat, lon, alt, source): profile > device's own > best gateway's."""
        p = profile
        if p is not None and p.lat is not None and p.lon is not None and _valid(p.lat, p.lon):
            return p.lat, p.lon, _alt(p.alt_m), "profile"
        own = [msg.locations[k] for k in ("frm-payload", "user") if k in msg.locations]
        own += [v for k, v in sorted(msg.locations.items()) if k not in ("frm-payload", "user")]
        for loc in own:
            if _valid(loc.latitude, loc.longitude):
                return loc.latitude, loc.longitude, _alt(loc.altitude), "device"
        lat, lon = payload_pos.get("lat"), payload_pos.get("lon")
        if lat is not None and lon is not None and _valid(lat, lon):
            return lat, lon, None, "device"
        heard = [m for m in msg.rx_metadata if m.location is not None]
        heard.sort(key=lambda m: (_num(m.snr), _num(m.rssi)), reverse=True)
        for m in heard:
            gw = m.location
            if gw is not None and _valid(gw.latitude, gw.longitude):
                return gw.latitude, gw.longitude, _alt(gw.altitude), "gateway"
        return None

    def _remember(self, memory: OrderedDict[str, Any], key: str, value: Any) -> None:
        memory[key] = value
        memory.move_to_end(key)
        while len(memory) > _MEMORY:
            memory.popitem(last=False)


_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$(?!\n)")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$(?!\n)")


def _num(x: float | None) -> float:
    return x if x is not None and math.isfinite(x) else -math.inf


def _best_gateway(rx: list[RxMetadata]) -> RxMetadata | None:
    return max(rx, key=lambda m: (_num(m.snr), _num(m.rssi)), default=None)


def _in_fixed_unit(name: str, value: float, unit: str) -> tuple[float, str] | None:
    """The value in the reading's fixed unit (None: no conversion, or out of range)."""
    if not math.isfinite(value):
        return None  # e.g. a profile's scale that overflows
    target = FIXED_UNITS.get(name)
    if target is None:
        return value, unit
    converted = convert(value, unit, target)
    if converted is None or not math.isfinite(converted):
        return None
    if name == "wind_dir":
        converted %= 360.0
    low, high = _WEATHER_RANGE.get(name, (-math.inf, math.inf))
    if name in ("humidity", "battery"):
        low, high = 0.0, 100.0
    if not low <= converted <= high:
        return None
    return converted, target


def _meta(
    up: ApplicationUp,
    profile: DeviceProfile | None,
    where: tuple[float, float, float | None, str] | None,
) -> dict[str, str]:
    ids = up.end_device_ids
    meta = {"lorawan_application": ids.application_ids.application_id[:200]}
    if ids.dev_eui:
        meta["dev_eui"] = ids.dev_eui[:200]
    if profile is not None and profile.type:
        meta["sensor_type"] = profile.type
    if where is not None:
        meta["position_from"] = where[3]  # a gateway's position is only roughly the device's
    return {k: v for k, v in meta.items() if v}
