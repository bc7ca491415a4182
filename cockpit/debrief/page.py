"""The debrief as one self-contained HTML file: header, timeline, Einsatztagebuch,
alerts, detections with their review, plots of the key readings, snapshots.

Reads the log without folding it event by event: the picture at the end (latest snapshot
plus the tail) holds every alert, detection and journal entry; the readings come from one
streaming pass (`series.py`); only the snapshot maps rebuild the picture at a moment
(`situation_at`: nearest snapshot plus at most `snapshot_every_n` events each).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from pathlib import Path

from cockpit import library
from cockpit.bookmarks import BookmarkError, BookmarkStore
from cockpit.debrief.fmt import Fmt
from cockpit.debrief.markup import e
from cockpit.debrief.moments import MAX_SNAPSHOTS, Moment, images, moments, snapshots
from cockpit.debrief.plots import plots
from cockpit.debrief.series import read_series
from cockpit.debrief.style import CSS
from cockpit.debrief.svg import timeline_svg
from cockpit.debrief.tables import alerts, detections, journal, operational
from cockpit.i18n import Lang, t
from cockpit.pipeline import situation_factory
from cockpit.recorder import LogReader
from cockpit.replay import situation_at
from cockpit.settings import Settings

__all__ = ["MAX_SNAPSHOTS", "build_debrief", "debrief_filename"]

TIMELINE_BUCKETS = 140


def debrief_filename(incident: str, lang: Lang, at: float) -> str:
    """nachbesprechung-<incident>-<YYYYmmdd-HHMM>.html (only safe characters)."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in incident)[:80] or "incident"
    stamp = datetime.fromtimestamp(at).strftime("%Y%m%d-%H%M")
    word = "nachbesprechung" if lang == "de" else "debrief"
    return f"{word}-{safe}-{stamp}.html"


# --- sections ----------------------------------------------------------------------


def _header(
    incident: str,
    counts: Mapping[str, int],
    first: float | None,
    last: float | None,
    f: Fmt,
    user: str,
    now: float,
) -> str:
    lang = f.lang
    facts: list[tuple[str, str]] = []
    if first is not None and last is not None:
        facts += [
            (t("debrief.start", lang), f.date_time(first)),
            (t("debrief.end", lang), f.date_time(last)),
            (t("debrief.duration", lang), f.duration(last - first)),
        ]
    facts += [(t(f"debrief.{k}", lang), str(v)) for k, v in counts.items()]
    facts += [
        (t("debrief.zone", lang), f.zone()),
        (
            t("debrief.generated", lang),
            t("debrief.generated_by", lang, time=f.date_time(now), user=user),
        ),
    ]
    dl = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in facts)
    return (
        f"<header><h1>{e(t('debrief.title', lang))}</h1>"
        f'<p class="incident">{e(t("debrief.incident", lang, incident=incident))}</p>'
        f'<dl class="facts">{dl}</dl>'
        f'<p class="privacy">{e(t("debrief.privacy", lang))}</p></header>'
    )


def _timeline(path: Path, settings: Settings, moments: Sequence[Moment], f: Fmt) -> str:
    lang = f.lang
    tl = library.timeline(path, settings, TIMELINE_BUCKETS)
    if tl["start"] is None:
        return ""
    marks = [(str(m["kind"]), float(m["t"])) for m in tl["marks"]]
    marks += [("bookmark", m.t) for m in moments]
    lanes = {
        k: t(f"ui.trainer.mark.{k}", lang) for k in ("alert", "detection", "journal", "bookmark")
    }
    lanes["events"] = t("debrief.events", lang)
    svg = timeline_svg(
        tl["start"],
        tl["end"],
        tl["density"]["events"],
        marks,
        f.short,
        lanes,
        t("debrief.timeline", lang),
    )
    return f'<section class="timeline-sec"><h2>{e(t("debrief.timeline", lang))}</h2>{svg}</section>'


# --- the whole ------------------------------------------------------------------------


def build_debrief(
    path: Path,
    settings: Settings,
    *,
    lang: Lang = "de",
    user: str = "",
    now: float | None = None,
    tz: tzinfo | None = None,
) -> str:
    """The debrief of the recording at `path` as HTML text. Raises RecorderError when it
    is not a readable recording."""
    now = time.time() if now is None else now
    reader = LogReader(path)
    try:
        return _build(reader, path, settings, lang, user, now, tz)
    finally:
        reader.close()


def _build(
    reader: LogReader,
    path: Path,
    settings: Settings,
    lang: Lang,
    user: str,
    now: float,
    tz: tzinfo | None,
) -> str:
    count, first, last = reader.bounds()
    f = Fmt(
        lang,
        tz,
        first if first is not None else now,
        (last - first) if first is not None and last is not None else 0.0,
    )
    factory = situation_factory(settings, reader.incident, reader.meta)
    try:
        bookmarks = BookmarkStore(path, reader.incident).all()
        unreadable = ""
    except BookmarkError:
        bookmarks, unreadable = [], t("debrief.bookmarks", lang) + ": ?"
    sit = situation_at(reader, last, factory) if last is not None else factory(None)
    dets = operational(sit)
    counts = {
        "events": count,
        "alerts": len(sit.alerts),
        "detections": len(dets),
        "journal_count": sit.journal_count,
        "bookmarks": len(bookmarks),
    }
    body = [_header(reader.incident, counts, first, last, f, user, now)]
    if unreadable:
        body.append(f'<p class="note">{e(unreadable)}</p>')
    if first is None or last is None:
        body.append(f"<p>{e(t('debrief.empty', lang))}</p>")
    else:
        when, left_out = moments(bookmarks, sit, last, lang)
        body += [
            _timeline(path, settings, [m for m in when if m.bookmark], f),
            journal(sit, f),
            # Alerts and detections share a page (the section closes after both).
            alerts(sit, f),
            detections(dets, f),
            plots(read_series(path, sit.rules, first, last), sit.rules, first, last, f),
            snapshots(reader, factory, when, left_out, sit, f),
            images(path.with_suffix(""), dets, f),
        ]
    title = f"{t('debrief.title', lang)} – {reader.incident}"
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title><style>{CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )
