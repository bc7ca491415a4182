"""Geometry for the map: positions on the ground, what a drone camera sees, smoke sectors.

Pure functions, no I/O, no dependency beyond `math`.

Earth model. Positions are WGS84 latitude/longitude in degrees. Local work happens in the
tangent plane at a point (north/east metres, the NED frame's horizontal plane), computed
exactly through earth-centred coordinates on the WGS84 ellipsoid, so there is no
spherical-earth scale error (a sphere would be 0.3 % off east-west at Dortmund's latitude).
A plane point is put on the ground along the ellipsoid normal. Against the WGS84 geodesic:
`distance_m` (the straight chord) is within 1 mm up to 5 km and within 1 cm up to 20 km,
`bearing_deg` within 0.00001°, and `destination` within 1 mm up to 20 km.
These functions are meant for an incident's scale, not for long lines (use a geodesic
library for those); nothing here handles the antimeridian in GeoJSON.

Camera. `Pose` and `project_pixel` state the frames; in short: NED (x north, y east,
z down), attitudes are yaw-pitch-roll (Z-Y-X) rotations, a pinhole camera looks along its
x axis with image right = y and image down = z, and the ground is the flat horizontal
plane `height_m` below the drone (terrain and the earth's curvature are ignored: the
ground drops 0.3 m in 2 km, which at grazing angles moves a far point a few metres).

Rings. Polygons come back as open rings of (lat, lon), clockwise on a north-up map —
what Leaflet takes; `to_geojson_polygon` makes the closed, counter-clockwise lon/lat ring
that GeoJSON (RFC 7946) wants.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Camera",
    "LatLon",
    "Pose",
    "bearing_deg",
    "destination",
    "distance_m",
    "downwind_sector",
    "euler_to_quaternion",
    "footprint",
    "ground_to_pixel",
    "local_ne",
    "offset",
    "project_pixel",
    "quaternion_to_euler",
    "to_geojson_polygon",
]

LatLon = tuple[float, float]
_Vec = tuple[float, float, float]
_Mat = tuple[_Vec, _Vec, _Vec]  # rows

# WGS84 ellipsoid.
_A = 6_378_137.0
_F = 1 / 298.257223563
_E2 = _F * (2 - _F)

# Arcs (range limit, sector rim, circles) are drawn with a vertex at least every 2°:
# the chord then sags at most 0.03 % of the radius inside the arc (0.3 m at 2 km).
_ARC_STEP_DEG = 2.0

# A tangent plane stops meaning anything long before a quarter of the globe.
_MAX_PLANE_M = 1_000_000.0


# --- the tangent plane ----------------------------------------------------------------------


def _ecef(lat: float, lon: float) -> _Vec:
    phi, lam = math.radians(lat), math.radians(lon)
    n = _A / math.sqrt(1 - _E2 * math.sin(phi) ** 2)
    return (
        n * math.cos(phi) * math.cos(lam),
        n * math.cos(phi) * math.sin(lam),
        n * (1 - _E2) * math.sin(phi),
    )


def _geodetic(x: float, y: float, z: float) -> LatLon:
    """Latitude/longitude of the ellipsoid point below (x, y, z) along the normal."""
    p = math.hypot(x, y)
    # Exact for a point on the ellipsoid; the fixed-point step phi = atan2(z + e²N sin phi, p)
    # contracts by e² (~0.007) per round, so a few rounds settle a point near the surface.
    phi = math.atan2(z, p * (1 - _E2))
    for _ in range(4):
        n = _A / math.sqrt(1 - _E2 * math.sin(phi) ** 2)
        phi = math.atan2(z + _E2 * n * math.sin(phi), p)
    return math.degrees(phi), math.degrees(math.atan2(y, x))


def _from_plane(lat: float, lon: float, north: float, east: float) -> LatLon:
    phi, lam = math.radians(lat), math.radians(lon)
    sp, cp, sl, cl = math.sin(phi), math.cos(phi), math.sin(lam), math.cos(lam)
    x, y, z = _ecef(lat, lon)
    # ENU → ECEF rotation (up = 0: the point lies in the tangent plane).
    return _geodetic(
        x - sl * east - sp * cl * north,
        y + cl * east - sp * sl * north,
        z + cp * north,
    )


def local_ne(origin: LatLon, point: LatLon) -> tuple[float, float]:
    """(north, east) metres of `point` in the tangent plane at `origin`."""
    phi, lam = math.radians(origin[0]), math.radians(origin[1])
    sp, cp, sl, cl = math.sin(phi), math.cos(phi), math.sin(lam), math.cos(lam)
    x0, y0, z0 = _ecef(*origin)
    x1, y1, z1 = _ecef(*point)
    dx, dy, dz = x1 - x0, y1 - y0, z1 - z0
    return -sp * cl * dx - sp * sl * dy + cp * dz, -sl * dx + cl * dy


def offset(lat: float, lon: float, north_m: float, east_m: float) -> LatLon:
    """The ground point `north_m`/`east_m` away in the tangent plane at (lat, lon).

    This is the camera's frame: `project_pixel` and `footprint` place their points with it.
    Being the plane itself, the point lies s³/3R² nearer than s along the surface (1 mm at
    5 km); `local_ne` gives the offsets back within 2 mm at 5 km, 0.1 m at 20 km.
    """
    return _from_plane(lat, lon, north_m, east_m)


def distance_m(a: LatLon, b: LatLon) -> float:
    """Straight-line (chord) distance between two ground points, in metres.

    Symmetric, and shorter than the surface distance by only s³/24R² (0.2 mm at 5 km).
    """
    return math.dist(_ecef(*a), _ecef(*b))


def bearing_deg(a: LatLon, b: LatLon) -> float:
    """Direction from a to b, degrees clockwise from true north in [0, 360)."""
    north, east = local_ne(a, b)
    return math.degrees(math.atan2(east, north)) % 360.0


def destination(lat: float, lon: float, bearing_deg: float, distance_m: float) -> LatLon:
    """The ground point `distance_m` along the surface from (lat, lon) at `bearing_deg`."""
    if not math.isfinite(distance_m) or abs(distance_m) > _MAX_PLANE_M:
        raise ValueError(f"distance {distance_m} m is outside what a tangent plane can map")
    # Dropping a plane point at radius r onto the surface shortens it to R·atan(r/R);
    # going out R·tan(s/R) instead lands at surface distance s (R: the Gaussian radius
    # of curvature here, so the remaining error is of order e²·s³/R²).
    phi = math.radians(lat)
    w = 1 - _E2 * math.sin(phi) ** 2
    radius = _A * math.sqrt(1 - _E2) / w
    r = radius * math.tan(distance_m / radius)
    theta = math.radians(bearing_deg)
    return _from_plane(lat, lon, r * math.cos(theta), r * math.sin(theta))


# --- rotations --------------------------------------------------------------------------------


def _rot_zyx(yaw_deg: float, pitch_deg: float, roll_deg: float) -> _Mat:
    """Rz(yaw)·Ry(pitch)·Rx(roll): body → NED for the aerospace Z-Y-X Euler angles."""
    cy, sy = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
    cp, sp = math.cos(math.radians(pitch_deg)), math.sin(math.radians(pitch_deg))
    cr, sr = math.cos(math.radians(roll_deg)), math.sin(math.radians(roll_deg))
    return (
        (cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr),
        (sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr),
        (-sp, cp * sr, cp * cr),
    )


def _mul(a: _Mat, b: _Mat) -> _Mat:
    def row(r: _Vec) -> _Vec:
        return (
            r[0] * b[0][0] + r[1] * b[1][0] + r[2] * b[2][0],
            r[0] * b[0][1] + r[1] * b[1][1] + r[2] * b[2][1],
            r[0] * b[0][2] + r[1] * b[1][2] + r[2] * b[2][2],
        )

    return row(a[0]), row(a[1]), row(a[2])


def _transpose(m: _Mat) -> _Mat:
    return (
        (m[0][0], m[1][0], m[2][0]),
        (m[0][1], m[1][1], m[2][1]),
        (m[0][2], m[1][2], m[2][2]),
    )


def _apply(m: _Mat, v: _Vec) -> _Vec:
    return (
        m[0][0] * v[0] + m[0][1] * v[1] + m[0][2] * v[2],
        m[1][0] * v[0] + m[1][1] * v[1] + m[1][2] * v[2],
        m[2][0] * v[0] + m[2][1] * v[1] + m[2][2] * v[2],
    )


def quaternion_to_euler(q: Sequence[float]) -> tuple[float, float, float]:
    """(roll, pitch, yaw) in degrees of a rotation quaternion (w, x, y, z).

    MAVLink's order (GIMBAL_DEVICE_ATTITUDE_STATUS.q, ATTITUDE_QUATERNION), Z-Y-X angles as
    `Pose` uses them: feeding the result back through Rz(yaw)·Ry(pitch)·Rx(roll) gives the
    same rotation. The quaternion is normalised first (float32 on the wire drifts). At
    pitch ±90° only yaw ± roll is defined; then roll is 0 and yaw carries the rotation,
    so a nadir gimbal still projects correctly.
    """
    if len(q) != 4 or not all(math.isfinite(c) for c in q):
        raise ValueError(f"not a quaternion (w, x, y, z): {q!r}")
    norm = math.sqrt(sum(c * c for c in q))
    if norm < 1e-9:
        raise ValueError("a zero quaternion is no rotation")
    w, x, y, z = (c / norm for c in q)
    sin_pitch = 2 * (w * y - z * x)
    # Near the lock the atan2 arguments below vanish and rounding would pick roll and yaw;
    # within 1.4e-6 rad of ±90° the closed form of the locked rotation is exact enough.
    if abs(sin_pitch) >= 1 - 1e-12:
        return 0.0, math.copysign(90.0, sin_pitch), math.degrees(2 * math.atan2(z, w))
    roll = math.atan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = math.asin(sin_pitch)
    yaw = math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return math.degrees(roll), math.degrees(pitch), math.degrees(yaw)


def euler_to_quaternion(
    roll_deg: float, pitch_deg: float, yaw_deg: float
) -> tuple[float, float, float, float]:
    """(w, x, y, z) of Rz(yaw)·Ry(pitch)·Rx(roll); the inverse of `quaternion_to_euler`."""
    hr, hp, hy = (math.radians(a) / 2 for a in (roll_deg, pitch_deg, yaw_deg))
    cr, sr, cp, sp, cy, sy = (
        math.cos(hr),
        math.sin(hr),
        math.cos(hp),
        math.sin(hp),
        math.cos(hy),
        math.sin(hy),
    )
    return (
        cr * cp * cy + sr * sp * sy,
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
    )


# --- camera -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Camera:
    """A pinhole camera by its full horizontal and vertical fields of view (degrees).

    The image corners lie at ±tan(hfov/2), ±tan(vfov/2) on the image plane one unit in
    front of the lens, so the diagonal field of view is wider than either.
    """

    hfov_deg: float
    vfov_deg: float

    def __post_init__(self) -> None:
        for name, fov in (("hfov_deg", self.hfov_deg), ("vfov_deg", self.vfov_deg)):
            if not 0 < fov < 180:
                raise ValueError(f"{name} must lie in (0, 180), not {fov}")

    @classmethod
    def from_hfov(cls, hfov_deg: float, aspect: float = 16 / 9) -> Camera:
        """From the horizontal field of view and the image's width/height ratio."""
        if not aspect > 0:
            raise ValueError(f"aspect must be positive, not {aspect}")
        half = math.atan(math.tan(math.radians(hfov_deg) / 2) / aspect)
        return cls(hfov_deg, math.degrees(2 * half))


