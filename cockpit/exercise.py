"""Exercise mode: a recorded incident played into a live server as if it happened now.

`cockpit replay RECORDING --as-live` starts an ordinary live server (its own incident,
its own log) and this player, which reads the recording and publishes what its devices
reported with every time shifted to the present. The commander's and the wall's pages
are the ones used on duty; the crew acknowledges, reviews and writes the journal
themselves. What people decided in the recorded incident (acknowledgements, reviews,
journal entries, drawn hazards, alerts to responders) is not played: that is what the
crew is there to decide again. Personal data never enters an exercise.

The trainer pauses and resumes (the times stay in the present: a pause adds its length
to the shift) and skips ahead; the recording itself is only read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import orjson

from cockpit.events import DetectionEvent, Event, new_event_id, utcnow
from cockpit.recorder import LogReader
from cockpit.settings import RulesSettings, Settings, SettingsError

__all__ = [
    "PLAYED_KINDS",
    "Exercise",
    "ExerciseOptions",
    "exercise_incident",
    "played",
    "shifted",
]

log = logging.getLogger("cockpit.exercise")

# What devices and feeds reported. Everything else in a log is a person's decision
# (ack, journal, detection.transition, hazard.*, alert, responder.call), the server's
# own clock (a live server ticks by itself), the retention purge, the video's own events
# (the recorded cameras are played as streams: cockpit.exercise_video), or the
# A.D.Le.R. responders' registry: volunteers' names and phones are personal data, and
# with no platform to alert them an exercise could not use them anyway.
PLAYED_KINDS = frozenset(
    {
        "entity.registered",
        "entity.removed",
        "position",
        "readings",
        "status",
        "detection",
        "warning",
        "weather",
    }
)

# An exercise is cut off from the real world both ways: no real drone, sensor, robot,
# TAK user or warning service feeds into it (the recording is its world), and nothing of
# it goes out (a TAK server would show exercise units to real crews; A.D.Le.R. would ring
# real volunteers' phones). The ingest routes stay open to the trainer's own devices.
_REAL_WORLD_OFF: dict[str, Any] = {
    "mavlink_listen": None,
    "cap_folder": None,
    "cap_url": None,
    "cot_listen": None,
    "cot_send_to": None,
    "rosbridge": {},
    "mqtt_url": None,
    "adler_alert_url": None,
    "adler_alert_token": None,
    # The recording's video detections are played as they were found; analysing the
    # replayed video again would report them twice.
    "video_analysis": {},
}

_TICK_S = 0.05  # how often the player publishes what has become due
_BATCH = 500  # events per publish (one group commit each)


def exercise_incident(recorded: str, now: datetime) -> str:
    """The exercise's own incident id: never the recorded one (its log stays as it was)."""
    return f"uebung-{now:%Y%m%d-%H%M%S}-{recorded}"[:128]


@dataclass(frozen=True)
class ExerciseOptions:
    """What `cockpit replay RECORDING --as-live` was asked for, resolved once."""

    recording: Path
    incident: str
    start: float | None = None  # recording time to begin at (default: its start)
    paused: bool = False

    @classmethod
    def of(
        cls,
        recording: Path,
        *,
        start: float | None = None,
        paused: bool = False,
        incident: str | None = None,
    ) -> ExerciseOptions:
        reader = LogReader(recording)  # refuses what is not a recording, before serving
        try:
            name = incident or exercise_incident(reader.incident, datetime.now(UTC))
            count, first, last = reader.bounds()
        finally:
            reader.close()
        if not count or first is None or last is None:
            raise SettingsError(f"{recording}: the recording has no events to play")
        if start is not None and not first <= start < last:
            raise SettingsError(
                f"--from {datetime.fromtimestamp(start, UTC):%Y-%m-%dT%H:%M:%SZ}: outside the"
                f" recording ({datetime.fromtimestamp(first, UTC):%Y-%m-%dT%H:%M:%SZ} .."
                f" {datetime.fromtimestamp(last, UTC):%Y-%m-%dT%H:%M:%SZ})"
            )
        return cls(recording, name, start, paused)

    def settings(self, settings: Settings) -> Settings:
        """The live server's settings: the exercise's incident, and the recording's rule
        thresholds and staleness limits, so the crew sees the alerts the incident raised."""
        reader = LogReader(self.recording)
        try:
            meta = reader.meta
        finally:
            reader.close()
        update: dict[str, Any] = {"incident": self.incident, **_REAL_WORLD_OFF}
        try:
            if "rules" in meta:
                update["rules"] = RulesSettings.model_validate_json(meta["rules"])
            if "stale_after_s" in meta:
                update["stale_after_s"] = {
                    **settings.stale_after_s,
                    **orjson.loads(meta["stale_after_s"]),
                }
        except (ValueError, TypeError) as exc:  # pydantic's and orjson's errors are ValueErrors
            raise SettingsError(
                f"{self.recording}: its recorded rules are unreadable: {exc}"
            ) from exc
        return settings.model_copy(update=update)


