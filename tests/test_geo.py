"""cockpit.geo against hand-computed cases, then properties over random poses.

Positions are compared in metres in the tangent plane at the drone (`local_ne`), so a
tolerance reads as a distance on the ground.
"""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cockpit.geo import (
    Camera,
    LatLon,
    Pose,
    bearing_deg,
    destination,
    distance_m,
    downwind_sector,
    euler_to_quaternion,
    footprint,
    ground_to_pixel,
    local_ne,
    offset,
    project_pixel,
    quaternion_to_euler,
    to_geojson_polygon,
)

LAT, LON = 51.5, 7.0  # Dortmund
HERE = (LAT, LON)
SQUARE = Camera(90, 90)

# WGS84 at 51.5°: sin²φ = 0.6124755, w = 1 - e²·sin²φ = 0.9958999,
# M = a(1-e²)/w^1.5 = 6 374 604.3 m (north-south), N = a/√w = 6 391 253.0 m (east-west).
M_51_5 = 6_374_604.3
N_51_5 = 6_391_253.0


def pose(**kw: float | bool) -> Pose:
    base: dict[str, float | bool] = {"lat": LAT, "lon": LON, "height_m": 100.0}
    return Pose(**(base | kw))  # type: ignore[arg-type]


def ne(point: LatLon | None, origin: LatLon = HERE) -> tuple[float, float]:
    assert point is not None
    return local_ne(origin, point)


def near(got: tuple[float, float], want: tuple[float, float], tol: float = 1e-3) -> bool:
    return math.dist(got, want) <= tol


def ring_ne(ring: list[LatLon] | None, origin: LatLon = HERE) -> list[tuple[float, float]]:
    assert ring is not None
    return [local_ne(origin, p) for p in ring]


def covers(ring: list[tuple[float, float]], p: tuple[float, float], tol: float) -> bool:
    """p inside the polygon (even-odd), or within tol of its boundary."""
    inside = False
    for (n0, e0), (n1, e1) in zip(ring, ring[1:] + ring[:1], strict=True):
        if (e0 > p[1]) != (e1 > p[1]) and p[0] < n0 + (p[1] - e0) * (n1 - n0) / (e1 - e0):
            inside = not inside
        dn, de = n1 - n0, e1 - e0
        t = max(0.0, min(1.0, ((p[0] - n0) * dn + (p[1] - e0) * de) / (dn * dn + de * de or 1)))
        if math.dist(p, (n0 + t * dn, e0 + t * de)) <= tol:
            return True
    return inside


# --- the tangent plane ------------------------------------------------------------------------


def test_offset_north_and_east_by_hand() -> None:
    # 1 km north: Δφ = 1000 / M = 1.568723e-4 rad = 0.00898813°. M grows with latitude
    # (1.5 ppm over these 0.009°), so the hand value holds to ~1 mm = 1e-8°.
    lat, lon = offset(LAT, LON, 1000, 0)
    assert lat - LAT == pytest.approx(math.degrees(1000 / M_51_5), abs=1e-8)
    assert lon == pytest.approx(LON, abs=1e-12)
    # 1 km east: Δλ = 1000 / (N·cos φ) = 1000 / 3 978 648.5 = 2.513417e-4 rad = 0.01440081°.
    # A straight line due east leaves the parallel, which curves towards the pole, so the
    # point is d²·tanφ / 2N = 1e6 · 1.2572 / 12 782 506 = 0.0984 m south of 51.5°.
    lat, lon = offset(LAT, LON, 0, 1000)
    assert lon - LON == pytest.approx(math.degrees(1000 / (N_51_5 * math.cos(math.radians(LAT)))))
    assert math.radians(lat - LAT) * M_51_5 == pytest.approx(-0.0984, abs=2e-4)


