"""Video analysis: detectors on synthetic images, and the analyser end to end through VP8."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest

from cockpit import geo
from cockpit.events import event_to_json, parse_event
from cockpit.media import vision
from cockpit.media.streams import Packet, Stream
from cockpit.media.vision import (
    DetectionData,
    PeopleDetectorUnavailable,
    StreamAnalyser,
    detection_event,
    find_hotspots,
    find_people,
    people_detector_available,
)

# --- detectors ---------------------------------------------------------------------------


def test_find_hotspots_finds_two_blobs_with_their_boxes_and_centres() -> None:
    gray = np.full((200, 300), 30, np.uint8)
    gray[50:58, 40:50] = 250  # 10 × 8 px at (40, 50), very hot
    gray[120:125, 200:206] = 230  # 6 × 5 px at (200, 120), just above the threshold
    hits = find_hotspots(gray)
    assert [h.bbox for h in hits] == [(40, 50, 10, 8), (200, 120, 6, 5)]  # best first
    big, small = hits
    assert big.category == "hotspot"
    assert (big.u, big.v) == pytest.approx((45 / 300, 54 / 200))
    assert (small.u, small.v) == pytest.approx((203 / 300, 122.5 / 200))
    assert 0 < small.confidence < big.confidence <= 1


def test_find_hotspots_ignores_uniform_frames_noise_below_threshold_and_specks() -> None:
    assert find_hotspots(np.full((120, 160), 128, np.uint8)) == []
    noise = np.random.default_rng(7).integers(0, 220, (240, 320), dtype=np.uint8)
    assert find_hotspots(noise, threshold=220) == []
    specks = np.zeros((100, 100), np.uint8)
    specks[10:13, 10:13] = 255  # 9 px < min_area_px 12
    specks[50, 50] = 255
    assert find_hotspots(specks) == []
    with pytest.raises(ValueError, match="2-D uint8"):
        find_hotspots(np.zeros((10, 10, 3), np.uint8))


class _StubHog:
    """Stands in for OpenCV's HOG: fixed windows and SVM weights."""

    def __init__(self, rects: list[list[int]], weights: list[float]) -> None:
        self.rects, self.weights = rects, weights

    def detectMultiScale(self, img: Any, **kw: Any) -> tuple[Any, Any]:
        return np.array(self.rects, np.int32), np.array(self.weights).reshape(-1, 1)


def test_find_people_post_processing_on_a_stub_detector() -> None:
    """What happens after the HOG: weights to confidence, NMS, clipping, the minimum."""
    image = np.zeros((240, 320), np.uint8)
    stub = _StubHog(
        [[100, 50, 64, 128], [104, 54, 64, 128], [-6, 130, 64, 128], [250, 10, 64, 128]],
        [3.0, 1.0, 1.0, 0.2],
    )
    hits = find_people(image, detector=stub)
    # The overlapping weaker window is suppressed; 0.2 → 0.17 is below min_confidence.
    assert [h.bbox for h in hits] == [(100, 50, 64, 128), (0, 130, 58, 110)]  # second clipped
    assert [h.confidence for h in hits] == [0.75, 0.5]  # w / (1 + w)
    assert hits[0].category == "person"
    assert (hits[0].u, hits[0].v) == pytest.approx((132 / 320, 114 / 240))
    assert find_people(image, detector=_StubHog([], [])) == []


@pytest.mark.skipif(people_detector_available(), reason="this OpenCV has a HOGDescriptor")
def test_find_people_says_why_it_cannot_run_without_hog() -> None:
    # OpenCV 5 moved HOGDescriptor to opencv-contrib: the plain wheel cannot detect people.
    with pytest.raises(PeopleDetectorUnavailable, match="opencv-contrib"):
        find_people(np.zeros((240, 320), np.uint8))


def _silhouette(h: int = 96) -> np.ndarray:
    """A dark, upright human outline (head, torso, arms, legs) on a light background."""
    img = np.full((240, 320), 170, np.uint8)
    x0, y0, s = 120, 60, h / 96

    def p(x: float, y: float) -> tuple[int, int]:
        return int(x0 + x * s), int(y0 + y * s)

    fg = 50
    cv2.ellipse(img, p(32, 22), (int(7 * s), int(9 * s)), 0, 0, 360, fg, -1)
    cv2.line(img, p(32, 30), p(32, 34), fg, int(5 * s))
    cv2.fillPoly(img, [np.array([p(22, 35), p(42, 35), p(40, 70), p(24, 70)], np.int32)], fg)
    cv2.line(img, p(22, 37), p(17, 68), fg, int(6 * s))
    cv2.line(img, p(42, 37), p(47, 68), fg, int(6 * s))
    cv2.line(img, p(27, 68), p(24, 112), fg, int(8 * s))
    cv2.line(img, p(37, 68), p(40, 112), fg, int(8 * s))
    return np.asarray(cv2.GaussianBlur(img, (3, 3), 0), np.uint8)