def _shift(value: Any, delta: timedelta) -> Any:
    """`value` with every datetime in it moved by `delta` (structs, lists, tuples)."""
    if isinstance(value, datetime):
        return value + delta
    if isinstance(value, msgspec.Struct):
        changes = {}
        for name in value.__struct_fields__:
            old = getattr(value, name)
            new = _shift(old, delta)
            if new is not old:
                changes[name] = new
        return msgspec.structs.replace(value, **changes) if changes else value
    if isinstance(value, (list, tuple)):
        items = [_shift(v, delta) for v in value]
        if any(a is not b for a, b in zip(items, value, strict=True)):
            return type(value)(items)
        return value
    return value


def played(ev: Event) -> bool:
    """Whether the exercise plays this recorded event: a device's report, not about a
    person (a responder's phone reports as an entity of kind `person`)."""
    if ev.kind not in PLAYED_KINDS:
        return False
    return getattr(ev.payload, "entity_kind", None) != "person"


def shifted(ev: Event, delta: timedelta, incident: str, received: datetime | None = None) -> Event:
    """A recorded event as the exercise publishes it: every time moved by `delta`, a new
    id (ULIDs carry their time), no seq (the live bus gives one), and no personal data.

    `received`: when this server got it. The exercise's own log must have receive times
    that rise with seq like any live log (its replay seeks by them), also where a skip
    publishes minutes of reports at once; what they say happened keeps its shifted time."""
    out: Event = _shift(ev, delta)
    if received is not None:
        out = msgspec.structs.replace(
            out, received_at=received, observed_at=min(out.observed_at, received)
        )
    if isinstance(out, DetectionEvent) and out.payload.personal is not None:
        out = msgspec.structs.replace(
            out, payload=msgspec.structs.replace(out.payload, personal=None)
        )
    return msgspec.structs.replace(out, id=new_event_id(), seq=None, incident=incident)


