"""Push to browsers: every delta while a client keeps up, latest-per-item when it lags,
dropped with a resync when it stays behind; snapshot first, then deltas."""

from __future__ import annotations

import asyncio

import orjson

from cockpit.push import PushHub, sse_stream
from cockpit.situation import Delta


def _delta(entity: str, seq: int) -> Delta:
    return Delta("entities", "upsert", entity, seq, {"id": entity, "lat": 51.0 + seq * 1e-4})


def test_a_client_that_keeps_up_gets_every_delta_in_order() -> None:
    hub = PushHub(maxsize=100)
    client = hub.join("el")
    for seq in range(1, 11):
        hub.publish([_delta("hlf-1", seq)])
    watermark, bodies = client.take()
    assert watermark == 10
    assert [orjson.loads(b)["seq"] for b in bodies] == list(range(1, 11))


def test_a_lagging_client_gets_the_latest_state_per_item() -> None:
    hub = PushHub(maxsize=400)  # coalescing starts at a quarter of the bound
    client = hub.join("el")
    for seq in range(1, 301):
        hub.publish([_delta(f"u{seq % 5}", seq)])
    assert not client.dropped and client.merged > 0
    watermark, bodies = client.take()
    latest = {orjson.loads(b)["id"]: orjson.loads(b)["seq"] for b in bodies}
    assert watermark == 300
    assert latest == {f"u{s % 5}": s for s in range(296, 301)}
    seqs = [orjson.loads(b)["seq"] for b in bodies]
    assert seqs == sorted(seqs), "never out of order"


def test_a_client_that_stays_behind_is_dropped_and_told_to_resync() -> None:
    hub = PushHub(maxsize=50)
    slow, fast = hub.join("wall"), hub.join("el")
    for seq in range(1, 200):
        hub.publish([_delta(f"u{seq}", seq)])  # all different items: nothing to merge
        if seq % 10 == 0:
            fast.take()
    assert slow.dropped and not fast.dropped
    assert hub.stats()["dropped_total"] == 1


async def test_sse_sends_snapshot_then_deltas_then_resync_on_drop() -> None:
    hub = PushHub(maxsize=10)
    client = hub.join("el")
    stream = sse_stream(hub, client, {"seq": 5, "entities": []}, lambda: 1000.0, heartbeat_s=5)
    first = await anext(stream)
    assert first.startswith(b"event: snapshot\n") and b'"seq":5' in first
    hub.publish([_delta("hlf-1", 6), _delta("hlf-1", 7)])
    second = await asyncio.wait_for(anext(stream), 1)
    payload = orjson.loads(second.split(b"data: ", 1)[1])
    assert payload["seq"] == 7 and [d["seq"] for d in payload["deltas"]] == [6, 7]
    hub.publish([_delta(f"u{i}", 8 + i) for i in range(20)])  # beyond the bound
    third = await asyncio.wait_for(anext(stream), 1)
    assert third.startswith(b"event: resync\n")
    await stream.aclose()
    assert client not in hub.clients
