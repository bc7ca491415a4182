"""MAVLink feed: real frames (built with pymavlink's encoder), a real UDP socket, the real
ArduSub tlog from ../shared/data (skipped when absent), and hostile bytes."""

from __future__ import annotations

import asyncio
import bisect
import itertools
import math
import os
import socket
import struct
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymavlink.dialects.v20 import ardupilotmega as mavlink2  # type: ignore[import-untyped]

from cockpit.events import Event, PositionEvent, event_to_json, parse_event
from cockpit.server import build_services
from cockpit.settings import SettingsError, load_settings
from feeds.mavlink import (
    MavlinkTranslator,
    listen_udp,
    mode_name,
    parse_datagram,
    parse_udp_addr,
    split_frames,
)
from feeds.tlog import import_tlog, iter_tlog_frames, read_tlog, replay_tlog


def _shared_data() -> Path:
    """`../shared/data` beside the checkout, or where COCKPIT_SHARED_DATA says (a clone
    elsewhere, as CI makes, still finds the captures)."""
    env = os.environ.get("COCKPIT_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


TLOG = _shared_data() / "mavlink" / "ardusub_rov_2023-05-04_small.tlog"
T0 = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)
QUAD, SUB, GCS = 2, 12, 6
ARDUPILOT, INVALID = 3, 8
ARMED_CUSTOM, DISARMED_CUSTOM = 209, 81  # MAV_MODE_FLAG bits as ArduPilot sends them
LAT, LON = 515_139_000, 74_653_000  # Dortmund harbour, 1e7 degrees


class Clock:
    """A clock the test moves; with `step`, it moves by itself on every reading."""

    def __init__(self, step: float = 0.0) -> None:
        self.now = T0
        self.step = timedelta(seconds=step)

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def frame(sysid: int, name: str, *args: Any, compid: int = 1) -> bytes:
    """Real MAVLink v2 bytes of one message, from pymavlink's own encoder."""
    mav = mavlink2.MAVLink(None, srcSystem=sysid, srcComponent=compid)
    return bytes(getattr(mav, f"{name}_encode")(*args).pack(mav))


def heartbeat(sysid: int, mav_type: int = QUAD, base: int = ARMED_CUSTOM, custom: int = 5) -> bytes:
    return frame(sysid, "heartbeat", mav_type, ARDUPILOT, base, custom, 4)


def gps(sysid: int, fix: int, lat: int = LAT, lon: int = LON) -> bytes:
    return frame(sysid, "gps_raw_int", 0, fix, lat, lon, 0, 120, 200, 0, 0, 12, 0, 2500)


def position(sysid: int, boot_ms: int, lat: int = LAT, lon: int = LON) -> bytes:
    # 52.3 m relative altitude, 3 m/s east + 4 m/s north = 5 m/s, heading 123.45°
    return frame(
        sysid, "global_position_int", boot_ms, lat, lon, 150_000, 52_300, 400, 300, 0, 12345
    )


def attitude(sysid: int, boot_ms: int, yaw_rad: float = math.pi / 2) -> bytes:
    return frame(sysid, "attitude", boot_ms, math.radians(5), math.radians(-10), yaw_rad, 0, 0, 0)


def sys_status(sysid: int, pct: int, mv: int = 15800) -> bytes:
    return frame(sysid, "sys_status", 0, 0, 0, 100, mv, 500, pct, 0, 0, 0, 0, 0, 0)


def battery_status(sysid: int, pct: int) -> bytes:
    return frame(sysid, "battery_status", 0, 0, 0, 2500, [15800] + [65535] * 9, 500, 10, 10, pct)


def gimbal(sysid: int, pitch_deg: float, yaw_deg: float, flags: int = 32) -> bytes:
    p, y = math.radians(pitch_deg) / 2, math.radians(yaw_deg) / 2
    q = [
        math.cos(p) * math.cos(y),
        -math.sin(p) * math.sin(y),
        math.sin(p) * math.cos(y),
        math.cos(p) * math.sin(y),
    ]
    return frame(sysid, "gimbal_device_attitude_status", 0, 0, 0, flags, q, 0, 0, 0, 0, compid=154)


