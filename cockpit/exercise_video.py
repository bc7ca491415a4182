"""Exercise mode's cameras: a recording's drone video played as live streams.

Each recorded stream becomes a stream of the exercise's own `MediaHub`, fed with the
recorded packets, unchanged (nothing is decoded or encoded), each at the moment the
exercise clock reaches its recording time; WHEP viewers (the commander's tiles, the
wall) watch it as they watch a drone. A viewer that joins mid-picture is sent the
packets since the last keyframe at once (a recording cannot be asked for a new
keyframe), so a picture appears without waiting for the next one.

A pause holds the picture (the tile turns STALE, as a frozen drone feed would); a
skip starts again at the last keyframe before the new position; between the recorded
video the stream ends, and goes live again where the recording has video.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av

from cockpit.media.passthrough import RTP_VIDEO_CLOCK, is_keyframe
from cockpit.media.streams import MediaHub, Packet, Stream
from cockpit.replay_video import Segment, VideoIndex

__all__ = ["ExerciseCameras", "Frame", "load_segment"]

log = logging.getLogger("cockpit.exercise.video")

_IDLE_S = 0.05  # how often a camera looks at the clock while it has nothing due
_JUMP_S = 1.5  # the clock moved this far from the next frame: a skip, start again
_GAP_S = 3.0  # no recorded video for this long ahead: the stream ends until there is


@dataclass(frozen=True, slots=True)
class Frame:
    t: float  # recording time (epoch s)
    data: bytes
    key: bool


def load_segment(seg: Segment, file: Path) -> list[Frame]:
    """The segment's video packets with their recording times (file time 0 is its start)."""
    codec = seg.codec.lower()
    frames: list[Frame] = []
    with av.open(str(file)) as container:
        stream = container.streams.video[0]
        first: int | None = None
        for packet in container.demux(stream):
            if packet.pts is None or packet.size == 0:
                continue  # the demuxer's end-of-stream flush
            if first is None:
                first = packet.pts  # MPEG-TS starts later than 0 (its muxer's delay)
            assert packet.time_base is not None
            t = seg.start + float((packet.pts - first) * packet.time_base)
            data = bytes(packet)
            frames.append(Frame(t, data, is_keyframe(codec, data)))
    return frames


