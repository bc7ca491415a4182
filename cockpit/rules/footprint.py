"""Where a drone's camera looks: its image footprint on the ground, from the picture.

A rule over one entity (pure): the position and height above ground from its latest
position report, the attitude and gimbal from its readings (as `feeds/mavlink.py` and
the native telemetry name them), and the camera's field of view from the configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cockpit.geo import Camera, Pose, footprint

__all__ = ["DEFAULT_CAMERA", "camera_pose", "footprint_of"]

# A typical wide drone camera (about 82° × 52° at 16:9), used where none is configured.
DEFAULT_CAMERA: tuple[float, float] = (82.0, 52.0)
MAX_RANGE_M = 1500.0  # a footprint beyond this says more about the model than the ground


def _reading(entity: Mapping[str, Any], name: str, default: float | None = None) -> float | None:
    r = entity["readings"].get(name)
    return default if r is None else float(r["value"])


def camera_pose(entity: Mapping[str, Any]) -> Pose | None:
    """The camera pose of a drone entity, or None while position, height or the gimbal's
    pitch is unknown: a guessed pose would draw a confident footprint, and place
    detections, somewhere the camera may not be looking."""
    lat, lon, height = entity.get("lat"), entity.get("lon"), entity.get("alt_m")
    if lat is None or lon is None or height is None or height <= 1.0:
        return None  # on the ground (or unknown): no meaningful footprint
    gimbal_pitch = _reading(entity, "gimbal_pitch_deg")
    if gimbal_pitch is None:
        return None
    heading = entity.get("heading_deg")
    yaw = _reading(entity, "yaw_deg", heading if heading is not None else 0.0)
    gimbal_yaw = _reading(entity, "gimbal_yaw_deg")
    return Pose(
        lat=lat,
        lon=lon,
        height_m=height,
        roll_deg=_reading(entity, "roll_deg", 0.0) or 0.0,
        pitch_deg=_reading(entity, "pitch_deg", 0.0) or 0.0,
        yaw_deg=yaw or 0.0,
        gimbal_pitch_deg=gimbal_pitch,
        # feeds/mavlink.py reports the gimbal's yaw against north; without a gimbal
        # reading the camera looks along the heading.
        gimbal_yaw_deg=gimbal_yaw if gimbal_yaw is not None else 0.0,
        gimbal_yaw_absolute=gimbal_yaw is not None,
    )


def footprint_of(entity: Mapping[str, Any], fov: tuple[float, float]) -> list[list[float]] | None:
    """The ground polygon ([[lat, lon], …]) the camera sees, or None."""
    pose = camera_pose(entity)
    if pose is None:
        return None
    ring = footprint(pose, Camera(*fov), max_range_m=MAX_RANGE_M)
    if ring is None:
        return None
    return [[round(lat, 7), round(lon, 7)] for lat, lon in ring]