def run(tr: MavlinkTranslator, *frames: bytes) -> list[Event]:
    messages, bad = parse_datagram(b"".join(frames))
    assert bad == 0
    return [e for m in messages for e in tr.feed(m)]


def of(events: list[Event], kind: str, entity: str | None = None) -> list[Any]:
    return [
        e.payload
        for e in events
        if e.kind == kind and (entity is None or getattr(e.payload, "entity", None) == entity)
    ]


def not_at_null_island(events: list[Event]) -> bool:
    return all(
        not (abs(e.payload.lat) < 1e-4 and abs(e.payload.lon) < 1e-4)
        for e in events
        if isinstance(e, PositionEvent)
    )


# --- (a) translation of real frames ----------------------------------------------------


def test_two_systems_translate_and_never_draw_without_fix() -> None:
    clock = Clock()
    tr = MavlinkTranslator("inc-1", "mav-gw", clock, callsigns={2: "Robo ROV"})
    events: list[Event] = []
    # Not vehicles, or not announced: nothing.
    assert run(tr, frame(255, "heartbeat", GCS, INVALID, 0, 0, 4, compid=190)) == []
    assert run(tr, gps(3, 3), position(3, 1000)) == []
    # Drone 1 (quad, LOITER, armed) and ROV 2 (submarine, MANUAL, disarmed).
    events += run(tr, heartbeat(1), heartbeat(2, SUB, DISARMED_CUSTOM, 19))
    reg = {p.entity: p for p in of(events, "entity.registered")}
    assert reg["uav-1"].entity_kind == "drone" and reg["uav-1"].callsign == "UAV 1"
    assert reg["uav-2"].entity_kind == "robot" and reg["uav-2"].callsign == "Robo ROV"
    assert reg["uav-2"].meta["mav_type"] == "SUBMARINE"
    modes = {p.entity: p.mode for p in of(events, "status")}
    assert modes == {"uav-1": "LOITER, armed", "uav-2": "MANUAL, disarmed"}

    # No fix: no position, whatever GLOBAL_POSITION_INT says.
    clock.tick(1)
    before = run(tr, gps(1, 0, 0, 0), position(1, 1000), position(1, 1500, 0, 0))
    assert of(before, "position") == []
    # Fix, but the estimate is still 0,0: nothing either.
    clock.tick(1)
    assert of(run(tr, gps(1, 3), position(1, 2000, 0, 0), gps(2, 3)), "position") == []
    clock.tick(0.3)
    got = of(run(tr, position(1, 2300), position(2, 2300, LAT + 1000, LON)), "position")
    assert [p.entity for p in got] == ["uav-1", "uav-2"]
    p1 = got[0]
    assert (p1.lat, p1.lon) == (51.5139, 7.4653)
    assert p1.alt_m == pytest.approx(52.3) and p1.heading_deg == pytest.approx(123.45)
    assert p1.speed_mps == pytest.approx(5.0) and p1.accuracy_m == pytest.approx(2.5)
    assert p1.entity_kind == "drone" and got[1].entity_kind == "robot"
    # Positions faster than 5 Hz (by the vehicle's clock) are thinned.
    clock.tick(0.1)
    assert of(run(tr, position(1, 2400)), "position") == []
    # The fix is lost again: the drone stays where it was last drawn.
    clock.tick(0.5)
    assert of(run(tr, gps(1, 1), position(1, 3000)), "position") == []

    # ATTITUDE at 50 Hz for 2 s becomes at most 2 readings events per second.
    att: list[Event] = []
    for i in range(100):
        clock.tick(0.02)
        att += run(tr, attitude(1, 4000 + 20 * i))
    readings = of(att, "readings", "uav-1")
    assert 3 <= len(readings) <= 5
    v = readings[0].values
    assert v["roll_deg"].value == pytest.approx(5) and v["pitch_deg"].value == pytest.approx(-10)
    assert v["yaw_deg"].value == pytest.approx(90) and v["yaw_deg"].unit == "deg"

    # Gimbal in the vehicle frame: its yaw is turned to north by the vehicle's yaw (90°).
    clock.tick(1)
    g = of(run(tr, gimbal(1, -30, 10)), "readings", "uav-1")[0].values
    assert g["gimbal_pitch_deg"].value == pytest.approx(-30, abs=0.01)
    assert g["gimbal_yaw_deg"].value == pytest.approx(100, abs=0.01)
    clock.tick(1)
    g = of(run(tr, gimbal(1, -45, 200, flags=64)), "readings", "uav-1")[0].values  # earth
    assert g["gimbal_yaw_deg"].value == pytest.approx(200, abs=0.01)
    clock.tick(1)
    assert of(run(tr, frame(1, "mount_status", 0, 0, -2000, 0, 0, 0)), "readings") == []

    # Battery from SYS_STATUS, then BATTERY_STATUS; -1 (unknown) keeps the last value.
    clock.tick(1)
    battery = run(tr, sys_status(1, 80))
    st1 = of(battery, "status")
    assert [(s.battery_pct, s.link, s.mode) for s in st1] == [(80.0, "ok", "LOITER, armed")]
    volts = of(battery, "readings")[0].values["battery_v"]
    assert (volts.value, volts.unit) == (15.8, "V")
    clock.tick(1)
    assert [s.battery_pct for s in of(run(tr, battery_status(1, 79)), "status")] == [79.0]
    clock.tick(1)
    assert of(run(tr, sys_status(1, -1)), "status") == []  # unchanged within 5 s
    # A mode change is sent at once.
    clock.tick(0.1)
    st2 = of(run(tr, heartbeat(1, QUAD, DISARMED_CUSTOM, 6)), "status")
    assert [s.mode for s in st2] == ["RTL, disarmed"]

    every = events + before + att
    assert not_at_null_island(every)
    for e in every:
        assert parse_event(event_to_json(e)) == e  # valid by the vocabulary's own rules
        assert e.source.feed == "mavlink" and e.context.actor == "device:mav-gw"