@dataclass(frozen=True, slots=True, kw_only=True)
class Pose:
    """Where a drone is and where its camera points.

    Frames: NED at the drone (x north, y east, z down). Every attitude is a Z-Y-X Euler
    triple: the rotation body → parent is Rz(yaw)·Ry(pitch)·Rx(roll) — yaw first about the
    vertical, then pitch, then roll, each about the already turned axes. Yaw is the
    heading, clockwise from true north; pitch is positive nose up; roll positive right
    side down. The camera looks along the gimbal's x axis; image right is its y axis,
    image down its z axis. So gimbal pitch 0 looks at the horizon, -90 straight down
    (image top then points where the gimbal yaw points).

    `height_m` is the height above the ground the camera looks at (not MSL, not above
    take-off unless the ground is level); at 0 or below nothing is projected.

    `gimbal_stabilised` (default True): the gimbal's roll and pitch are relative to the
    horizon, so the vehicle's roll and pitch do not move the camera. That is what a
    MAVLink gimbal reports in GIMBAL_DEVICE_ATTITUDE_STATUS (its quaternion is in the
    earth frame, or in the earth frame turned to the vehicle's heading) and what DJI
    reports. The camera's rotation is then Rz(yaw_v)·Rz(gy)·Ry(gp)·Rx(gr), with yaw_v the
    vehicle's yaw when the gimbal yaw is relative and 0 when `gimbal_yaw_absolute`.

    `gimbal_stabilised=False`: the angles are measured against the airframe (a fixed
    mount, or a gimbal reporting joint angles); the camera's rotation is the vehicle's
    Rz(yaw)·Ry(pitch)·Rx(roll) followed by the gimbal's Rz(gy)·Ry(gp)·Rx(gr). An absolute
    gimbal yaw makes no sense there and is refused.

    MAVLink: yaw is absolute when GIMBAL_DEVICE_FLAGS_YAW_IN_EARTH_FRAME is set, relative
    when GIMBAL_DEVICE_FLAGS_YAW_IN_VEHICLE_FRAME is set, and, when neither is, absolute
    exactly when GIMBAL_DEVICE_FLAGS_YAW_LOCK is set. `quaternion_to_euler` turns its
    quaternion into (gimbal_roll_deg, gimbal_pitch_deg, gimbal_yaw_deg).
    """

    lat: float
    lon: float
    height_m: float
    roll_deg: float = 0.0
    pitch_deg: float = 0.0
    yaw_deg: float = 0.0
    gimbal_pitch_deg: float = -90.0
    gimbal_yaw_deg: float = 0.0
    gimbal_roll_deg: float = 0.0
    gimbal_yaw_absolute: bool = False
    gimbal_stabilised: bool = True

    def __post_init__(self) -> None:
        values = (
            self.lat,
            self.lon,
            self.height_m,
            self.roll_deg,
            self.pitch_deg,
            self.yaw_deg,
            self.gimbal_pitch_deg,
            self.gimbal_yaw_deg,
            self.gimbal_roll_deg,
        )
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"a pose needs finite numbers: {self!r}")
        if not -90 <= self.lat <= 90:
            raise ValueError(f"latitude {self.lat} outside [-90, 90]")
        if self.gimbal_yaw_absolute and not self.gimbal_stabilised:
            raise ValueError("an absolute gimbal yaw needs a stabilised (horizon-relative) gimbal")


