"""The debrief's snapshots: a map of the picture at each bookmark (and at the alerts and
detections when there are few), at the end, and the detections' own pictures."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cockpit.debrief.fmt import Fmt
from cockpit.debrief.markup import e, label
from cockpit.debrief.scene import MAX_IMAGES, detection_image, map_items
from cockpit.debrief.svg import map_svg
from cockpit.debrief.tables import operational
from cockpit.i18n import Lang, t
from cockpit.recorder import LogReader
from cockpit.replay import situation_at
from cockpit.situation import Situation

__all__ = ["FEW_MARKS", "MAX_SNAPSHOTS", "Moment", "images", "moments", "snapshots"]

MAX_SNAPSHOTS = 12
# Alert and detection marks get a snapshot of their own when there are at most this many.
FEW_MARKS = 6


@dataclass(frozen=True, slots=True)
class Moment:
    t: float
    title: str
    note: str = ""
    author: str = ""
    bookmark: bool = False
    end: bool = False  # the picture at the end of the recording (already at hand)


def moments(
    bookmarks: Sequence[Mapping[str, Any]], sit: Situation, last: float, lang: Lang
) -> tuple[list[Moment], int]:
    """Bookmarks, the alert and detection marks when there are few of them, and the end;
    and how many marks were left out (too many for a map each)."""
    out = [
        Moment(
            float(b["t"]),
            t("debrief.snapshot.bookmark", lang, title=str(b["title"])),
            str(b.get("note") or ""),
            str(b.get("author") or ""),
            bookmark=True,
        )
        for b in bookmarks
    ]
    marks = [
        Moment(float(a["raised_at"]), f"{t('ui.trainer.mark.alert', lang)}: {a['text']}")
        for a in sit.alerts.values()
    ] + [
        Moment(
            float(d["first_seen"]),
            t("ui.trainer.mark.detection", lang)
            + ": "
            + label("ui.adler.cat.", str(d["category"]), lang),
        )
        for d in sit.detections.values()
    ]
    left_out = 0
    if len(marks) <= FEW_MARKS:
        out += marks
    else:
        left_out = len(marks)
    out.sort(key=lambda m: m.t)
    out.append(Moment(last, t("debrief.snapshot.end", lang), end=True))
    return out, left_out


def _legend(lang: Lang) -> str:
    """What the map symbols mean (the colours and shapes of `svg.map_svg`)."""
    keys = (
        ("unit", "■", "ui.layer.units"),
        ("drone", "▲", "ui.layer.drones"),
        ("robot", "◆", "ui.layer.robots"),
        ("sensor", "●", "ui.layer.sensors"),
        ("detection", "★", "ui.layer.detections"),
        ("danger_area", "▰", "ui.hazard.area"),
        ("downwind_sector", "▱", "ui.hazard.sector"),
    )
    spans = "".join(
        f'<span class="lg lg-{k}">{sym} {e(t(key, lang))}</span>' for k, sym, key in keys
    )
    return f'<p class="legend">{spans}</p>'


def snapshots(
    reader: LogReader,
    factory: Callable[[dict[str, Any] | None], Situation],
    moments: Sequence[Moment],
    left_out: int,
    final: Situation,
    f: Fmt,
) -> str:
    """A map per moment (at most MAX_SNAPSHOTS rebuilt pictures; the end's is at hand);
    bookmarks beyond that keep their note, without a map."""
    lang = f.lang
    parts = [f'<section class="page" id="snapshots"><h2>{e(t("debrief.snapshots", lang))}</h2>']
    parts.append(_legend(lang))
    if left_out:
        note = t("debrief.snapshots.few", lang, n=str(left_out), max=str(FEW_MARKS))
        parts.append(f'<p class="note">{e(note)}</p>')

    def cat(c: str) -> str:
        return label("ui.adler.cat.", c, lang)

    rebuilt = 0
    for m in moments:
        head = t("debrief.snapshot.at", lang, time=f.clock(m.t), since=f.since(m.t))
        svg = ""
        if m.end or rebuilt < MAX_SNAPSHOTS:
            sit = final if m.end else situation_at(reader, m.t, factory)
            rebuilt += 0 if m.end else 1
            items = map_items(
                sit.entities.values(),
                sit.responders,
                sit.hazards.values(),
                operational(sit).values(),
                cat,
            )
            svg = map_svg(items, f"{m.title} – {head}", t("debrief.map.empty", lang))
        note = f'<p class="bm-note">{e(m.note)}</p>' if m.note else ""
        by = (
            f'<p class="note">{e(t("debrief.snapshot.by", lang, author=m.author))}</p>'
            if m.author
            else ""
        )
        parts.append(
            f'<figure class="snapshot" data-t="{m.t!r}"><figcaption><strong>{e(m.title)}</strong>'
            f"<br>{e(head)}</figcaption>{note}{by}{svg}</figure>"
        )
    if len(moments) - 1 > MAX_SNAPSHOTS:
        more = t(
            "debrief.snapshot.more",
            lang,
            n=str(len(moments) - 1 - MAX_SNAPSHOTS),
            max=str(MAX_SNAPSHOTS),
        )
        parts.append(f'<p class="note">{e(more)}</p>')
    parts.append("</section>")
    return "".join(parts)


def images(folder: Path, dets: Mapping[str, Mapping[str, Any]], f: Fmt) -> str:
    lang = f.lang
    figures: list[str] = []
    for d in sorted(dets.values(), key=lambda d: (d["first_seen"], d["id"])):
        if len(figures) >= MAX_IMAGES:
            break
        uri = detection_image(folder, d)
        if uri is None:
            continue
        cap = f"{label('ui.adler.cat.', str(d['category']), lang)} – {f.clock(d['first_seen'])}"
        if d.get("summary"):
            cap += f" – {d['summary']}"
        figures.append(
            f'<figure class="det-image"><img src="{uri}" alt="{e(cap)}">'
            f"<figcaption>{e(cap)}</figcaption></figure>"
        )
    if not figures:
        return ""
    return (
        f'<section id="images"><h2>{e(t("debrief.images", lang))}</h2>'
        f'<p class="note">{e(t("debrief.images.note", lang))}</p>{"".join(figures)}</section>'
    )