def test_mode_names() -> None:
    assert mode_name(ARDUPILOT, SUB, 81, 19) == "MANUAL"
    assert mode_name(ARDUPILOT, QUAD, 89, 3) == "AUTO"
    assert mode_name(ARDUPILOT, 1, 89, 11) == "RTL"  # plane
    assert mode_name(ARDUPILOT, QUAD, 89, 999) == "Mode(999)"
    assert mode_name(12, QUAD, 157, (4 << 16) | (4 << 24)) == "AUTO MISSION"  # PX4
    assert mode_name(0, QUAD, 4 | 16, 0) == "AUTO"


def test_framing_of_merged_cut_and_corrupted_datagrams() -> None:
    a, b = heartbeat(1), position(1, 10)
    assert split_frames(a + b) == ([a, b], 0)
    assert split_frames(b"junk" + a + b"\xfd\x09" + b[:5]) == ([a], 2)  # junk, a torn tail
    broken = bytearray(b)
    broken[15] ^= 0xFF
    messages, bad = parse_datagram(a + bytes(broken) + a)
    assert [m.get_type() for m in messages] == ["HEARTBEAT", "HEARTBEAT"] and bad == 1


def test_udp_addresses() -> None:
    assert parse_udp_addr("udp:127.0.0.1:14550") == ("127.0.0.1", 14550)
    assert parse_udp_addr("[::1]:14550") == ("::1", 14550)
    for bad in ("udp:127.0.0.1", "tcp:1.2.3.4:5", "host:99999"):
        with pytest.raises(ValueError, match="UDP address"):
            parse_udp_addr(bad)


