"""The demo's drones through the real chain: MAVLink over UDP and thermal video over WHIP
into a running cockpit, the hotspot found in the forwarded video and placed on the ground
through the drone's reported pose and its camera model."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx

from cockpit.geo import distance_m
from feeds.sim.drones import DRONES, run_drones
from feeds.sim.scenario import FIRE
from tests.serving import serve


def _free_udp() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_thermal_drones_hotspot_lands_on_the_fire(tmp_path: Path) -> None:
    thermal = next(o for o in DRONES if o.thermal)
    port = _free_udp()
    async with serve(
        tmp_path / "data",
        mavlink_listen=f"udp:127.0.0.1:{port}",
        mavlink_callsigns={thermal.sysid: thermal.callsign},
        cameras={thermal.entity: (thermal.camera.hfov_deg, thermal.camera.vfov_deg)},
        video_analysis={thermal.entity: "thermal"},
    ) as s:
        stop = asyncio.Event()
        flying = asyncio.create_task(
            run_drones(s.url, s.tokens["uav"], ("127.0.0.1", port), stop=stop, orbits=(thermal,))
        )
        found = None
        try:
            async with httpx.AsyncClient(base_url=s.url, timeout=10) as c:
                await s.login(c)
                for _ in range(300):  # up to ~30 s on a busy machine
                    picture = (await c.get("/api/v1/situation")).json()
                    hot = [d for d in picture["detections"] if d["category"] == "hotspot"]
                    if hot and hot[0]["lat"] is not None:
                        found = hot[0]
                        break
                    await asyncio.sleep(0.1)
        finally:
            stop.set()
            await asyncio.wait_for(flying, 20)
        assert found is not None, "no hotspot detected"
        assert found["source"] == "video" and found["confidence"] > 0.5
        miss = distance_m((found["lat"], found["lon"]), FIRE)
        assert miss < 25.0, f"hotspot placed {miss:.1f} m from the fire"
        (uav,) = [e for e in picture["entities"] if e["id"] == thermal.entity]
        assert uav["callsign"] == thermal.callsign
        ring = uav["footprint"]  # at most half a second behind the pose (see Situation._aim)
        assert ring is None or len(ring) >= 4
        # The snapshot of the hotspot: a JPEG anyone logged in may see (no person in it).
        assert found["snapshot"].startswith(f"snapshots/{thermal.entity}/")
        async with httpx.AsyncClient(base_url=s.url, timeout=10) as c:
            await s.login(c, "viewer")
            r = await c.get(f"/api/v1/files/{found['snapshot']}")
            assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
            assert r.content[:3] == b"\xff\xd8\xff"
            person = s.settings.data_dir / "incidents" / "test-incident" / "snapshots" / "uav-2"
            (person / "uav-2-person-1-1.jpg").write_bytes(r.content)
            r = await c.get("/api/v1/files/snapshots/uav-2/uav-2-person-1-1.jpg")
            assert r.status_code == 403  # a person's picture: not for a viewer
            assert (await c.get("/api/v1/files/snapshots/uav-2/..%2Fx")).status_code in (404, 422)