def _camera_matrix(pose: Pose) -> _Mat:
    gimbal = _rot_zyx(pose.gimbal_yaw_deg, pose.gimbal_pitch_deg, pose.gimbal_roll_deg)
    if not pose.gimbal_stabilised:
        return _mul(_rot_zyx(pose.yaw_deg, pose.pitch_deg, pose.roll_deg), gimbal)
    heading = 0.0 if pose.gimbal_yaw_absolute else pose.yaw_deg
    return _mul(_rot_zyx(heading, 0.0, 0.0), gimbal)


def _pixel_ray(camera: Camera, u: float, v: float) -> _Vec:
    """Camera-frame direction of the pixel at normalised (u, v); (0, 0) is top-left."""
    return (
        1.0,
        (2 * u - 1) * math.tan(math.radians(camera.hfov_deg) / 2),
        (2 * v - 1) * math.tan(math.radians(camera.vfov_deg) / 2),
    )


def _ground(height: float, d: _Vec) -> tuple[float, float] | None:
    """(north, east) where the NED ray d from the drone meets the ground; None if it doesn't."""
    if d[2] <= 0:  # at or above the horizon
        return None
    t = height / d[2]
    return t * d[0], t * d[1]


def project_pixel(
    pose: Pose, camera: Camera, u: float, v: float, max_range_m: float = 2000.0
) -> LatLon | None:
    """The ground point seen at normalised image coordinates (u, v), (0, 0) top-left.

    None when the ray points at or above the horizon, meets the ground farther than
    `max_range_m` (horizontally) from the drone — a grazing ray's point is dominated by
    attitude error, 1° at 2 km is 35 m sideways and far more along the ray — or when
    the drone is not above the ground. u, v outside [0, 1] extrapolate the pinhole model.
    """
    if pose.height_m <= 0:
        return None
    d = _apply(_camera_matrix(pose), _pixel_ray(camera, u, v))
    hit = _ground(pose.height_m, d)
    if hit is None or math.hypot(*hit) > max_range_m:
        return None
    return offset(pose.lat, pose.lon, hit[0], hit[1])


