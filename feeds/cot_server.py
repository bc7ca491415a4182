"""The CoT TCP service: a TAK-server-like listener (and an optional link to a real TAK
server) that takes position reports in and sends the picture out.

Path of one position report, and why it is shaped so (the bar: 5,000 events/s from 100
senders fanned out to 10 listeners, p99 ≤ 50 ms, no loss):

1. `data_received` frames and parses at once (`feeds.cot`: a bytes scan, one SAX pass);
   no task per message.
2. Accepted events join the current batch; a timer (`flush_s`, 15 ms) or its size
   (`max_batch`) closes it, so each publish onto the bus carries many reports and no
   write is huge. Each batch costs a send() per client (110 at the bar), so the timer
   sets the fan-out's CPU per event: 25 reports a batch (5 ms at 5,000/s) cost about
   twice the CPU per report of 100; 15 ms adds at most 10 ms of latency to 5 ms.
3. A batch's raw frames go out once its events are on the bus (`relay_after=
   "published"`, the default: the recorder and the fold have them, as with everything
   the browsers are pushed), or only once the recorder committed them (`"committed"`:
   waits for the fsync, tens of ms on a busy disk). In batch order, as ONE `write` per
   client of pre-joined bytes; a client never gets its own reports back. `accepted` on
   /healthz counts what was committed.
4. Writes never wait: a client whose unsent bytes pass `max_client_buffer` is skipped
   until it drains, then gets the newest report per uid (`_Conn.write`); it is cut off
   only if it stays behind for `max_lag_s`. One slow client never stalls the others.
   When too many batches wait to be published, the server stops reading from every
   socket (TCP pushes back on the senders) instead of buffering without bound.

Security: a connection must send TAK's `<auth><cot username password/></auth>` first
(checked by the `authenticate` callback: device name and device token), unless it
comes from a trusted network. Before that nothing goes out; an event is a counted
reject and closes the connection, as does a failed auth or silence past `auth_timeout_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from cockpit.events import Event
from feeds.cot import (
    MAX_EVENT_BYTES,
    CotError,
    CotTranslator,
    Framer,
    entity_id,
    parse,
    parse_auth,
)
from feeds.cot_out import encode_pong

__all__ = ["CotServer", "Counters", "Network", "parse_networks", "parse_tcp_addr"]

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Authenticate = Callable[[str, str], str | None]  # (username, password) -> device or None
Publish = Callable[[list[Event]], Awaitable[list[int]]]  # onto the bus: their seqs


class Counters(Protocol):
    """Where the server counts (the feed's `/healthz` entry)."""

    connections: int
    state: Any
    links: dict[str, Any]

    def accept(self, n: int, now: float) -> None: ...
    def reject(self, reason: str, now: float) -> None: ...


def parse_tcp_addr(addr: str) -> tuple[str, int]:
    """`tcp:host:port` → (host, port); ValueError naming the problem."""
    scheme, _, rest = addr.partition(":")
    host, _, port = rest.rpartition(":")
    if scheme != "tcp" or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{addr!r}: expected tcp:HOST:PORT")
    return host.strip("[]"), int(port)


def parse_networks(cidrs: Iterable[str]) -> list[Network]:
    return [ipaddress.ip_network(c, strict=False) for c in cidrs]


@dataclass
class _Batch:
    events: list[Event] = field(default_factory=list)
    frames: list[tuple[_Conn | None, bytes]] = field(default_factory=list)
    accepted: int = 0  # CoT messages in it
    done: bool = False
    ok: bool = False


@dataclass
class _Stats:
    relayed: int = 0  # frames written to clients (one per client)
    picture_out: int = 0
    pings: int = 0
    echoes: int = 0
    ignored: int = 0  # valid CoT the cockpit does not use (chat, drawings …)
    dropped_clients: int = 0
    lagging: int = 0  # times a client fell behind and was skipped
    skipped_writes: int = 0
    auth_failures: int = 0
    paused: int = 0  # times reading paused for commit backpressure


class _Conn(asyncio.Protocol):
    """One TAK client (or the link to a TAK server)."""

    def __init__(self, server: CotServer, *, link: str | None = None) -> None:
        self.server = server
        self.link = link
        self.transport: asyncio.Transport | None = None
        self.framer = Framer(server.max_event_bytes)
        self.device: str | None = None  # set once authenticated or trusted
        self.peer = "?"
        self._timer: asyncio.TimerHandle | None = None
        self.closed = asyncio.Event()
        self.lagging_since: float | None = None  # server time it fell behind

    # --- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if peer else "?"
        srv = self.server
        transport.set_write_buffer_limits(
            high=srv.max_client_buffer, low=srv.max_client_buffer // 4
        )
        srv.health.connections += 1
        if self.link is not None:
            self._authenticated(f"tak-server-{_safe(self.link)}")
        elif srv.is_trusted(self.peer):
            self._authenticated(f"trusted-{_safe(self.peer)}")
        else:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(srv.auth_timeout_s, self._auth_timeout)
        if srv.reading_paused:
            transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.server.health.connections -= 1
        self.server.clients.discard(self)
        self.server.all_conns.discard(self)
        self.closed.set()

    def data_received(self, data: bytes) -> None:
        srv = self.server
        frames = self.framer.feed(data)
        if self.framer.problems:
            now = srv.clock()
            for reason in self.framer.problems:
                srv.health.reject(reason, now)
            self.framer.problems.clear()
        for frame in frames:
            if self.transport is None or self.transport.is_closing():
                return
            try:
                srv.handle(self, frame)
            except Exception:  # a bug in one message must not end the connection
                log.exception("CoT message from %s failed", self.peer)
                srv.health.reject("internal error", srv.clock())

    # --- helpers -------------------------------------------------------------------------

    def _authenticated(self, device: str) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.device = device
        self.server.clients.add(self)
        self.server.send_snapshot(self)

    def _auth_timeout(self) -> None:
        if self.device is None and self.transport is not None:
            self.server.health.reject("auth: none within the time allowed", self.server.clock())
            self.transport.close()

    def pause_writing(self) -> None:
        # asyncio: our unsent bytes passed the high-water mark (`max_client_buffer`)
        self.lagging_since = self.server.clock()
        self.server.stats.lagging += 1

    def resume_writing(self) -> None:
        # ... and fell under the low-water mark: catch up on the newest state
        if self.lagging_since is not None:
            self.lagging_since = None
            self.server.send_snapshot(self)

    def write(self, data: bytes | memoryview) -> None:
        """Queue bytes for this client without ever waiting for it.

        While its unsent bytes are over `max_client_buffer` (until they fall under a
        quarter of that) it is skipped, and what it misses is counted; then it gets the
        newest report of every uid, so it catches up on the state rather than on each
        step. One that stays behind for `max_lag_s` is cut off (TAK clients reconnect).
        """
        t = self.transport
        if t is None or t.is_closing():
            return
        srv = self.server
        if self.lagging_since is not None:
            srv.stats.skipped_writes += 1
            if srv.clock() - self.lagging_since > srv.max_lag_s:
                srv.stats.dropped_clients += 1
                srv.clients.discard(self)
                t.abort()
            return
        t.write(data)


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in ".-" else "-" for c in text)[:64] or "peer"


