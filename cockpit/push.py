"""Live push to browsers: snapshot first, then deltas, each client with a bounded queue.

A client that keeps up gets every delta at once. One that falls behind gets the latest
state per item only (coalescing), and one that stays behind beyond its bound is dropped
and told to resync. Deltas are serialised once, not once per client.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from cockpit.situation import Delta, encode_snapshot

__all__ = ["Client", "Item", "PushHub", "encode_deltas", "sse_stream"]

_Key = tuple[str, str]


@dataclass(slots=True)
class Item:
    """One delta, serialised once for every client."""

    key: _Key
    seq: int
    body: bytes
    delta: Delta
    _whole: bytes | None = None

    def whole(self) -> bytes:
        """The delta as the item's whole state: what a merge keeps. A patch merged over
        an earlier one would lose the earlier one's fields."""
        d = self.delta
        if d.op != "patch":
            return self.body
        if self._whole is None:
            self._whole = orjson.dumps(
                {"l": d.layer, "op": "upsert", "id": d.id, "seq": d.seq, "d": d.whole}
            )
        return self._whole


def encode_deltas(deltas: list[Delta]) -> list[Item]:
    return [
        Item(
            (d.layer, d.id),
            d.seq,
            orjson.dumps({"l": d.layer, "op": d.op, "id": d.id, "seq": d.seq, "d": d.data}),
            d,
        )
        for d in deltas
    ]


@dataclass(eq=False)
class Client:
    """One browser connection's queue."""

    id: int
    user: str
    maxsize: int
    coalesce_at: int
    pending: OrderedDict[_Key | int, tuple[int, bytes]] = field(default_factory=OrderedDict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    coalescing: bool = False
    dropped: bool = False
    sent: int = 0
    merged: int = 0
    _n: itertools.count[int] = field(default_factory=itertools.count)

    def offer(self, items: list[Item]) -> None:
        if self.dropped:
            return
        if not self.coalescing and len(self.pending) + len(items) > self.coalesce_at:
            self.coalescing = True
        for item in items:
            key = item.key
            if self.coalescing:
                # Behind: only the newest state of each item matters; move it to the end
                # so the order of first appearance never contradicts seq order.
                if key in self.pending:
                    del self.pending[key]
                    self.merged += 1
                    self.pending[key] = (item.seq, item.whole())
                else:
                    self.pending[key] = (item.seq, item.body)
            else:
                self.pending[next(self._n)] = (item.seq, item.body)
        if len(self.pending) > self.maxsize:
            self.dropped = True
            self.pending.clear()
        self.wake.set()

    def take(self) -> tuple[int, list[bytes]]:
        items = list(self.pending.values())
        self.pending.clear()
        self.coalescing = False
        self.wake.clear()
        self.sent += len(items)
        return (items[-1][0] if items else 0), [body for _, body in items]


class PushHub:
    def __init__(self, *, maxsize: int = 2000) -> None:
        self.maxsize = maxsize
        self.clients: set[Client] = set()
        self._ids = itertools.count(1)
        self.dropped_total = 0
        self.connected_total = 0
        # Whether the picture behind this hub is fed (the live pipeline sets it): each
        # message carries it, so a page can say when it shows an outdated picture.
        self.bus_state: Callable[[], dict[str, Any]] | None = None

    def join(self, user: str) -> Client:
        client = Client(
            id=next(self._ids), user=user, maxsize=self.maxsize, coalesce_at=self.maxsize // 4
        )
        self.clients.add(client)
        self.connected_total += 1
        return client

    def leave(self, client: Client) -> None:
        self.clients.discard(client)

    def publish(self, deltas: list[Delta]) -> None:
        if not deltas or not self.clients:
            return
        items = encode_deltas(deltas)
        for client in tuple(self.clients):
            was = client.dropped
            client.offer(items)
            if client.dropped and not was:
                self.dropped_total += 1

    def close_all(self) -> None:
        for client in self.clients:
            client.dropped = True
            client.wake.set()

    def stats(self) -> dict[str, Any]:
        return {
            "clients": len(self.clients),
            "connected_total": self.connected_total,
            "dropped_total": self.dropped_total,
            "max_pending": max((len(c.pending) for c in self.clients), default=0),
        }


async def sse_stream(
    hub: PushHub,
    client: Client,
    snapshot: dict[str, Any],
    now: Callable[[], float],
    *,
    heartbeat_s: float = 1.0,
    stopping: asyncio.Event | None = None,
) -> AsyncIterator[bytes]:
    """Server-sent events: `snapshot`, then `delta` batches, `hb`, `resync` on drop.

    Every message carries the server's `now`, so a browser can compute ages on the
    server's clock, and, behind a live bus, whether the picture is being fed (`bus`: `ok`,
    or `down` with `bus_since`): a page then says that it may be outdated. The heartbeat
    is an event, not a comment, because page scripts never see SSE comments and must
    notice a silent connection within seconds.
    """

    def bus() -> bytes:
        # `,"bus":"ok"` or `,"bus":"down","bus_since":…`; nothing without a live bus.
        return b"," + orjson.dumps(hub.bus_state())[1:-1] if hub.bus_state is not None else b""

    try:
        watermark = int(snapshot["seq"])
        state = hub.bus_state() if hub.bus_state is not None else {}
        # Encoded beside the loop: the picture of a large incident is megabytes, and
        # every other browser waits while the loop is busy.
        body = await asyncio.to_thread(encode_snapshot, {**snapshot, **state, "now": now()})
        yield b"event: snapshot\ndata: " + body + b"\n\n"
        while True:
            if stopping is not None and stopping.is_set():
                return
            try:
                await asyncio.wait_for(client.wake.wait(), heartbeat_s)
            except TimeoutError:
                yield b'event: hb\ndata: {"seq":%d,"now":%.3f%s}\n\n' % (watermark, now(), bus())
                continue
            if client.dropped:
                yield b'event: resync\ndata: {"reason": "too slow"}\n\n'
                return
            seq, bodies = client.take()
            if not bodies:
                continue
            watermark = max(watermark, seq)
            head = b'{"seq":%d,"now":%.3f%s,"deltas":[' % (watermark, now(), bus())
            yield b"event: delta\ndata: " + head + b",".join(bodies) + b"]}\n\n"
    finally:
        hub.leave(client)
