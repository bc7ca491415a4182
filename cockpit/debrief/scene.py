"""What a snapshot map shows of a picture, and the detection pictures that may go along.

Only operational things: units, drones, robots and sensors with their call signs,
hazard areas, detections by category. People (the `person` entities, first responders)
and a detection's `personal` part are never read; a picture is embedded only when it is
the detection's own operational frame, never a person's.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from cockpit.debrief.svg import MapItem

__all__ = ["MAX_IMAGES", "MAX_IMAGE_BYTES", "detection_image", "map_items"]

MAX_IMAGES = 24
MAX_IMAGE_BYTES = 1_000_000
_DRAWN = frozenset({"unit", "drone", "robot", "sensor"})
_DONE = frozenset({"closed", "dismissed"})
_IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}


def _outer_ring(geometry: Mapping[str, Any]) -> tuple[tuple[float, float], ...]:
    if geometry.get("type") == "Polygon":
        rings = geometry.get("coordinates") or []
        if rings:
            return tuple((float(p[0]), float(p[1])) for p in rings[0])
    return ()


def map_items(
    entities: Iterable[Mapping[str, Any]],
    responders: Mapping[str, Any],
    hazards: Iterable[Mapping[str, Any]],
    detections: Iterable[Mapping[str, Any]],
    category_label: Any,
) -> list[MapItem]:
    """The map of one picture: areas first (drawn underneath), then the symbols."""
    items: list[MapItem] = []
    for h in hazards:
        ring = _outer_ring(h.get("geometry") or {})
        if ring:
            items.append(
                MapItem(str(h.get("kind") or "drawn"), str(h.get("label") or ""), ring=ring)
            )
    for e in sorted(entities, key=lambda e: (str(e["kind"]), str(e["id"]))):
        # A responder's position is theirs, not a unit's: never drawn here.
        if e["kind"] not in _DRAWN or e["id"] in responders:
            continue
        if e.get("lat") is None or e.get("lon") is None:
            continue
        label = str(e.get("callsign") or e["id"])
        items.append(MapItem(str(e["kind"]), label, float(e["lat"]), float(e["lon"])))
    for d in detections:
        # What is closed or dismissed no longer stands on the map (the table keeps it).
        if d.get("lat") is None or d.get("lon") is None or d.get("state") in _DONE:
            continue
        items.append(
            MapItem(
                "detection", category_label(str(d["category"])), float(d["lat"]), float(d["lon"])
            )
        )
    return items


def detection_image(folder: Path, detection: Mapping[str, Any]) -> str | None:
    """The detection's operational frame (`snapshot`, relative to the incident folder)
    as a data URI, or None. Never a person's picture: not for the `person` category, not
    for a file named as one (`…-person-…`), and only plain paths under `snapshots/`."""
    rel = detection.get("snapshot")
    if not isinstance(rel, str) or detection.get("category") == "person" or "-person-" in rel:
        return None
    path = PurePosixPath(rel)
    if path.is_absolute() or ".." in path.parts or path.parts[:1] != ("snapshots",):
        return None
    mime = _IMAGE_TYPES.get(path.suffix.lower())
    if mime is None:
        return None
    file = folder.joinpath(*path.parts)
    try:
        if not file.is_file() or file.stat().st_size > MAX_IMAGE_BYTES:
            return None
        data = file.read_bytes()
    except OSError:
        return None
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")
