"""A video source whose frames show the time they were made, and the reading of it back:
32 bits of milliseconds since EPOCH as a row of black and white blocks (and the same
inverted below, so a read that is not sound is noticed)."""

from __future__ import annotations

import time

import av
import numpy as np
from aiortc.mediastreams import VideoStreamTrack

EPOCH = time.time()  # the frames carry milliseconds since this
W, H, BITS, BLOCK_W, BLOCK_H = 320, 240, 32, 20, 30  # 16 blocks a row, 2 rows + 2 inverted


class Clocked(VideoStreamTrack):
    """Frames that show the time they were made: 32 bits of milliseconds since EPOCH."""

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        ms = int((time.time() - EPOCH) * 1000)
        img = np.full((H, W, 3), 60, np.uint8)
        for i in range(BITS):
            bit = (ms >> (BITS - 1 - i)) & 1
            x, row = (i % 16) * BLOCK_W, i // 16
            img[row * BLOCK_H : (row + 1) * BLOCK_H, x : x + BLOCK_W] = 255 * bit
            img[(row + 2) * BLOCK_H : (row + 3) * BLOCK_H, x : x + BLOCK_W] = 255 * (1 - bit)
        frame = av.VideoFrame.from_ndarray(img, format="bgr24")
        frame.pts, frame.time_base = pts, time_base
        return frame


def painted(frame: av.VideoFrame) -> float:
    """The time painted into a decoded frame (epoch seconds)."""
    img = frame.to_ndarray(format="rgb24")
    sy, sx = img.shape[0] / H, img.shape[1] / W
    bits, inverted = [], []
    for i in range(BITS):
        x = round(((i % 16) * BLOCK_W + BLOCK_W / 2) * sx)
        row = i // 16
        at = [img[round((r * BLOCK_H + BLOCK_H / 2) * sy), x, 1] > 128 for r in (row, row + 2)]
        bits.append(int(at[0]))
        inverted.append(int(at[1]))
    assert all(a != b for a, b in zip(bits, inverted, strict=True)), (bits, inverted)
    return EPOCH + int("".join(map(str, bits)), 2) / 1000