def test_tlog_records_and_a_torn_one(tmp_path: Path) -> None:
    def record(t: float, raw: bytes) -> bytes:
        return int(t * 1e6).to_bytes(8, "big") + raw

    t = T0.timestamp()
    broken = bytearray(position(1, 10))
    broken[12] ^= 0xFF
    log = tmp_path / "flight.tlog"
    log.write_bytes(
        record(t, heartbeat(1))
        + record(t + 0.5, bytes(broken))  # kept in the file, skipped by read_tlog
        + b"\x00\x07torn"  # a torn write
        + record(t + 1.0, gps(1, 3))
        + record(t + 2.0, position(1, 2000))
    )
    assert [round(ts - t, 3) for ts, _ in iter_tlog_frames(log)] == [0.0, 0.5, 1.0, 2.0]
    got = [(round(ts - t, 3), m.get_type()) for ts, m in read_tlog(log, start_s=0.7)]
    assert got == [(1.0, "GPS_RAW_INT"), (2.0, "GLOBAL_POSITION_INT")]
    events = import_tlog(log, "inc-1", "file")
    assert [(e.kind, e.observed_at) for e in events if e.kind == "position"] == [
        ("position", T0 + timedelta(seconds=2))
    ]
    empty = tmp_path / "empty.tlog"
    empty.touch()
    assert list(read_tlog(empty)) == []


# --- (b) a real UDP socket --------------------------------------------------------------


async def _wait_for(predicate: Any, timeout: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.01)


async def test_udp_two_drones_and_a_corrupted_frame() -> None:
    batches: list[list[Event]] = []

    async def on_events(events: list[Event]) -> None:
        batches.append(events)

    feed = await listen_udp("udp:127.0.0.1:0", on_events, incident="inc-1", device="gw")
    async with feed:
        host, port = feed.address
        corrupted = bytearray(position(2, 600))
        corrupted[20] ^= 0x55
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            tx.sendto(heartbeat(1) + gps(1, 3) + position(1, 500), (host, port))  # 3 in one
            tx.sendto(heartbeat(2, SUB, DISARMED_CUSTOM, 19), (host, port))
            tx.sendto(gps(2, 3) + position(2, 500, LAT + 500, LON), (host, port))
            tx.sendto(bytes(corrupted) + attitude(2, 700), (host, port))

        def both() -> bool:
            seen = {p.entity for b in batches for p in of(b, "position")}
            return seen == {"uav-1", "uav-2"} and feed.stats()["frames"] == 7

        await _wait_for(both)
        stats = feed.stats()
    assert stats["bad"] == 1 and stats["frames"] == 7 and stats["datagrams"] == 4
    assert set(stats["systems"]) == {"1", "2"} and stats["errors"] == 0
    assert stats["systems"]["2"]["entity"] == "uav-2" and stats["systems"]["2"]["frames"] == 4
    events = [e for b in batches for e in b]
    assert stats["events"] == len(events)
    assert {p.entity_kind for p in of(events, "position")} == {"drone", "robot"}
    assert not_at_null_island(events)
    for batch in batches:  # one hand-over, one received_at
        assert len({e.received_at for e in batch}) == 1


# --- (c) the real tlog ------------------------------------------------------------------

needs_tlog = pytest.mark.skipif(not TLOG.is_file(), reason=f"no real tlog at {TLOG}")


def _meters(a: Any, b: Any) -> float:
    """Great-circle distance (haversine) between two positions."""
    la1, lo1, la2, lo2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))
    h = (
        math.sin((la2 - la1) / 2) ** 2
        + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    )
    return 2 * 6_371_000 * math.asin(math.sqrt(h))


@pytest.fixture(scope="module")
def tlog_events() -> list[Event]:
    return import_tlog(TLOG, "inc-1", "rov-log")


