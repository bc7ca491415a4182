"""CAP documents from a folder and from a URL, each read once.

The folder is scanned every `every_s` for *.xml files and DWD-style *.zip files of CAP
XMLs (new or changed: by name, mtime and size); the URL is fetched as often with a
conditional GET (ETag, Last-Modified) and may answer one CAP XML or a zip of them. What
was read is remembered (a zip entry by its name and CRC, a URL's single XML by its hash)
for as long as the folder or the URL still holds it, so memory stays bounded by what
the source holds; after a restart everything is read again (the same warnings again:
the picture does not change). What was read counts as read only once `deliver` returned:
a batch it could not publish (it raised) is read again at the next poll.

Each document is bounded by `max_bytes` before it is read; a zip's entries together by
MAX_UNPACKED_BYTES (the entries after that are skipped, with a reject) and their number
by MAX_ENTRIES, so a zip bomb costs at most that much memory.

The poller only finds documents: it hands each batch to `deliver(device, docs)` and
reports a file it cannot read to `on_reject`, and the state of each source to
`on_state(source, state)`: the folder "listening" (or "down" while it is missing), the
URL "connected", "reconnecting" after a failed fetch, "down" after three in a row. No
failure stops the polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import logging
import lzma
import struct
import zipfile
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

__all__ = [
    "MAX_ARCHIVE_BYTES",
    "MAX_ENTRIES",
    "MAX_UNPACKED_BYTES",
    "CapPoller",
    "FolderScan",
    "read_archive",
]

log = logging.getLogger(__name__)

Docs = list[tuple[str, bytes]]  # (origin, CAP XML)
MAX_ARCHIVE_BYTES = 64 << 20  # a zip of all of Germany's current warnings is a few MiB
MAX_UNPACKED_BYTES = 64 << 20  # all entries of one zip together, once unpacked
MAX_ENTRIES = 5_000  # DWD's status zips hold a few hundred
DOWN_AFTER = 3  # failed fetches in a row


# What zipfile raises for a damaged or odd archive: a broken deflate or lzma stream, an
# encrypted entry (RuntimeError), a cut header (struct.error), an unknown method.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    OSError,
    ValueError,
    NotImplementedError,
    EOFError,
    RuntimeError,
    struct.error,
    zlib.error,
    lzma.LZMAError,
)
_EOCD = b"PK\x05\x06"  # end of central directory record (22 bytes and a comment)
_ZIP64_LOCATOR = b"PK\x06\x07"
_CENTRAL = b"PK\x01\x02"  # one central directory header per entry


def _entry_bound(data: bytes) -> int | None:
    """At most how many entries zipfile would list, found before it lists them (its
    list of a 64 MiB zip of empty entries would take gigabytes): the central directory
    headers in the region zipfile reads. None: no end record (zipfile then refuses it);
    a Zip64 archive (no CAP zip needs one) counts as too many."""
    at = len(data) - 22
    if data[at : at + 4] != _EOCD or data[-2:] != b"\0\0":  # as zipfile: no comment, else the last
        at = data.rfind(_EOCD, max(0, len(data) - 22 - 0xFFFF))
        if at < 0:
            return None
    record = data[at : at + 22]
    if len(record) < 22:
        return None
    entries, cd_size = (
        int.from_bytes(record[10:12], "little"),
        int.from_bytes(record[12:16], "little"),
    )
    if data[max(0, at - 20) : max(0, at - 16)] == _ZIP64_LOCATOR or entries == 0xFFFF:
        return MAX_ENTRIES + 1
    return data.count(_CENTRAL, max(0, at - cd_size), at)


def read_archive(
    name: str, data: bytes, max_bytes: int, seen: set[str], keep: set[str]
) -> tuple[Docs, list[str]]:
    """The unseen *.xml entries of a zip (each bounded before it is read, all together
    by MAX_UNPACKED_BYTES) and the reasons for those that cannot be read. `keep` collects
    the keys of every entry."""
    docs: Docs = []
    bad: list[str] = []
    budget = MAX_UNPACKED_BYTES
    bound = _entry_bound(data)
    if bound is not None and bound > MAX_ENTRIES:
        return [], [f"{name}: {bound} entries; at most {MAX_ENTRIES}"]
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = [i for i in zf.infolist() if i.filename.lower().endswith(".xml")]
            if len(infos) > MAX_ENTRIES:
                return [], [f"{name}: {len(infos)} entries; at most {MAX_ENTRIES}"]
            for info in sorted(infos, key=lambda i: i.filename):
                key = f"{name}|{info.filename}|{info.CRC:08x}|{info.file_size}"
                keep.add(key)
                if key in seen:
                    continue
                origin = f"{name}/{info.filename}"
                if info.file_size > max_bytes:
                    bad.append(f"{origin}: {info.file_size} bytes; at most {max_bytes}")
                    continue
                limit = min(max_bytes, budget)
                try:
                    with zf.open(info) as f:
                        body = f.read(limit + 1)  # a lying header is no bomb
                except _ZIP_ERRORS as exc:
                    bad.append(f"{origin}: unreadable entry: {exc}")
                    continue
                budget -= len(body)
                if len(body) > max_bytes:
                    bad.append(f"{origin}: more than {max_bytes} bytes")
                    continue
                if budget < 0:
                    bad.append(
                        f"{name}: more than {MAX_UNPACKED_BYTES} bytes unpacked; rest skipped"
                    )
                    break
                docs.append((origin, body))
    except _ZIP_ERRORS as exc:
        return [], [f"{name}: not a readable zip: {exc}"]
    return docs, bad


@dataclass
class FolderScan:
    """The folder's new or changed documents since the last committed scan (blocking:
    run it in a thread). `commit()` once they were delivered; until then the next scan
    returns them again."""

    folder: Path
    max_bytes: int
    files: set[tuple[str, int, int]] = field(default_factory=set)  # name, mtime, size
    entries: dict[str, set[str]] = field(default_factory=dict)  # zip name -> entry keys
    pending: tuple[set[tuple[str, int, int]], dict[str, set[str]]] | None = None

    def commit(self) -> None:
        """The last scan's documents were delivered: do not read them again."""
        if self.pending is not None:
            self.files, self.entries = self.pending
            self.pending = None

    def __call__(self) -> tuple[Docs, list[str]]:
        found: list[tuple[int, str, Path, int]] = []
        for path in self.folder.iterdir():
            if path.suffix.lower() not in (".xml", ".zip"):
                continue
            with contextlib.suppress(OSError):
                st = path.stat()
                if path.is_file():
                    found.append((st.st_mtime_ns, path.name, path, st.st_size))
        found.sort()  # oldest first: an Update is read after what it replaces
        docs: Docs = []
        bad: list[str] = []
        files: set[tuple[str, int, int]] = set()
        entries: dict[str, set[str]] = {}
        for mtime, name, path, size in found:
            key = (name, mtime, size)
            files.add(key)
            if key in self.files:
                if name in self.entries:
                    entries[name] = self.entries[name]
                continue
            is_zip = name.lower().endswith(".zip")
            limit = MAX_ARCHIVE_BYTES if is_zip else self.max_bytes
            if size > limit:
                bad.append(f"{name}: {size} bytes; at most {limit}")
                continue
            try:
                with path.open("rb") as f:
                    data = f.read(limit + 1)  # it may have grown since stat()
            except OSError as exc:
                bad.append(f"{name}: unreadable: {exc}")
                continue
            if len(data) > limit:
                bad.append(f"{name}: more than {limit} bytes")
                continue
            if is_zip:
                keep: set[str] = set()
                new, wrong = read_archive(
                    name, data, self.max_bytes, self.entries.get(name, set()), keep
                )
                entries[name] = keep
                docs += new
                bad += wrong
            else:
                docs.append((name, data))
        self.pending = (files, entries)
        return docs, bad


Deliver = Callable[[str, Docs], Awaitable[None]]


class CapPoller:
    """Polls the folder and/or the URL every `every_s` until closed."""

    def __init__(
        self,
        *,
        folder: Path | None,
        url: str | None,
        every_s: float,
        max_bytes: int,
        deliver: Deliver,
        on_state: Callable[[str, str], None],
        on_reject: Callable[[str], None],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.folder = FolderScan(folder, max_bytes) if folder is not None else None
        self.url = url
        self.every_s = every_s
        self.max_bytes = max_bytes
        self.deliver = deliver
        self.on_state = on_state
        self.on_reject = on_reject
        self.client = httpx.AsyncClient(timeout=30.0, transport=transport) if url else None
        self.failures = 0
        self.validators: dict[str, str] = {}  # ETag / Last-Modified of the last answer
        self.url_seen: set[str] = set()
        self.polls = 0
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name="cap-poll")

    async def aclose(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.client is not None:
            await self.client.aclose()

    async def _run(self) -> None:
        while True:
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not end the feed: say so and poll again
                log.exception("CAP poll failed")
            await asyncio.sleep(self.every_s)

    async def poll(self) -> None:
        """One round: the folder, then the URL."""
        if self.folder is not None:
            await self._poll_folder(self.folder)
        if self.client is not None and self.url is not None:
            await self._poll_url(self.client, self.url)
        self.polls += 1

    async def _poll_folder(self, scan: FolderScan) -> None:
        try:
            docs, bad = await asyncio.to_thread(scan)
        except OSError as exc:
            self.on_state("folder", "down")
            log.warning("CAP folder %s: %s", scan.folder, exc)
            return
        self.on_state("folder", "listening")
        for reason in bad:
            self.on_reject(reason)
        if await self._deliver("cap-folder", docs):
            scan.commit()

    async def _deliver(self, device: str, docs: Docs) -> bool:
        """Hand `docs` on; False if that failed (they are then read again next time)."""
        if not docs:
            return True
        try:
            await self.deliver(device, docs)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "CAP: %d documents from %s not delivered; read again next poll", len(docs), device
            )
            return False
        return True

    async def _poll_url(self, client: httpx.AsyncClient, url: str) -> None:
        try:
            data, validators = await self._fetch(client, url)
        except (httpx.HTTPError, _Refused) as exc:
            self.failures += 1
            self.on_state("url", "down" if self.failures >= DOWN_AFTER else "reconnecting")
            log.warning("CAP URL %s: %s", url, exc)
            return
        self.failures = 0
        self.on_state("url", "connected")
        if data is None:  # not modified
            return
        keep: set[str] = set()
        if data[:4] == b"PK\x03\x04":
            docs, bad = await asyncio.to_thread(
                read_archive, "url", data, self.max_bytes, self.url_seen, keep
            )
        elif len(data) > self.max_bytes:
            docs, bad = [], [f"url: {len(data)} bytes; at most {self.max_bytes}"]
        else:
            key = hashlib.sha256(data).hexdigest()
            keep.add(key)
            docs, bad = ([] if key in self.url_seen else [("url", data)]), []
        for reason in bad:
            self.on_reject(reason)
        if await self._deliver("cap-url", docs):  # else: fetched whole and read again
            self.url_seen = keep
            self.validators = validators

    async def _fetch(
        self, client: httpx.AsyncClient, url: str
    ) -> tuple[bytes | None, dict[str, str]]:
        """The answer (None: not modified) and its validators, to keep once delivered."""
        headers = {"Accept": "application/cap+xml, application/xml, application/zip"}
        if "etag" in self.validators:
            headers["If-None-Match"] = self.validators["etag"]
        if "last-modified" in self.validators:
            headers["If-Modified-Since"] = self.validators["last-modified"]
        async with client.stream("GET", url, headers=headers) as response:
            if response.status_code == 304:
                return None, self.validators
            if response.status_code != 200:
                raise _Refused(f"HTTP {response.status_code}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_ARCHIVE_BYTES:
                    raise _Refused(f"more than {MAX_ARCHIVE_BYTES} bytes")
                chunks.append(chunk)
            validators = {k: v for k in ("etag", "last-modified") if (v := response.headers.get(k))}
            return b"".join(chunks), validators


class _Refused(Exception):
    """The URL answered, but not with something to read."""
