"""The recorded video of a recording, for a browser's <video> element.

Which segments there are comes from the log's `video.segment` events (read with a kind
filter on a read-only connection of our own, never folded; kept per file state, as a
recording being replayed does not change). A segment's file is served only if such an
event names it and it lies inside the recording's folder (`X.sqlite` → `X/`, the rule
the bookmarks use).

VP8 segments are WebM and play as they are. H264 segments are MPEG-TS, which no
browser's <video> plays: the packets are copied (not re-encoded) into MP4 on the first
request, into a cache under the server's data dir, so the recording stays unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import av

from cockpit.bookmarks import bookmarks_path
from cockpit.events import VideoSegmentEvent, parse_event
from cockpit.recorder import read_only

__all__ = [
    "Segment",
    "VideoIndex",
    "playable_file",
    "recording_folder",
    "remux_to_mp4",
    "video_index",
]

MEDIA_TYPE = {"VP8": "video/webm", "H264": "video/mp4"}


@dataclass(frozen=True, slots=True)
class Segment:
    stream: str
    path: str  # relative to the recording's folder, as the event says
    start: float  # server time (epoch s) of its first frame: file time 0
    end: float  # ... and of its last
    codec: str  # "VP8" | "H264"
    frames: int
    bytes: int


@dataclass(frozen=True, slots=True)
class VideoIndex:
    folder: Path
    segments: tuple[Segment, ...]  # in log order

    def by_path(self, path: str) -> Segment | None:
        return next((s for s in self.segments if s.path == path), None)

    def streams(self) -> dict[str, list[Segment]]:
        """Per stream, its segments in time order: those whose file is there to serve."""
        out: dict[str, list[Segment]] = {}
        for seg in sorted(self.segments, key=lambda s: (s.stream, s.start)):
            if self.file(seg.path) is not None:
                out.setdefault(seg.stream, []).append(seg)
        return out

    def file(self, path: str) -> tuple[Segment, Path] | None:
        """The segment a `video.segment` event names as `path`, and its file, if that
        file exists inside the recording's folder (a crafted log cannot point outside)."""
        seg = self.by_path(path)
        if seg is None:
            return None
        folder = self.folder.resolve()
        file = (folder / seg.path).resolve()
        if not file.is_relative_to(folder) or not file.is_file():
            return None
        return seg, file


def recording_folder(log_path: Path) -> Path:
    """`X.sqlite` → `X/`: the files kept beside a recording (the bookmarks' rule)."""
    return bookmarks_path(log_path).parent


def _read(log_path: Path) -> tuple[Segment, ...]:
    with read_only(log_path) as conn:
        rows = conn.execute(
            "SELECT body FROM events WHERE kind = 'video.segment' ORDER BY seq"
        ).fetchall()
    out = []
    for (body,) in rows:
        ev = parse_event(body)
        if not isinstance(ev, VideoSegmentEvent):
            continue
        p = ev.payload
        out.append(
            Segment(
                stream=p.stream,
                path=p.path,
                start=p.start.timestamp(),
                end=p.end.timestamp(),
                codec=p.codec,
                frames=p.frames,
                bytes=p.bytes,
            )
        )
    return tuple(out)


def _signature(path: Path) -> tuple[int, ...]:
    sig = [path.stat().st_size, path.stat().st_mtime_ns]
    with contextlib.suppress(FileNotFoundError):
        wal = Path(f"{path}-wal").stat()
        sig += [wal.st_size, wal.st_mtime_ns]
    return tuple(sig)


_indexes: dict[Path, tuple[tuple[int, ...], VideoIndex]] = {}
_indexes_lock = threading.Lock()


def video_index(log_path: Path) -> VideoIndex:
    """The recording's segments; read again only when the log file changed (a full
    scan of the events table: there is no index on kind)."""
    sig = _signature(log_path)
    with _indexes_lock:
        hit = _indexes.get(log_path)
        if hit is not None and hit[0] == sig:
            return hit[1]
        index = VideoIndex(recording_folder(log_path), _read(log_path))
        _indexes[log_path] = (sig, index)
        return index


# --- H264: MPEG-TS → MP4 --------------------------------------------------------------

_remux_locks: dict[Path, threading.Lock] = {}
_remux_locks_lock = threading.Lock()


def remux_to_mp4(src: Path, dest: Path) -> None:
    """Copy the video packets of `src` into an MP4 at `dest` (written whole, then renamed),
    with times starting at 0 as the segment's do (MPEG-TS starts later: its muxer delay)."""
    tmp = dest.with_name(f"{dest.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with av.open(str(src)) as inp:
            vin = inp.streams.video[0]
            with av.open(str(tmp), "w", format="mp4") as out:
                vout = out.add_stream_from_template(vin)
                first: int | None = None
                for packet in inp.demux(vin):
                    if packet.dts is None or packet.pts is None:
                        continue  # the demuxer's end-of-stream flush packet
                    if first is None:
                        first = packet.dts
                    packet.dts -= first
                    packet.pts -= first
                    packet.stream = vout
                    out.mux(packet)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


CACHE_LIMIT_BYTES = 2 * 1024**3  # MP4 copies kept; the oldest used go first


def _trim_cache(cache: Path, keep: Path, limit: int = CACHE_LIMIT_BYTES) -> None:
    """Delete the least recently used copies until the cache fits `limit` (it shares the
    disk with the live recordings)."""
    files = []
    for f in cache.glob("*.mp4"):
        with contextlib.suppress(FileNotFoundError):
            st = f.stat()
            files.append((st.st_mtime, st.st_size, f))
    total = sum(size for _, size, _ in files)
    for _, size, f in sorted(files):
        if total <= limit:
            break
        if f != keep:
            f.unlink(missing_ok=True)
            total -= size


def playable_file(seg: Segment, file: Path, cache: Path) -> Path:
    """A file a browser's <video> plays: the segment itself, or its MP4 copy in `cache`
    (made once; keyed by the source file's path, size and time, so a changed file is
    copied again)."""
    if seg.codec != "H264":
        return file
    st = file.stat()
    key = hashlib.sha256(f"{file}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()[:32]
    dest = cache / f"{key}.mp4"
    if dest.is_file():
        with contextlib.suppress(FileNotFoundError):
            os.utime(dest)  # used: the last to go when the cache is trimmed
        return dest
    with _remux_locks_lock:
        lock = _remux_locks.setdefault(dest, threading.Lock())
    with lock:  # two viewers asking at once: one remux
        if not dest.is_file():
            cache.mkdir(parents=True, exist_ok=True)
            remux_to_mp4(file, dest)
            _trim_cache(cache, dest)
    return dest
