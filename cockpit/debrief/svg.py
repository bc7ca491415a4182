"""Inline SVG for the debrief: a reading over time, the timeline, a small situation map.

Plain strings, no script and no external reference: the file must print and open
anywhere, years later. Every text is escaped here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["MapItem", "Threshold", "map_svg", "plot_svg", "timeline_svg"]

_W = 700.0


def _n(x: float) -> str:
    """A coordinate, short."""
    return f"{x:.1f}"


def _v(x: float) -> str:
    """A recorded value as written in the data attributes (round-trips for the reader)."""
    return repr(float(x))


@dataclass(frozen=True, slots=True)
class Threshold:
    label: str
    value: float
    severity: str  # "warning" | "critical"


def _ticks(
    first: float, last: float, fmt: Callable[[float], str], x: Callable[[float], float], y: float
) -> list[str]:
    out = []
    for i in range(5):
        t = first + (last - first) * i / 4
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        out.append(
            f'<text class="tick" x="{_n(x(t))}" y="{_n(y)}" text-anchor="{anchor}">'
            f"{escape(fmt(t))}</text>"
        )
    return out


def plot_svg(
    points: Sequence[tuple[float, float]],
    first: float,
    last: float,
    thresholds: Sequence[Threshold],
    fmt_time: Callable[[float], str],
    fmt_value: Callable[[float], str],
    title: str,
) -> str:
    """One reading over the incident: the line, its threshold lines, time and value axes."""
    h, left, right, top, bottom = 170.0, 60.0, 92.0, 8.0, 22.0
    values = [v for _, v in points] + [th.value for th in thresholds]
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:
        lo, hi = lo - 1.0, hi + 1.0
    pad = (hi - lo) * 0.06
    lo, hi = lo - pad, hi + pad
    span = (last - first) or 1.0

    def x(t: float) -> float:
        return left + (min(max(t, first), last) - first) / span * (_W - left - right)

    def y(v: float) -> float:
        return top + (hi - v) / (hi - lo) * (h - top - bottom)

    parts = [
        f'<svg class="plot" viewBox="0 0 {_W:.0f} {h:.0f}" role="img" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<rect class="frame" x="{_n(left)}" y="{_n(top)}" width="{_n(_W - left - right)}" '
        f'height="{_n(h - top - bottom)}"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        v = hi - (hi - lo) * frac
        parts.append(
            f'<text class="tick" x="{_n(left - 4)}" y="{_n(y(v) + 3)}" text-anchor="end">'
            f"{escape(fmt_value(v))}</text>"
        )
    for th in thresholds:
        parts.append(
            f'<line class="threshold thr-{escape(th.severity)}" data-value="{_v(th.value)}" '
            f'x1="{_n(left)}" x2="{_n(_W - right)}" y1="{_n(y(th.value))}" '
            f'y2="{_n(y(th.value))}"/>'
            f'<text class="thr-label thr-{escape(th.severity)}" x="{_n(_W - right + 4)}" '
            f'y="{_n(y(th.value) + 3)}">{escape(th.label)}</text>'
        )
    coords = " ".join(f"{_n(x(t))},{_n(y(v))}" for t, v in points)
    parts.append(
        f'<polyline class="series" points="{coords}" '
        f'data-t="{",".join(_v(t) for t, _ in points)}" '
        f'data-v="{",".join(_v(v) for _, v in points)}"/>'
    )
    if len(points) == 1:
        t, v = points[0]
        parts.append(f'<circle class="dot" cx="{_n(x(t))}" cy="{_n(y(v))}" r="2.5"/>')
    parts.extend(_ticks(first, last, fmt_time, x, h - 6))
    parts.append("</svg>")
    return "".join(parts)


# --- the timeline ---------------------------------------------------------------------

_LANES = ("alert", "detection", "journal", "bookmark")
_SYMBOL = {"alert": "▲", "detection": "◆", "journal": "●", "bookmark": "⚑"}


def timeline_svg(
    first: float,
    last: float,
    density: Sequence[int],
    marks: Sequence[tuple[str, float]],
    fmt_time: Callable[[float], str],
    lane_labels: dict[str, str],
    title: str,
) -> str:
    """Event density as bars and, below, the marks in one lane per kind (one mark per
    pixel column and lane: a busy recording stays a few hundred elements)."""
    left, right, bar_h, lane_h = 90.0, 10.0, 60.0, 16.0
    h = 8 + bar_h + lane_h * len(_LANES) + 22
    span = (last - first) or 1.0
    inner = _W - left - right

    def x(t: float) -> float:
        return left + (min(max(t, first), last) - first) / span * inner

    parts = [
        f'<svg class="timeline" viewBox="0 0 {_W:.0f} {h:.0f}" role="img" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    top = max(density) if density else 0
    if top > 0:
        bw = inner / len(density)
        for i, n in enumerate(density):
            if n:
                bh = max(1.0, bar_h * n / top)
                parts.append(
                    f'<rect class="density" x="{_n(left + i * bw)}" y="{_n(8 + bar_h - bh)}" '
                    f'width="{_n(max(bw - 0.3, 0.5))}" height="{_n(bh)}"/>'
                )
    parts.append(
        f'<text class="tick" x="{_n(left - 6)}" y="{_n(8 + bar_h / 2)}" text-anchor="end">'
        f"{escape(lane_labels['events'])}</text>"
    )
    for li, lane in enumerate(_LANES):
        ly = 8 + bar_h + lane_h * li + lane_h * 0.7
        parts.append(
            f'<text class="tick lane-{lane}" x="{_n(left - 6)}" y="{_n(ly)}" text-anchor="end">'
            f"{_SYMBOL[lane]} {escape(lane_labels[lane])}</text>"
        )
        seen: set[int] = set()
        for kind, t in marks:
            if kind != lane:
                continue
            col = int(x(t))
            if col in seen:
                continue
            seen.add(col)
            parts.append(
                f'<text class="mark mark-{lane}" x="{_n(x(t))}" y="{_n(ly)}" '
                f'text-anchor="middle">{_SYMBOL[lane]}</text>'
            )
    parts.extend(_ticks(first, last, fmt_time, x, h - 6))
    parts.append("</svg>")
    return "".join(parts)


# --- the situation map ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MapItem:
    """Something drawn on the map: `kind` picks the symbol; `ring` (lon, lat) for areas."""

    kind: str  # unit | drone | robot | sensor | detection | danger_area | downwind_sector | drawn
    label: str
    lat: float = 0.0
    lon: float = 0.0
    ring: tuple[tuple[float, float], ...] = ()


_SHAPE = {
    "unit": '<rect class="sym sym-unit" x="-5" y="-5" width="10" height="10"/>',
    "drone": '<polygon class="sym sym-drone" points="0,-6 6,5 -6,5"/>',
    "robot": '<polygon class="sym sym-robot" points="0,-6 6,0 0,6 -6,0"/>',
    "sensor": '<circle class="sym sym-sensor" r="4.5"/>',
    "detection": '<polygon class="sym sym-detection" '
    'points="0,-7 2,-2 7,-2 3,1 4.5,6.5 0,3 -4.5,6.5 -3,1 -7,-2 -2,-2"/>',
}
MAX_SYMBOLS = 400
MAX_LABELS = 60


def map_svg(items: Sequence[MapItem], title: str, empty: str) -> str:
    """Items on a plain projection (metres east and north: fine at an incident's size),
    fitted to what there is, with a 100 m scale bar."""
    w, h, pad = _W, 340.0, 70.0  # room for the labels right of the symbols
    areas = [i for i in items if i.ring]
    points = [i for i in items if not i.ring][:MAX_SYMBOLS]
    lats = [i.lat for i in points] + [p[1] for a in areas for p in a.ring]
    lons = [i.lon for i in points] + [p[0] for a in areas for p in a.ring]
    head = (
        f'<svg class="map" viewBox="0 0 {w:.0f} {h:.0f}" role="img" '
        f'aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
        f'<rect class="map-bg" x="0" y="0" width="{w:.0f}" height="{h:.0f}"/>'
    )
    if not lats:
        return (
            head + f'<text class="tick" x="{w / 2:.0f}" y="{h / 2:.0f}" '
            f'text-anchor="middle">{escape(empty)}</text></svg>'
        )
    lat0 = (min(lats) + max(lats)) / 2
    kx = 111_320.0 * math.cos(math.radians(lat0))  # metres per degree east
    ky = 110_574.0  # ... and north
    xs = [(lon - min(lons)) * kx for lon in lons]
    ys = [(lat - min(lats)) * ky for lat in lats]
    span_x, span_y = max(max(xs), 100.0), max(max(ys), 100.0)
    scale = min((w - 2 * pad) / span_x, (h - 50.0) / span_y)  # px per metre
    mid_x, mid_y = max(xs) / 2, max(ys) / 2

    def px(lat: float, lon: float) -> tuple[float, float]:
        return (
            w / 2 + ((lon - min(lons)) * kx - mid_x) * scale,
            h / 2 - ((lat - min(lats)) * ky - mid_y) * scale,
        )

    parts = [head]
    for a in areas:
        ring = " ".join(f"{_n(p[0])},{_n(p[1])}" for p in (px(lat, lon) for lon, lat in a.ring))
        parts.append(
            f'<polygon class="area area-{escape(a.kind)}" points="{ring}">'
            f"<title>{escape(a.label)}</title></polygon>"
        )
    labels = len(points) <= MAX_LABELS
    for i in points:
        x, y = px(i.lat, i.lon)
        parts.append(
            f'<g class="item item-{escape(i.kind)}" transform="translate({_n(x)},{_n(y)})">'
            f"{_SHAPE.get(i.kind, _SHAPE['sensor'])}<title>{escape(i.label)}</title>"
        )
        if labels:
            parts.append(f'<text class="label" x="8" y="4">{escape(i.label)}</text>')
        parts.append("</g>")
    bar = 100.0 * scale
    parts.append(
        f'<line class="scale" x1="10" x2="{_n(10 + bar)}" y1="{_n(h - 10)}" '
        f'y2="{_n(h - 10)}"/><text class="tick" x="{_n(10 + bar + 4)}" '
        f'y="{_n(h - 7)}">100 m</text>'
    )
    parts.append("</svg>")
    return "".join(parts)