class _Camera:
    """One recorded stream, fed into the hub on the exercise clock."""

    def __init__(
        self,
        hub: MediaHub,
        name: str,
        segments: list[Segment],
        index: VideoIndex,
        position: Callable[[], float],
        playing: Callable[[], bool],
    ) -> None:
        self.hub = hub
        self.name = name
        self.segments = segments  # in time order
        self.index = index
        self.position = position
        self.playing = playing
        self.sent = 0
        self._since_key: list[Packet] = []  # what a late viewer needs to start
        self._stream: Stream | None = None
        self._t0: float | None = None
        self._loaded: tuple[Segment, list[Frame]] | None = None  # a skip within it: no reload

    def _segment_at(self, t: float) -> Segment | None:
        """The segment holding `t`, else the next one starting soon."""
        for seg in self.segments:
            if seg.start <= t < seg.end or t < seg.start <= t + _GAP_S:
                return seg
        return None

    async def run(self) -> None:
        while True:
            t = self.position()
            seg = self._segment_at(t)
            if seg is None:
                self.hub.feed_ended(self.name)
                await asyncio.sleep(_IDLE_S * 4)
                continue
            if t < seg.start - _IDLE_S:  # video again in a moment: the stream stays up
                await asyncio.sleep(_IDLE_S)
                continue
            found = self.index.file(seg.path)
            if found is None:  # the file is gone: this stretch has no picture
                self.segments = [s for s in self.segments if s is not seg]
                continue
            try:
                if self._loaded is None or self._loaded[0] is not seg:
                    self._loaded = (seg, await asyncio.to_thread(load_segment, seg, found[1]))
                frames = self._loaded[1]
            except (av.FFmpegError, OSError) as exc:
                log.warning("exercise video %s: %s unreadable: %s", self.name, seg.path, exc)
                self.segments = [s for s in self.segments if s is not seg]
                continue
            await self._play(seg, frames)

    async def _play(self, seg: Segment, frames: list[Frame]) -> None:
        """Feed `frames` from the last keyframe at or before the clock; return at the
        segment's end or when the clock jumps."""
        t = self.position()
        keys = [i for i, f in enumerate(frames) if f.key and f.t <= max(t, frames[0].t)]
        if not keys:
            keys = [i for i, f in enumerate(frames) if f.key][:1]
        if not keys:
            self.segments = [s for s in self.segments if s is not seg]
            return
        self._since_key = []
        stream = self.hub.feed(self.name, seg.codec, f"exercise:{self.name}", self._catch_up)
        self._stream = stream
        for frame in frames[keys[0] :]:
            while True:
                now = self.position()
                if not self.playing():  # a pause holds the picture where it is
                    await asyncio.sleep(_IDLE_S)
                    continue
                if now > frame.t + _JUMP_S or now < frames[0].t - _JUMP_S:
                    return  # the clock jumped (a skip): start again where it is
                if now >= frame.t:
                    break
                await asyncio.sleep(min(_IDLE_S, frame.t - now))
            self._offer(stream, frame)
        # Past this segment's last frame: the next one (or the gap) is found by run().
        while self.position() < seg.end:  # noqa: ASYNC110 - the exercise clock has no event
            await asyncio.sleep(_IDLE_S)

    def _offer(self, stream: Stream, frame: Frame) -> None:
        packet = av.Packet(frame.data)
        # RTP's 90 kHz clock on the wall clock, as a drone's sender keeps it: a pause is a
        # pause in the stream too, so the exercise's own recording of it stays in step.
        now = time.time()
        if self._t0 is None:
            self._t0 = now
        packet.pts = packet.dts = round((now - self._t0) * 90_000)
        packet.time_base = RTP_VIDEO_CLOCK
        packet.is_keyframe = frame.key
        if frame.key:
            self._since_key = []
        stream.offer(packet)
        self._since_key.append(packet)
        self.sent += 1

    def _catch_up(self) -> None:
        # Asked from inside `offer` too (a viewer fell behind): after it, so that the
        # packet being offered is in `_since_key` and nobody gets it twice.
        asyncio.get_running_loop().call_soon(self._send_since_key)

    def _send_since_key(self) -> None:
        """Viewers waiting for a keyframe get the last one and what followed, if it fits
        their queue (else they wait for the next keyframe: half a picture group smears)."""
        stream = self._stream
        if stream is None or not self._since_key:
            return
        for viewer in stream.viewers.values():
            if not viewer.waiting_for_key:
                continue
            free = viewer.queue.maxsize - viewer.queue.qsize()
            if viewer.queue.maxsize and len(self._since_key) > free:
                continue
            for packet in self._since_key:
                viewer.queue.put_nowait(packet)
            viewer.waiting_for_key = False


def _report_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped: %r", task.get_name(), task.exception())


class ExerciseCameras:
    """Every recorded stream of a recording, played into `hub` on the exercise clock."""

    def __init__(
        self,
        hub: MediaHub,
        index: VideoIndex,
        position: Callable[[], float],
        playing: Callable[[], bool],
    ) -> None:
        self.cameras = [
            _Camera(hub, name, segments, index, position, playing)
            for name, segments in index.streams().items()
        ]
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for cam in self.cameras:
            task = asyncio.create_task(cam.run(), name=f"exercise-video-{cam.name}")
            task.add_done_callback(_report_end)
            self._tasks.append(task)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        # A camera that failed was logged when it did; closing goes on regardless.
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def stats(self) -> dict[str, int]:
        return {cam.name: cam.sent for cam in self.cameras}
