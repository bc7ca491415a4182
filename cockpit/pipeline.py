"""The live pipeline of one process: bus -> fold -> push, and bus -> recorder.

Every process folds the incident's whole stream into its own picture. Exactly one
process per incident records (a lease on the bus; always this one on the memory bus).
An ingest returns only once the recorder has committed its events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from cockpit.bus import Bus, BusUnavailable, Overflow, Overflowed, RedisBus, Rewound, Subscription
from cockpit.events import ClockEvent, Event, Source, utcnow
from cockpit.push import PushHub
from cockpit.recorder import LogReader, Recorder, incident_path
from cockpit.settings import RulesSettings, Settings
from cockpit.situation import Situation, encode_snapshot

__all__ = ["CommitTimeout", "Pipeline", "restore_from_log", "situation_factory"]

log = logging.getLogger("cockpit.pipeline")

LEASE_TTL_S = 10.0
LEASE_RENEW_S = 3.0
OPEN_CHECK_S = 0.5  # how soon the recorder notices a restarted Redis and opens it


class CommitTimeout(Exception):
    """The recorder did not confirm the events in time (they may still be written)."""


def recorded_settings(settings: Settings) -> dict[str, str]:
    """What the fold's derived knowledge depends on, for the log's meta table."""
    return {
        "rules": settings.rules.model_dump_json(),
        "stale_after_s": orjson.dumps(settings.stale_after_s).decode(),
    }


def situation_factory(
    settings: Settings, incident: str, recorded: Mapping[str, str] | None = None
) -> Callable[[dict[str, Any] | None], Situation]:
    """Make an empty picture, or restore one from a snapshot, with the configured limits.

    `recorded`: a recording's meta; its rule thresholds win over this process's, so a
    replay on another machine raises the alerts the incident raised."""
    rules = settings.rules.config()
    stale_after = dict(settings.stale_after_s)
    if recorded is not None and "rules" in recorded:
        rules = RulesSettings.model_validate_json(recorded["rules"]).config()
    if recorded is not None and "stale_after_s" in recorded:
        stale_after = {**stale_after, **orjson.loads(recorded["stale_after_s"])}

    def make(snapshot: dict[str, Any] | None) -> Situation:
        cameras = {k: (v[0], v[1]) for k, v in settings.cameras.items()}
        if snapshot is not None:
            return Situation.restore(
                snapshot,
                track_len=settings.track_len,
                stale_after=stale_after,
                cameras=cameras,
                default_camera=settings.camera_default,
                rules=rules,
            )
        return Situation(
            incident=incident,
            track_len=settings.track_len,
            stale_after=stale_after,
            cameras=cameras,
            default_camera=settings.camera_default,
            rules=rules,
        )

    return make


def restore_from_log(
    reader: LogReader,
    situation_factory: Callable[[dict[str, Any] | None], Situation],
    upto: int,
    *,
    near: Situation | None = None,
    snapshot_before: Callable[[int], tuple[int, dict[str, Any]] | None] | None = None,
) -> Situation:
    """The picture at seq `upto`: nearest snapshot, then fold forward.

    `near`, a picture of the same log that nobody changes meanwhile (a replay's, its fold
    stopped), is copied and folded forward instead when it lies between that snapshot and
    `upto`: fewer events to fold and no snapshot to read. The copy goes through
    `snapshot()` and the factory, as a snapshot from the log would: the same picture.
    `snapshot_before` stands in for the reader's (a replay remembers the last one read)."""
    if near is not None and reader.snapshot_seq_before(upto) <= near.seq <= upto:
        sit = situation_factory(near.snapshot())
    else:
        snap = (snapshot_before or reader.snapshot_before)(upto)
        sit = situation_factory(snap[1] if snap else None)
    for ev in reader.iter_events(sit.seq, upto):
        sit.apply(ev)
    return sit


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        incident: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.incident = incident
        self.clock = clock
        self.hub = PushHub(maxsize=settings.stream_queue)
        self.hub.bus_state = self.bus_state
        self._fold_sub: Subscription | None = None
        self._record_sub: Subscription | None = None
        if isinstance(bus, RedisBus):
            # Publish only into a Redis the recorder has opened: after a restart that lost
            # writes, seqs continue after the log's, never reusing an acknowledged one.
            bus.gated = True
        self.new_situation = situation_factory(settings, incident)
        self.situation = self.new_situation(None)
        self.recorder: Recorder | None = None
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._tasks: list[asyncio.Task[None]] = []
        self._record_task: asyncio.Task[None] | None = None
        self.gaps = 0  # times the fold found events missing on the bus and resynced
        self._folded = asyncio.Condition()
        self._last_snapshot_seq = 0
        self._last_snapshot_t = clock()
        self._shared: deque[tuple[float, int]] = deque()  # (time, seq) shared on Redis
        self.fold_errors = 0
        self._background: set[asyncio.Task[Any]] = set()  # tasks nobody awaits
        # Called with each folded batch, after the fold (e.g. the CoT feed sends the
        # picture to TAK clients). Synchronous and quick; a failure is logged, not raised.
        self.on_fold: list[Callable[[Sequence[Event]], None]] = []

    @property
    def log_path(self) -> Path:
        return incident_path(self.settings.data_dir, self.incident)

    # --- life cycle -----------------------------------------------------------------

    async def start(self) -> None:
        await self.bus.start()
        if self.settings.recorder != "off" and await self._may_record():
            await self._open_recorder()
        await self._load_picture()
        # Subscribe here, not in the loops: on the memory bus an event published before a
        # subscription exists is gone, and a caller may publish as soon as start returns.
        self._spawn(self._fold_loop(self._fold_subscription()), "fold")
        if self.recorder is not None:
            self._record_task = asyncio.create_task(
                self._record_loop(self._record_subscription()), name="pipeline-record"
            )
        if self.settings.recorder == "auto":
            self._spawn(self._lease_loop(), "lease")
        self._spawn(self._tick_loop(), "tick")
        if isinstance(self.bus, RedisBus):
            self._spawn(self._open_loop(), "open")

    async def close(self) -> None:
        self.hub.close_all()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.recorder is not None:
            await self._stop_recording()
            with contextlib.suppress(Exception):
                await self.bus.release_lead("recorder", self.owner)
        await self.bus.close()

    async def _stop_recording(self) -> None:
        """Write what is queued, then stop (staged shutdown)."""
        if self._record_task is not None:
            self._record_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._record_task
            self._record_task = None
        if self.recorder is not None:
            await self.recorder.close()
            self.recorder = None

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=f"pipeline-{name}"))

    async def _may_record(self) -> bool:
        if self.settings.recorder == "on":
            return True
        return await self.bus.try_lead("recorder", self.owner, LEASE_TTL_S)

    async def _open_recorder(self) -> None:
        loop = asyncio.get_running_loop()

        def committed(seq: int) -> None:  # called in the writer thread
            loop.call_soon_threadsafe(self._announce_commit, seq)

        rec = Recorder(
            self.log_path,
            self.incident,
            synchronous=self.settings.recorder_sync,
            on_commit=committed,
            exclusive=self.settings.redis_url is None,
            settings_meta=recorded_settings(self.settings),
        )
        last = await asyncio.to_thread(rec.open)
        self.recorder = rec
        await self.bus.open_run(last)
        await self.bus.ensure_seq_at_least(last)
        if last:
            await self.bus.mark_committed(last)
        log.info("recording incident %s to %s (up to seq %d)", self.incident, rec.path, last)

    def _announce_commit(self, seq: int) -> None:
        task = asyncio.create_task(self.bus.mark_committed(seq))
        task.add_done_callback(_log_failure)

    async def _load_picture(self) -> None:
        """Start from the newest picture we can get without folding from seq 1."""
        if self.recorder is not None and self.recorder.committed_seq:
            reader = LogReader(self.recorder.path)
            try:
                self.situation = await asyncio.to_thread(
                    restore_from_log, reader, self.new_situation, self.recorder.committed_seq
                )
            finally:
                reader.close()
        else:
            shared = await self.bus.get_snapshot()
            if shared is not None:
                self.situation = self.new_situation(orjson.loads(shared[1]))
        self._last_snapshot_seq = self.situation.seq

    # --- the loops ------------------------------------------------------------------

    def _fold_subscription(self) -> Subscription:
        self._fold_sub = self.bus.subscribe(
            "fold", after=self.situation.seq, maxsize=50_000, overflow=Overflow.BLOCK
        )
        return self._fold_sub

    def bus_state(self) -> dict[str, Any]:
        """Whether this process's picture is being fed, for the browsers: `down` (and
        since when, wall time) while its fold subscription has lost the bus."""
        sub = self._fold_sub
        if sub is None or sub.connected:
            return {"bus": "ok"}
        return {"bus": "down", "bus_since": sub.down_since}

    def _record_subscription(self) -> Subscription:
        assert self.recorder is not None
        sub = self.bus.subscribe(
            "recorder", after=self.recorder.committed_seq, maxsize=100_000, overflow=Overflow.BLOCK
        )
        # The log is the reference: if Redis went back, numbering continues after it.
        sub.follow_rewind = True
        self._record_sub = sub
        return sub

    async def _fold_loop(self, first: Subscription) -> None:
        sub: Subscription | None = first
        while True:
            if sub is None:
                sub = self._fold_subscription()
            try:
                async for batch in sub:
                    self._fold(batch)
                    async with self._folded:
                        self._folded.notify_all()
                return  # the bus closed
            except Overflowed as exc:
                # Events are gone from the bus (trimmed stream, lost Redis): say so, and
                # continue from the log or the newest shared picture rather than stop.
                self.gaps += 1
                log.error("picture missed events, resyncing: %s", exc)
                try:
                    await self._resync(rewound=isinstance(exc, Rewound))
                except Exception:
                    log.exception("resync failed; trying again")
                await asyncio.sleep(1.0)
            finally:
                await sub.close()
                sub = None

    async def _resync(self, *, rewound: bool) -> None:
        """A newer picture than ours, from the log (every process of a deployment shares
        the data dir) or else the shared snapshot. `rewound`: the bus went back, so ours
        may hold events that are nowhere now; then an older picture is better."""
        if self.log_path.is_file():
            reader = LogReader(self.log_path)
            try:
                top = await asyncio.to_thread(reader.last_seq)
                if top > self.situation.seq or (rewound and top):
                    self.situation = await asyncio.to_thread(
                        restore_from_log, reader, self.new_situation, top
                    )
                    self.hub.close_all()  # browsers hold the old picture: make them resync
                    return
            finally:
                reader.close()
        shared = await self.bus.get_snapshot()
        if shared is not None and (shared[0] > self.situation.seq or rewound):
            self.situation = self.new_situation(orjson.loads(shared[1]))
            self.hub.close_all()

    def _fold(self, batch: Sequence[Event]) -> None:
        sit = self.situation
        sit.emit = bool(self.hub.clients)  # no browser connected: no deltas to make
        deltas = []
        for ev in batch:
            try:
                deltas.extend(sit.apply(ev))
            except Exception:  # a bug in one rule must not stop the picture
                self.fold_errors += 1
                log.exception("fold failed on event %s (seq %s)", ev.id, ev.seq)
        self.hub.publish(deltas)
        for hook in self.on_fold:
            try:
                hook(batch)
            except Exception:
                log.exception("fold hook %r failed", hook)
        if self.recorder is not None:
            self._maybe_snapshot()

    def _maybe_snapshot(self) -> None:
        sit = self.situation
        now = self.clock()
        due_n = sit.seq - self._last_snapshot_seq >= self.settings.snapshot_every_n
        due_t = now - self._last_snapshot_t >= self.settings.snapshot_every_s
        if sit.seq > self._last_snapshot_seq and (due_n or due_t):
            assert self.recorder is not None
            snap = sit.snapshot()
            self.recorder.save_snapshot(sit.seq, sit.received_at, snap)
            if self.settings.redis_url:  # only other processes need it, and it costs ms
                self._keep(asyncio.create_task(self._share_snapshot(sit.seq, snap)))
            self._last_snapshot_seq, self._last_snapshot_t = sit.seq, now

    async def _share_snapshot(self, seq: int, snap: dict[str, Any]) -> None:
        # Encoded beside the loop: a large picture takes ~0.1 s.
        await self.bus.put_snapshot(seq, await asyncio.to_thread(encode_snapshot, snap))
        # The stream keeps what a process joining from a snapshot or catching up after a
        # pause needs, not the whole incident: Redis' memory stays bounded, and personal
        # data is not kept there longer than in the log (its purge runs on the log).
        now = self.clock()
        self._shared.append((now, seq))
        keep = min(self.settings.redis_keep_s, self.settings.personal_retention_h * 3600)
        upto = 0
        while self._shared and self._shared[0][0] <= now - keep:
            upto = self._shared.popleft()[1]
        # Never what the recorder has not committed: a stalled disk must not cost events.
        upto = min(upto, self.recorder.committed_seq if self.recorder is not None else 0)
        if upto:
            try:
                await self.bus.trim(upto)
            except Exception as exc:  # Redis away: the next snapshot trims further
                log.warning("the bus was not trimmed: %s", exc)

    async def _record_loop(self, sub: Subscription) -> None:
        assert self.recorder is not None
        rec = self.recorder
        try:
            async for batch in sub:
                await rec.append(batch)
        except Overflowed as exc:
            # Events left the bus before they were recorded: the log has a hole. That
            # must be loud; /healthz turns degraded through the recorder's error.
            rec.error = f"events missing from the log: {exc}"
            log.error("%s", rec.error)
        finally:
            await sub.close()

    async def _lease_loop(self) -> None:
        """Keep (or take over) the recorder lease; exactly one process records."""
        while True:
            await asyncio.sleep(LEASE_RENEW_S)
            try:
                leading = await self.bus.try_lead("recorder", self.owner, LEASE_TTL_S)
            except Exception as exc:
                log.warning("recorder lease check failed: %s", exc)
                continue
            if leading and self.recorder is None:
                log.info("took over recording of incident %s", self.incident)
                try:
                    await self._open_recorder()
                except Exception as exc:
                    # Redis went away again half-way: not a recorder without its loop;
                    # the next round tries again (and this loop must not die of it).
                    log.warning("taking over recording failed: %s", exc)
                    await self._stop_recording()
                    continue
                self._record_task = asyncio.create_task(
                    self._record_loop(self._record_subscription()), name="pipeline-record"
                )
            elif not leading and self.recorder is not None:
                log.error("lost the recorder lease; another process records now")
                await self._stop_recording()

    async def _open_loop(self) -> None:
        """The recording process opens every new run of Redis (after a restart) for the
        publishers, numbering after the highest seq it has taken: whatever Redis lost
        that the log holds is never numbered again."""
        while True:
            await asyncio.sleep(OPEN_CHECK_S)
            rec, sub = self.recorder, self._record_sub
            if rec is None:
                continue
            floor = rec.committed_seq
            if sub is not None and self._record_task is not None and not self._record_task.done():
                floor = max(floor, sub.fetched)
            try:
                if await self.bus.open_run(floor):
                    log.warning("Redis restarted: numbering continues after seq %d", floor)
                    # A commit announced while Redis was away (or lost with its last
                    # writes) is said again: waiting ingests need not wait for the next.
                    await self.bus.mark_committed(rec.committed_seq)
            except Exception as exc:  # Redis away: the next check tries again
                log.debug("opening the bus failed: %s", exc)

    async def _tick_loop(self) -> None:
        """Time passing is recorded as a clock event whenever time alone changes the
        picture (a robot goes silent), so that silence rules fire live and in a replay
        alike. Only the recording process keeps time."""
        every = self.settings.tick_s
        while True:
            await asyncio.sleep(every)
            deadline = self.situation.next_deadline()
            if self.recorder is None or deadline is None or self.clock() <= deadline:
                continue
            now = utcnow()
            tick = ClockEvent(
                incident=self.incident,
                source=Source(feed="cockpit", device="clock"),
                observed_at=now,
                received_at=now,
            )
            try:
                await self.publish([tick])
            except Exception as exc:  # the bus is down: the next tick tries again
                log.warning("clock event not published: %s", exc)

    # --- used by the routes ---------------------------------------------------------

    async def ingest(self, events: Sequence[Event]) -> list[int]:
        """Publish and wait for the durable commit; returns the assigned seqs."""
        try:
            seqs = await self.publish(events)
        except BusUnavailable as exc:
            # Not acknowledged: the sender keeps the events and tries again (503, not 500).
            raise CommitTimeout(str(exc)) from exc
        if seqs and not await self.wait_committed(seqs[-1]):
            raise CommitTimeout(f"events up to seq {seqs[-1]} not committed in time")
        return seqs

    async def publish(self, events: Sequence[Event]) -> list[int]:
        """Put events on the bus; returns their seqs (not yet durable)."""
        if not events:
            return []
        published = await self.bus.publish(events)
        return [ev.seq for ev in published if ev.seq is not None]

    def publish_soon(self, events: Sequence[Event]) -> None:
        """Publish from synchronous code (media and vision callbacks)."""
        self._keep(asyncio.create_task(self.publish(events)))

    def _keep(self, task: asyncio.Task[Any]) -> None:
        # The loop holds only a weak reference to a task: kept here until done, and a
        # failure is logged rather than lost.
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(_log_failure)

    async def wait_committed(self, seq: int) -> bool:
        """True once the recorder has committed everything up to `seq`."""
        return await self.bus.wait_committed(seq, self.settings.commit_timeout_s)

    async def caught_up(self, wait_s: float = 0.5) -> bool:
        """Wait until the picture has folded everything this process has published."""
        deadline = self.clock() + wait_s
        async with self._folded:
            while self.situation.seq < self.bus.head:
                remaining = deadline - self.clock()
                if remaining <= 0:
                    return False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._folded.wait(), remaining)
        return True

    def stats(self) -> dict[str, Any]:
        return {
            "incident": self.incident,
            "seq": self.situation.seq,
            "fold_errors": self.fold_errors,
            "gaps": self.gaps,
            "recording": self.recorder is not None,
            "recorder": self.recorder.stats() if self.recorder else None,
            "bus": self.bus.stats(),
            "push": self.hub.stats(),
        }


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("background step failed: %s", task.exception())