@needs_tlog
def test_tlog_import_is_a_plausible_track(tlog_events: list[Event]) -> None:
    pos = [e for e in tlog_events if isinstance(e, PositionEvent)]
    assert len(pos) >= 500
    assert not_at_null_island(tlog_events)
    assert {getattr(e.payload, "entity", None) for e in tlog_events} == {
        "uav-1"
    }  # the GCS (255) is no entity
    reg = of(tlog_events, "entity.registered")
    assert [(r.entity_kind, r.callsign) for r in reg] == [("robot", "ROV 1")]
    times = [e.observed_at for e in pos]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert times[0].year == 2023  # the log's clock, not ours
    for a, b in itertools.pairwise(pos):
        dt = (b.observed_at - a.observed_at).total_seconds()
        assert _meters(a.payload, b.payload) <= 50.0 * dt + 5.0  # ≤ 50 m/s, plus GPS noise
    # Every position was drawn while the newest GPS_RAW_INT had a fix.
    gps_frames = ((ts, raw) for ts, raw in iter_tlog_frames(TLOG) if raw[7:10] == b"\x18\0\0")
    gps_msgs: list[tuple[float, Any]] = [(ts, parse_datagram(raw)[0][0]) for ts, raw in gps_frames]
    fixes = [(ts, int(m.fix_type)) for ts, m in gps_msgs]
    assert len(fixes) > 500
    fix_times = [ts for ts, _ in fixes]
    for e in pos:
        k = bisect.bisect_right(fix_times, e.observed_at.timestamp()) - 1
        assert k >= 0 and fixes[k][1] >= 2
    # Attitude thinned to ≤ 2 Hz: 5245 ATTITUDE messages in 263 s.
    span = (times[-1] - times[0]).total_seconds()
    assert len(of(tlog_events, "readings")) <= 2 * span + 5


@needs_tlog
async def test_tlog_replay_over_udp_draws_what_import_draws() -> None:
    start_s, end_s = 0.0, 15.0
    imported = [
        (p.lat, p.lon, p.alt_m, p.heading_deg)
        for p in of(import_tlog(TLOG, "inc-1", "rov-log", start_s=start_s, end_s=end_s), "position")
    ]
    assert len(imported) >= 30
    bad_in_window = 0
    for _, raw in iter_tlog_frames(TLOG, start_s=start_s, end_s=end_s):
        bad_in_window += parse_datagram(raw)[1]
    assert bad_in_window >= 1  # the log's camera frames of another dialect: CRC mismatch
    got: list[Event] = []

    async def on_events(events: list[Event]) -> None:
        got.extend(events)

    feed = await listen_udp("udp:127.0.0.1:0", on_events, incident="inc-1", device="rov-udp")
    async with feed:
        to = "udp:{}:{}".format(*feed.address)
        sent = await replay_tlog(TLOG, to, 30.0, start_s=start_s, end_s=end_s)
        await _wait_for(lambda: feed.stats()["frames"] + feed.stats()["bad"] >= sent)
        stats = feed.stats()
    replayed = [(p.lat, p.lon, p.alt_m, p.heading_deg) for p in of(got, "position")]
    assert replayed == imported
    assert stats["bad"] == bad_in_window


# --- (d) hostile input --------------------------------------------------------------------

HANDLED = [0, 1, 24, 30, 33, 147, 158, 285]  # HEARTBEAT … GIMBAL_DEVICE_ATTITUDE_STATUS


def crc_framed(sysid: int, compid: int, msgid: int, payload: bytes) -> bytes:
    """A v2 frame with a valid CRC around any payload: garbage that passes the checksum."""
    header = struct.pack(
        "<BBBBBBBHB", 0xFD, len(payload), 0, 0, 0, sysid, compid, msgid & 0xFFFF, msgid >> 16
    )
    crc = mavlink2.x25crc(header[1:] + payload)
    crc.accumulate([mavlink2.mavlink_map[msgid].crc_extra])
    return header + payload + struct.pack("<H", crc.crc)


def _primed() -> MavlinkTranslator:
    tr = MavlinkTranslator("inc-1", "fuzz", Clock(step=0.3))
    run(tr, heartbeat(1), heartbeat(2, SUB), gps(1, 3), gps(2, 3))
    return tr


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_random_bytes_never_raise(data: bytes) -> None:
    tr = _primed()
    messages, bad = parse_datagram(data)
    assert bad >= 0
    for m in messages:
        assert not_at_null_island(tr.feed(m))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from([1, 2]),
            st.sampled_from([1, 154]),
            st.sampled_from(HANDLED),
            st.binary(min_size=0, max_size=60),
        ),
        max_size=25,
    )
)
def test_valid_frames_with_garbage_values_give_only_valid_events(
    frames: list[tuple[int, int, int, bytes]],
) -> None:
    tr = _primed()
    data = b"".join(crc_framed(s, c, mid, p) for s, c, mid, p in frames)
    messages, _ = parse_datagram(data)
    events = [e for m in messages for e in tr.feed(m)]
    assert not_at_null_island(events)
    for e in events:
        assert parse_event(event_to_json(e)) == e
    assert tr.invalid == 0  # values are range-checked before the events are built


