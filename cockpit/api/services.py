"""What the routes need, built once by the composition root and put on `app.state`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from starlette.requests import HTTPConnection

from cockpit.api.errors import ApiError
from cockpit.audit import AuditLog
from cockpit.auth import AuthStore
from cockpit.health import Health
from cockpit.limits import Limits
from cockpit.pipeline import Pipeline
from cockpit.push import PushHub
from cockpit.recorder import LogReader
from cockpit.replay import ReplaySession
from cockpit.settings import Settings
from cockpit.situation import Situation

if TYPE_CHECKING:
    from cockpit.api.tiles import MBTiles
    from cockpit.exercise import Exercise
    from cockpit.media.streams import MediaHub

__all__ = ["Picture", "Services", "services"]


class Picture(Protocol):
    """Where the routes read the picture: the live pipeline or a replay session."""

    situation: Situation
    hub: PushHub

    async def caught_up(self, wait_s: float = 0.5) -> bool: ...


@dataclass
class Services:
    settings: Settings
    auth: AuthStore
    incident: str
    picture: Picture
    log_path: Path
    pipeline: Pipeline | None = None  # live mode
    replay: ReplaySession | None = None  # replay mode (read-only)
    exercise: Exercise | None = None  # exercise mode: live, a recording played into it
    health: Health = field(default_factory=Health)
    tiles: MBTiles | None = None  # map tiles from a local file, if configured
    audit: AuditLog | None = None  # who saw which personal data (cockpit.audit)
    media: MediaHub | None = None  # video streams (live mode)
    # More counters for /healthz, by name (feeds that listen on their own sockets).
    extra_stats: dict[str, Callable[[], dict[str, Any]]] = field(default_factory=dict)
    # What a feed keeps across messages and shares between its route and its listener
    # (e.g. the LoRaWAN translator's memory of each water gauge), by feed name.
    feed_state: dict[str, Any] = field(default_factory=dict)
    clock: Callable[[], float] = time.time
    started_at: float = field(default_factory=time.time)
    _reader: LogReader | None = None
    _reader_lock: threading.Lock = field(default_factory=threading.Lock)
    # Ingest rate and connection limits of this process (cockpit.limits), from settings.
    limits: Limits = field(init=False)

    def __post_init__(self) -> None:
        self.limits = Limits.of(self.settings, time.monotonic)

    def now(self) -> float:
        """The picture's clock: wall time live, the replay clock in a replay."""
        return self.replay.now() if self.replay is not None else self.clock()

    def pipeline_or_409(self) -> Pipeline:
        """The live pipeline; a replay is read-only."""
        if self.pipeline is None:
            raise ApiError(409, "read-only", "mode", "a replay cannot be written to")
        return self.pipeline

    def detection_or_404(self, detection_id: str) -> dict[str, Any]:
        """A detection of the picture, or 404 naming it."""
        det = self.picture.situation.detections.get(detection_id)
        if det is None:
            raise ApiError(
                404, "no such detection", "detection_id", f"{detection_id!r} is not in the picture"
            )
        return det

    def reader(self) -> LogReader | None:
        """A read-only view of this incident's log, if this machine has it."""
        if self.replay is not None:
            return self.replay.reader
        with self._reader_lock:
            if self._reader is None and self.log_path.is_file():
                self._reader = LogReader(self.log_path)
            return self._reader

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        if self.tiles is not None:
            self.tiles.close()


def services(conn: HTTPConnection) -> Services:
    svc: Services = conn.app.state.services
    return svc
