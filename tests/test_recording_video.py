"""Recording video: a stream's packets, unchanged, to segments a replay can forward.

An aiortc sender publishes to a `MediaHub` in-process (no HTTP: the hub's WHIP half is
enough), a `SegmentRecorder` sits on the stream as a sink beside a capturing sink, and
the segments are read back with av: decoded (they play alone), demuxed (the bytes are
the stream's), and forwarded to an aiortc receiver without re-encoding.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from cockpit.media import recording
from cockpit.media.passthrough import RTP_VIDEO_CLOCK
from cockpit.media.recording import SegmentInfo, SegmentRecorder, vp8_size
from cockpit.media.streams import MediaHub, Stream
from tests.test_media import NO_STUN, Pattern

NAME = re.compile(r"uav-1/\d{8}T\d{6}\.\d{3}Z\.(webm|ts)")


@dataclass
class Capture:
    """A second sink: every packet the stream offered, and the clock when it did."""

    packets: list[tuple[float, bytes, int, bool]] = field(default_factory=list)
    now: float = 0.0

    def __call__(self, stream: Stream, packet: Any) -> None:
        self.now = time.time()
        self.packets.append((self.now, bytes(packet), int(packet.pts), bool(packet.is_keyframe)))


@dataclass
class Recording:
    folder: Path
    segments: list[SegmentInfo]
    offered: list[tuple[float, bytes, int, bool]]
    stats: dict[str, Any]


@contextlib.asynccontextmanager
async def published(hub: MediaHub, codec: str = "VP8") -> AsyncIterator[RTCPeerConnection]:
    pc = RTCPeerConnection(NO_STUN)
    transceiver = pc.addTransceiver(Pattern(), direction="sendonly")
    caps = RTCRtpSender.getCapabilities("video")
    assert caps is not None
    transceiver.setCodecPreferences(
        [c for c in caps.codecs if c.mimeType.upper() in (f"VIDEO/{codec}", "VIDEO/RTX")]
    )
    await pc.setLocalDescription(await pc.createOffer())
    _, answer, settled = await hub.publish("uav-1", pc.localDescription.sdp, "device:uav")
    assert settled == codec
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    try:
        yield pc
    finally:
        await pc.close()


async def record(folder: Path, codec: str, seconds: float, segment_s: float) -> Recording:
    hub = MediaHub()
    capture = Capture()
    segments: list[SegmentInfo] = []
    # The recorder reads the time the capture took, so both see the same clock.
    recorder = SegmentRecorder(
        folder, segment_s=segment_s, on_segment=segments.append, clock=lambda: capture.now
    )
    hub.stream("uav-1").sinks += [capture, recorder]
    async with published(hub, codec):
        await asyncio.sleep(seconds)
    await hub.close()
    recorder.close("uav-1")
    await recorder.aclose()
    return Recording(folder, segments, capture.packets, recorder.stats())


@pytest.fixture(scope="module")
def vp8(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    folder = tmp_path_factory.mktemp("video")
    return asyncio.run(record(folder, "VP8", seconds=3.2, segment_s=1.0))


def demux(path: Path) -> list[av.Packet]:
    with av.open(str(path)) as c:
        return [p for p in c.demux(video=0) if p.size]


def shows_the_pattern(frame: av.VideoFrame) -> bool:
    img = frame.to_ndarray(format="bgr24")
    return bool(img[:, :, 1].max() > 200 and np.median(img[100:, :, 1]) < 40)


def test_segments_play_alone_and_follow_each_other(vp8: Recording) -> None:
    segs = vp8.segments
    assert len(segs) >= 2, (segs, vp8.stats)  # rolled over, then closed at the end
    assert vp8.stats["errors"] == 0 and vp8.stats["dropped"] == 0 and vp8.stats["open"] == 0
    for seg in segs:
        assert NAME.fullmatch(seg.path) and seg.path.endswith(".webm") and seg.codec == "VP8"
        assert seg.start < seg.end and seg.start.tzinfo is not None
        with av.open(str(vp8.folder / seg.path)) as c:
            frames = list(c.decode(video=0))
        assert len(frames) == seg.frames >= (1 if seg is segs[-1] else 10)
        assert frames[0].key_frame  # starts at a keyframe: plays without what came before
        for frame in (frames[0], frames[len(frames) // 2], frames[-1]):
            assert (frame.width, frame.height) == (640, 480) and shows_the_pattern(frame)
    for a, b in itertools.pairwise(segs):
        assert a.end < b.start and (b.start - a.end).total_seconds() < 0.5
    assert sum(s.frames for s in segs[:-1]) >= 25  # rolled over after ~1 s, not per keyframe


def test_recorded_packets_are_the_offered_packets_unchanged(vp8: Recording) -> None:
    offered = vp8.offered
    first = next(i for i, p in enumerate(offered) if p[3])  # nothing before a keyframe
    i = first
    for seg in vp8.segments:
        got = demux(vp8.folder / seg.path)
        expected = offered[i : i + seg.frames]
        assert len(got) == len(expected) == seg.frames
        assert [bytes(p) for p in got] == [p[1] for p in expected]
        assert seg.bytes == sum(len(p[1]) for p in expected)
        assert got[0].is_keyframe and expected[0][3]
        # The wall-clock mapping: start and end are when the first and last were offered.
        assert seg.start.timestamp() == pytest.approx(expected[0][0], abs=1e-6)
        assert seg.end.timestamp() == pytest.approx(expected[-1][0], abs=1e-6)
        # Timestamps in the file are the sender's, from 0: offset T - start finds a frame.
        seconds = [float(p.pts * p.time_base) for p in got]
        sent = [(p[2] - expected[0][2]) / 90_000 for p in expected]
        assert seconds == pytest.approx(sent, abs=0.002) and seconds[0] == 0.0
        if i > first:  # the gap to the previous segment is one frame interval, no more
            step = expected[0][2] - offered[i - 1][2]
            assert 0 < step <= max(b[2] - a[2] for a, b in itertools.pairwise(expected))
        i += seg.frames
    # No gap: each segment starts with the packet right after the previous one's last.
    assert i == len(offered)


class ReplayTrack(MediaStreamTrack):
    """A recorded segment's packets, in a loop, paced at 30 per second: no decoder."""

    kind = "video"

    def __init__(self, packets: list[av.Packet]) -> None:
        super().__init__()
        self.data = [(bytes(p), int(p.pts), p.time_base) for p in packets]
        self.n = 0

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        await asyncio.sleep(1 / 30)
        data, pts, time_base = self.data[self.n % len(self.data)]
        loop = self.n // len(self.data)
        span = self.data[-1][1] + 33
        self.n += 1
        packet = av.Packet(data)
        packet.pts, packet.time_base = pts + loop * span, time_base
        return packet


