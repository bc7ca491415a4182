"""Hostile bodies never give a 5xx, and every 4xx names a field and a reason."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serving import Served, serve_in_thread

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=25,
)

FIELDS = ["entity", "kind", "callsign", "observed_at", "position", "readings", "status", "meta"]


def _valid() -> dict[str, Any]:
    return {
        "entity": "robot-1",
        "kind": "robot",
        "observed_at": datetime.now(UTC).isoformat(),
        "position": {"lat": 51.5, "lon": 7.4, "heading_deg": 10},
        "readings": {"co": {"value": 1.0, "unit": "ppm"}},
    }


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """A valid message with one part replaced by anything."""
    msg = _valid()
    target = draw(st.sampled_from([*FIELDS, "position.lat", "position.heading_deg", "readings.co"]))
    value = draw(json_values)
    if "." in target:
        outer, inner = target.split(".")
        msg.setdefault(outer, {})
        if isinstance(msg[outer], dict):
            msg[outer][inner] = value
    else:
        msg[target] = value
    return [msg] if draw(st.booleans()) else msg


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data: Path = tmp_path_factory.mktemp("fuzz")
    with serve_in_thread(data) as s:
        yield s


@pytest.fixture(scope="module")
def http(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=10) as c:
        r = c.post("/api/v1/session", json={"username": "el", "password": served.passwords["el"]})
        assert r.status_code == 200
        yield c


def _check(r: httpx.Response) -> None:
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        body = r.json()
        assert body["error"] and body["errors"], body
        assert all(e["field"] and e["reason"] for e in body["errors"]), body


_FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@_FUZZ
@given(st.one_of(json_values, mutated()))
def test_telemetry_ingest_never_fails_on_any_json(
    served: Served, http: httpx.Client, body: Any
) -> None:
    r = http.post(
        "/api/v1/ingest/telemetry",
        content=orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS),
        headers={**served.device(), "Content-Type": "application/json"},
    )
    _check(r)


@_FUZZ
@given(st.binary(max_size=300))
def test_telemetry_ingest_never_fails_on_any_bytes(
    served: Served, http: httpx.Client, body: bytes
) -> None:
    r = http.post("/api/v1/ingest/telemetry", content=body, headers=served.device())
    _check(r)


@_FUZZ
@given(json_values)
def test_journal_and_login_never_fail(served: Served, http: httpx.Client, body: Any) -> None:
    raw = orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
    _check(http.post("/api/v1/journal", content=raw))
    with httpx.Client(base_url=served.url, timeout=10) as anon:
        _check(anon.post("/api/v1/session", content=raw))


@_FUZZ
@given(st.text(max_size=40), st.text(max_size=10))
def test_query_parameters_never_fail(http: httpx.Client, at: str, since: str) -> None:
    _check(http.get("/api/v1/situation", params={"at": at}))
    _check(http.get("/api/v1/events", params={"since": since}))