def ground_to_pixel(
    pose: Pose, camera: Camera, lat: float, lon: float
) -> tuple[float, float] | None:
    """Where a ground point appears in the image, normalised (u, v) with (0, 0) top-left;
    None if it is behind the camera. The inverse of `project_pixel` (u, v may fall outside
    [0, 1]: the point is then out of the picture)."""
    if pose.height_m <= 0:
        return None
    north, east = local_ne((pose.lat, pose.lon), (lat, lon))
    x, y, z = _apply(_transpose(_camera_matrix(pose)), (north, east, pose.height_m))
    if x <= 1e-9:
        return None
    u = (y / x / math.tan(math.radians(camera.hfov_deg) / 2) + 1) / 2
    v = (z / x / math.tan(math.radians(camera.vfov_deg) / 2) + 1) / 2
    return u, v


def _inside_span(a: _Vec, b: _Vec, height: float, max_range: float) -> tuple[float, float] | None:
    """The s ∈ [0, 1] for which the ray a + s(b - a) meets the ground within `max_range`.

    Within range ⇔ d_z > 0 and h²(d_n² + d_e²) ≤ R² d_z²: the inside of a downward cone
    around the vertical. A cone is convex, so along an image edge (a straight line of
    rays) the inside is one interval; its ends are roots of that quadratic in s.
    """
    db = (b[0] - a[0], b[1] - a[1], b[2] - a[2])
    r2, h2 = max_range * max_range, height * height
    qa = r2 * db[2] ** 2 - h2 * (db[0] ** 2 + db[1] ** 2)
    qb = 2 * (r2 * a[2] * db[2] - h2 * (a[0] * db[0] + a[1] * db[1]))
    qc = r2 * a[2] ** 2 - h2 * (a[0] ** 2 + a[1] ** 2)
    breaks = [0.0, 1.0]
    if abs(qa) > 1e-12 * (abs(qb) + abs(qc) + 1e-300):
        disc = qb * qb - 4 * qa * qc
        if disc >= 0:
            # The cancellation-free pair of roots.
            k = -0.5 * (qb + math.copysign(math.sqrt(disc), qb))
            breaks += [k / qa] + ([qc / k] if k != 0 else [])
    elif qb != 0:
        breaks.append(-qc / qb)
    if db[2] != 0:
        breaks.append(-a[2] / db[2])
    cuts = sorted({s for s in breaks if 0.0 <= s <= 1.0})
    lo, hi = math.inf, -math.inf
    for s0, s1 in itertools.pairwise(cuts):
        m = (s0 + s1) / 2
        dz = a[2] + m * db[2]
        dn, de = a[0] + m * db[0], a[1] + m * db[1]
        if dz > 0 and r2 * dz * dz >= h2 * (dn * dn + de * de):
            lo, hi = min(lo, s0), max(hi, s1)
    return (lo, hi) if lo <= hi else None