def test_distance_and_bearing_by_hand() -> None:
    # 0.01° of latitude: M(51.505°) · 1.745329e-4 rad = 6 374 614 · 1.745329e-4 = 1112.580 m.
    assert distance_m(HERE, (LAT + 0.01, LON)) == pytest.approx(1112.580, abs=2e-3)
    assert bearing_deg(HERE, (LAT + 0.01, LON)) == pytest.approx(0.0, abs=1e-9)
    assert bearing_deg(HERE, (LAT - 0.01, LON)) == pytest.approx(180.0, abs=1e-9)
    # A point on the same parallel is not at 90°: the parallel curves towards the pole, so
    # the straight line to it aims Δλ·sinφ/2 north of east: 0.01° · 0.78261 / 2 = 0.00391°,
    # a bearing of 89.99609° (and 270.00391° to the west).
    assert bearing_deg(HERE, (LAT, LON + 0.01)) == pytest.approx(89.99609, abs=2e-5)
    assert bearing_deg(HERE, (LAT, LON - 0.01)) == pytest.approx(270.00391, abs=2e-5)
    assert distance_m(HERE, HERE) == 0.0


def test_destination_by_hand() -> None:
    # 1000 m at 0° is the same 1000/M north as `offset` (the tan correction is 8 µm here).
    assert ne(destination(LAT, LON, 0, 1000)) == pytest.approx((1000, 0), abs=1e-3)
    assert ne(destination(LAT, LON, 90, 1000)) == pytest.approx((0, 1000), abs=1e-3)
    assert ne(destination(LAT, LON, 225, 1000)) == pytest.approx(
        (-1000 / math.sqrt(2), -1000 / math.sqrt(2)), abs=1e-3
    )
    with pytest.raises(ValueError, match="tangent plane"):
        destination(LAT, LON, 0, 5e6)


points = st.tuples(st.floats(-80, 80), st.floats(-180, 180))


@given(points, st.floats(0, 360), st.floats(0, 5000))
def test_destination_distance_bearing_round_trip(start: LatLon, brg: float, d: float) -> None:
    end = destination(*start, brg, d)
    assert distance_m(start, end) == pytest.approx(d, abs=0.01)
    if d > 1:
        # A bearing error of δ rad misplaces the end by δ·d metres.
        miss = math.radians((bearing_deg(start, end) - brg + 180) % 360 - 180) * d
        assert abs(miss) < 0.01
    back = destination(*end, bearing_deg(end, start), distance_m(end, start))
    assert distance_m(back, start) < 0.01


@given(points, st.floats(-3500, 3500), st.floats(-3500, 3500))
def test_offset_local_ne_round_trip(start: LatLon, north: float, east: float) -> None:
    end = offset(*start, north, east)
    assert near(local_ne(start, end), (north, east), tol=0.01)
    assert distance_m(start, end) == pytest.approx(math.hypot(north, east), abs=0.01)


# --- camera by hand ---------------------------------------------------------------------------


def test_nadir_square() -> None:
    # Straight down from 100 m, hfov 90°: half width 100 · tan 45° = 100 m, a 200 m square
    # (vfov 90° too) centred under the drone. Image top faces the heading (north):
    # TL = north-west, TR = north-east, BR = south-east, BL = south-west.
    ring = ring_ne(footprint(pose(), SQUARE))
    want = [(100, -100), (100, 100), (-100, 100), (-100, -100)]
    assert len(ring) == 4
    assert all(near(g, w) for g, w in zip(ring, want, strict=True))


def test_nadir_vfov_side() -> None:
    # vfov 60°: the north-south half side is 100 · tan 30° = 57.735 m; east-west stays 100 m.
    ring = ring_ne(footprint(pose(), Camera(90, 60)))
    want = [(57.735, -100), (57.735, 100), (-57.735, 100), (-57.735, -100)]
    assert all(near(g, w) for g, w in zip(ring, want, strict=True))


def test_nadir_yaw_90_rotates_the_square() -> None:
    # Heading east: image top points east, image right points south. So TL = top & left =
    # east 57.735 & north 100; TR = east & south; BR = west & south; BL = west & north.
    ring = ring_ne(footprint(pose(yaw_deg=90), Camera(90, 60)))
    want = [(100, 57.735), (-100, 57.735), (-100, -57.735), (100, -57.735)]
    assert all(near(g, w) for g, w in zip(ring, want, strict=True))


def test_nadir_corners_are_the_footprint() -> None:
    cam, p = Camera(90, 60), pose(yaw_deg=33)
    corners = [project_pixel(p, cam, u, v) for u, v in ((0, 0), (1, 0), (1, 1), (0, 1))]
    assert all(near(ne(c), g) for c, g in zip(corners, ring_ne(footprint(p, cam)), strict=True))


def test_gimbal_45_down_looking_north() -> None:
    # Depression 45°, height 100 m: the centre ray meets the ground 100 / tan 45° = 100 m north.
    assert near(ne(project_pixel(pose(gimbal_pitch_deg=-45), SQUARE, 0.5, 0.5)), (100, 0))
    # The top-centre pixel is 45° higher: depression 0°, the horizon → nothing.
    assert project_pixel(pose(gimbal_pitch_deg=-45), SQUARE, 0.5, 0.0) is None
    # Bottom-centre: depression 90°, straight down.
    assert near(ne(project_pixel(pose(gimbal_pitch_deg=-45), SQUARE, 0.5, 1.0)), (0, 0))


def test_gimbal_yaw_relative_or_absolute() -> None:
    # Vehicle heading 90°, gimbal yaw 0°, 45° down: relative → looks east, 100 m east;
    # absolute → looks north.
    rel = pose(yaw_deg=90, gimbal_pitch_deg=-45)
    assert near(ne(project_pixel(rel, SQUARE, 0.5, 0.5)), (0, 100))
    absolute = pose(yaw_deg=90, gimbal_pitch_deg=-45, gimbal_yaw_absolute=True)
    assert near(ne(project_pixel(absolute, SQUARE, 0.5, 0.5)), (100, 0))
    # Relative yaws add: 60° + 30° = 90° → east.
    added = pose(yaw_deg=60, gimbal_yaw_deg=30, gimbal_pitch_deg=-45)
    assert near(ne(project_pixel(added, SQUARE, 0.5, 0.5)), (0, 100))
    # 225° absolute → south-west, 100 m away: (-70.711, -70.711).
    sw = pose(yaw_deg=10, gimbal_yaw_deg=225, gimbal_pitch_deg=-45, gimbal_yaw_absolute=True)
    assert near(ne(project_pixel(sw, SQUARE, 0.5, 0.5)), (-70.711, -70.711))


def test_stabilised_gimbal_ignores_vehicle_roll_and_pitch() -> None:
    # A horizon-referenced gimbal (MAVLink, DJI): the airframe tilting changes nothing.
    p = pose(roll_deg=20, pitch_deg=10, gimbal_pitch_deg=-45)
    assert near(ne(project_pixel(p, SQUARE, 0.5, 0.5)), (100, 0))


def test_body_fixed_camera_combines_vehicle_then_gimbal() -> None:
    # Nose up 10° + gimbal 55° down (relative to the airframe) = 45° down → 100 m north.
    p = pose(pitch_deg=10, gimbal_pitch_deg=-55, gimbal_stabilised=False)
    assert near(ne(project_pixel(p, SQUARE, 0.5, 0.5)), (100, 0))
    p = pose(yaw_deg=90, pitch_deg=10, gimbal_pitch_deg=-55, gimbal_stabilised=False)
    assert near(ne(project_pixel(p, SQUARE, 0.5, 0.5)), (0, 100))
    # A down-looking camera on a frame rolled 30° right-side-down: Rx(30°)·(0, 0, 1) =
    # (0, -sin 30°, cos 30°), i.e. it looks to the left (west) by 100 · tan 30° = 57.735 m.
    p = pose(roll_deg=30, gimbal_stabilised=False)
    assert near(ne(project_pixel(p, SQUARE, 0.5, 0.5)), (0, -57.735))
    # Heading east, the same roll looks left of east = north.
    p = pose(yaw_deg=90, roll_deg=30, gimbal_stabilised=False)
    assert near(ne(project_pixel(p, SQUARE, 0.5, 0.5)), (57.735, 0))
    # Order matters: Ry(10°)·Rx(30°)·Ry(-55°)·(1, 0, 0).
    #   Ry(-55°)·(1,0,0) = (cos 55°, 0, sin 55°) = (0.573576, 0, 0.819152)
    #   Rx(30°): (x, y·cos30 - z·sin30, y·sin30 + z·cos30) = (0.573576, -0.409576, 0.709406)
    #   Ry(10°): (x·cos10 + z·sin10, y, -x·sin10 + z·cos10) = (0.688049, -0.409576, 0.599028)
    #   ground at 100 m: 100 · (0.688049, -0.409576) / 0.599028 = (114.861, -68.373).
    p = pose(pitch_deg=10, roll_deg=30, gimbal_pitch_deg=-55, gimbal_stabilised=False)
    assert near(ne(project_pixel(p, SQUARE, 0.5, 0.5)), (114.861, -68.373), tol=2e-3)


def test_absolute_yaw_needs_a_stabilised_gimbal() -> None:
    with pytest.raises(ValueError, match="stabilised"):
        pose(gimbal_yaw_absolute=True, gimbal_stabilised=False)
    with pytest.raises(ValueError, match="finite"):
        pose(roll_deg=math.nan)
    with pytest.raises(ValueError, match="hfov"):
        Camera(180, 40)


def test_camera_from_hfov() -> None:
    # 16:9, hfov 90°: tan(vfov/2) = tan 45° · 9/16 = 0.5625 → vfov = 2·atan 0.5625 = 58.716°.
    assert Camera.from_hfov(90).vfov_deg == pytest.approx(58.7155, abs=1e-4)
    assert Camera.from_hfov(60, aspect=1).vfov_deg == pytest.approx(60)


def test_rays_at_or_above_the_horizon_see_nothing() -> None:
    level = pose(gimbal_pitch_deg=0)
    assert project_pixel(level, SQUARE, 0.5, 0.5) is None  # at the horizon
    assert project_pixel(level, SQUARE, 0.5, 0.25) is None  # above it
    # Below it but far: 1° down from 100 m meets the ground 100 / tan 1° = 5729.0 m out.
    shallow = pose(gimbal_pitch_deg=-1)
    assert project_pixel(shallow, SQUARE, 0.5, 0.5) is None  # default max range 2 km
    got = ne(project_pixel(shallow, SQUARE, 0.5, 0.5, max_range_m=10_000))
    assert near(got, (5728.996, 0), tol=0.01)
    # Looking up: the bottom edge (gimbal +30°, vfov 40° → +10°) is above the horizon.
    assert footprint(pose(gimbal_pitch_deg=30), Camera(60, 40)) is None
    # Landed: no height, no ground point.
    assert project_pixel(pose(height_m=0), SQUARE, 0.5, 0.5) is None
    assert footprint(pose(height_m=0), SQUARE) is None


def test_forward_camera_is_clipped_at_max_range() -> None:
    # 10° down, vfov 40°, hfov 60°, 100 m up. Top edge at +10° (above the horizon), bottom
    # edge at 30° down: 100 / tan 30° = 173.205 m north. Its corners: the world ray is
    # (cos 30°, ±tan 30°·cos 20°, sin 30°) / cos 20° → east = ±100 · 0.57735 · 0.93969 / 0.5
    # = ±108.506 m. The side edges run on the ground from those corners towards their
    # vanishing point, direction (1/cos 10°, ±tan 30°) = (1.015427, ±0.57735); they cross
    # the 2 km circle where |(173.205 + 1.015427 t, 108.506 + 0.57735 t)| = 2000:
    # 1.364425 t² + 477.046 t - 3 958 226 = 0 → t = 1537.36 → (1734.29, ±996.11).
    ring = ring_ne(footprint(pose(gimbal_pitch_deg=-10), Camera(60, 40)))
    assert near(ring[0], (1734.29, 996.11), tol=0.02)  # the right edge comes in…
    assert near(ring[1], (173.205, 108.506))  # BR
    assert near(ring[2], (173.205, -108.506))  # BL
    assert near(ring[3], (1734.29, -996.11), tol=0.02)  # …the left edge goes out
    # Then the range circle closes it clockwise over north, a vertex at least every 2°:
    # from -29.87° to +29.87° that is 30 steps, 29 points between.
    rim = ring[4:]
    assert len(rim) == 29
    assert all(abs(math.hypot(*p) - 2000) < 1e-3 for p in rim)  # 1 mm: plane round trip
    bearings = [math.degrees(math.atan2(e, n)) for n, e in [ring[3], *rim, ring[0]]]
    assert all(b0 < b1 for b0, b1 in itertools.pairwise(bearings))
    assert all(math.hypot(*p) <= 2000 + 1e-3 for p in ring)
    assert covers(ring, (1990, 0), tol=0) and not covers(ring, (2010, 0), tol=0)
    assert not covers(ring, (170, 0), tol=0)


def test_range_disc_inside_or_across_the_image() -> None:
    # 3000 m up, looking down, 120°×120°: the image is ±3000·tan 60° = ±5196 m wide, the
    # 500 m disc lies wholly inside → the circle itself, 180 vertices.
    ring = ring_ne(footprint(pose(height_m=3000), Camera(120, 120), max_range_m=500))
    assert len(ring) == 180
    assert all(abs(math.hypot(*p) - 500) < 1e-3 for p in ring)
    # 120°×60°: north-south the image ends at ±3000·tan 30° = ±1732.051 m, so the 2 km disc
    # is cut by two chords at e = ±√(2000² - 1732.051²) = ±1000 m.
    ring = ring_ne(footprint(pose(height_m=3000), Camera(120, 60)))
    assert near(ring[0], (1732.051, -1000)) and near(ring[1], (1732.051, 1000))
    assert all(abs(n) <= 1732.06 and math.hypot(n, e) <= 2000 + 1e-3 for n, e in ring)


# --- hazards and GeoJSON ----------------------------------------------------------------------


def test_downwind_sector_of_a_west_wind_points_east() -> None:
    # Wind FROM 270° blows towards 90°: the sector spans 90° ± 30° out to 1 km.
    ring = downwind_sector(LAT, LON, 270, 1000, 30)
    assert ring[0] == HERE
    rim = ring_ne(ring[1:])
    assert all(abs(math.hypot(*p) - 1000) < 1e-2 for p in rim)
    bearings = [math.degrees(math.atan2(e, n)) for n, e in rim]
    assert bearings[0] == pytest.approx(60, abs=1e-4)
    assert bearings[-1] == pytest.approx(120, abs=1e-4)
    assert all(b0 < b1 for b0, b1 in itertools.pairwise(bearings))
    assert len(rim) == 31  # 60° in 2° steps
    # Wind from the north spreads the smoke south.
    south = ring_ne(downwind_sector(LAT, LON, 0, 1000, 10))
    assert covers(south, (-900, 0), tol=0) and not covers(south, (900, 0), tol=0)
    # Half angle 180°: a full circle round the source.
    circle = ring_ne(downwind_sector(LAT, LON, 90, 500, 180))
    assert len(circle) == 180 and all(abs(math.hypot(*p) - 500) < 1e-2 for p in circle)
    with pytest.raises(ValueError, match="half angle"):
        downwind_sector(LAT, LON, 90, 500, 0)
    with pytest.raises(ValueError, match="length"):
        downwind_sector(LAT, LON, 90, -1, 30)


def test_geojson_polygon_is_closed_lon_lat_counter_clockwise() -> None:
    clockwise = [(1.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.0, 0.0)]  # (lat, lon): N, NE, E, here
    geom = to_geojson_polygon(clockwise)
    assert geom["type"] == "Polygon"
    coords = geom["coordinates"][0]
    assert coords[0] == coords[-1] and len(coords) == 5
    # Reversed to counter-clockwise (RFC 7946), in [lon, lat] order.
    assert coords[:4] == [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
    # Already counter-clockwise: kept as it is.
    assert to_geojson_polygon(list(reversed(clockwise))) == geom
    assert to_geojson_polygon([*clockwise, clockwise[0]])["coordinates"][0][:4] == coords[:4]
    with pytest.raises(ValueError, match="three"):
        to_geojson_polygon([(0.0, 0.0), (1.0, 1.0), (0.0, 0.0)])


# --- quaternions ------------------------------------------------------------------------------


def test_quaternion_to_euler_by_hand() -> None:
    h = math.sqrt(0.5)
    assert quaternion_to_euler((1, 0, 0, 0)) == (0.0, 0.0, 0.0)
    # 90° about z (down): q = (cos 45°, 0, 0, sin 45°) → yaw 90°.
    assert quaternion_to_euler((h, 0, 0, h)) == pytest.approx((0, 0, 90))
    # -45° about y: q = (cos 22.5°, 0, -sin 22.5°, 0) → pitch -45° (looking down).
    c, s = math.cos(math.radians(22.5)), math.sin(math.radians(22.5))
    assert quaternion_to_euler((c, 0, -s, 0)) == pytest.approx((0, -45, 0))
    # 30° about x: roll 30°. Float32 wire values are not quite unit: scale is ignored.
    c, s = math.cos(math.radians(15)), math.sin(math.radians(15))
    assert quaternion_to_euler((2 * c, 2 * s, 0, 0)) == pytest.approx((30, 0, 0))
    with pytest.raises(ValueError, match="zero"):
        quaternion_to_euler((0, 0, 0, 0))


def test_quaternion_at_the_nadir_lock() -> None:
    # At pitch -90° only yaw + roll is defined: (roll 10, yaw 20) is (roll 0, yaw 30).
    q = euler_to_quaternion(10, -90, 20)
    roll, pitch, yaw = quaternion_to_euler(q)
    assert (roll, pitch) == (0.0, -90.0) and yaw == pytest.approx(30)
    # …and the image lands the same way: nadir, heading 30° (image top towards 30°).
    a = footprint(pose(gimbal_roll_deg=10, gimbal_yaw_deg=20, gimbal_yaw_absolute=True), SQUARE)
    b = footprint(pose(gimbal_roll_deg=roll, gimbal_yaw_deg=yaw, gimbal_yaw_absolute=True), SQUARE)
    assert all(near(ne(p), ne(r)) for p, r in zip(a or [], b or [], strict=True))


def test_mavlink_gimbal_quaternion_into_a_pose() -> None:
    # GIMBAL_DEVICE_ATTITUDE_STATUS with YAW_IN_EARTH_FRAME: 45° down facing east.
    roll, pitch, yaw = quaternion_to_euler(euler_to_quaternion(0, -45, 90))
    p = pose(
        yaw_deg=200,  # the vehicle's heading plays no part for an earth-frame yaw
        gimbal_roll_deg=roll,
        gimbal_pitch_deg=pitch,
        gimbal_yaw_deg=yaw,
        gimbal_yaw_absolute=True,
    )
    assert near(ne(project_pixel(p, SQUARE, 0.5, 0.5)), (0, 100))


angles = st.floats(-180, 180)


@given(angles, st.floats(-90, 90), angles)
def test_euler_quaternion_round_trip(roll: float, pitch: float, yaw: float) -> None:
    q = euler_to_quaternion(roll, pitch, yaw)
    back = euler_to_quaternion(*quaternion_to_euler(q))
    # The same rotation: q and -q are one rotation.
    assert min(math.dist(q, back), math.dist(q, tuple(-c for c in back))) < 1e-7, (q, back)


# --- properties over random poses --------------------------------------------------------------


@st.composite
def poses(draw: st.DrawFn) -> Pose:
    stabilised = draw(st.booleans())
    return Pose(
        lat=draw(st.floats(-80, 80)),
        lon=draw(st.floats(-180, 180)),
        height_m=draw(st.floats(1, 1000)),
        roll_deg=draw(st.floats(-40, 40)),
        pitch_deg=draw(st.floats(-40, 40)),
        yaw_deg=draw(st.floats(0, 360)),
        gimbal_pitch_deg=draw(st.floats(-90, 30)),
        gimbal_yaw_deg=draw(angles),
        gimbal_roll_deg=draw(st.floats(-20, 20)),
        gimbal_yaw_absolute=stabilised and draw(st.booleans()),
        gimbal_stabilised=stabilised,
    )


cameras = st.builds(Camera, st.floats(5, 150), st.floats(5, 120))
unit = st.floats(0, 1)


@settings(max_examples=100)
@given(poses(), cameras, unit, unit)
def test_every_projected_pixel_lies_in_the_footprint(
    p: Pose, cam: Camera, u: float, v: float
) -> None:
    here = (p.lat, p.lon)
    for uu, vv in ((0.5, 0.5), (u, v)):
        seen = project_pixel(p, cam, uu, vv)
        if seen is None:
            continue
        ring = footprint(p, cam)
        assert ring is not None
        # 0.5 m: the rim's 2° chords sag up to 0.3 m inside the 2 km circle.
        assert covers(ring_ne(ring, here), local_ne(here, seen), tol=0.5)


@given(poses(), cameras)
def test_nadir_centre_is_under_the_drone(p: Pose, cam: Camera) -> None:
    # Stabilised gimbal at -90°: whatever the airframe, yaws and gimbal roll (about the
    # optical axis), the centre ray is vertical.
    nadir = Pose(
        lat=p.lat,
        lon=p.lon,
        height_m=p.height_m,
        roll_deg=p.roll_deg,
        pitch_deg=p.pitch_deg,
        yaw_deg=p.yaw_deg,
        gimbal_pitch_deg=-90,
        gimbal_yaw_deg=p.gimbal_yaw_deg,
        gimbal_roll_deg=p.gimbal_roll_deg,
        gimbal_yaw_absolute=p.gimbal_yaw_absolute,
    )
    seen = project_pixel(nadir, cam, 0.5, 0.5)
    assert seen is not None
    assert distance_m(seen, (p.lat, p.lon)) < 1e-6


@settings(max_examples=100)
@given(poses(), cameras, unit, unit)
def test_ground_to_pixel_inverts_project_pixel(p: Pose, cam: Camera, u: float, v: float) -> None:
    # What a pixel sees on the ground appears at that pixel again.
    seen = project_pixel(p, cam, u, v)
    if seen is None:
        return
    back = ground_to_pixel(p, cam, *seen)
    assert back is not None
    assert abs(back[0] - u) < 1e-4 and abs(back[1] - v) < 1e-4


def test_a_point_behind_the_camera_is_in_no_pixel() -> None:
    # Looking north and down at 45° from 100 m: a point 100 m south is behind the camera.
    pose = Pose(lat=51.5, lon=7.4, height_m=100, gimbal_pitch_deg=-45, gimbal_yaw_deg=0)
    cam = Camera(60, 40)
    assert ground_to_pixel(pose, cam, *offset(51.5, 7.4, -300, 0)) is None
    u, v = ground_to_pixel(pose, cam, *offset(51.5, 7.4, 100, 0)) or (0, 0)
    assert abs(u - 0.5) < 1e-6 and abs(v - 0.5) < 1e-6  # the aim point is the centre