@pytest.mark.skipif(
    not people_detector_available(),
    reason="OpenCV 5 has no HOGDescriptor (moved to opencv-contrib); no person detection here",
)
def test_hog_reacts_to_a_rendered_silhouette_and_not_to_a_blank_image() -> None:
    """Proves the HOG plumbing and box geometry on a drawn outline, not accuracy on people
    (OpenCV ships no photograph of a person)."""
    hits = find_people(_silhouette(), win_stride=4)
    assert hits and all(h.category == "person" and 0 < h.confidence <= 1 for h in hits)
    x, y, w, h = hits[0].bbox
    assert x <= 130 and x + w >= 170 and y <= 70 and y + h >= 165  # covers the figure
    assert find_people(np.full((240, 320), 170, np.uint8)) == []


# --- through the codec -------------------------------------------------------------------

W, H = 640, 480
BLOB_W, BLOB_H = 16, 12


def _thermal(width: int, height: int, cx: int, cy: int) -> av.VideoFrame:
    """A white-hot thermal picture in YUV: cool background, one hot blob centred at (cx, cy)."""
    y = np.full((height, width), 60, np.uint8)
    y[cy - BLOB_H // 2 : cy + BLOB_H // 2, cx - BLOB_W // 2 : cx + BLOB_W // 2] = 235
    chroma = np.full((height // 2, width), 128, np.uint8)  # U and V, quarter size each
    return av.VideoFrame.from_ndarray(np.vstack([y, chroma]), format="yuv420p")


def _encode(n: int, width: int, height: int, x0: int, y0: int, gop: int = 30) -> list[Packet]:
    """VP8 packets as a Stream gets them: pts in 1/90000 (30 fps), keyframes flagged.
    The blob moves one pixel east per frame."""
    enc = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
    enc.time_base, enc.framerate, enc.gop_size = Fraction(1, 90_000), Fraction(30), gop
    enc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    enc.thread_count = 1  # threads cost 50× the wall time on a busy machine
    out: list[Packet] = []
    for i in range(n):
        frame = _thermal(width, height, x0 + i, y0)
        frame.pts, frame.time_base = i * 3000, Fraction(1, 90_000)
        out += enc.encode(frame)
    out += enc.encode(None)
    packets = []
    for p in out:
        q = av.Packet(bytes(p))
        q.pts = q.dts = p.pts
        q.time_base = Fraction(1, 90_000)
        q.is_keyframe = p.is_keyframe
        packets.append(q)
    assert len(packets) == n
    return packets


class _Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


T0 = 1_750_000_000.0
LAT, LON = 51.5, 7.4
POSE = geo.Pose(lat=LAT, lon=LON, height_m=100.0)  # nadir: gimbal pitch -90, image top north
CAMERA = geo.Camera.from_hfov(90.0, 4 / 3)


@pytest.fixture
def analysers() -> Iterator[list[StreamAnalyser]]:
    made: list[StreamAnalyser] = []
    yield made
    for a in made:
        assert a.close(2.0)


async def _settle(analyser: StreamAnalyser) -> None:
    assert analyser.wait_idle(10.0)
    for _ in range(5):  # on_hits runs through call_soon_threadsafe
        await asyncio.sleep(0)


async def test_end_to_end_hotspot_through_vp8(
    tmp_path: Path, analysers: list[StreamAnalyser]
) -> None:
    got: list[tuple[str, list[DetectionData], bool]] = []
    loop_thread = threading.get_ident()

    def on_hits(stream: str, ds: list[DetectionData]) -> None:
        got.append((stream, ds, threading.get_ident() == loop_thread))

    poses: list[str] = []

    def pose_for(stream: str) -> tuple[geo.Pose, geo.Camera]:
        poses.append(stream)
        return POSE, CAMERA

    analyser = StreamAnalyser(
        modes={"uav-1": "thermal"},
        snapshot_dir=tmp_path,
        on_hits=on_hits,
        pose_for=pose_for,
        queue_size=128,
        run="",
    )
    analysers.append(analyser)
    clock = _Clock(T0)
    stream = Stream("uav-1", codec="VP8", clock=clock)
    stream.sinks.append(analyser)
    n = 60  # 2 s at 30 fps
    for i, packet in enumerate(_encode(n, W, H, x0=470, y0=120)):
        clock.t = T0 + i / 30
        stream.offer(packet)
    await _settle(analyser)

    s = analyser.stats()["uav-1"]
    assert s["decoded"] == n and s["decode_errors"] == 0 and s["dropped"] == 0
    # At most 5 analyses per second of stream time: every 6th frame of 30 fps.
    assert s["analysed"] == 10 <= 5 * n / 30
    assert s["analysis_skipped"] == 0 and s["hits"] == 10
    assert len(poses) == 10  # asked only for the frames analysed
    # One ongoing detection: reported at once, then again after a second, same id.
    reports = [d for _, ds, _ in got for d in ds]
    assert [d.new for d in reports] == [True, False]
    assert {d.id for d in reports} == {"uav-1-hotspot-1"}
    assert all(on_loop for _, _, on_loop in got)
    for d in reports:
        i = round((d.frame_time - T0) * 30)
        assert d.pts == i * 3000 and i in (0, 30)
        cx = 470 + i  # the blob's true centre in this frame
        x, y, w, h = d.bbox
        assert abs(x - (cx - 8)) <= 2 and abs(y - 114) <= 2
        assert abs(w - BLOB_W) <= 3 and abs(h - BLOB_H) <= 3
        assert d.frame_size == (W, H) and d.confidence > 0.5
        # Ground: exactly the camera model's projection of the box centre ...
        assert (d.lat, d.lon) == geo.project_pixel(POSE, CAMERA, d.u, d.v)
        # ... which, by hand for a nadir camera at 100 m with hfov 90° (tan 45° = 1; the
        # vertical half-extent is 0.75 for 4:3), is east = 100·(2u − 1), north = −100·(2v − 1)·0.75:
        # u = cx/640, v = 120/480 = 0.25 → north 37.5 m, east 46.875 m + 0.3125 m per frame.
        east, north = 100 * (2 * cx / W - 1), -100 * (2 * 0.25 - 1) * 0.75
        assert north == 37.5 and east == pytest.approx(46.875 + 0.3125 * i)
        assert d.lat is not None and d.lon is not None
        assert geo.distance_m((d.lat, d.lon), geo.offset(LAT, LON, north, east)) < 1.0
        # The snapshot: a JPEG of the frame with the box drawn in red.
        assert d.snapshot is not None and not Path(d.snapshot).is_absolute()
        img = cv2.imdecode(np.fromfile(tmp_path / d.snapshot, np.uint8), cv2.IMREAD_COLOR)
        assert img is not None and img.shape == (H, W, 3)
        b, g, r = (int(c) for c in img[y - 2, x + w // 2])  # on the box's top edge
        assert r > 180 and g < 80 and b < 80

    ev = detection_event(reports[0], incident="inc-1")
    assert parse_event(event_to_json(ev)) == ev
    p = ev.payload
    assert (p.source, p.category, p.id, ev.source.device) == (
        "video",
        "hotspot",
        "uav-1-hotspot-1",
        "uav-1",
    )
    assert (p.lat, p.lon) == (reports[0].lat, reports[0].lon)
    assert p.summary.startswith("Hotspot ") and " px, 0," in p.summary
    # A hotspot's picture is operational (a person's would be personal data).
    assert p.snapshot == f"snapshots/{reports[0].snapshot}" and p.personal is None
    assert p.stream == "uav-1" and p.bbox == reports[0].bbox
    assert ev.observed_at.timestamp() == pytest.approx(T0)


async def test_a_slow_analysis_drops_packets_without_blocking_and_resumes_at_a_keyframe(
    tmp_path: Path, analysers: list[StreamAnalyser], monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    real = vision.find_hotspots

    def stuck(gray: Any, **kw: Any) -> Any:
        gate.wait(5.0)  # the worker hangs here until the test lets it go
        return real(gray, **kw)

    monkeypatch.setattr(vision, "find_hotspots", stuck)
    got: list[DetectionData] = []
    analyser = StreamAnalyser(
        modes={"uav-2": "thermal"},
        snapshot_dir=tmp_path,
        on_hits=lambda _, ds: got.extend(ds),
        queue_size=4,
        run="",
    )
    analysers.append(analyser)
    plis: list[float] = []
    clock = _Clock(T0)
    stream = Stream("uav-2", codec="VP8", clock=clock)
    stream._request_key = lambda: plis.append(clock.t)
    stream.sinks.append(analyser)
    packets = _encode(120, 320, 240, x0=40, y0=60)
    keys = [i for i, p in enumerate(packets) if p.is_keyframe]
    assert keys[0] == 0 and 90 in keys, keys

    started = time.perf_counter()
    for i, packet in enumerate(packets[:90]):
        clock.t = T0 + i / 30
        stream.offer(packet)
    offering = time.perf_counter() - started
    s = analyser.stats()["uav-2"]
    # The worker is stuck for up to 5 s: had offering waited for it, this took 5 s.
    assert offering < 1.0 and not gate.is_set()
    assert s["queued"] <= 4 and s["dropped"] >= 80 and len(plis) == 1  # one PLI asked
    gate.set()
    await _settle(analyser)
    before = analyser.stats()["uav-2"]["decoded"]
    assert 1 <= before <= 5  # what was queued before the drop: a consistent run from 0

    for i, packet in enumerate(packets[90:], start=90):  # slowly: nothing is dropped now
        clock.t = T0 + i / 30
        stream.offer(packet)
        assert analyser.wait_idle(5.0)
    await _settle(analyser)
    s = analyser.stats()["uav-2"]
    assert s["decode_errors"] == 0 and s["errors"] == 0
    assert s["decoded"] == before + 30  # resumed at the keyframe of frame 90, all decoded
    assert s["offered"] == 120 and s["decoded"] + s["dropped"] + s["skipped"] == 120
    # The pictures after the gap are right: the blob where it was drawn in frame 90+.
    late = [d for d in got if d.pts is not None and d.pts >= 90 * 3000]
    assert late
    for d in late:
        cx = 40 + (d.pts or 0) // 3000
        assert abs(d.bbox[0] - (cx - 8)) <= 2 and abs(d.bbox[1] - 54) <= 2


async def test_streams_without_a_mode_are_not_decoded_and_nothing_breaks(
    tmp_path: Path, analysers: list[StreamAnalyser], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vision, "IDLE_EXIT_S", 0.1)
    modes: dict[str, vision.Mode] = {}
    analyser = StreamAnalyser(modes=modes, snapshot_dir=tmp_path, on_hits=lambda *_: None)
    analysers.append(analyser)
    stream = Stream("cam-x", codec="VP8")
    stream.sinks.append(analyser)
    packets = _encode(40, 160, 120, x0=40, y0=60)
    for packet in packets[:20]:
        stream.offer(packet)
    s = analyser.stats()["cam-x"]
    assert s["skipped"] == 20 and s["decoded"] == 0 and s["mode"] is None
    modes["cam-x"] = "thermal"  # taken up at the next keyframe
    for packet in packets[20:]:
        stream.offer(packet)
    await _settle(analyser)
    s = analyser.stats()["cam-x"]
    first_key = next(i for i, p in enumerate(packets) if p.is_keyframe and i >= 20)
    assert s["mode"] == "thermal" and s["decoded"] == 40 - first_key and s["decode_errors"] == 0
    # A stream gone quiet ends its worker; its next packet starts another, decoding on.
    deadline = time.monotonic() + 5
    while analyser.stats()["cam-x"]["worker"] and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert not analyser.stats()["cam-x"]["worker"]
    for packet in _encode(45, 160, 120, x0=40, y0=60)[40:]:  # the same picture's next frames
        stream.offer(packet)
    await _settle(analyser)
    s = analyser.stats()["cam-x"]
    assert s["decoded"] == 45 - first_key and s["decode_errors"] == 0


async def test_visual_streams_report_people_or_are_skipped_without_a_detector(
    tmp_path: Path,
    analysers: list[StreamAnalyser],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    got: list[DetectionData] = []
    analyser = StreamAnalyser(
        modes=lambda name: "visual", snapshot_dir=tmp_path, on_hits=lambda _, ds: got.extend(ds)
    )
    analysers.append(analyser)
    stream = Stream("uav-3", codec="VP8")
    stream.sinks.append(analyser)
    packets = _encode(12, 320, 240, x0=40, y0=60)
    monkeypatch.setattr(vision, "people_detector_available", lambda: False)
    for packet in packets[:6]:
        stream.offer(packet)
    s = analyser.stats()["uav-3"]
    assert s["skipped"] == 6 and s["decoded"] == 0
    assert sum("wants people" in r.message for r in caplog.records) == 1  # said once

    # With a detector (here a stand-in), a person becomes a detection with a colour snapshot.
    person = vision.Hit("person", (100, 40, 64, 128), 132 / 320, 104 / 240, 0.8)
    monkeypatch.setattr(vision, "people_detector_available", lambda: True)
    monkeypatch.setattr(vision, "find_people", lambda image, **kw: [person])
    for packet in packets[6:]:
        stream.offer(packet)  # no keyframe among them: nothing to decode yet
    packets = _encode(3, 320, 240, x0=40, y0=60)
    for packet in packets:
        stream.offer(packet)
    await _settle(analyser)
    assert [(d.category, d.bbox, d.lat) for d in got] == [("person", (100, 40, 64, 128), None)]
    assert got[0].id.startswith("uav-3-person-") and got[0].snapshot is not None
    img = cv2.imdecode(np.fromfile(tmp_path / got[0].snapshot, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and img.shape == (240, 320, 3)
    assert detection_event(got[0], incident="inc-1").payload.summary == "Person 64×128 px, 0,80"
