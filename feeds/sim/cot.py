"""Two ATAK users on foot near the fire, speaking Cursor-on-Target over TCP like ATAK.

Each keeps one TCP connection to the cockpit's CoT port, authenticates with TAK's auth
message (`<auth><cot username password uid/></auth>`: the demo device and its token),
then sends a position report (`a-f-G-U-C`, with contact, group, takv, track and status)
every `PLI_EVERY_S` and reads (and discards) what the cockpit sends: a TAK client that
does not read is cut off. A refused or dropped connection is retried with backoff
(0.5 s doubling to 10 s).

They walk a loop around the fire: "Trupp 1" (a search team) 60 m out, "Trupp 2" (a
team lead) 90 m out the other way round, at walking pace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from feeds.sim.geo import LatLon, destination
from feeds.sim.scenario import FIRE

__all__ = ["PLI_EVERY_S", "TAK_USERS", "TakUser", "pli", "run_tak_users"]

log = logging.getLogger("feeds.sim.cot")

PLI_EVERY_S = 2.0
_BACKOFF_START_S, _BACKOFF_CAP_S = 0.5, 10.0


@dataclass(frozen=True)
class TakUser:
    uid: str
    callsign: str
    group: str
    role: str
    radius_m: float
    speed_mps: float
    clockwise: bool

    def where(self, t: float) -> tuple[LatLon, float]:
        """Position and course (degrees) at `t` seconds into the walk."""
        turn = self.speed_mps * t / self.radius_m  # radians walked around the fire
        angle = math.degrees(turn) * (1 if self.clockwise else -1)
        course = (angle + (90 if self.clockwise else -90)) % 360
        return destination(FIRE, angle % 360, self.radius_m), course


TAK_USERS = (
    TakUser("ANDROID-sim-trupp-1", "Trupp 1", "Red", "Team Member", 60.0, 1.2, True),
    TakUser("ANDROID-sim-trupp-2", "Trupp 2", "Red", "Team Lead", 90.0, 1.0, False),
)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def pli(user: TakUser, at: LatLon, course: float, now: datetime, battery: int) -> bytes:
    """A position report as ATAK writes it (CoT 2.0)."""
    t, stale = _iso(now), _iso(now + timedelta(seconds=6 * PLI_EVERY_S))
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<event version="2.0" uid="{user.uid}" type="a-f-G-U-C" how="m-g" time="{t}" '
        f'start="{t}" stale="{stale}"><point lat="{at[0]:.7f}" lon="{at[1]:.7f}" '
        'hae="95.0" ce="5.0" le="9999999.0"/><detail>'
        f'<contact callsign="{user.callsign}" endpoint="*:-1:stcp"/>'
        f'<uid Droid="{user.callsign}"/><__group name="{user.group}" role="{user.role}"/>'
        f'<status battery="{battery}"/>'
        '<takv device="SIM" platform="ATAK-CIV" os="34" version="5.1.0 (sim)"/>'
        f'<track course="{course:.1f}" speed="{user.speed_mps:.2f}"/>'
        '<precisionlocation altsrc="GPS" geopointsrc="GPS"/></detail></event>'
    ).encode()


async def _drain(reader: asyncio.StreamReader) -> None:
    while await reader.read(65536):
        pass


async def _walk(user: TakUser, host: str, port: int, device: str, token: str) -> None:
    t0 = time.monotonic()
    delay = _BACKOFF_START_S
    while True:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            log.info(
                "%s: CoT port %s:%d: %s; again in %.1f s", user.callsign, host, port, exc, delay
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _BACKOFF_CAP_S)
            continue
        drain = asyncio.create_task(_drain(reader))
        try:
            auth = f'<cot username="{device}" password="{token}" uid="{user.uid}"/>'
            writer.write(f"<auth>{auth}</auth>".encode())
            while not drain.done():
                t = time.monotonic() - t0
                at, course = user.where(t)
                battery = max(5, 100 - int(t / 60))  # a phone loses ~1 % a minute
                writer.write(pli(user, at, course, datetime.now(UTC), battery))
                await writer.drain()
                delay = _BACKOFF_START_S
                await asyncio.sleep(PLI_EVERY_S)
        except OSError as exc:
            log.info("%s: connection lost: %s", user.callsign, exc)
        finally:
            drain.cancel()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        await asyncio.sleep(delay)
        delay = min(delay * 2, _BACKOFF_CAP_S)


async def run_tak_users(
    host: str, port: int, device: str, token: str, users: tuple[TakUser, ...] = TAK_USERS
) -> None:
    """Walk every user until cancelled."""
    await asyncio.gather(*(_walk(u, host, port, device, token) for u in users))
