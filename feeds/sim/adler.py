"""The demo's two A.D.Le.R. detections, reported as the home gateways would.

A fall in a flat a street from the fire (an older woman on the floor of her kitchen, the
gateway reporting again a minute later with a higher confidence) and a CO alarm a few
streets away. Both go to `POST /api/v1/ingest/adler` with a device token for the feed
`adler`. The persons are invented; their data is personal all the same and is sent as
the real gateways would send it, so that the cockpit's handling of it can be seen.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import httpx

from feeds.sim.geo import offset
from feeds.sim.scenario import FIRE

__all__ = ["demo_detections", "run_adler"]

log = logging.getLogger(__name__)


def demo_detections(now: datetime) -> list[tuple[float, dict[str, Any]]]:
    """(seconds after start, report) for the demo, in the order they are sent."""
    flat = offset(FIRE, 160.0, -120.0)  # a street north-west of the warehouse
    co = offset(FIRE, -420.0, 380.0)  # a few streets south-east
    t = now.astimezone(UTC).isoformat()
    fall = {
        "id": "adler-demo-fall-1",
        "type": "fall",
        "confidence": 0.82,
        "time": t,
        "device": "gw-hafen-17",
        "location": {
            "lat": flat[0],
            "lon": flat[1],
            "address": "Speicherstraße 12, 44147 Dortmund",
            "floor": "3. OG links",
            "access": "Schlüsseltresor am Eingang, Code bei der Leitstelle",
        },
        "person": {
            "id": "p-7f3a",
            "age_group": "senior",
            "mobility": "walking_aid",
            "needs": ["hearing_impaired"],
            "medical": "Antikoagulation",
            "contact": "Tochter, 0231 000000",
        },
        "summary": "Sturz erkannt, keine Reaktion",
    }
    alarm = {
        "id": "adler-demo-co-1",
        "type": "co_alarm",
        "confidence": 0.95,
        "time": t,
        "device": "co-nord-4",
        "location": {
            "lat": co[0],
            "lon": co[1],
            "address": "Lagerhausstraße 5, 44147 Dortmund",
            "floor": "EG",
        },
        "summary": "CO-Melder Küche, 190 ppm",
    }
    again = {**fall, "confidence": 0.97, "summary": "Sturz erkannt, seit 2 min keine Bewegung"}
    return [(5.0, fall), (20.0, alarm), (65.0, again)]


async def run_adler(base_url: str, token: str, *, stop: asyncio.Event | None = None) -> None:
    """Send the demo's reports at their times; a refused one is logged, not fatal."""
    headers = {"Authorization": f"Bearer {token}"}
    started = asyncio.get_running_loop().time()
    async with httpx.AsyncClient(base_url=base_url, timeout=15) as client:
        for at_s, report in demo_detections(datetime.now(UTC)):
            wait = at_s - (asyncio.get_running_loop().time() - started)
            if stop is not None:
                try:
                    await asyncio.wait_for(stop.wait(), max(0.0, wait))
                    return
                except TimeoutError:
                    pass
            else:
                await asyncio.sleep(max(0.0, wait))
            report = {**report, "time": datetime.now(UTC).isoformat()}
            try:
                r = await client.post("/api/v1/ingest/adler", json=report, headers=headers)
            except httpx.HTTPError as exc:
                log.warning("A.D.Le.R. demo report not sent: %s", exc)
                continue
            if r.status_code != 202:
                log.warning("A.D.Le.R. demo report refused: %s %s", r.status_code, r.text[:200])