class Exercise:
    """Plays one recording into a live pipeline on the wall clock."""

    def __init__(
        self,
        reader: LogReader,
        publish: Callable[[Sequence[Event]], Awaitable[list[int]]],
        incident: str,
        *,
        folder: Path | None = None,
        target_folder: Path | None = None,
        start: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.reader = reader
        self.incident = incident
        self.recorded_incident = reader.incident
        self._publish = publish
        self._clock = clock
        # Non-personal detection pictures (a thermal hotspot) go along with their report.
        self._folder = folder
        self._target = target_folder
        count, first, last = reader.bounds()
        self.t_first: float = first or 0.0
        self.t_last: float = last or 0.0
        self.events_total = count
        self._last_seq = reader.last_seq()
        self._begin = self.t_first if start is None else min(max(start, self.t_first), self.t_last)
        self._after = 0  # the recording's seq published up to
        self._position = self.t_first  # recording time reached while paused
        self.offset = clock() - self.t_first  # wall time minus recording time
        self.playing = False
        self.played = 0
        self.last_seq = 0  # the exercise's own seq of the last event published
        self._failed_pictures: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    # --- control --------------------------------------------------------------------

    async def start(self, *, paused: bool = False) -> None:
        if self._begin > self.t_first:
            # Beginning later (`--from`) is a skip from the start: the picture holds what
            # was known by then (callsigns, warnings, open detections), not only what comes.
            await self.skip(self._begin)
        if not paused:
            self.play()
        self._task = asyncio.create_task(self._player(), name="exercise-player")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def position(self) -> float:
        """The recording time the exercise has reached."""
        if not self.playing:
            return self._position
        return min(self.t_last, self._clock() - self.offset)

    def play(self) -> None:
        if self.playing:
            return  # a second "go on" (two trainers, a retry) changes nothing
        # Resuming keeps the times in the present: the pause is added to the shift.
        self.offset = self._clock() - self._position
        self.playing = True

    def pause(self) -> None:
        self._position = self.position()
        self.playing = False

    async def skip(self, t: float) -> int:
        """Jump ahead to recording time `t`: what the devices reported in between is
        published at once, with the times it would have had (minutes ago, not now).
        Returns the number of events published."""
        async with self._lock:
            now = self._position if not self.playing else self.position()
            t = min(max(t, now), self.t_last)
            self.offset = self._clock() - t
            self._position = t
            return await self._publish_upto(t)

    def ended(self) -> bool:
        return self._after >= self._last_seq

    def state(self) -> dict[str, Any]:
        return {
            "mode": "exercise",
            "incident": self.incident,
            "recorded_incident": self.recorded_incident,
            "start": self.t_first,
            "end": self.t_last,
            "position": self.position(),
            "offset_s": self.offset,
            "playing": self.playing,
            "ended": self.ended(),
            "played": self.played,
            "events": self.events_total,
        }

    # --- the loop -------------------------------------------------------------------

    async def _player(self) -> None:
        while True:
            await asyncio.sleep(_TICK_S)
            if not self.playing:
                continue
            try:
                async with self._lock:
                    target = self.position()
                    await self._publish_upto(target)
                    if target >= self.t_last:
                        self.pause()
                        log.info("exercise: the recording has been played to its end")
            except asyncio.CancelledError:
                raise
            except Exception:  # the bus or the log hiccuped: the next tick tries again
                log.exception("exercise: publishing failed; retrying")

    async def _publish_upto(self, t: float) -> int:
        upto = await asyncio.to_thread(self.reader.seq_at, t)
        delta = timedelta(seconds=self.offset)
        sent = 0
        received = utcnow()
        while self._after < upto:
            batch = await asyncio.to_thread(self.reader.events, self._after, upto, _BATCH)
            if not batch:
                break
            out = []
            for ev in batch:
                if played(ev):
                    out.append(shifted(ev, delta, self.incident, received))
                    if isinstance(ev, DetectionEvent) and ev.payload.snapshot:
                        await asyncio.to_thread(self._copy_picture, ev)
            if out:
                # Published is played: the commit follows (the recorder loses nothing),
                # and waiting for it here would send a batch twice after a slow commit.
                seqs = await self._publish(out)
                self.last_seq = seqs[-1] if seqs else self.last_seq
            self._after = batch[-1].seq or upto
            self.played += len(out)
            sent += len(out)
        return sent

    def _copy_picture(self, ev: DetectionEvent) -> None:
        snapshot = ev.payload.snapshot
        if snapshot is None or ev.payload.personal or self._folder is None or not self._target:
            return  # a picture of a person is personal data: it stays where it was
        src = (self._folder / snapshot).resolve()
        if not src.is_relative_to(self._folder.resolve()) or not src.is_file():
            return
        dst = self._target / snapshot
        if dst.exists() or snapshot in self._failed_pictures:
            return
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
        except OSError as exc:  # the report is worth more than its picture: it goes on
            self._failed_pictures.add(snapshot)
            log.warning("exercise: picture %s not copied: %s", snapshot, exc)
