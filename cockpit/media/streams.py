"""Video streams: one WHIP ingest each, any number of WHEP viewers, packets forwarded.

A drone publishes its encoded video (WHIP); every viewer (WHEP) gets the very same
packets, never a decode or an encode per viewer. A viewer that joins late, or falls
behind, waits for the next keyframe (asked of the drone with a PLI) instead of showing
broken pictures. A stream outlives its ingest session: a drone that reconnects after a
radio drop continues into the viewers' players.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import av
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from cockpit.media.passthrough import pass_through

__all__ = ["BadOffer", "MediaHub", "NoSuchStream", "Packet", "Stream", "Viewer"]

if TYPE_CHECKING:
    Packet: TypeAlias = av.Packet[Any]  # an encoded frame as it came from the sender
else:
    Packet = av.Packet

log = logging.getLogger("cockpit.media")

CODECS = ("VP8", "H264")  # forwarded as they come; the answer takes the sender's first
VIEWER_QUEUE = 90  # packets (3 s at 30 fps) before a viewer counts as behind
KEYFRAME_EVERY_S = 1.0  # at most one PLI per stream per second


class BadOffer(ValueError):
    """The SDP offer cannot be used (unparseable, or no video in a codec we forward)."""


class NoSuchStream(LookupError):
    pass


@dataclass(eq=False)
class Viewer:
    id: str
    user: str
    queue: asyncio.Queue[Packet | None] = field(default_factory=lambda: asyncio.Queue(VIEWER_QUEUE))
    waiting_for_key: bool = True
    sent: int = 0
    skipped: int = 0  # packets dropped while behind or waiting for a keyframe


class PacketTrack(MediaStreamTrack):
    """What a viewer's sender reads: the stream's packets, unchanged."""

    kind = "video"

    def __init__(self, stream: Stream, viewer: Viewer) -> None:
        super().__init__()
        self.stream = stream
        self.viewer = viewer
        self.sender: RTCRtpSender | None = None

    async def recv(self) -> Packet:
        sender = self.sender
        # A viewer's PLI sets the sender's private flag (its encoder would make a
        # keyframe); we encode nothing, so the drone is asked instead.
        if sender is not None and getattr(sender, "_RTCRtpSender__force_keyframe", False):
            sender._RTCRtpSender__force_keyframe = False  # type: ignore[attr-defined]
            self.stream.request_keyframe()
        packet = await self.viewer.queue.get()
        if packet is None:
            self.stop()
            raise MediaStreamError
        self.viewer.sent += 1
        return packet


@dataclass(eq=False)
class Stream:
    name: str
    codec: str | None = None
    clock: Callable[[], float] = time.time
    viewers: dict[str, Viewer] = field(default_factory=dict)
    sinks: list[Callable[[Stream, Packet], None]] = field(default_factory=list)
    packets: int = 0
    bytes: int = 0
    keyframes: int = 0
    last_packet_at: float | None = None  # server clock
    live: bool = False
    owner: str = ""  # who publishes it (device:<name>)
    fed: bool = False  # fed by this process (MediaHub.feed), not by a WHIP sender
    _request_key: Callable[[], None] | None = None
    _last_pli: float = 0.0

    def offer(self, packet: Packet) -> None:
        self.packets += 1
        self.bytes += packet.size
        self.last_packet_at = self.clock()
        key = bool(packet.is_keyframe)
        if key:
            self.keyframes += 1
        for viewer in self.viewers.values():
            if viewer.waiting_for_key and not key:
                viewer.skipped += 1
                continue
            viewer.waiting_for_key = False
            try:
                viewer.queue.put_nowait(packet)
            except asyncio.QueueFull:
                # Behind by seconds: drop what is queued, restart at the next keyframe.
                while not viewer.queue.empty():
                    viewer.queue.get_nowait()
                    viewer.skipped += 1
                viewer.waiting_for_key = True
                self.request_keyframe()
        for sink in self.sinks:
            try:
                sink(self, packet)
            except Exception:  # a recorder or detector failing must not stop the video
                log.exception("stream %s: sink failed", self.name)

    def request_keyframe(self) -> None:
        if self.fed and self._request_key is not None:
            self._request_key()  # fed by this process: no drone to spare, no limit
            return
        now = time.monotonic()
        if self._request_key is None or now - self._last_pli < KEYFRAME_EVERY_S:
            return
        self._last_pli = now
        self._request_key()

    def stats(self, now: float) -> dict[str, Any]:
        age = None if self.last_packet_at is None else round(max(0.0, now - self.last_packet_at), 3)
        return {
            "name": self.name,
            "codec": self.codec,
            "live": self.live,
            "packets": self.packets,
            "bytes": self.bytes,
            "keyframes": self.keyframes,
            "last_packet_age_s": age,
            "viewers": len(self.viewers),
        }


@dataclass(eq=False)
class _Session:
    id: str
    kind: str  # "whip" | "whep" | "relay" (this process offering a stream to an SFU)
    stream: str
    pc: RTCPeerConnection
    owner: str
    viewer: Viewer | None = None
    pump: asyncio.Task[None] | None = None


def _codec_of(sdp: str) -> str | None:
    """The video codec an SDP answer settled on: its video line's first payload type."""
    m = re.search(r"^m=video \d+ [A-Z/]+ (\d+)", sdp, re.M)
    if m is None:
        return None
    rtpmap = re.search(rf"^a=rtpmap:{m.group(1)} ([A-Za-z0-9]+)/", sdp, re.M)
    return rtpmap.group(1).upper() if rtpmap else None


