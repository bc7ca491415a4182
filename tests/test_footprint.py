"""A drone's camera footprint in the picture: pose from its reports, field of view from
the configuration; hand-computed cases (cockpit/geo.py has the geometry's own tests)."""

from __future__ import annotations

from typing import Any

from cockpit.geo import distance_m, offset
from cockpit.rules.footprint import camera_pose, footprint_of
from cockpit.situation import Situation
from tests.factories import numbered, position, readings

HERE = (51.5287, 7.4441)


def drone(alt_m: float | None, **values: float) -> dict[str, Any]:
    return {
        "id": "uav-1",
        "kind": "drone",
        "lat": HERE[0],
        "lon": HERE[1],
        "alt_m": alt_m,
        "heading_deg": 0.0,
        "readings": {k: {"value": v, "unit": "deg"} for k, v in values.items()},
    }


def centre(ring: list[list[float]]) -> tuple[float, float]:
    return sum(p[0] for p in ring) / len(ring), sum(p[1] for p in ring) / len(ring)


def test_looking_straight_down_from_100_m_with_90_degrees_sees_200_m_across() -> None:
    # hfov 90°, vfov 90°: half-width = 100 m · tan(45°) = 100 m each way.
    ring = footprint_of(drone(100.0, gimbal_pitch_deg=-90.0), (90.0, 90.0))
    assert ring is not None and len(ring) == 4
    lats = sorted(p[0] for p in ring)
    lons = sorted(p[1] for p in ring)
    north = distance_m((lats[0], HERE[1]), (lats[-1], HERE[1]))
    east = distance_m((HERE[0], lons[0]), (HERE[0], lons[-1]))
    assert abs(north - 200.0) < 0.5 and abs(east - 200.0) < 0.5
    assert distance_m(centre(ring), HERE) < 0.5


def test_a_gimbal_at_45_degrees_looking_east_centres_the_footprint_100_m_east() -> None:
    # Height 100 m, depression 45°: the centre ray meets the ground 100 m / tan(45°) away.
    pose = camera_pose(drone(100.0, gimbal_pitch_deg=-45.0, gimbal_yaw_deg=90.0))
    assert pose is not None and pose.gimbal_yaw_absolute
    from cockpit.geo import Camera, project_pixel

    hit = project_pixel(pose, Camera(60.0, 40.0), 0.5, 0.5)
    assert hit is not None and distance_m(hit, offset(*HERE, 0.0, 100.0)) < 0.5


def test_no_footprint_on_the_ground_without_a_height_or_a_gimbal() -> None:
    assert footprint_of(drone(None, gimbal_pitch_deg=-90.0), (82.0, 52.0)) is None
    assert footprint_of(drone(0.5, gimbal_pitch_deg=-90.0), (82.0, 52.0)) is None
    assert footprint_of(drone(100.0), (82.0, 52.0)) is None  # where does it look? unknown
    # Looking up: the image's lower edge is 20° - 15° = 5° above the horizon.
    assert footprint_of(drone(50.0, gimbal_pitch_deg=20.0), (60.0, 30.0)) is None


def test_the_fold_keeps_each_drones_footprint_current() -> None:
    sit = Situation(incident="t", cameras={"uav-1": (90.0, 90.0)})
    sit.apply_all(
        numbered(
            [
                position("uav-1", HERE[0], HERE[1], 0, kind="drone", alt_m=100.0),
                readings("uav-1", 1, kind="drone", gimbal_pitch_deg=-90.0),
                position("hlf-1", HERE[0], HERE[1], 2, alt_m=100.0),  # a vehicle: none
            ]
        )
    )
    view = {e["id"]: e for e in sit.view(10.0 + 1795687200)["entities"]}
    ring = view["uav-1"]["footprint"]
    assert ring is not None and distance_m(centre(ring), HERE) < 0.5
    assert view["hlf-1"]["footprint"] is None
    # Restored from a snapshot, the picture (footprints included) is the same.
    again = Situation.restore(sit.snapshot(), cameras={"uav-1": (90.0, 90.0)})
    assert again.view(1795687210.0) == sit.view(1795687210.0)


def test_a_position_and_gimbal_in_one_message_give_a_footprint_at_once() -> None:
    # The position comes first (no gimbal yet: no footprint), the readings a moment later.
    sit = Situation(incident="t")
    sit.apply_all(
        numbered(
            [
                position("uav-2", HERE[0], HERE[1], 0, kind="drone", alt_m=80.0),
                readings("uav-2", 0, kind="drone", gimbal_pitch_deg=-60.0),
            ]
        )
    )
    assert sit.entities["uav-2"]["footprint"] is not None
