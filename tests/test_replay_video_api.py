"""The replay's recorded video over HTTP, against the real app serving a recording.

The segments are real: an aiortc sender publishes VP8 and then H264 into a `MediaHub`
with a `SegmentRecorder` (tests/test_recording_video.py), and the log names them in
`video.segment` events as the live server does. Then `cockpit replay` serves it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import av
import httpx
import pytest

from cockpit.events import Event, Source, VideoSegment, VideoSegmentEvent
from cockpit.media.recording import SegmentInfo
from cockpit.recorder import Recorder
from tests.factories import T0, numbered, position
from tests.serving import Served, serve
from tests.test_recording_video import record


@dataclass
class Archive:
    log: Path
    folder: Path  # the recording's own folder: <log without .sqlite>/
    vp8: list[SegmentInfo]
    h264: list[SegmentInfo]


def _event(info: SegmentInfo, stream: str, path: str) -> Event:
    return VideoSegmentEvent(
        incident="test",
        source=Source(feed="video", device="recorder"),
        observed_at=info.end,
        received_at=info.end + timedelta(milliseconds=5),
        payload=VideoSegment(
            stream=stream,
            path=path,
            start=info.start,
            end=info.end,
            codec=info.codec,  # type: ignore[arg-type]
            frames=info.frames,
            bytes=info.bytes,
        ),
    )


async def _make(root: Path) -> Archive:
    log = root / "archive" / "test.sqlite"
    folder = log.with_suffix("")
    vp8 = await record(folder / "video", "VP8", seconds=2.5, segment_s=1.0)
    h264 = await record(root / "h264", "H264", seconds=2.5, segment_s=1.0)
    # The H264 drone is another stream: its files go beside the first one's.
    shutil.move(root / "h264" / "uav-1", folder / "video" / "uav-2")
    events: list[Event] = []
    for info in vp8.segments:
        events.append(_event(info, "uav-1", f"video/{info.path}"))
    for info in h264.segments:
        name = info.path.split("/")[-1]
        events.append(_event(info, "uav-2", f"video/uav-2/{name}"))
    # A log may name what it should not: a file outside the folder, one that is gone.
    for stream, path in (("evil", "../test.sqlite"), ("evil", "video/../../archive/test.sqlite")):
        events.append(_event(vp8.segments[0], stream, path))
    events.append(_event(vp8.segments[0], "gone", "video/gone/20261126T100000.000Z.webm"))
    # And one whose file is not video at all.
    (folder / "video" / "broken").mkdir()
    (folder / "video" / "broken" / "20261126T100000.000Z.ts").write_bytes(b"\x00" * 4096)
    events.append(_event(h264.segments[0], "broken", "video/broken/20261126T100000.000Z.ts"))
    first = vp8.segments[0].start.timestamp() - T0.timestamp()
    events.append(position("uav-1", 51.5, 7.4, first - 1.0))
    events.sort(key=lambda e: e.received_at)
    rec = Recorder(log, "test")
    await asyncio.to_thread(rec.open)
    await rec.append(numbered(events))
    await rec.close()
    return Archive(log, folder, vp8.segments, h264.segments)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    return asyncio.run(_make(tmp_path_factory.mktemp("replay-video")))


@pytest.fixture
async def served(tmp_path: Path, archive: Archive) -> AsyncIterator[Served]:
    async with serve(tmp_path / "data", replay=archive.log) as s:
        yield s


@contextlib.asynccontextmanager
async def _client(s: Served, user: str = "viewer") -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=s.url, timeout=30) as c:
        await s.login(c, user)
        yield c


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


async def test_the_listing_names_every_segment_of_every_stream(
    served: Served, archive: Archive
) -> None:
    async with _client(served) as c:  # a viewer: video is operational, everyone watches
        r = await c.get("/api/v1/replay/video")
    assert r.status_code == 200, r.text
    streams = {s["stream"]: s["segments"] for s in r.json()["streams"]}
    # Not what is outside the folder, or gone.
    assert set(streams) == {"uav-1", "uav-2", "broken"}
    for name, infos, codec, mime in (
        ("uav-1", archive.vp8, "VP8", "video/webm"),
        ("uav-2", archive.h264, "H264", "video/mp4"),
    ):
        listed = streams[name]
        assert len(listed) == len(infos) >= 2
        for seg, info in zip(listed, infos, strict=True):
            assert seg["start"] == pytest.approx(info.start.timestamp(), abs=1e-6)
            assert seg["end"] == pytest.approx(info.end.timestamp(), abs=1e-6)
            assert seg["codec"] == codec and seg["type"] == mime
            assert seg["frames"] == info.frames and seg["bytes"] == info.bytes
            assert seg["url"] == "/api/v1/replay/files/" + seg["path"]
            assert seg["start_at"].endswith("Z")
        assert [s["start"] for s in listed] == sorted(s["start"] for s in listed)


async def test_a_range_request_answers_206_with_those_bytes(
    served: Served, archive: Archive
) -> None:
    seg = archive.vp8[1]
    whole = (archive.folder / "video" / seg.path).read_bytes()
    url = f"/api/v1/replay/files/video/{seg.path}"
    async with _client(served) as c:
        full = await c.get(url)
        part = await c.get(url, headers={"Range": "bytes=100-1099"})
        tail = await c.get(url, headers={"Range": "bytes=-64"})
    assert full.status_code == 200 and full.content == whole
    assert full.headers["content-type"] == "video/webm"
    assert full.headers["accept-ranges"] == "bytes"
    assert part.status_code == 206, part.text
    assert part.content == whole[100:1100]
    assert part.headers["content-range"] == f"bytes 100-1099/{len(whole)}"
    assert tail.status_code == 206 and tail.content == whole[-64:]


async def test_h264_is_served_as_mp4_with_the_same_frames_and_the_recording_unchanged(
    served: Served, archive: Archive
) -> None:
    before = _hashes(archive.folder)
    async with _client(served) as c:
        listed = (await c.get("/api/v1/replay/video")).json()["streams"]
        seg = next(s for s in listed if s["stream"] == "uav-2")["segments"][0]
        first = await c.get(seg["url"])
        again = await c.get(seg["url"], headers={"Range": "bytes=0-99"})
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "video/mp4"
    assert again.status_code == 206 and again.content == first.content[:100]
    mp4 = served.settings.data_dir / "check.mp4"
    mp4.write_bytes(first.content)
    with av.open(str(mp4)) as box:
        assert box.format.name.startswith("mov")  # MP4 (the mov/mp4 demuxer)
        frames = list(box.decode(video=0))
    with av.open(str(archive.folder / seg["path"])) as ts:
        originals = [bytes(p) for p in ts.demux(video=0) if p.size]
    assert len(frames) == seg["frames"] == len(originals)
    assert float(frames[0].time or 0) == 0.0  # file time 0 is the segment's start
    span = float(frames[-1].time or 0)
    assert span == pytest.approx(seg["end"] - seg["start"], abs=0.1)
    # Copied, not re-encoded, and never into the recording's folder.
    assert _hashes(archive.folder) == before
    cached = list((served.settings.data_dir / "cache").rglob("*.mp4"))
    assert len(cached) == 1 and cached[0].read_bytes() == first.content


async def test_only_the_logged_segments_inside_the_folder_are_served(
    served: Served, archive: Archive
) -> None:
    # A file in the recording's folder that no video.segment event names.
    (archive.folder / "video" / "uav-1" / "stray.webm").write_bytes(b"\x1aE\xdf\xa3 stray")
    (archive.folder / "notes.txt").write_text("not video")
    async with _client(served) as c:
        for path in (
            "video/uav-1/stray.webm",
            "notes.txt",
            "video/uav-1/nothing.webm",
            "../test.sqlite",
            "video/../../test.sqlite",
            "%2e%2e/test.sqlite",
            "video/%2e%2e/%2e%2e/test.sqlite",
            "/etc/passwd",
            "",
        ):
            r = await c.get("/api/v1/replay/files/" + path)
            assert r.status_code == 404, (path, r.status_code, r.text[:200])
            if r.headers["content-type"].startswith("application/json"):
                assert "SQLite" not in r.text
        # Named by the log, but outside the recording's folder, or gone: 404 too. (The
        # encoded dots reach the route as they are; httpx would resolve plain ones.)
        for path in (
            "..%2Ftest.sqlite",
            "video%2F..%2F..%2Farchive%2Ftest.sqlite",
            "video/gone/20261126T100000.000Z.webm",
        ):
            r = await c.get("/api/v1/replay/files/" + path)
            assert r.status_code == 404, (path, r.status_code, r.text[:200])
            assert r.json()["errors"][0]["reason"].startswith("no recorded video"), r.text
    async with httpx.AsyncClient(base_url=served.url) as stranger:
        seg = archive.vp8[0]
        for url in ("/api/v1/replay/video", f"/api/v1/replay/files/video/{seg.path}"):
            r = await stranger.get(url)
            assert r.status_code == 401, (url, r.text)
            assert r.json()["errors"][0]["field"] == "session"


async def test_a_live_server_says_409(tmp_path: Path) -> None:
    async with serve(tmp_path / "live") as s, _client(s) as c:
        r = await c.get("/api/v1/replay/video")
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "mode"


async def test_a_damaged_h264_segment_is_422_naming_it(served: Served) -> None:
    async with _client(served) as c:
        r = await c.get("/api/v1/replay/files/video/broken/20261126T100000.000Z.ts")
    assert r.status_code == 422, r.text
    error = r.json()["errors"][0]
    assert error["field"] == "path" and "broken/20261126T100000.000Z.ts" in error["reason"]
    assert not list((served.settings.data_dir / "cache").rglob("*.mp4"))  # nothing half made
    assert not list((served.settings.data_dir / "cache").rglob("*.tmp"))


def test_the_mp4_cache_keeps_to_its_size_dropping_the_least_recently_used(
    tmp_path: Path,
) -> None:
    """The copies share the disk with live recordings: old ones go, the one just made and
    the ones used lately stay."""
    import os

    from cockpit.replay_video import _trim_cache

    cache = tmp_path / "cache"
    cache.mkdir()
    for i, name in enumerate(("a", "b", "c", "d")):
        f = cache / f"{name}.mp4"
        f.write_bytes(b"x" * 100)
        os.utime(f, (1000 + i, 1000 + i))  # a oldest ... d newest
    os.utime(cache / "a.mp4")  # a was just watched again
    _trim_cache(cache, keep=cache / "b.mp4", limit=250)
    assert sorted(p.name for p in cache.iterdir()) == ["a.mp4", "b.mp4"]
