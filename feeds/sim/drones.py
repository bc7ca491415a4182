"""Two drones over the demo incident, each in its real protocols: MAVLink v2 over UDP for
telemetry, WebRTC over WHIP for video.

Drone 1 carries a visual camera, drone 2 a thermal one. Both circle the fire with their
gimbal on the fire; the thermal picture is rendered from the scene through the same
camera model the cockpit uses (`cockpit.geo`), so the hotspot it shows projects back onto
the fire — the check that the whole chain (MAVLink pose, gimbal, footprint, vision,
projection) agrees with itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
import cv2
import httpx
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from cockpit.geo import (
    Camera,
    Pose,
    destination,
    distance_m,
    euler_to_quaternion,
    ground_to_pixel,
    offset,
)
from feeds.sim.scenario import FIRE

__all__ = ["DRONES", "DroneState", "Orbit", "ThermalTrack", "VisualTrack", "run_drones"]

log = logging.getLogger("feeds.sim.drones")

GROUND_MSL_M = 70.0  # Dortmund harbour, about 70 m above sea level
FIRE_RADIUS_M = 12.0  # the burning part of the warehouse roof
FPS = 10  # enough to see; cheap to encode on a 2-core box
WIDTH, HEIGHT = 640, 360


@dataclass(frozen=True)
class DroneState:
    lat: float
    lon: float
    height_m: float
    heading_deg: float  # direction of flight
    speed_mps: float
    gimbal_pitch_deg: float
    gimbal_yaw_deg: float  # against north

    def pose(self) -> Pose:
        return Pose(
            lat=self.lat,
            lon=self.lon,
            height_m=self.height_m,
            yaw_deg=self.heading_deg,
            gimbal_pitch_deg=self.gimbal_pitch_deg,
            gimbal_yaw_deg=self.gimbal_yaw_deg,
            gimbal_yaw_absolute=True,
        )


@dataclass(frozen=True)
class Orbit:
    """A drone circling `centre`, its camera held on `aim` (a little off it: a real
    operator never centres a target exactly)."""

    sysid: int
    callsign: str
    thermal: bool
    camera: Camera
    centre: tuple[float, float] = FIRE
    radius_m: float = 100.0
    height_m: float = 90.0
    period_s: float = 180.0
    phase_deg: float = 0.0
    aim_off_m: tuple[float, float] = (4.0, -3.0)  # (north, east) from the centre

    @property
    def entity(self) -> str:
        return f"uav-{self.sysid}"

    @property
    def aim(self) -> tuple[float, float]:
        return offset(*self.centre, *self.aim_off_m)

    def state(self, t: float) -> DroneState:
        angle = (self.phase_deg + 360.0 * t / self.period_s) % 360.0  # bearing from centre
        lat, lon = destination(*self.centre, angle, self.radius_m)
        target = self.aim
        ground = distance_m((lat, lon), target)
        # Clockwise seen from above: flying along the bearing + 90°.
        heading = (angle + 90.0) % 360.0
        bearing_to_aim = (angle + 180.0) % 360.0 if ground > 1 else heading
        pitch = -math.degrees(math.atan2(self.height_m, max(ground, 0.1)))
        speed = 2 * math.pi * self.radius_m / self.period_s
        return DroneState(lat, lon, self.height_m, heading, speed, pitch, bearing_to_aim)


DRONES = (
    Orbit(1, "Drohne 1", thermal=False, camera=Camera(82.0, 52.0), phase_deg=200.0),
    Orbit(
        2,
        "Drohne 2 (IR)",
        thermal=True,
        camera=Camera(50.0, 30.0),
        radius_m=120.0,
        height_m=100.0,
        period_s=240.0,
        phase_deg=20.0,
    ),
)


# --- MAVLink ------------------------------------------------------------------------------


@dataclass
class _Link:
    """One drone's MAVLink encoder (its own sequence numbers)."""

    orbit: Orbit
    mav: Any = None
    boot: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.mav = mavlink2.MAVLink(None, srcSystem=self.orbit.sysid, srcComponent=1)

    def _pack(self, msg: Any) -> bytes:
        return bytes(msg.pack(self.mav))

    def frames(self, t: float, *, slow: bool) -> list[bytes]:
        s = self.orbit.state(t)
        m = self.mav
        boot_ms = int((time.monotonic() - self.boot) * 1000) & 0xFFFFFFFF
        lat, lon = int(s.lat * 1e7), int(s.lon * 1e7)
        vn = s.speed_mps * math.cos(math.radians(s.heading_deg))
        ve = s.speed_mps * math.sin(math.radians(s.heading_deg))
        q = euler_to_quaternion(0.0, s.gimbal_pitch_deg, s.gimbal_yaw_deg)
        out = [
            self._pack(m.global_position_int_encode(
                boot_ms, lat, lon, int((GROUND_MSL_M + s.height_m) * 1000), int(s.height_m * 1000),
                int(vn * 100), int(ve * 100), 0, int(s.heading_deg * 100) % 36000,
            )),
            self._pack(m.attitude_encode(boot_ms, 0.0, 0.0, math.radians(s.heading_deg), 0, 0, 0)),
            # Earth-frame gimbal attitude (GIMBAL_DEVICE_FLAGS_YAW_IN_EARTH_FRAME = 64).
            self._pack(m.gimbal_device_attitude_status_encode(
                0, 0, boot_ms, 64, list(q), 0.0, 0.0, 0.0, 0,
            )),
        ]  # fmt: skip
        if slow:
            out += [
                self._pack(m.heartbeat_encode(2, 3, 217, 5, 4)),  # quad, ArduPilot, armed, LOITER
                self._pack(m.gps_raw_int_encode(
                    int(time.time() * 1e6), 3, lat, lon, int((GROUND_MSL_M + s.height_m) * 1000),
                    80, 120, int(s.speed_mps * 100), int(s.heading_deg * 100) % 36000, 14,
                )),
                self._pack(m.sys_status_encode(0, 0, 0, 250, 15600, 800, 76, 0, 0, 0, 0, 0, 0)),
            ]  # fmt: skip
        return out


