"""How late the event loop runs: one number that says whether the server keeps up.

Everything the cockpit does (ingest, fold, push, video signalling) shares one event loop;
work that blocks it delays every browser at once. A task sleeps PERIOD_S and measures how
much later it woke; `/healthz` shows the latest, the worst of the last minute, and the
worst since start.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["LoopLag"]

PERIOD_S = 0.05
WINDOW_S = 60.0


class LoopLag:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._recent: deque[tuple[float, float]] = deque()  # (when, lag s)
        self.last_s = 0.0
        self.worst_s = 0.0
        self._task: asyncio.Task[None] | None = None

    def record(self, when: float, lag: float) -> None:
        self.last_s = lag
        self.worst_s = max(self.worst_s, lag)
        recent = self._recent
        recent.append((when, lag))
        while recent and recent[0][0] < when - WINDOW_S:
            recent.popleft()

    async def run(self) -> None:
        while True:
            start = self._clock()
            await asyncio.sleep(PERIOD_S)
            woke = self._clock()
            self.record(woke, max(0.0, woke - start - PERIOD_S))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="loop-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def stats(self) -> dict[str, Any]:
        lags = sorted(lag for _, lag in self._recent)
        p99 = lags[min(len(lags) - 1, int(0.99 * len(lags)))] if lags else 0.0
        since = self._recent[-1][0] - 10.0 if self._recent else 0.0
        last10 = [lag for when, lag in self._recent if when >= since]
        return {
            "last_ms": round(1000 * self.last_s, 1),
            "max_10s_ms": round(1000 * max(last10), 1) if last10 else 0.0,
            "p99_1min_ms": round(1000 * p99, 1),
            "max_1min_ms": round(1000 * lags[-1], 1) if lags else 0.0,
            "max_ms": round(1000 * self.worst_s, 1),
        }
