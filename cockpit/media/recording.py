"""Record every stream's encoded packets, unchanged, into segments a replay can forward.

A `SegmentRecorder` is a `Stream` sink. Per stream it writes one file at a time
(VP8 → WebM, H264 → MPEG-TS: containers that hold the packets as they came, so a
replay hands them to a WebRTC sender without decoding), starting every file at a
keyframe so that each plays alone, and rolling over at the first keyframe after
`segment_s`. A closed file is reported as a `SegmentInfo` with the server-clock times
of its first and last packet: a replay at time T takes the segment with
start <= T <= end and seeks to T - start (the file's timestamps start at 0).

Layout: `<folder>/<stream>/<UTC start, 20261126T100000.123Z>.webm|.ts`;
`SegmentInfo.path` is relative to `folder` (POSIX separators). The packets' bytes are
the sender's; the one change is MPEG-TS's: its muxer puts an access unit delimiter
(6 bytes, H264 NAL type 9) in front of a frame that has none, which decoders skip.

Muxing runs on one worker thread: opening a file and writing its header measured
3.5–5.8 ms on a busy two-core machine, too long for the event loop that forwards
every viewer's video (a stalled disk would be worse). The loop only copies the packet
and queues it; the queue is bounded in bytes, and a recorder that falls behind drops
packets and starts again at the next keyframe instead of growing memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.container import OutputContainer
from av.stream import Stream as AvStream

from cockpit.media.streams import Packet, Stream

__all__ = ["SegmentInfo", "SegmentRecorder", "vp8_size"]

log = logging.getLogger("cockpit.media.recording")

RTP_HZ = 90_000  # packet.pts from the pass-through is the RTP timestamp (90 kHz, uint32)
MAX_STEP = 10 * RTP_HZ  # a larger jump (or a step back) is a new sender: new segment
MAX_BACKLOG = 32 << 20  # bytes queued for the worker before packets are dropped
FORMATS = {"VP8": ("webm", "vp8", ".webm"), "H264": ("mpegts", "h264", ".ts")}
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # a stream name as a folder


@dataclass(frozen=True)
class SegmentInfo:
    stream: str
    path: str  # relative to the recorder's folder: "<stream>/<start>.webm"
    start: datetime  # server clock (UTC) when its first packet was offered
    end: datetime  # ... and its last
    codec: str  # "VP8" | "H264"
    frames: int
    bytes: int


@dataclass(eq=False)
class _Open:
    """The loop's side of a segment being written."""

    path: str
    codec: str
    size: tuple[int, int]  # VP8 keyframe dimensions; (0, 0) for H264
    start: float
    end: float
    rtp: int  # RTP timestamp of the last packet
    ticks: int = 0  # 1/90000 s since the first packet, never decreasing
    frames: int = 0
    bytes: int = 0


@dataclass(eq=False)
class _File:
    """The worker's side: the open container."""

    path: Path
    container: OutputContainer
    stream: AvStream
    last: int = -1  # last timestamp written, in the stream's time base


