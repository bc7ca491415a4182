"""Video analysis off the event loop: thermal hotspots and people, as detections on the map.

`StreamAnalyser` is a `Stream` sink. It is called on the event loop for every packet and
does nothing there but copy the packet's bytes into a bounded per-stream queue (plus, at
most `max_fps` times a second, ask `pose_for` where the camera is). One worker thread per
stream decodes every packet in order (inter frames depend on the earlier ones), analyses
at most `max_fps` frames a second on the luma plane (a zero-copy numpy view), writes a
JPEG snapshot per reported detection and hands the results back to the event loop with
`loop.call_soon_threadsafe`.

Backpressure. When a stream's queue is full the packet is dropped, and so is every packet
up to the next keyframe (an inter frame cannot be decoded without its predecessors); a
keyframe is asked of the sender (`Stream.request_keyframe`, rate-limited there). The
worker also skips the analysis of a frame — never its decoding — while more than half
the queue is waiting, so a slow detector costs analysed frames before it costs decoded
ones. Nothing here blocks the event loop or grows without bound. A worker that has had
no packet for `IDLE_EXIT_S` ends; the stream's next packet starts another.

Detectors are pure functions on numpy images:

* `find_hotspots` — a white-hot thermal picture (bright = hot): threshold, then external
  contours. It runs on the decoded luma (Y) plane as it is, so the threshold is in Y
  values (video range 16–235 for most encoders): 220 is "close to the hottest white".
  A colour palette (ironbow …) is not monotonic in Y; the camera must send white-hot.
* `find_people` — OpenCV's HOG people detector (Dalal–Triggs, the default 64×128 SVM).
  OpenCV 5 moved `HOGDescriptor` to opencv-contrib (`xobjdetect`), so the plain
  opencv-python(-headless) 5.x wheel does not have it: `people_detector_available()` says
  so, `find_people` raises `PeopleDetectorUnavailable`, and a "visual" stream is not even
  decoded (a warning is logged once). OpenCV 4.x, or a contrib 5.x build, has it.

Detections. Per stream, a hit of the same category at about the same place — within
`same_place_m` (15 m) on the ground, or `same_place_uv` in the image — as an ongoing
detection is that detection: same id (`<stream>-<category>-<run>-<n>`), reported again at
most every `update_every_s` (1 s), forgotten after `forget_after_s` without a hit.
Times are the server clock when the frame's packet arrived (`Stream.last_packet_at`).
The ground position is `geo.project_pixel(pose, camera, u, v)` of the box centre, with the
pose `pose_for(stream)` returned when that packet arrived; without a pose (or when the
centre looks above the horizon) a detection has no lat/lon.

Events. `detection_payload` / `detection_event` turn a `DetectionData` into the
`Detection` record: source "video", the category, confidence, lat/lon, a German summary
("Hotspot 12×9 px, 0,93") and the snapshot's path in `personal` (a camera picture of an
incident scene may show people: it is kept behind the personal-data roles).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import av
import cv2
import numpy as np
from numpy.typing import NDArray

from cockpit import geo
from cockpit.events import Context, Detection, DetectionEvent, Source, checked, utcnow

if TYPE_CHECKING:
    from av.video.codeccontext import VideoCodecContext

    from cockpit.media.streams import Packet, Stream

__all__ = [
    "Category",
    "DetectionData",
    "Hit",
    "Mode",
    "PeopleDetectorUnavailable",
    "StreamAnalyser",
    "detection_event",
    "detection_payload",
    "find_hotspots",
    "find_people",
    "luma",
    "non_max_suppression",
    "people_detector_available",
]

log = logging.getLogger("cockpit.media.vision")

IDLE_EXIT_S = 30.0  # a worker without packets for this long ends (its stream state stays)
_NO_HOG = "this OpenCV has no HOGDescriptor (moved to opencv-contrib in OpenCV 5)"

Category = Literal["hotspot", "person"]
Mode = Literal["thermal", "visual"]
PoseFor = Callable[[str], "tuple[geo.Pose, geo.Camera] | None"]
OnHits = Callable[[str, "list[DetectionData]"], None]
Gray = NDArray[np.uint8]

_CODECS: dict[str, Literal["vp8", "h264"]] = {"VP8": "vp8", "H264": "h264"}
_SUMMARY_NAME: dict[Category, str] = {"hotspot": "Hotspot", "person": "Person"}


# --- detectors --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hit:
    """One thing found in one image.

    `bbox` is (x, y, w, h) in pixels, x/y the top-left corner; (u, v) is the box centre
    normalised to 0..1 with (0, 0) the image's top-left corner (as `geo.project_pixel`
    takes it): pixel column i covers [i, i + 1), so u = (x + w / 2) / width.
    """

    category: Category
    bbox: tuple[int, int, int, int]
    u: float
    v: float
    confidence: float


def _hit(
    category: Category, box: tuple[int, int, int, int], size: tuple[int, int], confidence: float
) -> Hit:
    x, y, w, h = box
    width, height = size
    return Hit(
        category=category,
        bbox=(x, y, w, h),
        u=(x + w / 2) / width,
        v=(y + h / 2) / height,
        confidence=round(min(1.0, max(0.0, confidence)), 3),
    )


def find_hotspots(gray: Gray, *, threshold: int = 220, min_area_px: int = 12) -> list[Hit]:
    """Bright blobs above `threshold` in a white-hot thermal image, best first.

    A blob counts with at least `min_area_px` pixels above the threshold (a contour's area
    plus half its perimeter plus one: exact for a filled rectangle, where the contour runs
    through the outer pixels' centres). Confidence grows with how far the blob's hottest
    pixel is above the threshold (half the weight at the threshold, all of it at 255) and
    with its size (full from 4 × `min_area_px`, half at `min_area_px`).
    """
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"find_hotspots wants a 2-D uint8 image, not {gray.dtype} {gray.shape}")
    if not 0 <= threshold < 255:
        raise ValueError(f"threshold {threshold} must lie in [0, 255)")
    height, width = gray.shape
    mask = _threshold(gray, threshold)
    hits = []
    for contour in _contours(mask):
        x, y, w, h = _bounding_rect(contour)
        area = _contour_area(contour) + _arc_length(contour) / 2 + 1
        if area < min_area_px:
            continue
        peak = _masked_max(gray[y : y + h, x : x + w], mask[y : y + h, x : x + w])
        heat = (peak - threshold) / (255 - threshold)
        size = min(1.0, math.sqrt(area / (4 * max(1, min_area_px))))
        hits.append(_hit("hotspot", (x, y, w, h), (width, height), size * (0.5 + 0.5 * heat)))
    hits.sort(key=lambda hit: -hit.confidence)
    return hits


class PeopleDetectorUnavailable(RuntimeError):
    """This OpenCV has no HOGDescriptor (OpenCV 5 moved it to opencv-contrib)."""


def _hog_class() -> Any:
    found = getattr(cv2, "HOGDescriptor", None)
    if found is None:  # an OpenCV 5 contrib build
        found = getattr(getattr(cv2, "xobjdetect", None), "HOGDescriptor", None)
    return found


def people_detector_available() -> bool:
    """Whether `find_people` can run with this OpenCV."""
    return _hog_class() is not None


_hog_local = (
    threading.local()
)  # one detector per thread: detectMultiScale is not documented as thread-safe


def _people_hog() -> Any:
    hog = getattr(_hog_local, "hog", None)
    if hog is None:
        cls = _hog_class()
        if cls is None:
            raise PeopleDetectorUnavailable(
                f"OpenCV {cv2.__version__} has no HOGDescriptor: OpenCV 5 moved it to "
                "opencv-contrib (xobjdetect); person detection needs OpenCV 4.x or a contrib build"
            )
        hog = cls()
        default = getattr(cls, "getDefaultPeopleDetector", None)
        if default is None:
            default = getattr(cv2, "HOGDescriptor_getDefaultPeopleDetector", None)
        if default is None:
            raise PeopleDetectorUnavailable("this OpenCV's HOG has no default people detector")
        hog.setSVMDetector(default())
        _hog_local.hog = hog
    return hog


def find_people(
    image: NDArray[np.uint8],
    *,
    min_confidence: float = 0.3,
    win_stride: int = 8,
    scale: float = 1.05,
    nms_iou: float = 0.4,
    detector: Any = None,
) -> list[Hit]:
    """Upright people (about 48 px wide and 96 px tall or larger) in a BGR or grey image.

    OpenCV's HOG with its default people SVM; `detector` replaces it (anything with
    `detectMultiScale(img, winStride=, padding=, scale=)` returning (rects, weights)).
    Confidence is the SVM's decision value w mapped to w / (1 + w): 0 at the decision
    boundary, 0.5 at a margin of 1, 0.8 at 4 (a crisp silhouette). Boxes are then
    thinned by non-maximum suppression (intersection over union above `nms_iou`).
    Grey input is fine (HOG takes the strongest gradient over channels anyway) and
    three times cheaper. Raises `PeopleDetectorUnavailable` without a HOG in this OpenCV.
    """
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"find_people wants a uint8 grey or BGR image, not {image.shape}")
    height, width = image.shape[:2]
    hog = _people_hog() if detector is None else detector
    if height < 128 or width < 64:
        return []
    stride = (win_stride, win_stride)
    rects, weights = hog.detectMultiScale(image, winStride=stride, padding=(8, 8), scale=scale)
    boxes = [tuple(int(c) for c in r) for r in np.asarray(rects).reshape(-1, 4)]
    scores = [float(w) for w in np.asarray(weights, dtype=np.float64).reshape(-1)]
    confidences = [max(0.0, s) / (1.0 + max(0.0, s)) for s in scores]
    hits = []
    for i in non_max_suppression(boxes, confidences, nms_iou):
        if confidences[i] < min_confidence:
            continue
        x, y, w, h = boxes[i]
        # The window may reach past the image (padding): clip to it.
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(width, x + w), min(height, y + h)
        if x1 > x0 and y1 > y0:
            hits.append(_hit("person", (x0, y0, x1 - x0, y1 - y0), (width, height), confidences[i]))
    return hits


def non_max_suppression(
    boxes: list[tuple[int, ...]], scores: list[float], iou_above: float
) -> list[int]:
    """Indices of the boxes (x, y, w, h) kept, best score first: each box that overlaps
    a better kept one with intersection over union above `iou_above` is dropped."""
    order = sorted(range(len(boxes)), key=lambda i: -scores[i])
    kept: list[int] = []
    for i in order:
        x, y, w, h = boxes[i]
        if all(_iou((x, y, w, h), boxes[j]) <= iou_above for j in kept):
            kept.append(i)
    return kept


def _iou(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


# Narrow typed wrappers: OpenCV's stubs are partial (MatLike is a wide union).


def _threshold(gray: Gray, level: int) -> Gray:
    _, mask = cv2.threshold(gray, level, 255, cv2.THRESH_BINARY)
    return cast(Gray, mask)


def _contours(mask: Gray) -> list[NDArray[np.int32]]:
    found = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [cast(NDArray[np.int32], c) for c in found[0]]


def _bounding_rect(contour: NDArray[np.int32]) -> tuple[int, int, int, int]:
    x, y, w, h = cv2.boundingRect(contour)
    return int(x), int(y), int(w), int(h)


def _contour_area(contour: NDArray[np.int32]) -> float:
    return float(cv2.contourArea(contour))


def _arc_length(contour: NDArray[np.int32]) -> float:
    return float(cv2.arcLength(contour, True))


def _masked_max(gray: Gray, mask: Gray) -> int:
    return int(gray[mask > 0].max(initial=0))


def _bgr(gray: Gray) -> Gray:
    return cast(Gray, cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))


def _jpeg(image: Gray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return bytes(cast(NDArray[np.uint8], buf).tobytes())


def _draw_box(image: Gray, bbox: tuple[int, int, int, int]) -> None:
    x, y, w, h = bbox
    height, width = image.shape[:2]
    # Two pixels outside the box, so the line does not hide what was found.
    p0 = (max(0, x - 2), max(0, y - 2))
    p1 = (min(width - 1, x + w + 1), min(height - 1, y + h + 1))
    cv2.rectangle(image, p0, p1, (0, 0, 255), 2)


def luma(frame: av.VideoFrame) -> Gray:
    """The frame's luma plane as a numpy view without a copy (planar YUV, NV12, grey),
    else a converted copy. Valid while `frame` is alive."""
    if frame.format.name in ("yuv420p", "yuvj420p", "yuv422p", "yuv444p", "nv12", "gray"):
        plane = frame.planes[0]
        rows = np.frombuffer(memoryview(plane), np.uint8)
        return rows.reshape(-1, plane.line_size)[: frame.height, : frame.width]
    return cast(Gray, frame.to_ndarray(format="gray"))


# --- the analyser ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DetectionData:
    """One reported detection (a new one, or an update of an ongoing one)."""

    id: str
    stream: str
    category: Category
    bbox: tuple[int, int, int, int]  # pixels (x, y, w, h)
    u: float  # box centre, normalised, (0, 0) top-left
    v: float
    confidence: float
    frame_time: float  # server clock (epoch s) when the frame's packet arrived
    frame_size: tuple[int, int]  # (width, height)
    snapshot: str | None  # JPEG path relative to the snapshot folder; None if not written
    lat: float | None = None
    lon: float | None = None
    new: bool = True  # the first report of this id
    pts: int | None = None  # the packet's RTP timestamp (1/90000 s)


@dataclass(slots=True)
class _Item:
    data: bytes
    pts: int | None
    key: bool
    codec: Literal["vp8", "h264"]
    frame_time: float
    due: bool  # to be analysed
    pose: tuple[geo.Pose, geo.Camera] | None


@dataclass(slots=True)
class _Track:
    id: str
    category: Category
    u: float
    v: float
    lat: float | None
    lon: float | None
    last_seen: float
    last_sent: float


@dataclass(eq=False)
class _Lane:
    """One stream's queue, worker and counters. Counters are written by one side only:
    offered/dropped/skipped by the event loop, the rest by the worker."""

    name: str
    mode: Mode | None
    cond: threading.Condition = field(default_factory=threading.Condition)
    items: deque[_Item] = field(default_factory=deque)
    busy: bool = False
    thread: threading.Thread | None = None
    waiting_for_key: bool = True
    dropping: bool = False  # waiting for a keyframe because the queue overflowed
    last_sample: float | None = None  # sampling clock (s) of the last frame marked due
    codec: str | None = None
    # worker state
    decoder: VideoCodecContext | None = None
    decoder_codec: str | None = None
    broken: bool = False  # a decode error: skip to the next keyframe
    tracks: list[_Track] = field(default_factory=list)
    unavailable_logged: bool = False
    # counters
    offered: int = 0
    dropped: int = 0
    skipped: int = 0
    decoded: int = 0
    decode_errors: int = 0
    analysed: int = 0
    analysis_skipped: int = 0
    hits: int = 0
    reported: int = 0
    errors: int = 0
    last_decode_ms: float | None = None
    last_analysis_ms: float | None = None

    def idle(self) -> bool:
        return not self.items and not self.busy


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100] or "_"


def _run_tag() -> str:
    """Base-36 seconds: ids of a restarted analyser do not collide with earlier ones."""
    n, digits = int(time.time()), ""
    while n:
        n, r = divmod(n, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[r] + digits
    return digits or "0"


class StreamAnalyser:
    """A `Stream` sink that finds hotspots and people and reports them as detections.

    `modes`: per stream name "thermal" (hotspots), "visual" (people) or nothing (the
    stream is not decoded at all); a mapping or a callable, asked again at each keyframe.
    `pose_for(stream)` is called on the event loop when a packet due for analysis arrives
    (at most `max_fps` a second per stream): the camera's pose then, or None.
    `on_hits(stream, detections)` is called on the event loop (the one running when the
    first packet came, or `loop`; without any loop, on the worker thread).
    Snapshots go to `snapshot_dir/<stream>/<id>-<ms>.jpg`; paths are relative to it.
    """

    def __init__(
        self,
        *,
        modes: Mapping[str, Mode] | Callable[[str], Mode | None],
        snapshot_dir: Path,
        on_hits: OnHits,
        pose_for: PoseFor | None = None,
        max_fps: float = 5.0,
        queue_size: int = 60,
        loop: asyncio.AbstractEventLoop | None = None,
        run: str | None = None,
        hotspot_threshold: int = 220,
        min_area_px: int = 12,
        max_hits_per_frame: int = 8,
        same_place_m: float = 15.0,
        same_place_uv: float = 0.06,
        update_every_s: float = 1.0,
        forget_after_s: float = 10.0,
        max_tracks: int = 32,
        jpeg_quality: int = 85,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not max_fps > 0:
            raise ValueError(f"max_fps must be positive, not {max_fps}")
        if queue_size < 2:
            raise ValueError(f"queue_size must be at least 2, not {queue_size}")
        self._modes = modes
        self.snapshot_dir = Path(snapshot_dir)
        self._on_hits = on_hits
        self._pose_for = pose_for
        self.max_fps = max_fps
        self.queue_size = queue_size
        self._loop = loop
        self.run = _run_tag() if run is None else run
        self.hotspot_threshold = hotspot_threshold
        self.min_area_px = min_area_px
        self.max_hits_per_frame = max_hits_per_frame
        self.same_place_m = same_place_m
        self.same_place_uv = same_place_uv
        self.update_every_s = update_every_s
        self.forget_after_s = forget_after_s
        self.max_tracks = max_tracks
        self.jpeg_quality = jpeg_quality
        self._clock = clock
        self._lanes: dict[str, _Lane] = {}
        self._next_id = 0
        self._ids_lock = threading.Lock()
        self._closed = False

    # -- on the event loop -------------------------------------------------------------

    def _mode_of(self, name: str) -> Mode | None:
        modes = self._modes
        try:
            mode = modes.get(name) if isinstance(modes, Mapping) else modes(name)
        except Exception:
            log.exception("vision: mode of stream %s", name)
            return None
        return mode if mode in ("thermal", "visual") else None

    def __call__(self, stream: Stream, packet: Packet) -> None:
        """Take one packet (on the event loop; never blocks, never waits)."""
        if self._closed:
            return
        if self._loop is None:
            with contextlib.suppress(RuntimeError):  # no loop: delivered on the worker
                self._loop = asyncio.get_running_loop()
        lane = self._lanes.get(stream.name)
        if lane is None:
            lane = self._lanes[stream.name] = _Lane(stream.name, self._mode_of(stream.name))
        lane.offered += 1
        key = bool(packet.is_keyframe)
        if key:
            lane.mode = self._mode_of(stream.name)
        codec = _CODECS.get((stream.codec or "").upper())
        lane.codec = stream.codec
        if lane.mode is None or codec is None:
            lane.skipped += 1
            lane.waiting_for_key = True  # a mode set later starts at a keyframe
            return
        if lane.mode == "visual" and not people_detector_available():
            if not lane.unavailable_logged:
                lane.unavailable_logged = True
                log.warning("vision: stream %s wants people, but %s", stream.name, _NO_HOG)
            lane.skipped += 1
            lane.waiting_for_key = True
            return
        if lane.waiting_for_key and not key:
            if lane.dropping:
                lane.dropped += 1  # the rest of a group of pictures cut by an overflow
            else:
                lane.skipped += 1
            stream.request_keyframe()
            return
        t = stream.last_packet_at if stream.last_packet_at is not None else self._clock()
        due = self._due(lane, packet.pts, t)
        pose = self._pose(stream.name) if due else None
        item = _Item(bytes(packet), packet.pts, key, codec, t, due, pose)
        with lane.cond:
            if len(lane.items) >= self.queue_size:
                full = True
            else:
                full = False
                lane.items.append(item)
                lane.cond.notify()
                if lane.thread is None:
                    lane.thread = threading.Thread(
                        target=self._work, args=(lane,), name=f"vision-{stream.name}", daemon=True
                    )
                    lane.thread.start()
        if full:
            # Behind: drop this and everything up to the next keyframe, and ask for one.
            lane.dropped += 1
            if not lane.waiting_for_key:
                lane.waiting_for_key = lane.dropping = True
                stream.request_keyframe()
            if due:
                lane.last_sample = None  # analyse the first frame after the gap
            return
        lane.waiting_for_key = lane.dropping = False

    def _due(self, lane: _Lane, pts: int | None, arrived: float) -> bool:
        """Whether the frame is to be analysed: at most `max_fps` a second, on the
        sender's clock (RTP pts, 90 kHz) when there is one, else the arrival time."""
        t = pts / 90_000 if pts is not None else arrived
        last = lane.last_sample
        # A clock that went back (a reconnected sender, a wrapped RTP clock) restarts it.
        if last is None or t < last or t - last >= 1.0 / self.max_fps - 1e-6:
            lane.last_sample = t
            return True
        return False

    def _pose(self, name: str) -> tuple[geo.Pose, geo.Camera] | None:
        if self._pose_for is None:
            return None
        try:
            return self._pose_for(name)
        except Exception:
            log.exception("vision: pose_for(%s) failed", name)
            return None

    # -- on the worker thread ----------------------------------------------------------

    def _work(self, lane: _Lane) -> None:
        while True:
            with lane.cond:
                if not lane.items and not self._closed:
                    lane.cond.wait(IDLE_EXIT_S)
                if self._closed:
                    lane.items.clear()
                    lane.cond.notify_all()
                    return
                if not lane.items:  # an ended stream: the next packet starts a new worker
                    lane.thread = None
                    return
                item = lane.items.popleft()
                backlog = len(lane.items)
                lane.busy = True
            try:
                self._process(lane, item, backlog)
            except Exception:
                lane.errors += 1
                log.exception("vision: stream %s: analysis failed", lane.name)
            finally:
                with lane.cond:
                    lane.busy = False
                    lane.cond.notify_all()

    def _process(self, lane: _Lane, item: _Item, backlog: int) -> None:
        if lane.decoder is None or lane.decoder_codec != item.codec:
            lane.decoder = _decoder(item.codec)
            lane.decoder_codec = item.codec
            lane.broken = not item.key
        if lane.broken and not item.key:
            return
        packet = av.Packet(item.data)
        packet.pts = item.pts
        t0 = time.perf_counter()
        try:
            frames = lane.decoder.decode(packet)
        except av.error.FFmpegError as exc:
            lane.decode_errors += 1
            lane.broken = True
            log.warning("vision: stream %s: decode error %s", lane.name, exc)
            return
        lane.broken = False
        lane.last_decode_ms = round((time.perf_counter() - t0) * 1000, 3)
        lane.decoded += len(frames)
        if not item.due or not frames or lane.mode is None:
            return
        if backlog > self.queue_size // 2:
            lane.analysis_skipped += 1  # decoding first: it cannot be caught up later
            return
        self._analyse(lane, frames[-1], item, lane.mode)

    def _analyse(self, lane: _Lane, frame: av.VideoFrame, item: _Item, mode: Mode) -> None:
        t0 = time.perf_counter()
        gray = luma(frame)
        if mode == "thermal":
            hits = find_hotspots(
                gray, threshold=self.hotspot_threshold, min_area_px=self.min_area_px
            )
        else:
            try:
                # Scale step 1.2, not 1.05: 27 ms instead of 85 ms a frame at 640×480,
                # and people under a drone are few and large enough.
                hits = find_people(gray, scale=1.2)
            except PeopleDetectorUnavailable as exc:
                if not lane.unavailable_logged:
                    lane.unavailable_logged = True
                    log.warning("vision: stream %s: %s", lane.name, exc)
                return
        hits = hits[: self.max_hits_per_frame]
        report = self._track(lane, hits, item)
        lane.analysed += 1
        lane.hits += len(hits)
        lane.last_analysis_ms = round((time.perf_counter() - t0) * 1000, 3)
        if not report:
            return
        size = (frame.width, frame.height)
        out = []
        for hit, det_id, new, ground in report:
            out.append(
                DetectionData(
                    id=det_id,
                    stream=lane.name,
                    category=hit.category,
                    bbox=hit.bbox,
                    u=hit.u,
                    v=hit.v,
                    confidence=hit.confidence,
                    frame_time=item.frame_time,
                    frame_size=size,
                    snapshot=self._snapshot(lane, frame, gray, mode, hit, det_id, item),
                    lat=None if ground is None else ground[0],
                    lon=None if ground is None else ground[1],
                    new=new,
                    pts=item.pts,
                )
            )
        lane.reported += len(out)
        self._deliver(lane.name, out)

    def _track(
        self, lane: _Lane, hits: list[Hit], item: _Item
    ) -> list[tuple[Hit, str, bool, tuple[float, float] | None]]:
        """Match hits to ongoing detections; what is to be reported now."""
        t = item.frame_time
        lane.tracks = [tr for tr in lane.tracks if t - tr.last_seen <= self.forget_after_s]
        used: set[int] = set()
        report = []
        for hit in hits:
            ground = None
            if item.pose is not None:
                ground = geo.project_pixel(item.pose[0], item.pose[1], hit.u, hit.v)
            track = self._match(lane, hit, ground, used)
            if track is None:
                if len(lane.tracks) >= self.max_tracks:
                    continue
                track = _Track(
                    id=self._new_id(lane.name, hit.category),
                    category=hit.category,
                    u=hit.u,
                    v=hit.v,
                    lat=None if ground is None else ground[0],
                    lon=None if ground is None else ground[1],
                    last_seen=t,
                    last_sent=t,
                )
                lane.tracks.append(track)
                used.add(id(track))
                report.append((hit, track.id, True, ground))
                continue
            used.add(id(track))
            track.u, track.v, track.last_seen = hit.u, hit.v, t
            if ground is not None:
                track.lat, track.lon = ground
            if t - track.last_sent >= self.update_every_s - 1e-3:
                track.last_sent = t
                report.append((hit, track.id, False, ground))
        return report

    def _match(
        self, lane: _Lane, hit: Hit, ground: tuple[float, float] | None, used: set[int]
    ) -> _Track | None:
        best, best_d = None, math.inf
        for track in lane.tracks:
            if track.category != hit.category or id(track) in used:
                continue
            d_uv = math.hypot(hit.u - track.u, hit.v - track.v)
            near = d_uv <= self.same_place_uv
            if not near and ground is not None and track.lat is not None:
                assert track.lon is not None
                near = geo.distance_m((track.lat, track.lon), ground) <= self.same_place_m
            if near and d_uv < best_d:
                best, best_d = track, d_uv
        return best

    def _new_id(self, stream: str, category: Category) -> str:
        with self._ids_lock:
            self._next_id += 1
            n = self._next_id
        run = f"{self.run}-" if self.run else ""
        return f"{stream[:96]}-{category}-{run}{n}"

    def _snapshot(
        self,
        lane: _Lane,
        frame: av.VideoFrame,
        gray: Gray,
        mode: Mode,
        hit: Hit,
        det_id: str,
        item: _Item,
    ) -> str | None:
        try:
            colour = mode == "visual"
            image = cast(Gray, frame.to_ndarray(format="bgr24")) if colour else _bgr(gray)
            _draw_box(image, hit.bbox)
            data = _jpeg(image, self.jpeg_quality)
            rel = Path(_safe_name(lane.name)) / (
                f"{_safe_name(det_id)}-{round(item.frame_time * 1000)}.jpg"
            )
            path = self.snapshot_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        except (OSError, ValueError, cv2.error) as exc:
            log.warning("vision: stream %s: snapshot not written: %s", lane.name, exc)
            return None
        return rel.as_posix()

    def _deliver(self, name: str, detections: list[DetectionData]) -> None:
        loop = self._loop
        if loop is None:
            self._call_on_hits(name, detections)
            return
        with contextlib.suppress(RuntimeError):  # a closed loop: the server is going down
            loop.call_soon_threadsafe(self._call_on_hits, name, detections)

    def _call_on_hits(self, name: str, detections: list[DetectionData]) -> None:
        try:
            self._on_hits(name, detections)
        except Exception:
            log.exception("vision: on_hits for stream %s failed", name)

    # -- control -----------------------------------------------------------------------

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until every queue is empty and no worker is busy (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        for lane in list(self._lanes.values()):
            with lane.cond:
                if not lane.cond.wait_for(lane.idle, max(0.0, deadline - time.monotonic())):
                    return False
        return True

    def close(self, timeout: float = 2.0) -> bool:
        """Stop the workers (what is queued is discarded); True if all have stopped."""
        self._closed = True
        deadline = time.monotonic() + timeout
        for lane in self._lanes.values():
            with lane.cond:
                lane.cond.notify_all()
        stopped = True
        for lane in self._lanes.values():
            with lane.cond:
                thread = lane.thread
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
                stopped = stopped and not thread.is_alive()
        return stopped

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per stream: packets offered, dropped (queue full, up to the next keyframe),
        skipped (before a keyframe, no mode, no detector), frames decoded, decode
        errors, frames analysed, analyses skipped while the queue was half full, hits,
        detections reported, ongoing detections, and the last decode/analysis times."""
        return {
            name: {
                "mode": lane.mode,
                "codec": lane.codec,
                "queued": len(lane.items),
                "worker": lane.thread is not None,
                "offered": lane.offered,
                "dropped": lane.dropped,
                "skipped": lane.skipped,
                "decoded": lane.decoded,
                "decode_errors": lane.decode_errors,
                "analysed": lane.analysed,
                "analysis_skipped": lane.analysis_skipped,
                "hits": lane.hits,
                "reported": lane.reported,
                "ongoing": len(lane.tracks),
                "errors": lane.errors,
                "last_decode_ms": lane.last_decode_ms,
                "last_analysis_ms": lane.last_analysis_ms,
            }
            for name, lane in list(self._lanes.items())
        }


def _decoder(codec: Literal["vp8", "h264"]) -> VideoCodecContext:
    ctx = av.CodecContext.create(codec, "r")
    # One thread: each stream has its own worker already, and a decoder's frame threads
    # add a frame of delay and, on a busy machine, more waiting than decoding.
    ctx.thread_count = 1
    return ctx


# --- events -----------------------------------------------------------------------------


def _de_number(x: float) -> str:
    return f"{x:.2f}".replace(".", ",")


def detection_payload(d: DetectionData) -> Detection:
    """The `Detection` record of a detection (validated)."""
    _, _, w, h = d.bbox
    summary = f"{_SUMMARY_NAME[d.category]} {w}×{h} px, {_de_number(d.confidence)}"
    return checked(
        Detection(
            id=d.id,
            source="video",
            category=d.category,
            confidence=float(d.confidence),
            lat=d.lat,
            lon=d.lon,
            summary=summary,
            stream=d.stream,
            bbox=tuple(int(v) for v in d.bbox),  # type: ignore[arg-type]
            # A hotspot's picture is operational; a person's is personal data.
            snapshot=f"snapshots/{d.snapshot}" if d.snapshot and d.category != "person" else None,
            personal={"snapshot": f"snapshots/{d.snapshot}"}
            if d.snapshot and d.category == "person"
            else None,
        )
    )


def detection_event(
    d: DetectionData, *, incident: str, actor: str | None = None, now: datetime | None = None
) -> DetectionEvent:
    """A `detection` event: source feed "video", device = the stream, observed when the
    frame's packet arrived, received now."""
    return checked(
        DetectionEvent(
            incident=incident,
            source=Source(feed="video", device=d.stream),
            observed_at=datetime.fromtimestamp(d.frame_time, UTC),
            received_at=now or utcnow(),
            context=Context(actor=actor),
            payload=detection_payload(d),
        )
    )
