"""Replay a recorded incident: seek, play, pause, speed 0.25x-100x.

Replay is the live pipeline under another clock: the recorded events are published
onto the replay's own bus, folded into its own picture and pushed like live deltas.
It only reads the recording; it never writes into any log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from cockpit.bus import MemoryBus, Overflow, Subscription
from cockpit.pipeline import restore_from_log
from cockpit.push import PushHub
from cockpit.recorder import LogReader
from cockpit.situation import Situation

__all__ = ["MAX_SPEED", "MIN_SPEED", "ReplaySession", "situation_at"]

log = logging.getLogger("cockpit.replay")

MIN_SPEED = 0.25
MAX_SPEED = 100.0
_TICK_S = 0.02  # how often the replay clock publishes what has become due


def situation_at(
    reader: LogReader,
    t: float,
    factory: Callable[[dict[str, Any] | None], Situation],
    *,
    near: Situation | None = None,
    snapshot_before: Callable[[int], tuple[int, dict[str, Any]] | None] | None = None,
) -> Situation:
    """The picture as the live server had it at server time `t`; folded forward from a
    copy of `near` (a picture nobody changes meanwhile) when that is nearer than the
    snapshot before `t`; snapshots through `snapshot_before` if given (see
    `restore_from_log`)."""
    made: list[bool] = []

    def quiet(snapshot: dict[str, Any] | None) -> Situation:
        # The catch-up fold's deltas are thrown away: not making them saves about half
        # of a seek's fold (bench/replay_seek.py). The picture is the same either way.
        sit = factory(snapshot)
        made.append(sit.emit)
        sit.emit = False
        return sit

    sit = restore_from_log(
        reader, quiet, reader.seq_at(t), near=near, snapshot_before=snapshot_before
    )
    sit.emit = made[0]  # from here on a replay pushes what each event changes, as before
    return sit


class ReplaySession:
    """One replay of one recording, with its own bus, picture and push hub."""

    def __init__(
        self,
        reader: LogReader,
        factory: Callable[[dict[str, Any] | None], Situation],
        *,
        clock: Callable[[], float] = time.monotonic,
        stream_queue: int = 2000,
    ) -> None:
        self.reader = reader
        self.incident = reader.incident
        self.factory = factory
        self._clock = clock
        count, first, last = reader.bounds()
        self.t_first: float = first or 0.0
        self.t_last: float = last or 0.0
        self.events_total = count
        self.hub = PushHub(maxsize=stream_queue)
        self.situation = factory(None)
        self.position = self.t_first  # replay time: server time of the recording
        self.speed = 1.0
        self.playing = False
        self._bus = MemoryBus(self.incident)
        self._player_task: asyncio.Task[None] | None = None
        self._fold_task: asyncio.Task[None] | None = None
        self._anchor = (self._clock(), self.position)  # (wall, replay) at last change
        self._lock = asyncio.Lock()
        # The last snapshot read, decoded: a drag back within one snapshot interval reads
        # and decodes it once (restoring copies it, so it stays as read).
        self._snapshot: tuple[int, dict[str, Any]] | None = None

    # --- control --------------------------------------------------------------------

    async def start(self) -> None:
        await self.seek(self.t_first)
        self._player_task = asyncio.create_task(self._player(), name="replay-player")

    async def close(self) -> None:
        for task in (self._player_task, self._fold_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._player_task = self._fold_task = None
        await self._bus.close()
        self.hub.close_all()

    def now(self) -> float:
        """Current replay time (server time of the recording)."""
        wall, replay = self._anchor
        if not self.playing:
            return replay
        return min(self.t_last, replay + (self._clock() - wall) * self.speed)

    async def seek(self, t: float) -> None:
        t = min(max(t, self.t_first), self.t_last)
        async with self._lock:
            if self._fold_task is not None:
                self._fold_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._fold_task
            await self._bus.close()
            # The fold is stopped, so the picture shown stays as it is while the new one is
            # made from it: a drag along the timeline (and any seek forward within a
            # snapshot interval) folds only the events between, not from the snapshot.
            self.situation = await asyncio.to_thread(
                situation_at,
                self.reader,
                t,
                self.factory,
                near=self.situation,
                snapshot_before=self._snapshot_before,
            )
            self._bus = MemoryBus(self.incident, start_seq=self.situation.seq)
            sub = self._bus.subscribe(
                "replay-fold", after=self._bus.head, maxsize=50_000, overflow=Overflow.BLOCK
            )
            self._fold_task = asyncio.create_task(self._fold(sub), name="replay-fold")
            self._anchor = (self._clock(), t)
            # Browsers hold the old picture: make them resync from the new one.
            self.hub.close_all()

    def _snapshot_before(self, upto: int) -> tuple[int, dict[str, Any]] | None:
        """`LogReader.snapshot_before`, remembering the last one (seeks run one at a time,
        under the lock)."""
        seq = self.reader.snapshot_seq_before(upto)
        if seq == 0:
            return None
        if self._snapshot is None or self._snapshot[0] != seq:
            self._snapshot = self.reader.snapshot_before(upto)
        return self._snapshot

    def play(self, speed: float | None = None) -> None:
        if speed is not None:
            self.set_speed(speed)
        self._anchor = (self._clock(), self.now())
        self.playing = True

    def pause(self) -> None:
        self._anchor = (self._clock(), self.now())
        self.playing = False

    def set_speed(self, speed: float) -> None:
        if not MIN_SPEED <= speed <= MAX_SPEED:
            raise ValueError(f"speed: {speed} is outside {MIN_SPEED}..{MAX_SPEED}")
        self._anchor = (self._clock(), self.now())
        self.speed = speed

    def state(self) -> dict[str, Any]:
        return {
            "incident": self.incident,
            "start": self.t_first,
            "end": self.t_last,
            "position": self.now(),
            "speed": self.speed,
            "playing": self.playing,
            "seq": self.situation.seq,
            "events": self.events_total,
        }

    # --- the loops ------------------------------------------------------------------

    async def _player(self) -> None:
        while True:
            await asyncio.sleep(_TICK_S)
            if not self.playing:
                continue
            async with self._lock:
                target = self.now()
                upto = await asyncio.to_thread(self.reader.seq_at, target)
                after = self._bus.head
                while after < upto:
                    batch = await asyncio.to_thread(self.reader.events, after, upto, 2000)
                    if not batch:
                        break
                    published = await self._bus.publish(batch)
                    # The log's seqs are contiguous, so the replay bus re-assigns the same.
                    after = published[-1].seq or upto
                if target >= self.t_last:
                    self.pause()

    async def _fold(self, sub: Subscription) -> None:
        async for batch in sub:
            deltas = []
            for ev in batch:
                deltas.extend(self.situation.apply(ev))
            self.hub.publish(deltas)

    async def caught_up(self, wait_s: float = 0.5) -> bool:
        deadline = time.monotonic() + wait_s
        # Polling is fine here: a replay folds in bursts, and this runs once per request.
        while self.situation.seq < self._bus.head and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        return self.situation.seq >= self._bus.head
