"""The demo's A.D.Le.R. reports, sent over the real route: two detections (the fall's
second report updates it), each with its place, the person's data kept apart."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from cockpit.auth import AuthStore
from feeds.sim import adler
from tests.serving import serve


@pytest.mark.slow
async def test_the_demo_reports_a_fall_and_a_co_alarm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The demo's minute, compressed: the same reports in their order, without the waits.
    original = adler.demo_detections
    monkeypatch.setattr(adler, "demo_detections", lambda now: [(0.0, r) for _, r in original(now)])
    async with serve(tmp_path / "data") as s:
        with AuthStore(tmp_path / "data" / "auth.sqlite") as auth:
            token = auth.add_device("demo-sim", ["adler"])
        await asyncio.wait_for(adler.run_adler(s.url, token), 30)
        async with httpx.AsyncClient(base_url=s.url, timeout=10) as c:
            await s.login(c)
            picture = (await c.get("/api/v1/situation")).json()
            health = (await c.get("/healthz")).json()
    found: dict[str, dict[str, Any]] = {d["id"]: d for d in picture["detections"]}
    assert set(found) == {"adler-demo-fall-1", "adler-demo-co-1"}
    fall = found["adler-demo-fall-1"]
    assert fall["category"] == "fall" and fall["reports"] == 2 and fall["confidence"] == 0.97
    assert fall["floor"] == "3. OG links" and fall["lat"] is not None
    assert found["adler-demo-co-1"]["category"] == "co_alarm"
    assert health["feeds"]["adler"]["accepted"] == 3 and health["feeds"]["adler"]["rejected"] == 0