async def _mavlink(
    orbits: tuple[Orbit, ...], addr: tuple[str, int], t0: float, stop: asyncio.Event
) -> None:
    links = [_Link(o) for o in orbits]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    tick = 0
    try:
        while not stop.is_set():
            t = t0 + time.monotonic()
            for link in links:
                for data in link.frames(t, slow=tick % 5 == 0):
                    with contextlib.suppress(OSError):  # nobody listening yet: keep flying
                        sock.sendto(data, addr)
            tick += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)  # 5 Hz position, 1 Hz the rest
    finally:
        sock.close()


# --- video ---------------------------------------------------------------------------------


class _Paced(MediaStreamTrack):
    kind = "video"

    def __init__(self, orbit: Orbit, t0: float) -> None:
        super().__init__()
        self.orbit, self.t0 = orbit, t0
        self._start: float | None = None
        self._n = 0

    async def recv(self) -> av.VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._n += 1
            wait = self._start + self._n / FPS - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        t = self.t0 + time.monotonic()
        frame = self.render(self.orbit.state(t))
        frame.pts = self._n * (90_000 // FPS)
        frame.time_base = Fraction(1, 90_000)
        return frame

    def render(self, s: DroneState) -> av.VideoFrame:
        raise NotImplementedError

    def fire_pixel(self, s: DroneState) -> tuple[int, int, int] | None:
        """The fire's centre and radius in pixels, or None when out of the picture."""
        cam, pose = self.orbit.camera, s.pose()
        centre = ground_to_pixel(pose, cam, *self.orbit.centre)
        edge = ground_to_pixel(pose, cam, *offset(*self.orbit.centre, 0.0, FIRE_RADIUS_M))
        if centre is None or edge is None:
            return None
        x, y = centre[0] * WIDTH, centre[1] * HEIGHT
        r = math.hypot(edge[0] * WIDTH - x, edge[1] * HEIGHT - y)
        return int(x), int(y), max(2, int(r))


class ThermalTrack(_Paced):
    """A thermal camera: cool ground, the fire white-hot where the camera model puts it."""

    def __init__(self, orbit: Orbit, t0: float) -> None:
        super().__init__(orbit, t0)
        rng = np.random.default_rng(orbit.sysid)
        noise = rng.normal(0.0, 6.0, (HEIGHT // 8, WIDTH // 8)).astype(np.float32)
        self.ground = np.clip(
            55 + cv2.resize(noise, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC), 0, 255
        ).astype(np.uint8)

    def render(self, s: DroneState) -> av.VideoFrame:
        img = self.ground.copy()
        fire = self.fire_pixel(s)
        if fire is not None:
            x, y, r = fire
            # Warm surroundings, blurred at a quarter of the size: a full-size blur of this
            # radius costs hundreds of milliseconds.
            glow = np.zeros((HEIGHT // 4, WIDTH // 4), np.float32)
            cv2.circle(glow, (x // 4, y // 4), max(1, int(r * 1.8) // 4), 95.0, -1)
            soft = cv2.GaussianBlur(glow, (0, 0), max(1.0, r / 8))
            warm = cv2.resize(soft, (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR)
            img = np.clip(img + warm, 0, 255).astype(np.uint8)
            cv2.circle(img, (x, y), r, 255, -1)  # the fire itself: saturated
        return av.VideoFrame.from_ndarray(img, format="gray")


class VisualTrack(_Paced):
    """A daylight camera: a rough picture of the scene (ground, roof, flames, smoke)."""

    def render(self, s: DroneState) -> av.VideoFrame:
        img = np.full((HEIGHT, WIDTH, 3), (88, 108, 96), np.uint8)
        img[::24, :] = (120, 130, 125)  # a grid gives the eye the motion
        img[:, ::24] = (120, 130, 125)
        fire = self.fire_pixel(s)
        if fire is not None:
            x, y, r = fire
            cv2.rectangle(img, (x - 3 * r, y - 2 * r), (x + 3 * r, y + 2 * r), (70, 70, 78), -1)
            cv2.circle(img, (x, y), r, (0, 90, 255), -1)
            cv2.circle(img, (x + r, y - r), int(r * 1.6), (150, 150, 150), -1)
        cv2.putText(img, self.orbit.callsign, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    (255, 255, 255), 1, cv2.LINE_AA)  # fmt: skip
        return av.VideoFrame.from_ndarray(img, format="bgr24")


async def _video(orbit: Orbit, base_url: str, token: str, t0: float, stop: asyncio.Event) -> None:
    """Publish one drone's camera over WHIP; reconnect with backoff like a drone would."""
    delay = 1.0
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/sdp"}
    async with httpx.AsyncClient(base_url=base_url, timeout=20) as client:
        while not stop.is_set():
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            track = (ThermalTrack if orbit.thermal else VisualTrack)(orbit, t0)
            pc.addTrack(track)
            location = None
            ended = asyncio.Event()

            @pc.on("connectionstatechange")
            def changed(pc: RTCPeerConnection = pc, ended: asyncio.Event = ended) -> None:
                if pc.connectionState in ("failed", "closed"):
                    ended.set()

            try:
                await pc.setLocalDescription(await pc.createOffer())
                r = await client.post(
                    f"/whip/{orbit.entity}", content=pc.localDescription.sdp, headers=headers
                )
                if r.status_code != 201:
                    raise RuntimeError(f"WHIP {r.status_code}: {r.text[:200]}")
                location = r.headers["location"]
                await pc.setRemoteDescription(RTCSessionDescription(sdp=r.text, type="answer"))
                delay = 1.0
                done = asyncio.ensure_future(stop.wait())
                lost = asyncio.ensure_future(ended.wait())
                await asyncio.wait({done, lost}, return_when=asyncio.FIRST_COMPLETED)
                for f in (done, lost):
                    f.cancel()
            except (httpx.HTTPError, RuntimeError, OSError) as exc:
                log.warning("%s: video not sent (%s); again in %.0f s", orbit.entity, exc, delay)
            finally:
                if location is not None:
                    with contextlib.suppress(httpx.HTTPError):
                        await client.delete(location, headers=headers)
                await pc.close()
            if not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, 10.0)


async def run_drones(
    base_url: str,
    video_token: str,
    mavlink_addr: tuple[str, int] | None,
    *,
    stop: asyncio.Event | None = None,
    start_s: float = 0.0,
    orbits: tuple[Orbit, ...] = DRONES,
) -> None:
    """Fly the drones until `stop`: MAVLink to `mavlink_addr` (skipped if None) and each
    camera over WHIP to `base_url`."""
    stop = stop or asyncio.Event()
    t0 = start_s - time.monotonic()
    tasks = [asyncio.create_task(_video(o, base_url, video_token, t0, stop)) for o in orbits]
    if mavlink_addr is not None:
        tasks.append(asyncio.create_task(_mavlink(orbits, mavlink_addr, t0, stop)))
    try:
        await asyncio.gather(*tasks)
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