def test_fuzz_kinds_are_reachable() -> None:
    """The hostile-frame test above reaches the handlers (not just the framer)."""
    tr = _primed()
    att = crc_framed(1, 1, 30, struct.pack("<I6f", 5, float("nan"), 1e30, -7.0, 0, 0, 0))
    kinds = Counter(e.kind for m in parse_datagram(att)[0] for e in tr.feed(m))
    assert kinds == {"readings": 1}


async def test_a_server_with_a_mavlink_port_draws_the_drone(tmp_path: Path) -> None:
    """The listener as `cockpit serve` runs it: UDP in, the drone in the picture and the
    counters on /healthz; a taken port stops start-up naming the setting."""
    from tests.serving import serve

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    listen = f"udp:127.0.0.1:{port}"
    async with serve(
        tmp_path / "data", mavlink_listen=listen, mavlink_callsigns={7: "Drohne 7"}
    ) as s:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            for data in (heartbeat(7), gps(7, 3), position(7, 1000)):
                udp.sendto(data, ("127.0.0.1", port))
        async with httpx.AsyncClient(base_url=s.url, timeout=10) as c:
            await s.login(c)

            async def drawn() -> bool:
                entities = (await c.get("/api/v1/situation")).json()["entities"]
                return any(e["id"] == "uav-7" and e["lat"] is not None for e in entities)

            for _ in range(60):
                if await drawn():
                    break
                await asyncio.sleep(0.05)
            (uav,) = [
                e
                for e in (await c.get("/api/v1/situation")).json()["entities"]
                if e["id"] == "uav-7"
            ]
            assert uav["callsign"] == "Drohne 7" and uav["kind"] == "drone"
            assert abs(uav["lat"] - LAT / 1e7) < 1e-6 and abs(uav["lon"] - LON / 1e7) < 1e-6
            health = (await c.get("/healthz")).json()
            assert health["mavlink"]["systems"]["7"]["entity"] == "uav-7"
            assert health["feeds"]["mavlink"]["accepted"] >= 2
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        busy = f"udp:127.0.0.1:{taken.getsockname()[1]}"
        settings = load_settings(None, data_dir=tmp_path / "data2", mavlink_listen=busy)
        with pytest.raises(SettingsError, match="mavlink_listen"):
            async with build_services(settings):
                pass


@needs_tlog
def test_the_cli_records_a_tlog_into_the_incident_and_replays_it_onto_udp(tmp_path: Path) -> None:
    from cockpit.recorder import LogReader, incident_path
    from tests.procs import Procs

    procs = Procs(tmp_path / "procs")
    data = tmp_path / "data"
    r = procs.run("tlog", "import", str(TLOG), "--data-dir", str(data), timeout=120)
    assert r.returncode == 0, r.stderr
    incident = (data / "incident").read_text().strip()
    reader = LogReader(incident_path(data, incident))
    try:
        events = reader.events(0, limit=100_000)
    finally:
        reader.close()
    positions = [e for e in events if isinstance(e, PositionEvent)]
    assert len(positions) >= 500 and not_at_null_island(events)
    assert positions[0].observed_at < positions[-1].observed_at  # the log's own times
    # Replayed at 50x onto a UDP port: the frames arrive.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        sink.settimeout(0.2)
        port = sink.getsockname()[1]
        proc = procs.start(
            "tlog", "replay", str(TLOG), "--to", f"udp:127.0.0.1:{port}", "--speed", "50"
        )
        received = 0
        try:
            while proc.alive() or received == 0:
                try:
                    received += len(sink.recv(65536)) > 0
                except TimeoutError:
                    if not proc.alive():
                        break
        finally:
            procs.close()
    assert received > 100
