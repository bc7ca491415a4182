"""The retention of personal data: once a detection's last report or review step is older
than `personal_retention_h`, its personal part is purged from the picture, the log and
the incident folder; everything operational about it stays (category, place, address,
floor, access, state, history, journal).

Live, the recording process does it every `personal_purge_every_s`:
1. the log first (events and snapshots rewritten, `cockpit.recorder`): if the process
   stops after this, a restart folds a picture without the data, nothing is left behind;
2. a `detection.purged` event: every process's picture (and every browser) loses it;
3. the log again, for what came in between (a snapshot of the picture taken before the
   event was folded); then the person's snapshot pictures are deleted.
`cockpit purge-personal` does step 1 on recordings no process is recording.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from cockpit.audit import AuditError, AuditLog
from cockpit.events import DetectionPurged, DetectionPurgedEvent, Source, checked, new_event_id
from cockpit.pipeline import Pipeline, restore_from_log, situation_factory
from cockpit.privacy import expired_personal, person_files
from cockpit.recorder import LogReader, incident_folder, lock_incident, redact_file, scan_personal
from cockpit.settings import Settings
from cockpit.situation import iso

__all__ = ["PurgeStats", "purge_live", "purge_loop", "purge_recording", "purged_events"]

log = logging.getLogger("cockpit.retention")

SYSTEM_USER = "cockpit"
_IDS_PER_EVENT = 1000  # DetectionPurged.ids holds at most this many


def purged_events(
    incident: str, ids: Sequence[str], now: datetime, upto: int | None = None
) -> list[DetectionPurgedEvent]:
    return [
        checked(
            DetectionPurgedEvent(
                id=new_event_id(),
                incident=incident,
                source=Source(feed="cockpit", device="retention"),
                observed_at=now,
                received_at=now,
                payload=DetectionPurged(ids=list(ids[i : i + _IDS_PER_EVENT]), upto=upto),
            )
        )
        for i in range(0, len(ids), _IDS_PER_EVENT)
    ]


def _remove_files(folder: Path, files: Iterable[str]) -> None:
    for rel in files:
        try:
            (folder / rel).unlink(missing_ok=True)
        except OSError as exc:  # the data is gone from the log; say what is left
            log.error("personal file %s not removed: %s", folder / rel, exc)


def _audit(audit: AuditLog | None, incident: str, ids: Sequence[str], **who: str) -> None:
    """The purge in the audit log; erasing must not wait for it (a failure is logged)."""
    if audit is None:
        return
    try:
        audit.record(action="purge", incident=incident, records=ids, **who)
    except AuditError as exc:
        log.error("%s", exc)


async def purge_live(
    pipeline: Pipeline,
    *,
    audit: AuditLog | None,
    retention_s: float,
    now: float,
) -> list[str]:
    """Purge what is older than `retention_s` at `now` (epoch s); returns the detection
    ids purged. Only the recording process purges (it alone writes the log)."""
    rec = pipeline.recorder
    if rec is None:
        return []
    sit = pipeline.situation
    # Everything up to `upto` the picture has folded: the expired reports are all in it.
    # A report after it (the same person again, while this runs) is a new retention and
    # is left alone: by the rewrites below (they stop at `upto`) and by the fold.
    upto = sit.seq
    ids = expired_personal(sit.detections, now - retention_s)
    if not ids:
        return []
    files_of = {i: person_files(sit.detections, [i]) for i in ids}
    detail = f"retention {retention_s / 3600:g} h"
    await asyncio.to_thread(
        _audit, audit, pipeline.incident, ids, user=SYSTEM_USER, role="system", detail=detail
    )
    wanted = set(ids)
    first = await asyncio.to_thread(partial(scan_personal, rec.path, wanted, upto=upto))
    await rec.rewrite(first)
    when = datetime.fromtimestamp(now, UTC)
    seqs = await pipeline.ingest(purged_events(pipeline.incident, ids, when, upto))
    await pipeline.caught_up(5.0)
    await rec.flush()  # a snapshot taken before the event was folded is on disk now
    # What the fold purged; snapshots taken meanwhile still hold those persons.
    purged = {i for i in wanted if (sit.detections.get(i) or {}).get("personal") is None}
    second = await asyncio.to_thread(
        partial(
            scan_personal,
            rec.path,
            purged,
            events_after=seqs[-1],  # the events after `upto` are new reports: kept
            snapshots_after=first.snapshots_upto,
            upto=seqs[-1],
        )
    )
    await rec.rewrite(second)
    files = [f for i in sorted(purged) for f in files_of[i]]
    await asyncio.to_thread(
        _remove_files, incident_folder(pipeline.settings.data_dir, pipeline.incident), files
    )
    log.info("personal data of %d detections purged (%s)", len(purged), detail)
    return sorted(purged)


@dataclass
class PurgeStats:
    """For /healthz (`personal_purge`): that the purge runs, and what it last did."""

    retention_h: float
    rounds: int = 0
    purged: int = 0  # detections whose personal data was purged, since start
    last_round_at: float | None = None
    last_error: str | None = None

    def view(self) -> dict[str, Any]:
        return {
            "retention_h": self.retention_h,
            "rounds": self.rounds,
            "purged": self.purged,
            "last_round_at": iso(self.last_round_at),
            "last_error": self.last_error,
        }


async def purge_loop(
    pipeline: Pipeline,
    settings: Settings,
    audit: Callable[[], AuditLog | None],
    stopping: asyncio.Event,
    stats: PurgeStats | None = None,
) -> None:
    """Every `personal_purge_every_s`, purge what the retention no longer covers, until
    `stopping` is set. A purge under way is finished, not cancelled: stopped half-way it
    could leave a snapshot with the data that no later round would find."""
    stats = stats or PurgeStats(settings.personal_retention_h)
    while not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), settings.personal_purge_every_s)
            return
        now = pipeline.clock()
        try:
            ids = await purge_live(
                pipeline,
                audit=audit(),
                retention_s=settings.personal_retention_h * 3600,
                now=now,
            )
        except Exception as exc:  # the next round tries again; the data must not stay
            log.exception("purge of personal data failed")
            stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
        else:
            stats.purged += len(ids)
            stats.last_error = None
        stats.rounds += 1
        stats.last_round_at = now


def purge_recording(
    path: Path,
    settings: Settings,
    *,
    older_than_s: float,
    now: float,
    audit: AuditLog | None,
    user: str,
) -> list[str]:
    """Purge a recording no process is recording (RecorderError if one is): personal
    data of detections last updated more than `older_than_s` before `now`. Returns the
    ids purged."""
    reader = LogReader(path)
    incident = reader.incident
    try:
        fd = lock_incident(path, incident)
    except BaseException:
        reader.close()
        raise
    try:
        try:
            factory = situation_factory(settings, incident, reader.meta)
            sit = restore_from_log(reader, factory, reader.last_seq())
        finally:
            reader.close()
        ids = expired_personal(sit.detections, now - older_than_s)
        if not ids:
            return []
        files = person_files(sit.detections, ids)
        if audit is not None:  # the admin's act: not done unless it is on record
            detail = f"older than {older_than_s / 3600:g} h"
            audit.record(
                user=user, role="cli", action="purge", incident=incident, records=ids, detail=detail
            )
        redact_file(path, set(ids))
        _remove_files(path.parent / incident, files)  # the incident's folder beside its log
    finally:
        os.close(fd)
    return ids