def _arc(r: float, from_deg: float, to_deg: float) -> list[tuple[float, float]]:
    """(north, east) points strictly between two bearings, clockwise, on a circle of radius r."""
    sweep = (to_deg - from_deg) % 360.0
    steps = math.ceil(sweep / _ARC_STEP_DEG)
    out = []
    for j in range(1, steps):
        b = math.radians(from_deg + sweep * j / steps)
        out.append((r * math.cos(b), r * math.sin(b)))
    return out


def _circle(r: float) -> list[tuple[float, float]]:
    steps = math.ceil(360.0 / _ARC_STEP_DEG)
    return [
        (r * math.cos(2 * math.pi * j / steps), r * math.sin(2 * math.pi * j / steps))
        for j in range(steps)
    ]


def _footprint_ne(pose: Pose, camera: Camera, max_range: float) -> list[tuple[float, float]] | None:
    h = pose.height_m
    if h <= 0 or not max_range > 0:
        return None
    m = _camera_matrix(pose)
    # Corners in image order TL, TR, BR, BL: on the ground (seen from above, never
    # mirrored) that is clockwise, so the part of the range circle that closes the
    # polygon between an exit and the next entry also runs clockwise.
    corners = [_apply(m, _pixel_ray(camera, u, v)) for u, v in ((0, 0), (1, 0), (1, 1), (0, 1))]

    def hit(d: _Vec) -> tuple[float, float]:
        g = _ground(h, d)
        assert g is not None  # the span only holds rays below the horizon
        r = math.hypot(*g)
        scale = max_range / r if r > max_range else 1.0  # rounding at a span's end
        return g[0] * scale, g[1] * scale

    verts: list[tuple[float, float]] = []
    arc_after: list[bool] = []  # the boundary follows the range circle after this vertex
    for i in range(4):
        a, b = corners[i], corners[(i + 1) % 4]
        span = _inside_span(a, b, h, max_range)
        if span is None:
            continue
        for s, leaves in ((span[0], False), (span[1], span[1] < 1.0)):
            p = hit((a[0] + s * (b[0] - a[0]), a[1] + s * (b[1] - a[1]), a[2] + s * (b[2] - a[2])))
            if verts and math.dist(verts[-1], p) < 1e-6:
                arc_after[-1] = arc_after[-1] or leaves  # a shared corner
            else:
                verts.append(p)
                arc_after.append(leaves)
    if len(verts) > 1 and math.dist(verts[0], verts[-1]) < 1e-6:
        arc_after[0] = arc_after[0] or arc_after.pop()
        verts.pop()

    ring: list[tuple[float, float]] = []
    for i, p in enumerate(verts):
        ring.append(p)
        if arc_after[i]:
            q = verts[(i + 1) % len(verts)]
            ring += _arc(
                max_range,
                math.degrees(math.atan2(p[1], p[0])),
                math.degrees(math.atan2(q[1], q[0])),
            )
    if len(ring) >= 3:
        return ring
    # No image edge reaches the range disc (or only touches it): either the image holds
    # the whole disc — a high, wide nadir view with a short range — or sees none of it.
    down = _apply(_transpose(m), (0.0, 0.0, 1.0))  # the vertical in the camera frame
    tan_h = math.tan(math.radians(camera.hfov_deg) / 2)
    tan_v = math.tan(math.radians(camera.vfov_deg) / 2)
    if down[0] > 0 and abs(down[1]) <= tan_h * down[0] and abs(down[2]) <= tan_v * down[0]:
        return _circle(max_range)
    return None


