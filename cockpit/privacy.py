"""Personal data of detections: which records hold it, how it is emptied, when it expires.

A detection's personal data is one key, `personal` (A.D.Le.R.'s person, a video
detection's picture of a person). These pure functions empty it in a recorded event's
JSON, in a picture snapshot and in a view, so that the read routes, the export and the
retention purge (`cockpit.retention`) all redact the same way.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any

import orjson

__all__ = [
    "PERSONAL_MARK",
    "expired_personal",
    "person_files",
    "personal_ids",
    "redact_event_body",
    "redact_snapshot",
]

# How a non-empty `personal` looks in stored JSON (msgspec and orjson write no spaces):
# a cheap test before parsing a body.
PERSONAL_MARK = b'"personal":{'


def personal_ids(detections: Iterable[Mapping[str, Any]]) -> list[str]:
    """The ids of the detections that carry personal data."""
    return [str(d["id"]) for d in detections if d.get("personal")]


def expired_personal(detections: Mapping[str, Mapping[str, Any]], cutoff: float) -> list[str]:
    """Detections holding personal data whose last report or review step (`updated_at`,
    epoch s) is older than `cutoff`, sorted: the ones the retention purge empties."""
    return sorted(
        det_id
        for det_id, d in detections.items()
        if d.get("personal") and float(d.get("updated_at", 0.0)) < cutoff
    )


def _wanted(det_id: Any, ids: Collection[str] | None) -> bool:
    return ids is None or det_id in ids


def redact_event_body(body: bytes, ids: Collection[str] | None = None) -> bytes | None:
    """A recorded `detection` event's JSON with `personal` emptied, if it had any and
    its detection is one of `ids` (None: any); else None (nothing to change)."""
    if PERSONAL_MARK not in body:
        return None
    event = orjson.loads(body)
    payload = event.get("payload")
    if event.get("kind") != "detection" or not isinstance(payload, dict):
        return None
    if not payload.get("personal") or not _wanted(payload.get("id"), ids):
        return None
    payload["personal"] = None
    return orjson.dumps(event)


def redact_snapshot(data: dict[str, Any], ids: Collection[str] | None = None) -> list[str]:
    """Empty `personal` of the detections in a picture snapshot (in place); returns the
    ids changed."""
    changed = []
    for det_id, det in data.get("detections", {}).items():
        if det.get("personal") and _wanted(det_id, ids):
            det["personal"] = None
            changed.append(det_id)
    return changed


def person_files(detections: Mapping[str, Mapping[str, Any]], ids: Iterable[str]) -> list[str]:
    """Files that are personal data of these detections (a person's snapshot picture),
    as paths relative to the incident folder; anything that is not a plain relative path
    under `snapshots/` is left out (the value came from the log, not from us alone)."""
    out = []
    for det_id in ids:
        personal = (detections.get(det_id) or {}).get("personal") or {}
        rel = personal.get("snapshot") if isinstance(personal, Mapping) else None
        if not isinstance(rel, str):
            continue
        path = PurePosixPath(rel)
        if path.parts[:1] == ("snapshots",) and not path.is_absolute() and ".." not in path.parts:
            out.append(rel)
    return out