class CotServer:
    """Listens for TAK clients; see the module docstring."""

    def __init__(
        self,
        *,
        incident: str,
        authenticate: Authenticate,
        publish: Publish,
        wait_committed: Callable[[int], Awaitable[bool]],
        relay_after: Literal["published", "committed"] = "published",
        health: Counters,
        trusted: Sequence[Network] = (),
        max_event_bytes: int = MAX_EVENT_BYTES,
        flush_s: float = 0.015,
        max_inflight: int = 64,
        max_batch: int = 1000,
        max_client_buffer: int = 1 << 20,
        max_lag_s: float = 30.0,
        auth_timeout_s: float = 10.0,
        max_cached: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.authenticate = authenticate
        self.publish = publish
        self.wait_committed = wait_committed
        self.relay_after = relay_after
        self.health = health
        self.trusted = list(trusted)
        self.max_event_bytes = max_event_bytes
        self.flush_s = flush_s
        self.max_inflight = max_inflight
        self.max_batch = max_batch
        self.max_client_buffer = max_client_buffer
        self.max_lag_s = max_lag_s
        self.auth_timeout_s = auth_timeout_s
        self.max_cached = max_cached
        self.clock = clock
        self.translator = CotTranslator(incident)
        self.clients: set[_Conn] = set()  # authenticated: they get what goes out
        self.all_conns: set[_Conn] = set()
        self.stats = _Stats()
        self.reading_paused = False
        self._batch = _Batch()
        self._flush_handle: asyncio.TimerHandle | None = None
        self._inflight: deque[_Batch] = deque()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._servers: list[asyncio.Server] = []
        self._links: list[asyncio.Task[None]] = []
        # latest report per uid, for clients that connect later: uid -> (stale at, bytes)
        self._latest: dict[str, tuple[float, bytes]] = {}
        self.address: str | None = None  # where it listens, once it does
        # entities whose reports came over TCP and go out as relayed frames, not again
        # as the cockpit's own items
        self.relayed_entities: set[str] = set()

    # --- life cycle ----------------------------------------------------------------------

    async def listen(self, host: str, port: int) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(self._new_conn, host, port)
        self._servers.append(server)
        self.health.state = "listening"
        addr = server.sockets[0].getsockname()
        self.address = f"tcp:{addr[0]}:{addr[1]}"
        return str(addr[0]), int(addr[1])

    def _new_conn(self) -> _Conn:
        conn = _Conn(self)
        self.all_conns.add(conn)
        return conn

    def connect_to(self, host: str, port: int) -> None:
        """Keep a link to a TAK server (reconnect with backoff); trusted both ways."""
        name = f"tcp:{host}:{port}"
        self._links.append(asyncio.create_task(self._link(name, host, port), name=f"cot-{name}"))

    async def _link(self, name: str, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        delay = 0.5
        while True:
            self.health.links[name] = "reconnecting"
            try:
                _, conn = await asyncio.wait_for(
                    loop.create_connection(lambda: _Conn(self, link=name), host, port), 10.0
                )
            except (OSError, TimeoutError) as exc:
                log.info("CoT link %s: %s; again in %.1f s", name, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            self.all_conns.add(conn)
            self.health.links[name] = "connected"
            delay = 0.5
            await conn.closed.wait()
            self.health.links[name] = "down"

    async def aclose(self) -> None:
        for task in self._links:
            task.cancel()
        for server in self._servers:
            server.close()
        for conn in list(self.all_conns):
            if conn.transport is not None:
                conn.transport.abort()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2.0)
        for task in (*self._links, *self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        self.health.state = "idle"

    def background(self, coro: Coroutine[Any, Any, None]) -> None:
        """A task the server owns (cancelled on close)."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def is_trusted(self, peer: str) -> bool:
        try:
            ip = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(ip in net for net in self.trusted)

    # --- in ------------------------------------------------------------------------------

    def handle(self, conn: _Conn, frame: bytes) -> None:
        now = self.clock()
        if frame.startswith(b"<auth"):
            if conn.device is None:
                self._auth(conn, frame, now)
            return
        if conn.device is None:
            self.stats.auth_failures += 1
            self.health.reject("not authenticated: send <auth> first", now)
            assert conn.transport is not None
            conn.transport.close()
            return
        utc = datetime.fromtimestamp(now, UTC)
        try:
            cot = parse(frame, utc)
        except CotError as exc:
            self.health.reject(exc.summary(), now)
            return
        if cot.is_ping:
            self.stats.pings += 1
            conn.write(encode_pong(utc))
            return
        if cot.is_echo:
            self.stats.echoes += 1
            return
        events = self.translator.to_events(cot, device=conn.device, received_at=utc)
        if not events:
            self.stats.ignored += 1
            return
        if len(self.relayed_entities) < self.max_cached:
            self.relayed_entities.add(entity_id(cot.uid))
        self.submit(events, [(conn, frame)], cot.uid, cot.stale.timestamp())

    def _auth(self, conn: _Conn, frame: bytes, now: float) -> None:
        assert conn.transport is not None
        try:
            auth = parse_auth(frame)
            device = self.authenticate(auth.username, auth.password)
        except CotError as exc:
            device, reason = None, f"auth: {exc.summary()}"
        else:
            reason = "auth: unknown device or token, or feed cot not allowed"
        if device is None:
            self.stats.auth_failures += 1
            self.health.reject(reason, now)
            conn.transport.close()
            return
        conn._authenticated(device)

    def submit(
        self,
        events: list[Event],
        frames: list[tuple[_Conn | None, bytes]],
        uid: str | None = None,
        stale_at: float | None = None,
    ) -> None:
        """Events to commit, and the frames to relay once they are committed."""
        batch = self._batch
        batch.events.extend(events)
        batch.frames.extend(frames)
        batch.accepted += len(frames)
        if uid is not None and stale_at is not None:
            self._remember(uid, stale_at, frames[-1][1])
        if len(batch.frames) >= self.max_batch:
            # a busy moment must not make one huge write per client: bounded batches
            if self._flush_handle is not None:
                self._flush_handle.cancel()
            self._flush()
        elif self._flush_handle is None:
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(self.flush_s, self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        batch, self._batch = self._batch, _Batch()
        if not batch.events:
            return
        self._inflight.append(batch)
        task = asyncio.create_task(self._commit(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if len(self._inflight) >= self.max_inflight and not self.reading_paused:
            self._pause_reading(True)

    async def _commit(self, batch: _Batch) -> None:
        seqs: list[int] = []
        try:
            seqs = await self.publish(batch.events)
            batch.ok = True
        except Exception as exc:  # the bus refused: counted, nothing relayed, we go on
            log.warning("CoT batch not published: %s", exc)
            self.health.reject(f"not accepted: {type(exc).__name__}", self.clock())
        committed: bool | None = None
        if batch.ok and self.relay_after == "committed":
            committed = batch.ok = await self.wait_committed(seqs[-1])
        batch.done = True
        while self._inflight and self._inflight[0].done:
            done = self._inflight.popleft()
            if done.ok:
                self._fan_out(done.frames)
        if self.reading_paused and len(self._inflight) <= self.max_inflight // 2:
            self._pause_reading(False)
        if seqs and committed is None:
            committed = await self.wait_committed(seqs[-1])
        if committed:
            self.health.accept(batch.accepted, self.clock())
        elif seqs:
            self.health.reject("not committed in time", self.clock())

    def _pause_reading(self, pause: bool) -> None:
        self.reading_paused = pause
        self.stats.paused += pause
        for conn in self.all_conns:
            t = conn.transport
            if t is not None and not t.is_closing():
                t.pause_reading() if pause else t.resume_reading()

    # --- out -----------------------------------------------------------------------------

    def _fan_out(self, frames: list[tuple[_Conn | None, bytes]]) -> None:
        """Every frame to every client but its sender (a TAK server does not echo).

        The frames are grouped by sender, so each sender's own frames are one span and
        it gets what lies before and after it, joined into ONE write: a copy in memory
        costs far less than a second send() (the profile's largest item at load).
        """
        if not self.clients or not frames:
            return
        groups: dict[_Conn | None, list[bytes]] = {}
        for origin, f in frames:
            groups.setdefault(origin, []).append(f)
        spans: dict[_Conn | None, tuple[int, int]] = {}
        parts: list[bytes] = []
        pos = 0
        for origin, own in groups.items():
            size = sum(len(f) for f in own)
            spans[origin] = (pos, pos + size)
            parts.extend(own)
            pos += size
        everything = b"".join(parts)
        view = memoryview(everything)
        sent = 0
        for conn in list(self.clients):
            span = spans.get(conn)
            if span is None:
                conn.write(everything)
                sent += len(frames)
                continue
            a, b = span
            if a and b < pos:
                conn.write(b"".join((view[:a], view[b:])))
            elif a or b < pos:
                conn.write(view[:a] if a else view[b:])
            sent += len(frames) - len(groups[conn])
        self.stats.relayed += sent

    def relay(self, items: Sequence[tuple[str, float, bytes]]) -> None:
        """Already committed CoT (from the HTTP route): (uid, stale at, frame) to all."""
        for uid, stale_at, frame in items:
            self._remember(uid, stale_at, frame)
        self._fan_out([(None, frame) for _, _, frame in items])

    def send_picture(self, items: Sequence[tuple[str, float | None, bytes]]) -> None:
        """The cockpit's own items: (uid, stale at or None for a removal, frame)."""
        if not items:
            return
        for uid, stale_at, frame in items:
            if stale_at is None:
                for key in [k for k in self._latest if k == uid or k.startswith(uid + ".")]:
                    del self._latest[key]
            else:
                self._remember(uid, stale_at, frame)
        data = b"".join(frame for _, _, frame in items)
        for conn in list(self.clients):
            conn.write(data)
        self.stats.picture_out += len(items)

    def _remember(self, uid: str, stale_at: float, frame: bytes) -> None:
        latest = self._latest
        latest.pop(uid, None)  # re-insert: the dict's order is the age order
        latest[uid] = (stale_at, frame)
        if len(latest) > self.max_cached:
            del latest[next(iter(latest))]

    def send_snapshot(self, conn: _Conn) -> None:
        """What a newly connected client should see at once: every report not stale."""
        now = self.clock()
        for uid in [u for u, (stale, _) in self._latest.items() if stale < now]:
            del self._latest[uid]
        if self._latest:
            conn.write(b"".join(frame for _, frame in self._latest.values()))

    def stats_view(self) -> dict[str, Any]:
        s = self.stats
        return {
            "listening": self.address,
            "clients": len(self.clients),
            "connections": len(self.all_conns),
            "relayed": s.relayed,
            "picture_out": s.picture_out,
            "pings": s.pings,
            "echoes": s.echoes,
            "ignored": s.ignored,
            "dropped_clients": s.dropped_clients,
            "lagging": s.lagging,
            "skipped_writes": s.skipped_writes,
            "auth_failures": s.auth_failures,
            "inflight_batches": len(self._inflight),
            "reading_paused": self.reading_paused,
            "paused": s.paused,
            "cached": len(self._latest),
        }