def footprint(pose: Pose, camera: Camera, max_range_m: float = 2000.0) -> list[LatLon] | None:
    """The ground the image covers, as an open ring of (lat, lon), clockwise.

    The four corner rays in image order (top-left, top-right, bottom-right, bottom-left).
    Where part of the image looks beyond `max_range_m` or above the horizon, the polygon
    is cut at the range circle: its sides follow the image edges out to `max_range_m`
    and its far side follows the circle (a vertex every 2°), so a forward-looking camera
    gives a trapezoid with a rounded far edge instead of nothing. None when the camera
    sees no ground within range (or the drone is not above the ground).
    """
    ring = _footprint_ne(pose, camera, max_range_m)
    if ring is None:
        return None
    return [offset(pose.lat, pose.lon, n, e) for n, e in ring]


# --- hazards --------------------------------------------------------------------------------


def downwind_sector(
    lat: float, lon: float, wind_from_deg: float, length_m: float, half_angle_deg: float
) -> list[LatLon]:
    """The sector a smoke plume from (lat, lon) may cover, as an open ring of (lat, lon).

    `wind_from_deg` is where the wind comes FROM (meteorological convention, as weather
    stations and METARs report it), so the sector opens towards wind_from + 180°, spans
    ±`half_angle_deg` around it and reaches `length_m`. Clockwise: the source, then the
    rim from the left edge (seen looking downwind) to the right. A half angle of 180°
    gives the full circle.
    """
    if not (math.isfinite(length_m) and 0 < length_m <= _MAX_PLANE_M):
        raise ValueError(f"length {length_m} m must lie in (0, {_MAX_PLANE_M:.0f}]")
    if not 0 < half_angle_deg <= 180:
        raise ValueError(f"half angle {half_angle_deg}° must lie in (0, 180]")
    if not math.isfinite(wind_from_deg):
        raise ValueError(f"wind direction {wind_from_deg} is not a number")
    downwind = (wind_from_deg + 180.0) % 360.0
    if half_angle_deg >= 180:
        rim = [(downwind, length_m)]
        rim += [(b, length_m) for b in _bearings(downwind, downwind + 360.0)]
        return [destination(lat, lon, b, r) for b, r in rim]
    left, right = downwind - half_angle_deg, downwind + half_angle_deg
    points = [(lat, lon), destination(lat, lon, left, length_m)]
    points += [destination(lat, lon, b, length_m) for b in _bearings(left, right)]
    points.append(destination(lat, lon, right, length_m))
    return points


