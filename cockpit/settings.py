"""Settings: `COCKPIT_*` environment variables and an optional TOML file, validated once.

Precedence: command-line flags > environment > TOML file > defaults. Errors name the
key and the value, e.g. `COCKPIT_PORT='x': Input should be a valid integer`.
"""

from __future__ import annotations

import ipaddress
import ssl
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from cockpit.rules.config import GasLimit, RuleConfig
from cockpit.situation import DEFAULT_STALE_AFTER

__all__ = [
    "RosGas",
    "RosRobot",
    "RosTopics",
    "RulesSettings",
    "Settings",
    "SettingsError",
    "TtnField",
    "TtnProfile",
    "check_tls_pair",
    "load_settings",
]


_Fov = Annotated[float, Field(gt=1.0, lt=179.0)]  # a camera's field of view, degrees


class GasLimitSetting(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    warning: float
    critical: float


class RulesSettings(BaseModel):
    """Thresholds of the rules (`[rules]` in the TOML file); unset keys keep the defaults
    of `cockpit/rules/config.py`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    gas: dict[str, GasLimitSetting] = Field(default_factory=dict)
    battery_warning_pct: float | None = Field(None, ge=0, le=100)
    battery_critical_pct: float | None = Field(None, ge=0, le=100)
    stale_kinds: list[Literal["unit", "drone", "robot", "sensor", "person"]] | None = None
    feed_stale_s: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    wind_shift_deg: float | None = Field(None, gt=0, le=180)
    wind_shift_window_s: float | None = Field(None, gt=0, le=86_400)
    water_marks_cm: dict[str, float] = Field(default_factory=dict)
    water_rise_cm_h: float | None = Field(None, gt=0)
    danger_radius_m: float | None = Field(None, gt=0, le=50_000)
    sector_length_m: float | None = Field(None, gt=0, le=50_000)
    zone_kinds: list[Literal["unit", "drone", "robot", "sensor", "person"]] | None = None
    responder_arrival_m: float | None = Field(None, gt=0, le=1000)
    responder_position_max_age_s: float | None = Field(None, gt=0, le=86_400)
    responder_candidates: int | None = Field(None, ge=1, le=20)

    def config(self) -> RuleConfig:
        base = RuleConfig()
        changes: dict[str, Any] = {
            k: v
            for k, v in self.model_dump(exclude={"gas", "feed_stale_s"}).items()
            if v is not None and v != {}
        }
        for key in ("stale_kinds", "zone_kinds"):
            if key in changes:
                changes[key] = tuple(changes[key])
        if self.feed_stale_s:
            changes["feed_stale_s"] = {**base.feed_stale_s, **self.feed_stale_s}
        if self.gas:
            gas = dict(base.gas)
            for name, lim in self.gas.items():
                old = gas.get(name)
                gas[name] = GasLimit(
                    label=old.label if old else name.upper(),
                    unit=old.unit if old else "",
                    warning=lim.warning,
                    critical=lim.critical,
                    falling=old.falling if old else lim.critical < lim.warning,
                )
            changes["gas"] = gas
        return replace(base, **changes)


# A ROS topic or message type name, and a dotted field path into a message.
_RosTopic = Annotated[str, Field(pattern=r"^/?[A-Za-z~][A-Za-z0-9_/~]{0,199}$")]
_RosType = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*/(msg/)?[A-Za-z][A-Za-z0-9_]*$")]
_RosField = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$")]
_RobotId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$")]
_ReadingName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class RosGas(BaseModel):
    """One gas reading of a robot: its topic, message type and the field with the value."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    topic: _RosTopic
    type: _RosType = Field("std_msgs/Float32", description="ROS message type of the topic.")
    field: _RosField = Field("data", description="Dotted path of the value in the message.")
    unit: str = Field("ppm", max_length=16, description="ppm, %UEG, Vol-% ...")


class RosTopics(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    fix: _RosTopic | None = Field(None, description="sensor_msgs/NavSatFix")
    odom: _RosTopic | None = Field(None, description="nav_msgs/Odometry (needs origin)")
    battery: _RosTopic | None = Field(None, description="sensor_msgs/BatteryState")
    temperature: _RosTopic | None = Field(None, description="sensor_msgs/Temperature")
    gas: dict[_ReadingName, RosGas] = Field(default_factory=dict, max_length=32)


class RosRobot(BaseModel):
    """A robot the cockpit connects to over rosbridge v2."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    url: str = Field(pattern=r"^wss?://[^\s/]+(/\S*)?$", description="ws://host:9090")
    callsign: str | None = Field(None, max_length=64)
    origin: (
        tuple[
            Annotated[float, Field(ge=-90, le=90)],
            Annotated[float, Field(ge=-180, le=180)],
            Annotated[float, Field(ge=0, le=360)],
        ]
        | None
    ) = Field(None, description="Odometry origin: lat, lon, compass bearing of the odom +x axis.")
    throttle_ms: int = Field(200, ge=0, le=60_000, description="At most one message per topic.")
    topics: RosTopics = Field(default_factory=RosTopics)

    @model_validator(mode="after")
    def _odom_needs_origin(self) -> RosRobot:
        if self.topics.odom and self.origin is None:
            raise ValueError("topics.odom needs origin = [lat, lon, heading of the odom x axis]")
        return self


class TtnField(BaseModel):
    """How one decoded LoRaWAN field becomes a reading: value * scale, sent in `unit`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    reading: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Reading name.")
    unit: str = Field("", max_length=16, description="Unit the device sends in.")
    scale: float = Field(1.0, allow_inf_nan=False, description="Factor applied first.")


class TtnProfile(BaseModel):
    """A LoRaWAN device (by its TTS device id): what it is and how its fields read."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["unit", "drone", "robot", "sensor", "person"] = "sensor"
    type: Literal["weather", "water_gauge", "air_quality"] | None = Field(
        None, description="Default field names of this kind of sensor."
    )
    callsign: str | None = Field(None, max_length=64)
    lat: float | None = Field(None, ge=-90, le=90, description="Fixed position.")
    lon: float | None = Field(None, ge=-180, le=180)
    alt_m: float | None = Field(None, ge=-500, le=20000)
    fields: dict[str, TtnField] = Field(default_factory=dict, max_length=64)


class SettingsError(Exception):
    """A setting has a bad value; the message names the key, the value and the reason."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COCKPIT_", extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", description="Address to bind.")
    port: int = Field(8050, ge=0, le=65535, description="TCP port to bind (0: any free one).")
    data_dir: Path = Field(Path("cockpit-data"), description="Incident logs, users, tokens.")
    incident: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="Incident this process serves; created and kept in the data dir if unset.",
    )
    redis_url: str | None = Field(None, description="Redis Streams bus; unset: in-memory bus.")
    role: Literal["all", "web", "recorder", "media"] = Field(
        "all",
        description="What this process does: all (one box), web (pages, API, push, ingest "
        "routes), recorder (the log, listeners, clock) or media (WHIP/WHEP, video); "
        "every role but all shares the picture over redis_url.",
    )
    worker_name: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_-]{1,32}$",
        description="A web worker's name behind the proxy: cookie cockpit_worker and "
        "header X-Cockpit-Worker, so a browser stays on its worker.",
    )
    recorder: Literal["auto", "on", "off"] = Field(
        "auto", description="auto: exactly one process per incident records (Redis lease)."
    )
    redis_keep_s: float = Field(
        600.0,
        ge=60.0,
        le=7 * 86_400.0,
        description="How long the Redis stream keeps events after the snapshot that covers "
        "them (at most personal_retention_h): for processes joining or catching up.",
    )
    recorder_sync: Literal["FULL", "NORMAL"] = Field(
        "FULL", description="SQLite synchronous mode; FULL survives power loss."
    )
    snapshot_every_n: int = Field(
        100_000,
        ge=100,
        le=10_000_000,
        description="Snapshot every N events: a seek folds at most N events (~0.3 s).",
    )
    snapshot_every_s: float = Field(
        30.0,
        ge=1.0,
        le=86_400.0,
        description="... or every T seconds, whichever comes first: a replay seek folds at "
        "most T seconds of events (30 s: ~4,000 at 140 events/s, ~0.1 s of CPU).",
    )
    track_len: int = Field(200, ge=2, le=100_000, description="Track points kept per entity.")
    stale_after_s: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_STALE_AFTER),
        description="Seconds without a report after which an entity looks stale, per kind.",
    )
    max_body_bytes: int = Field(
        1 << 20, ge=1024, le=64 << 20, description="Largest ingest body or WS message (413 above)."
    )
    max_batch: int = Field(
        1000, ge=1, le=100_000, description="Messages per ingest request (413 above)."
    )
    commit_timeout_s: float = Field(
        5.0, gt=0, le=60, description="How long an ingest waits for the commit before 503."
    )
    session_ttl_s: float = Field(
        12 * 3600, ge=60, le=7 * 86400, description="Log-in session lifetime (one shift)."
    )
    stream_queue: int = Field(2000, ge=10, le=1_000_000, description="Deltas per push client.")
    cookie_secure: bool = Field(False, description="Mark the session cookie Secure (TLS).")
    mavlink_listen: str | None = Field(
        None,
        pattern=r"^udp:[A-Za-z0-9.:\[\]-]+:\d{1,5}$",
        description="MAVLink v2 from drones, e.g. udp:127.0.0.1:14550 (the demo's default).",
    )
    mavlink_callsigns: dict[int, str] = Field(
        default_factory=dict, description="Callsign per MAVLink system id, e.g. {1: 'Drohne 1'}."
    )
    cap_folder: Path | None = Field(
        None, description="Folder polled for CAP warnings (*.xml, DWD-style *.zip of CAP XMLs)."
    )
    cap_url: str | None = Field(
        None,
        pattern=r"^https?://\S+$",
        description="URL polled for CAP warnings (one CAP XML or a zip of them).",
    )
    cap_poll_s: float = Field(
        60.0, ge=0.1, le=86400, description="Seconds between polls of cap_folder and cap_url."
    )
    cap_max_age_s: float = Field(
        86400.0,
        ge=60,
        le=30 * 86400,
        description="Seconds after it was sent that a CAP warning without expires leaves.",
    )
    cot_listen: str | None = Field(
        None,
        pattern=r"^tcp:[A-Za-z0-9.:\[\]-]+:\d{1,5}$",
        description="CoT from/to TAK clients, e.g. tcp:127.0.0.1:8087 (the demo's default).",
    )
    cot_trusted_networks: list[str] = Field(
        default_factory=list,
        description="CIDRs whose CoT connections need no <auth> (a co-located TAK server).",
    )
    cot_send_to: str | None = Field(
        None,
        pattern=r"^tcp:[A-Za-z0-9.:\[\]-]+:\d{1,5}$",
        description="A TAK server to link to (tcp:host:port): the picture out, its users in.",
    )
    cot_relay_after: Literal["published", "committed"] = Field(
        "published",
        description="Relay TAK reports once on the bus, or only once committed to the log.",
    )
    cot_max_event_bytes: int = Field(
        64 * 1024, ge=1024, le=1 << 20, description="Largest CoT event; larger ones are dropped."
    )
    cot_flush_ms: float = Field(
        15.0,
        ge=0.0,
        le=1000.0,
        description="How long TAK reports gather before they go on together (ms).",
    )
    cameras: dict[str, tuple[_Fov, _Fov]] = Field(
        default_factory=dict,
        description="Camera field of view (horizontal, vertical degrees) per drone entity id.",
    )
    camera_default: tuple[_Fov, _Fov] | None = Field(
        (82.0, 52.0), description="Field of view for drones without their own; null: no footprint."
    )
    video_analysis: dict[str, Literal["thermal", "visual"]] = Field(
        default_factory=dict,
        description="Per video stream: thermal (hotspots) or visual (people); others: none.",
    )
    vision_fps: float = Field(
        2.0, gt=0, le=10, description="Frames a second analysed per stream (all are decoded)."
    )
    video_relay_url: SecretStr | None = Field(
        None,
        description="An SFU's WHIP endpoint with {stream} (e.g. "
        "http://user:secret@sfu:8889/{stream}/whip): the media process pushes every live "
        "stream there, unchanged, for many viewers.",
    )
    video_relay_token: SecretStr | None = Field(
        None, description="Bearer token for video_relay_url (if the SFU wants one)."
    )
    video_whep_url: str = Field(
        "/whep/{stream}",
        pattern=r"^(/|https?://)\S*\{stream\}\S*$",
        description="Where the pages play a stream (WHEP), with {stream}: the media "
        "process's own route, or the SFU's behind the proxy (e.g. /sfu/{stream}/whep).",
    )
    ice_servers: list[str] = Field(
        default_factory=list,
        description="STUN/TURN URLs for video (stun:host:port); none: host candidates only.",
    )
    map_center: tuple[float, float] = Field(
        (51.5270, 7.4445), description="Where the map opens: latitude, longitude."
    )
    map_zoom: int = Field(15, ge=1, le=20, description="The map's opening zoom level.")
    map_tiles: str | None = Field(
        None,
        pattern=r"^(https?://|/)\S*\{z\}\S*\{x\}\S*\{y\}",
        description="Tile URL template ({z}/{x}/{y}); unset: no tiles, the base layer only.",
    )
    map_mbtiles: Path | None = Field(
        None, description="Local MBTiles file, served as /tiles/{z}/{x}/{y} (wins over map_tiles)."
    )
    map_attribution: str = Field("", max_length=300, description="Credit shown for the tiles.")
    rules: RulesSettings = Field(
        default_factory=RulesSettings,
        description="Rule thresholds (gases, battery, silence, wind, water, hazard zones).",
    )
    tick_s: float = Field(
        1.0,
        gt=0,
        le=60,
        description="How often the recorder checks whether time alone changed the picture.",
    )
    rosbridge: dict[_RobotId, RosRobot] = Field(
        default_factory=dict,
        description="Robots to connect to over rosbridge v2, by entity id (see below).",
    )
    mqtt_url: str | None = Field(
        None,
        pattern=r"^mqtts?://\S+$",
        description="Broker for LoRaWAN uplinks: mqtt:// or mqtts://, user:password@ allowed.",
    )
    mqtt_username: str | None = Field(
        None, max_length=200, description="MQTT user (TTS: {application id}@{tenant id})."
    )
    mqtt_password: SecretStr | None = Field(None, description="MQTT password (TTS: an API key).")
    ttn_topic: str = Field(
        "v3/+/devices/+/up",
        min_length=1,
        max_length=300,
        description="MQTT topic of The Things Stack uplinks.",
    )
    ttn_profiles: dict[str, TtnProfile] = Field(
        default_factory=dict, description="LoRaWAN device profiles by TTS device id."
    )
    responders_per_dispatch: int = Field(
        2,
        ge=0,
        le=10,
        description="First responders alerted on dispatch when none are named (nearest first).",
    )
    adler_alert_url: str | None = Field(
        None,
        pattern=r"^https?://\S+$",
        description="Where responder alerts go (the A.D.Le.R. platform); unset: not sent.",
    )
    adler_alert_token: SecretStr | None = Field(
        None, description="Bearer token for adler_alert_url (set both, or neither)."
    )
    personal_retention_h: float = Field(
        72.0,
        gt=0,
        le=24 * 365,
        description="Hours after a detection's last report or step until its person is purged.",
    )
    personal_purge_every_s: float = Field(
        300.0,
        ge=0.1,
        le=86_400,
        description="How often the recording process looks for personal data to purge.",
    )
    video_segment_s: float = Field(
        60.0,
        ge=1.0,
        le=600.0,  # an exercise holds one segment per camera in memory
        description="Length of a recorded video segment (s); the next one starts at a keyframe.",
    )
    # TLS and limits (issue 8).
    tls_cert: Path | None = Field(
        None, description="PEM certificate (chain) to serve HTTPS with; set with tls_key."
    )
    tls_key: Path | None = Field(
        None, description="PEM private key of tls_cert (not encrypted); set with tls_cert."
    )
    ingest_rate_per_s: float = Field(
        500.0,
        ge=0,
        le=1_000_000,
        description="Events a second per device token (a batch of 100 costs 100); 0: no limit.",
    )
    ingest_burst: int = Field(
        2000,
        ge=1,
        le=10_000_000,
        description="Events a device token may send at once above its rate (>= max_batch).",
    )
    device_ws_connections: int = Field(
        8, ge=1, le=10_000, description="Concurrent ingest WebSockets per device token."
    )
    user_streams: int = Field(
        10, ge=1, le=10_000, description="Concurrent push streams (open pages) per user."
    )

    @field_validator("role")
    @classmethod
    def _role_needs_a_shared_bus(cls, value: str, info: ValidationInfo) -> str:
        # A web, recorder or media process alone would hold a picture nobody records
        # (web, media) or record what nobody can send it (recorder).
        if value != "all" and not info.data.get("redis_url"):
            raise ValueError(
                f"role {value!r} shares the picture with other processes: "
                "set redis_url (COCKPIT_REDIS_URL)"
            )
        return value

    @field_validator("recorder")
    @classmethod
    def _only_recording_roles_record(cls, value: str, info: ValidationInfo) -> str:
        role = info.data.get("role")
        if role in ("web", "media") and value == "on":
            raise ValueError(f"a {role} process never records (role {role!r})")
        return value

    @property
    def https(self) -> bool:
        """Users reach this server over HTTPS: its own (tls_cert) or a proxy's
        (cookie_secure). Cookies are then Secure and every answer carries HSTS."""
        return self.tls_cert is not None or self.cookie_secure

    @field_validator("video_relay_url", "video_relay_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # Compose passes `${VAR:-}` as an empty string for "not configured".
        return None if value == "" else value

    @field_validator("video_relay_url")
    @classmethod
    def _relay_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            url = value.get_secret_value()
            if not url.startswith(("http://", "https://")) or "{stream}" not in url:
                raise ValueError("an http(s) URL with {stream} in it")
        return value

    @field_validator("cot_trusted_networks")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as exc:
                raise ValueError(f"{cidr!r} is not a network (CIDR, e.g. 127.0.0.1/32)") from exc
        return value

    @field_validator("stale_after_s")
    @classmethod
    def _known_kinds(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(DEFAULT_STALE_AFTER))
        if unknown:
            raise ValueError(
                f"unknown entity kind {unknown[0]!r}; known: {', '.join(DEFAULT_STALE_AFTER)}"
            )
        if any(v <= 0 for v in value.values()):
            raise ValueError("every threshold must be > 0 s")
        return {**DEFAULT_STALE_AFTER, **value}

    @field_validator("tls_cert", "tls_key")
    @classmethod
    def _readable_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError("no such file")
        return value

    @model_validator(mode="after")
    def _tls_and_burst(self) -> Settings:
        # SettingsError, not ValueError: pydantic passes it through, so the one line
        # names the setting at fault rather than the model.
        if (self.tls_cert is None) != (self.tls_key is None):
            missing = "tls_key" if self.tls_key is None else "tls_cert"
            raise SettingsError(
                f"{missing} (COCKPIT_{missing.upper()}): missing; "
                "set both tls_cert and tls_key, or neither"
            )
        if self.tls_cert is not None and self.tls_key is not None:
            check_tls_pair(self.tls_cert, self.tls_key)
        if self.ingest_rate_per_s > 0 and self.ingest_burst < self.max_batch:
            raise SettingsError(
                f"ingest_burst (COCKPIT_INGEST_BURST) = {self.ingest_burst}: "
                f"below max_batch ({self.max_batch}); a full batch could never pass"
            )
        return self

    @field_validator("mqtt_url")
    @classmethod
    def _broker_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if not parts.hostname:
                raise ValueError("no host")
            _ = parts.port  # raises ValueError naming a port out of range
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # toml_file comes from model_config; load_settings sets it on a subclass.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def check_tls_pair(cert: Path, key: Path) -> None:
    """SettingsError naming the setting unless `cert` and `key` load as a TLS pair."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_verify_locations(cafile=str(cert))  # the certificate file alone
    except ssl.SSLError as exc:
        raise SettingsError(
            f"tls_cert (COCKPIT_TLS_CERT) = {str(cert)!r}: no PEM certificate in it"
        ) from exc
    except OSError as exc:
        raise SettingsError(f"tls_cert (COCKPIT_TLS_CERT) = {str(cert)!r}: {exc.strerror}") from exc

    def no_password() -> str:
        # Without a callback OpenSSL would ask on the terminal, and a service would hang.
        raise SettingsError(
            f"tls_key (COCKPIT_TLS_KEY) = {str(key)!r}: encrypted; give the key unencrypted"
        )

    try:
        ctx.load_cert_chain(str(cert), str(key), password=no_password)
    except ssl.SSLError as exc:
        mismatch = "KEY_VALUES_MISMATCH" in str(exc)
        why = "does not match tls_cert" if mismatch else "not a PEM private key"
        raise SettingsError(f"tls_key (COCKPIT_TLS_KEY) = {str(key)!r}: {why}") from exc
    except OSError as exc:
        raise SettingsError(f"tls_key (COCKPIT_TLS_KEY) = {str(key)!r}: {exc.strerror}") from exc


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings; raise SettingsError naming the key and value on bad input."""
    if config is not None:
        if not config.is_file():
            raise SettingsError(f"--config: {str(config)!r}: no such file")
        try:
            with config.open("rb") as fh:
                tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"--config: {str(config)!r}: not valid TOML: {exc}") from exc
    cls: type[Settings] = Settings
    if config is not None:
        cls = type(
            "FileSettings",
            (Settings,),
            {"model_config": {**Settings.model_config, "toml_file": config}},
        )
    try:
        return cls(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from exc


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        env = f"COCKPIT_{key.split('.')[0].upper()}"
        value = err.get("input")
        field = Settings.model_fields.get(str(err["loc"][0])) if err["loc"] else None
        if field is not None and "SecretStr" in str(field.annotation):
            value = "**********"  # a password or a URL with one: never on a terminal
        lines.append(f"{key} ({env}) = {value!r}: {err['msg']}")
    return "; ".join(lines)