async def test_a_segment_is_forwarded_to_a_webrtc_viewer_without_reencoding(
    vp8: Recording,
) -> None:
    packets = demux(vp8.folder / vp8.segments[1].path)
    sender, receiver = RTCPeerConnection(NO_STUN), RTCPeerConnection(NO_STUN)
    transceiver = sender.addTransceiver(ReplayTrack(packets), direction="sendonly")
    frames: asyncio.Queue[av.VideoFrame] = asyncio.Queue()
    pulls: list[asyncio.Future[None]] = []

    @receiver.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        async def pull() -> None:
            with contextlib.suppress(MediaStreamError):
                while True:
                    frames.put_nowait(await track.recv())  # type: ignore[arg-type]

        pulls.append(asyncio.ensure_future(pull()))

    try:
        await sender.setLocalDescription(await sender.createOffer())
        await receiver.setRemoteDescription(sender.localDescription)
        await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)
        got = []
        async with asyncio.timeout(10):
            while len(got) < 10:
                got.append(await frames.get())
        for frame in got:
            assert (frame.width, frame.height) == (640, 480) and shows_the_pattern(frame)
        encoder = getattr(transceiver.sender, "_RTCRtpSender__encoder", None)
        assert encoder is not None and encoder.codec is None  # packed, never encoded
    finally:
        await sender.close()
        await receiver.close()
        for task in pulls:
            task.cancel()


def _h264_encoder() -> str | None:
    try:
        av.codec.Codec("libx264", "w")
    except Exception as exc:
        return f"no H264 encoder (libx264) in this av: {exc}"
    return None


@pytest.mark.skipif(_h264_encoder() is not None, reason=str(_h264_encoder()))
async def test_h264_is_recorded_to_mpeg_ts(tmp_path: Path) -> None:
    rec = await record(tmp_path, "H264", seconds=2.5, segment_s=1.0)
    assert rec.segments and rec.stats["errors"] == 0, rec.stats
    first = next(i for i, p in enumerate(rec.offered) if p[3])
    i = first
    for seg in rec.segments:
        assert NAME.fullmatch(seg.path) and seg.path.endswith(".ts") and seg.codec == "H264"
        with av.open(str(rec.folder / seg.path)) as c:
            frames = list(c.decode(video=0))
        assert frames[0].key_frame and (frames[0].width, frames[0].height) == (640, 480)
        assert len(frames) == seg.frames and shows_the_pattern(frames[-1])
        got = demux(rec.folder / seg.path)
        expected = [p[1] for p in rec.offered[i : i + seg.frames]]
        # The TS muxer puts an access unit delimiter (NAL type 9) in front where the
        # sender sent none; what follows is the sender's bytes.
        aud = b"\x00\x00\x00\x01\x09\xf0"
        assert [bytes(p).removeprefix(aud) for p in got] == expected
        i += seg.frames