def _bearings(from_deg: float, to_deg: float) -> list[float]:
    """Bearings strictly between two (to_deg > from_deg), at most `_ARC_STEP_DEG` apart."""
    steps = math.ceil((to_deg - from_deg) / _ARC_STEP_DEG)
    return [from_deg + (to_deg - from_deg) * j / steps for j in range(1, steps)]


def to_geojson_polygon(ring: Sequence[LatLon]) -> dict[str, Any]:
    """A GeoJSON Polygon geometry from an open or closed ring of (lat, lon).

    GeoJSON wants [lon, lat] order, a closed ring and (RFC 7946 §3.1.6) the exterior
    counter-clockwise; the rings here are clockwise, so the order is checked and fixed
    whatever the input. Not for rings across the antimeridian.
    """
    points = [(float(lon), float(lat)) for lat, lon in ring]
    if len(points) > 1 and points[0] == points[-1]:
        points.pop()
    if len(set(points)) < 3:
        raise ValueError("a polygon needs at least three distinct points")
    # Shoelace on lon/lat: only the sign is used, which the projection does not change.
    twice_area = sum(
        x0 * y1 - x1 * y0
        for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1], strict=True)
    )
    if twice_area < 0:
        points.reverse()
    coords = [[lon, lat] for lon, lat in points]
    coords.append(list(coords[0]))
    return {"type": "Polygon", "coordinates": [coords]}
