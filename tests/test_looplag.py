"""The event-loop lag on /healthz: a blocked loop shows, and the figure recovers."""

from __future__ import annotations

import asyncio
import time

from cockpit.looplag import PERIOD_S, LoopLag


async def test_a_blocked_loop_shows_in_the_lag_and_recovers() -> None:
    lag = LoopLag()
    lag.start()
    try:
        await asyncio.sleep(3 * PERIOD_S)
        calm = lag.stats()
        time.sleep(0.3)  # what a slow handler does to every browser at once
        await asyncio.sleep(3 * PERIOD_S)
        after = lag.stats()
    finally:
        await lag.stop()
    assert calm["max_ms"] < 100
    assert after["max_ms"] >= 250 and after["max_1min_ms"] >= 250 and after["max_10s_ms"] >= 250
    assert after["last_ms"] < 100  # running on time again


def test_old_lags_leave_the_window() -> None:
    lag = LoopLag()
    lag.record(0.0, 0.5)
    lag.record(30.0, 0.01)
    assert lag.stats()["max_10s_ms"] == 10.0  # the 0.5 s lag is 30 s old
    lag.record(100.0, 0.02)
    stats = lag.stats()
    assert stats["max_1min_ms"] == 20.0 and stats["max_ms"] == 500.0
