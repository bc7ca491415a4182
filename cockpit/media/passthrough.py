"""Receive video as encoded packets instead of decoded frames.

aiortc's receiver hands every re-assembled frame to a decoder thread (module function
`aiortc.rtcrtpreceiver.decoder_worker`). A relay must not decode: decoding and
re-encoding per viewer costs a core for a few viewers (see TECH-NOTES). We replace that
function, once, with one that passes frames through as `av.Packet`s for the tracks we
mark, and calls the original for every other track (a test's aiortc viewer in the same
process still decodes). This depends on aiortc internals: the version is pinned in
pyproject.toml and `tests/test_media.py` checks it over a real loopback connection.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import weakref
from fractions import Fraction
from typing import Any

import aiortc
import av
from aiortc import rtcrtpreceiver
from aiortc.mediastreams import MediaStreamTrack

__all__ = ["AIORTC_VERSION", "install", "is_keyframe", "pass_through"]

AIORTC_VERSION = "1.16.0"  # the version whose receiver internals this replaces
RTP_VIDEO_CLOCK = Fraction(1, 90_000)

_original = rtcrtpreceiver.decoder_worker
_marked: weakref.WeakSet[Any] = weakref.WeakSet()  # output queues of pass-through tracks
_installed = False


def is_keyframe(codec: str, data: bytes) -> bool:
    """Whether an encoded frame can be decoded on its own (a late viewer starts there)."""
    if not data:
        return False
    if codec == "vp8":
        return data[0] & 0x01 == 0  # RFC 6386 9.1: frame type bit 0 = key frame
    if codec == "h264":
        # Annex B: any IDR slice (NAL type 5) or SPS (7) makes it a starting point.
        i = 0
        while (i := data.find(b"\x00\x00\x01", i)) >= 0 and i + 3 < len(data):
            if data[i + 3] & 0x1F in (5, 7):
                return True
            i += 3
        return False
    return False


def _worker(
    loop: asyncio.AbstractEventLoop,
    input_q: queue.Queue[Any],
    output_q: asyncio.Queue[Any],
    decode_error: threading.Event,
) -> None:
    if output_q not in _marked:
        _original(loop, input_q, output_q, decode_error)
        return
    while True:
        task = input_q.get()
        if task is None:
            asyncio.run_coroutine_threadsafe(output_q.put(None), loop)
            return
        codec, frame = task
        packet = av.Packet(frame.data)
        packet.pts = packet.dts = frame.timestamp
        packet.time_base = RTP_VIDEO_CLOCK
        packet.is_keyframe = is_keyframe(codec.name.lower(), frame.data)
        asyncio.run_coroutine_threadsafe(output_q.put(packet), loop)


def install() -> None:
    """Replace the receiver's decoder function (idempotent); refuse an unknown aiortc."""
    global _installed
    if _installed:
        return
    if aiortc.__version__ != AIORTC_VERSION:
        raise RuntimeError(
            f"aiortc {aiortc.__version__}: the packet pass-through is written for "
            f"{AIORTC_VERSION}; check rtcrtpreceiver.decoder_worker before changing the pin"
        )
    rtcrtpreceiver.decoder_worker = _worker
    _installed = True


def pass_through(track: MediaStreamTrack) -> None:
    """Make this remote track yield `av.Packet`s. Call on the "track" event, before the
    connection is up (the receiver starts its worker when DTLS completes)."""
    install()
    _marked.add(track._queue)  # type: ignore[attr-defined]
