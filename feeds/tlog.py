"""QGroundControl / MAVProxy telemetry logs (`.tlog`): read, import as events, replay to UDP.

A tlog is records of an 8-byte big-endian timestamp (µs since the epoch, when the ground
station received the frame) followed by the MAVLink frame as received, repeated. Bad
frames are kept in the file as they came; a record whose frame marker is missing (a torn
write) is skipped by searching for the next marker behind a plausible timestamp.
"""

from __future__ import annotations

import asyncio
import mmap
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

from cockpit.events import Event, utcnow
from feeds.mavlink import (
    STX_V1,
    STX_V2,
    BadFrame,
    Clock,
    MavlinkTranslator,
    MavMessage,
    decode_frame,
    frame_length,
    parse_udp_addr,
)

__all__ = ["import_tlog", "iter_tlog_frames", "read_tlog", "replay_tlog"]

_TS = 8
_EPOCH_MIN, _EPOCH_MAX = 946_684_800.0, 4_102_444_800.0  # 2000 … 2100: a real timestamp
_MAX_JUMP_S = 86_400.0  # a resync candidate more than a day from the last record is junk


def _record_at(buf: mmap.mmap, i: int, last: float | None) -> tuple[float, int] | None:
    """(timestamp, frame length) of a plausible record at `i`, else None."""
    if i + _TS >= len(buf) or buf[i + _TS] not in (STX_V1, STX_V2):
        return None
    ts = int.from_bytes(buf[i : i + _TS], "big") / 1e6
    if not _EPOCH_MIN <= ts <= _EPOCH_MAX or (last is not None and abs(ts - last) > _MAX_JUMP_S):
        return None
    length = frame_length(buf[i + _TS : i + _TS + 3], 0)
    if length is None or i + _TS + length > len(buf):
        return None
    return ts, length


def iter_tlog_frames(
    path: str | Path, *, start_s: float = 0.0, end_s: float | None = None
) -> Iterator[tuple[float, bytes]]:
    """(epoch seconds, raw frame) for every record, between `start_s` and `end_s` seconds
    after the log's first record."""
    with open(path, "rb") as f:
        if f.seek(0, 2) == 0:
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            i, first, last = 0, None, None
            while i + _TS < len(buf):
                rec = _record_at(buf, i, last)
                if rec is None:
                    i += 1  # torn record: look for the next plausible one
                    continue
                ts, length = rec
                frame = buf[i + _TS : i + _TS + length]
                i += _TS + length
                first = ts if first is None else first
                last = ts
                if ts - first < start_s:
                    continue
                if end_s is not None and ts - first > end_s:
                    return
                yield ts, frame


def read_tlog(
    path: str | Path, *, start_s: float = 0.0, end_s: float | None = None
) -> Iterator[tuple[float, MavMessage]]:
    """(epoch seconds, message) for every frame that decodes; bad frames are skipped."""
    for ts, frame in iter_tlog_frames(path, start_s=start_s, end_s=end_s):
        try:
            yield ts, decode_frame(frame)
        except BadFrame:
            continue


def import_tlog(
    path: str | Path,
    incident: str,
    device: str,
    *,
    callsigns: Mapping[int, str] | None = None,
    clock: Clock = utcnow,
    start_s: float = 0.0,
    end_s: float | None = None,
) -> list[Event]:
    """The events a live feed would have made, observed at the log's own timestamps
    (received_at is the import time: `clock()`)."""
    translator = MavlinkTranslator(incident, device, clock, callsigns=callsigns)
    events: list[Event] = []
    for ts, msg in read_tlog(path, start_s=start_s, end_s=end_s):
        events.extend(translator.feed(msg, datetime.fromtimestamp(ts, UTC)))
    return events


async def replay_tlog(
    path: str | Path,
    udp_addr: str,
    speed: float = 1.0,
    *,
    start_s: float = 0.0,
    end_s: float | None = None,
    max_datagram: int = 1400,
) -> int:
    """Send the log's frames to `udp_addr` (e.g. the live feed's port) with the original
    timing divided by `speed`; returns the number of frames sent.

    Frames that are due together share a datagram (up to `max_datagram` bytes), as
    autopilots do: at high speeds one datagram per frame overruns a receive buffer.
    """
    if not speed > 0:
        raise ValueError(f"speed must be > 0, not {speed!r}")
    host, port = parse_udp_addr(udp_addr)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, remote_addr=(host, port)
    )
    sent, packet = 0, bytearray()
    try:
        t0: float | None = None
        start = loop.time()
        for ts, frame in iter_tlog_frames(path, start_s=start_s, end_s=end_s):
            t0 = ts if t0 is None else t0
            delay = start + (ts - t0) / speed - loop.time()
            if (delay > 0 or len(packet) + len(frame) > max_datagram) and packet:
                transport.sendto(bytes(packet))
                packet.clear()
                await asyncio.sleep(max(delay, 0.0))  # let the receiver run, even if late
            elif delay > 0:
                await asyncio.sleep(delay)
            packet += frame
            sent += 1
        if packet:
            transport.sendto(bytes(packet))
            await asyncio.sleep(0)
    finally:
        transport.close()
    return sent
