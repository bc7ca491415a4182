"""Push to browsers: every delta while a client keeps up, latest-per-item when it lags,
dropped with a resync when it stays behind; snapshot first, then deltas."""

from __future__ import annotations

import asyncio

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from cockpit.events import Event
from cockpit.push import Client, PushHub, sse_stream
from cockpit.situation import Delta, Situation
from tests.factories import numbered, position, readings, removed, status


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


# --- entity patches: what a browser rebuilds from snapshot + deltas is the picture --------


def _browser_apply(model: dict[str, dict[str, object]], d: dict[str, object]) -> None:
    """What assets/stream.js does with an entity delta."""
    eid = str(d["id"])
    if d["op"] == "remove":
        model.pop(eid, None)
        return
    data = d["d"]
    assert isinstance(data, dict)
    if d["op"] == "upsert":
        model[eid] = data
        return
    assert d["op"] == "patch" and eid in model, "a patch needs the entity it patches"
    old = model[eid]
    new = {**old, **data}
    for sub in ("readings", "status"):
        if sub in data:
            new[sub] = {**old[sub], **data[sub]}  # type: ignore[dict-item]
    model[eid] = new


def _entities_of(sit: Situation) -> dict[str, object]:
    return {e["id"]: e for e in orjson.loads(orjson.dumps(sit.live_state()["entities"]))}


_events = st.lists(
    st.tuples(
        st.sampled_from(["pos", "read", "status", "remove"]),
        st.sampled_from(["hlf-1", "robot-1", "uav-1"]),
        st.integers(min_value=0, max_value=300),
        st.sampled_from([0.0, 1.0, 2.0]),
    ),
    min_size=20,
    max_size=120,
)


def _make(kind: str, ent: str, t: int, v: float) -> Event:
    if kind == "pos":
        return position(ent, 51.5 + v * 1e-3, 7.4, t)
    if kind == "read":
        return readings(ent, t, co=v * 10, battery=50 + v)
    if kind == "status":
        return status(ent, t, battery=40 + v)
    return removed(ent, t)


def _read(client: Client, model: dict[str, dict[str, object]]) -> None:
    for body in client.take()[1]:
        d = orjson.loads(body)
        if d["l"] == "entities":
            _browser_apply(model, d)


@settings(max_examples=300, deadline=None)
@given(_events, st.data())
def test_a_browser_rebuilds_the_picture_from_snapshot_and_patches(
    raw: list[tuple[str, str, int, float]], data: st.DataObject
) -> None:
    """Whether it keeps up or lags (merged deltas), whenever it joined, and also after
    everyone had left for a while (no deltas made then)."""
    events = numbered([_make(*r) for r in raw])
    n = len(events)
    maxsize = data.draw(st.sampled_from([8, 40, 10_000]), label="queue bound")
    every = data.draw(st.sampled_from([1, 4, 16]), label="reads every n events")
    joins = set(data.draw(st.lists(st.integers(0, n), max_size=4), label="joins"))
    leaves = set(data.draw(st.lists(st.integers(0, n), max_size=3), label="leaves"))
    sit = Situation(incident="test")
    hub = PushHub(maxsize=maxsize)
    clients: list[tuple[Client, dict[str, dict[str, object]]]] = []
    for i in range(n + 1):
        if i in leaves and clients:
            gone, _ = clients.pop(0)
            hub.leave(gone)
        if i in joins:  # join and snapshot in one step, as the stream route does
            clients.append((hub.join("el"), dict(_entities_of(sit))))  # type: ignore[arg-type]
        if i == n:
            break
        sit.emit = bool(hub.clients)  # as the pipeline does
        hub.publish(sit.apply(events[i]))
        for k, (client, model) in enumerate(clients):
            if client.dropped:  # told to resync: a new snapshot
                hub.leave(client)
                clients[k] = (hub.join("el"), dict(_entities_of(sit)))  # type: ignore[arg-type]
            elif i % every == 0:
                _read(client, model)
    merged = 0
    for client, model in clients:
        merged += client.merged
        _read(client, model)
        assert model == _entities_of(sit)


def test_a_moving_unit_sends_only_what_changed() -> None:
    events = numbered([position("hlf-1", 51.5, 7.4, 0), position("hlf-1", 51.501, 7.4, 5)])
    sit = Situation(incident="test")
    first = sit.apply(events[0])[0]
    second = sit.apply(events[1])[0]
    assert first.op == "upsert" and second.op == "patch"
    assert second.data is not None and second.whole is not None
    assert set(second.data) == {"lat", "observed_at", "last_reported", "last_changed"}
    assert second.whole["lat"] == 51.501 and second.whole["callsign"] == first.data["callsign"]  # type: ignore[index]
    assert len(orjson.dumps(second.data)) * 2 < len(orjson.dumps(second.whole))


def test_a_value_that_changed_and_changed_back_unseen_still_reaches_a_new_browser() -> None:
    a, b = 51.5, 51.6
    events = numbered(
        [
            position("hlf-1", a, 7.4, 0),
            position("hlf-1", b, 7.4, 1),  # nobody connected: no delta made
            position("hlf-1", a, 7.4, 2),  # back where the last delta said it was
        ]
    )
    sit, hub = Situation(incident="test"), PushHub()
    first = hub.join("el")
    hub.publish(sit.apply(events[0]))
    hub.leave(first)
    sit.emit = False
    hub.publish(sit.apply(events[1]))
    second = hub.join("el")
    model = dict(_entities_of(sit))  # the snapshot says b
    sit.emit = True
    hub.publish(sit.apply(events[2]))
    _read(second, model)  # type: ignore[arg-type]
    assert model["hlf-1"]["lat"] == a  # type: ignore[index]
