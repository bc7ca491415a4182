"""The vocabulary: exact JSON round trips for every kind, sortable ids."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta, timezone

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from cockpit.events import event_to_json, new_event_id, parse_event
from tests.factories import journal, position, readings, status

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _ulid_ms(value: str) -> int:
    n = 0
    for ch in value[:10]:
        n = n * 32 + _CROCKFORD.index(ch)
    return n


def test_ids_are_ulids_that_sort_in_creation_order_and_carry_the_time() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_event_id() for _ in range(5000)]
    after = time.time_ns() // 1_000_000
    assert all(re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", i) for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert before <= _ulid_ms(ids[0]) <= _ulid_ms(ids[-1]) <= after


@given(
    st.floats(-90, 90),
    st.floats(-180, 180),
    st.integers(-12, 14),
    st.integers(0, 999_999),
)
def test_json_round_trips_exactly_with_any_zone(
    lat: float, lon: float, hours: int, micros: int
) -> None:
    zone = timezone(timedelta(hours=hours))
    observed = datetime(2026, 11, 26, 10, 0, 0, micros, tzinfo=zone)
    for event in (
        msgspec.structs.replace(
            position("hlf-1", lat, lon, 0, seq=7, heading_deg=359.5), observed_at=observed
        ),
        readings("robot-1", 1, seq=8, co=12.5),
        status("uav-1", 2, seq=9, battery=42.0),
        journal("Lage: Vollbrand Lagerhalle", 3, seq=10),
    ):
        raw = event_to_json(event)
        again = parse_event(raw)
        assert again == event and event_to_json(again) == raw
        assert again.observed_at.astimezone(UTC) == event.observed_at.astimezone(UTC)