def vp8_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a VP8 keyframe (RFC 6386 9.1), None if it is not one."""
    if len(data) < 10 or data[0] & 1 or data[3:6] != b"\x9d\x01\x2a":
        return None
    width = int.from_bytes(data[6:8], "little") & 0x3FFF  # the top 2 bits are scaling
    height = int.from_bytes(data[8:10], "little") & 0x3FFF
    return width, height


def _stamp(t: float) -> str:
    d = datetime.fromtimestamp(t, UTC)
    return f"{d:%Y%m%dT%H%M%S}.{d.microsecond // 1000:03d}Z"


class SegmentRecorder:
    def __init__(
        self,
        folder: Path,
        *,
        segment_s: float = 60.0,
        on_segment: Callable[[SegmentInfo], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.folder = folder
        self.segment_s = segment_s
        self.on_segment = on_segment
        self.clock = clock
        self._open: dict[str, _Open] = {}
        self._queue: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Each counter is written by one thread only (loop or worker).
        self._queued_bytes = 0
        self._done_bytes = 0
        self.segments = 0
        self.skipped = 0  # packets before a stream's first keyframe, or without pts
        self.dropped = 0  # packets the worker had no room for
        self.errors = 0  # files that failed (worker)
        self.sink_errors = 0  # bugs on the loop's side
        self.failed: deque[dict[str, str]] = deque(maxlen=20)
        self.write_max_ms = 0.0
        self._write_s = 0.0
        self._writes = 0

    # --- the loop's side ---------------------------------------------------------------

    def __call__(self, stream: Stream, packet: Packet) -> None:
        try:
            self._offer(stream, packet)
        except Exception:  # never into the stream (which would log it too); count it
            self.sink_errors += 1
            log.exception("recording %s failed", stream.name)

    def _offer(self, stream: Stream, packet: Packet) -> None:
        name, codec = stream.name, stream.codec or ""
        if codec not in FORMATS or packet.pts is None or not SAFE_NAME.fullmatch(name):
            self.skipped += 1
            return
        now, rtp, key = self.clock(), int(packet.pts), bool(packet.is_keyframe)
        data = bytes(packet)  # a copy: the muxer rescales its packet, viewers share this one
        size = (vp8_size(data) or (0, 0)) if codec == "VP8" else (0, 0)
        seg = self._open.get(name)
        step = 0 if seg is None else (rtp - seg.rtp) & 0xFFFFFFFF  # RTP wraps at 2**32
        if seg is not None and (
            seg.codec != codec
            or step > MAX_STEP  # a reconnected sender, or a frame from the past
            or (key and (now - seg.start >= self.segment_s or size != seg.size))
        ):
            self._finish(name)
            seg = None
        if self._queued_bytes - self._done_bytes > MAX_BACKLOG:
            self.dropped += 1  # the disk is behind by seconds: rather lose video than memory
            if seg is not None:
                self._finish(name)  # the next keyframe starts a clean segment
            return
        if seg is None:
            if not key or (codec == "VP8" and size == (0, 0)):
                self.skipped += 1
                stream.request_keyframe()  # rate-limited by the stream
                return
            seg = self._begin(name, codec, size, now, rtp)
        elif now - seg.start >= self.segment_s:
            stream.request_keyframe()  # senders may send keyframes only when asked
        seg.ticks += max(1, step) if seg.frames else 0  # dts must increase
        seg.rtp, seg.end = rtp, now
        seg.frames += 1
        seg.bytes += len(data)
        self._queued_bytes += len(data)
        self._queue.put(("write", name, data, seg.ticks, key))

    def _begin(self, name: str, codec: str, size: tuple[int, int], now: float, rtp: int) -> _Open:
        if self._thread is None:
            self._loop = asyncio.get_running_loop()
            self._thread = threading.Thread(target=self._work, name="video-recorder", daemon=True)
            self._thread.start()
        path = f"{name}/{_stamp(now)}{FORMATS[codec][2]}"
        seg = self._open[name] = _Open(path, codec, size, now, now, rtp)
        self._queue.put(("open", name, self.folder / path, codec, size))
        return seg

    def _finish(self, name: str) -> None:
        seg = self._open.pop(name, None)
        if seg is None:
            return
        info = SegmentInfo(
            stream=name,
            path=seg.path,
            start=datetime.fromtimestamp(seg.start, UTC),
            end=datetime.fromtimestamp(seg.end, UTC),
            codec=seg.codec,
            frames=seg.frames,
            bytes=seg.bytes,
        )
        self._queue.put(("close", name, info))

    def close(self, stream_name: str) -> None:
        """The stream ended: finish its segment (reported once the file is closed)."""
        self._finish(stream_name)

    def close_all(self) -> None:
        for name in list(self._open):
            self._finish(name)

    async def flush(self) -> None:
        """Wait until everything queued so far is on disk and reported."""
        if self._thread is None or self._loop is None:
            return
        done: asyncio.Future[None] = self._loop.create_future()
        self._queue.put(("flush", done))
        await done

    async def aclose(self) -> None:
        """Finish every segment, report them, stop the worker."""
        self.close_all()
        await self.flush()
        if self._thread is not None:
            self._queue.put(None)
            await asyncio.to_thread(self._thread.join)
            self._thread = None

    def _report(self, info: SegmentInfo) -> None:
        self.segments += 1
        try:
            self.on_segment(info)
        except Exception:
            log.exception("recording %s: on_segment failed", info.path)

    def stats(self) -> dict[str, Any]:
        return {
            "open": len(self._open),
            "segments": self.segments,
            "skipped": self.skipped,
            "dropped": self.dropped,
            "errors": self.errors + self.sink_errors,
            "failed": list(self.failed),
            "backlog_bytes": self._queued_bytes - self._done_bytes,
            "write_max_ms": round(self.write_max_ms, 3),
            "write_mean_us": round(1e6 * self._write_s / max(1, self._writes), 1),
        }

    # --- the worker's side -------------------------------------------------------------

    def _work(self) -> None:
        files: dict[str, _File] = {}
        while (job := self._queue.get()) is not None:
            op = job[0]
            if op == "flush":
                self._call(_resolve, job[1])
                continue
            name = job[1]
            if op == "write":
                self._done_bytes += len(job[2])
            file = files.get(name)  # none after a failure: the rest of that segment is lost
            started = time.perf_counter()
            try:
                if op == "open":
                    file = None
                    files[name] = _open_file(job[2], job[3], job[4])
                elif op == "write" and file is not None:
                    _write(file, job[2], job[3], job[4])
                elif op == "close" and file is not None:
                    del files[name]
                    file.container.close()  # writes WebM's cues: the file is complete
                    self._call(self._report, job[2])
            except Exception as exc:
                files.pop(name, None)
                self._fail(job[2] if file is None else file.path, file, exc)
            spent = time.perf_counter() - started
            self.write_max_ms = max(self.write_max_ms, spent * 1e3)
            self._write_s += spent
            self._writes += 1
        for file in files.values():  # stopped with segments open: keep what is there
            with contextlib.suppress(Exception):
                file.container.close()

    def _fail(self, path: Path, file: _File | None, exc: Exception) -> None:
        self.errors += 1
        self.failed.append({"path": str(path), "error": f"{type(exc).__name__}: {exc}"})
        log.error("recording %s failed: %s", path, exc)
        if file is not None:
            with contextlib.suppress(Exception):
                file.container.close()

    def _call(self, fn: Callable[[Any], None], arg: Any) -> None:
        assert self._loop is not None  # set before the worker starts
        try:
            self._loop.call_soon_threadsafe(fn, arg)
        except RuntimeError:  # the loop is closed: nobody left to tell
            log.warning("recording: event loop closed, %r not reported", arg)


def _resolve(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)


def _open_file(path: Path, codec: str, size: tuple[int, int]) -> _File:
    fmt, codec_name, _ = FORMATS[codec]
    path.parent.mkdir(parents=True, exist_ok=True)
    container = av.open(str(path), "w", format=fmt)
    try:
        # A stream without an encoder: the packets go in as they are. Its size must be
        # given here (WebM's header needs it); the attributes do not exist without a codec.
        dims = {"width": size[0], "height": size[1]} if size != (0, 0) else {}
        stream = container.add_mux_stream(codec_name, **dims)
        stream.time_base = Fraction(1, RTP_HZ)  # WebM takes 1/1000 instead, MPEG-TS keeps it
        container.start_encoding()  # writes the header and settles the time base
    except BaseException:
        container.close()
        raise
    return _File(path, container, stream)


def _write(file: _File, data: bytes, ticks: int, key: bool) -> None:
    tb = file.stream.time_base or Fraction(1, RTP_HZ)
    ts = max(file.last + 1, round(ticks * tb.denominator / (RTP_HZ * tb.numerator)))
    file.last = ts
    packet = av.Packet(data)
    packet.stream = file.stream
    packet.time_base = tb
    packet.pts = packet.dts = ts  # WebRTC video has no B-frames: decode order = display order
    packet.is_keyframe = key
    file.container.mux_one(packet)