def _preferences(codec: str) -> list[Any]:
    caps = RTCRtpSender.getCapabilities("video")
    assert caps is not None  # aiortc always has video capabilities
    return [c for c in caps.codecs if c.mimeType.upper() in (f"VIDEO/{codec}", "VIDEO/RTX")]


class MediaHub:
    def __init__(
        self, *, ice_servers: list[str] | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        # No default STUN server: aiortc's would reach out to the internet.
        self.config = RTCConfiguration(iceServers=[RTCIceServer(u) for u in ice_servers or []])
        self.clock = clock
        self.streams: dict[str, Stream] = {}
        self.sessions: dict[str, _Session] = {}
        self._ids = itertools.count(1)
        self.on_change: list[Callable[[Stream], None]] = []  # stream went live / ended

    def stream(self, name: str) -> Stream:
        s = self.streams.get(name)
        if s is None:
            s = self.streams[name] = Stream(name, clock=self.clock)
        return s

    def _changed(self, stream: Stream) -> None:
        for callback in self.on_change:
            try:
                callback(stream)
            except Exception:
                log.exception("stream %s: change callback failed", stream.name)

    async def _answer(self, pc: RTCPeerConnection, offer: str) -> str:
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        except (ValueError, KeyError, IndexError, AttributeError) as exc:
            raise BadOffer(f"unusable SDP offer: {exc}") from exc
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)

    async def publish(self, name: str, offer: str, owner: str) -> tuple[str, str, str]:
        """WHIP: take a sender's offer; returns (session id, answer SDP, codec)."""
        if "m=video" not in offer:
            raise BadOffer("the offer has no video")
        pc = RTCPeerConnection(self.config)
        session = _Session(f"p{next(self._ids)}-{secrets.token_hex(8)}", "whip", name, pc, owner)
        transceiver = pc.addTransceiver("video", direction="recvonly")
        caps = RTCRtpReceiver.getCapabilities("video")
        assert caps is not None  # aiortc always has video capabilities
        transceiver.setCodecPreferences(
            [c for c in caps.codecs if c.mimeType.split("/")[1].upper() in (*CODECS, "RTX")]
        )
        tracks: asyncio.Queue[MediaStreamTrack] = asyncio.Queue()

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            pass_through(track)  # video and audio: nothing here decodes
            if track.kind == "video":
                tracks.put_nowait(track)

        try:
            answer = await self._answer(pc, offer)
        except BaseException:
            await pc.close()
            raise
        codec = _codec_of(answer)
        if codec not in CODECS or tracks.empty():
            await pc.close()
            raise BadOffer(f"no video in {' or '.join(CODECS)} in the offer")
        stream = self.stream(name)
        if stream.codec is not None and stream.codec != codec:
            self._end_viewers(stream)  # their players were set up for the old codec
        stream.codec = codec
        stream.owner = owner
        stream.fed = False
        old = [s for s in self.sessions.values() if s.kind == "whip" and s.stream == name]
        for previous in old:  # a drone reconnecting replaces its stale session
            await self.end(previous.id)
        receiver = transceiver.receiver

        def request_key() -> None:
            for src in receiver.getSynchronizationSources():
                task = asyncio.ensure_future(receiver._send_rtcp_pli(src.source))
                task.add_done_callback(_quiet)

        stream._request_key = request_key
        session.pump = asyncio.create_task(self._pump(stream, tracks.get_nowait()))
        self.sessions[session.id] = session
        self._watch(session)
        stream.live = True
        self._changed(stream)
        return session.id, answer, codec

    def feed(
        self, name: str, codec: str, owner: str, request_key: Callable[[], None] | None = None
    ) -> Stream:
        """A stream this process feeds itself (an exercise's recorded camera): live from
        now, with `codec`; `request_key` is asked when a viewer needs a keyframe."""
        stream = self.stream(name)
        if stream.codec is not None and stream.codec != codec:
            self._end_viewers(stream)  # their players were set up for the old codec
        stream.codec = codec
        stream.owner = owner
        stream.fed = True
        stream._request_key = request_key
        if not stream.live:
            stream.live = True
            self._changed(stream)
        return stream

    def feed_ended(self, name: str) -> None:
        """The self-fed stream `name` has no picture for now (a gap, a pause, the end)."""
        stream = self.streams.get(name)
        if stream is not None and stream.live:
            stream.live = False
            self._changed(stream)

    async def _pump(self, stream: Stream, track: MediaStreamTrack) -> None:
        try:
            while True:
                packet = await track.recv()
                if isinstance(packet, av.Packet):
                    stream.offer(packet)
        except MediaStreamError:
            pass
        finally:
            stream.live = False
            self._changed(stream)

    def _sending(self, stream: Stream, owner: str, prefix: str) -> tuple[RTCPeerConnection, Viewer]:
        """A peer that sends `stream`'s packets, unchanged, to one viewer (or an SFU)."""
        assert stream.codec is not None
        pc = RTCPeerConnection(self.config)
        viewer = Viewer(f"{prefix}{next(self._ids)}-{secrets.token_hex(8)}", owner)
        track = PacketTrack(stream, viewer)
        transceiver = pc.addTransceiver(track, direction="sendonly")
        transceiver.setCodecPreferences(_preferences(stream.codec))
        track.sender = transceiver.sender
        return pc, viewer

    async def view(self, name: str, offer: str, owner: str) -> tuple[str, str]:
        """WHEP: a viewer's offer for a live stream; returns (session id, answer SDP)."""
        stream = self.streams.get(name)
        if stream is None or stream.codec is None:
            raise NoSuchStream(name)
        if "m=video" not in offer:
            raise BadOffer("the offer has no video")
        pc, viewer = self._sending(stream, owner, "v")
        try:
            answer = await self._answer(pc, offer)
        except BaseException:
            await pc.close()
            raise
        if _codec_of(answer) != stream.codec:
            await pc.close()
            raise BadOffer(f"the viewer cannot play {stream.codec}")
        session = _Session(viewer.id, "whep", name, pc, owner, viewer=viewer)
        self.sessions[session.id] = session
        stream.viewers[viewer.id] = viewer
        self._watch(session)
        stream.request_keyframe()  # a late joiner needs a picture to start from
        return session.id, answer

    async def relay(self, name: str, owner: str) -> tuple[str, str]:
        """A viewer that makes the offer, to push the stream to an SFU over WHIP: the
        same packets as every viewer's. Returns (session id, offer SDP); the answer goes
        to `relay_answered`."""
        stream = self.streams.get(name)
        if stream is None or stream.codec is None:
            raise NoSuchStream(name)
        pc, viewer = self._sending(stream, owner, "r")
        try:
            await pc.setLocalDescription(await pc.createOffer())  # candidates gathered
        except BaseException:
            await pc.close()
            raise
        session = _Session(viewer.id, "relay", name, pc, owner, viewer=viewer)
        self.sessions[session.id] = session
        stream.viewers[viewer.id] = viewer
        self._watch(session)
        return session.id, str(pc.localDescription.sdp)

    async def relay_answered(self, session_id: str, answer: str) -> None:
        session = self.sessions.get(session_id)
        if session is None or session.kind != "relay":
            raise NoSuchStream(session_id)
        try:
            await session.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        except (ValueError, KeyError, IndexError, AttributeError) as exc:
            raise BadOffer(f"unusable SDP answer: {exc}") from exc
        stream = self.streams.get(session.stream)
        if stream is not None:
            stream.request_keyframe()  # the SFU's viewers need a picture to start from

    def _watch(self, session: _Session) -> None:
        @session.pc.on("connectionstatechange")
        async def changed() -> None:
            if session.pc.connectionState in ("failed", "closed"):
                await self.end(session.id)

    def _end_viewers(self, stream: Stream) -> None:
        for viewer in list(stream.viewers.values()):
            with contextlib.suppress(asyncio.QueueFull):
                viewer.queue.put_nowait(None)
        stream.viewers.clear()

    async def end(self, session_id: str) -> bool:
        session = self.sessions.pop(session_id, None)
        if session is None:
            return False
        if session.viewer is not None:
            stream = self.streams.get(session.stream)
            if stream is not None:
                stream.viewers.pop(session.viewer.id, None)
        if session.pump is not None:
            session.pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await session.pump
        await session.pc.close()
        return True

    def owner_of(self, session_id: str) -> tuple[str, str, str] | None:
        """(kind, stream, owner) of a session, for the DELETE route's checks."""
        s = self.sessions.get(session_id)
        return None if s is None else (s.kind, s.stream, s.owner)

    async def close(self) -> None:
        for session_id in list(self.sessions):
            await self.end(session_id)

    def stats(self) -> dict[str, Any]:
        now = self.clock()
        return {
            "streams": [s.stats(now) for s in self.streams.values()],
            "sessions": {
                "whip": sum(1 for s in self.sessions.values() if s.kind == "whip"),
                "whep": sum(1 for s in self.sessions.values() if s.kind == "whep"),
                "relay": sum(1 for s in self.sessions.values() if s.kind == "relay"),
            },
        }


def _quiet(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("PLI failed: %s", task.exception())