@functools.cache
def vp8_packets(n: int, key_every: int, size: tuple[int, int] = (64, 48)) -> list[bytes]:
    """Real VP8 frames (libvpx), a keyframe every `key_every`."""
    enc = av.CodecContext.create("libvpx", "w")
    enc.thread_count = 1
    enc.width, enc.height = size
    enc.pix_fmt, enc.time_base = "yuv420p", Fraction(1, 30)
    enc.options = {"deadline": "realtime", "cpu-used": "8", "g": "1000"}
    out = []
    for i in range(n):
        img = np.zeros((size[1], size[0], 3), np.uint8)
        img[:, (i * 2) % size[0] :][:, :4] = 255
        frame = av.VideoFrame.from_ndarray(img, format="bgr24").reformat(format="yuv420p")
        frame.pts = i
        frame.pict_type = av.video.frame.PictureType.I if i % key_every == 0 else 0
        out.extend(bytes(p) for p in enc.encode(frame))
    out.extend(bytes(p) for p in enc.encode(None))
    return out


def offer(stream: Stream, data: bytes, pts: int) -> None:
    packet = av.Packet(data)
    packet.pts, packet.time_base = pts & 0xFFFFFFFF, RTP_VIDEO_CLOCK
    packet.is_keyframe = vp8_size(data) is not None
    stream.offer(packet)


async def test_rollover_rtp_wraparound_and_a_new_sender(tmp_path: Path) -> None:
    frames = vp8_packets(60, key_every=10)
    assert vp8_size(frames[0]) == (64, 48) and vp8_size(frames[1]) is None
    now = [1_795_687_200.0]
    segments: list[SegmentInfo] = []
    recorder = SegmentRecorder(
        tmp_path, segment_s=0.5, on_segment=segments.append, clock=lambda: now[0]
    )
    stream = Stream("uav-1", codec="VP8")
    stream.sinks.append(recorder)
    offer(stream, frames[1], 0)  # no keyframe yet: not recorded
    pts = 2**32 - 3000 * 15  # the RTP clock wraps inside the first segment
    for data in frames[:40]:
        now[0] += 1 / 30
        offer(stream, data, pts)
        pts += 3000
    pts = 123_456_789  # a reconnected sender: its clock starts elsewhere
    for data in frames[40:]:
        now[0] += 1 / 30
        offer(stream, data, pts)
        pts += 3000
    recorder.close("uav-1")
    await recorder.aclose()
    # Keyframes at 0, 10, 20, 30 | 40, 50: roll over at the first keyframe after 0.5 s
    # (frame 20), and at the new sender's first frame.
    assert [s.frames for s in segments] == [20, 20, 20], segments
    assert recorder.stats()["skipped"] == 1 and recorder.stats()["errors"] == 0
    assert [s.start.timestamp() for s in segments] == pytest.approx(
        [1_795_687_200 + k / 30 for k in (1, 21, 41)]
    )
    assert segments[0].path == "uav-1/20261126T100000.033Z.webm"
    for seg in segments:
        got = demux(tmp_path / seg.path)
        assert [p.pts for p in got] == [round(k * 1000 / 30) for k in range(20)]
    recorded = [bytes(p) for seg in segments for p in demux(tmp_path / seg.path)]
    assert recorded == frames


async def test_an_unwritable_folder_is_counted_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    segments: list[SegmentInfo] = []
    recorder = SegmentRecorder(blocker / "video", segment_s=0.2, on_segment=segments.append)
    stream = Stream("uav-1", codec="VP8")
    stream.sinks.append(recorder)
    for i, data in enumerate(vp8_packets(60, key_every=10)[:30]):
        offer(stream, data, i * 3000)
        await asyncio.sleep(0.01)
    await recorder.aclose()
    assert stream.packets == 30 and segments == []
    stats = recorder.stats()
    assert stats["errors"] >= 1 and stats["failed"][0]["path"].endswith(".webm")
    assert "uav-1" in stats["failed"][0]["path"] and "Error" in stats["failed"][0]["error"]


async def test_a_recorder_behind_drops_packets_instead_of_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recording, "MAX_BACKLOG", -1)  # as if the disk were stalled
    segments: list[SegmentInfo] = []
    recorder = SegmentRecorder(tmp_path, on_segment=segments.append)
    stream = Stream("uav-1", codec="VP8")
    stream.sinks.append(recorder)
    for i, data in enumerate(vp8_packets(60, key_every=10)[:5]):
        offer(stream, data, i * 3000)
    await recorder.aclose()
    assert recorder.stats()["dropped"] == 5 and segments == [] and stream.packets == 5
