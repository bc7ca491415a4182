"""The debrief as one self-contained HTML file: header, timeline, Einsatztagebuch,
alerts, detections with their review, plots of the key readings, snapshots.

Reads the log without folding it event by event: the picture at the end (latest snapshot
plus the tail) holds every alert, detection and journal entry; the readings come from one
streaming pass (`series.py`); only the snapshot maps rebuild the picture at a moment
(`situation_at`: nearest snapshot plus at most `snapshot_every_n` events each).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from html import escape
from pathlib import Path
from typing import Any

from cockpit import library
from cockpit.bookmarks import BookmarkError, BookmarkStore
from cockpit.debrief.fmt import Fmt
from cockpit.debrief.scene import MAX_IMAGES, detection_image, map_items
from cockpit.debrief.series import CATEGORIES, Series, SeriesSet, read_series
from cockpit.debrief.style import CSS
from cockpit.debrief.svg import Threshold, map_svg, plot_svg, timeline_svg
from cockpit.i18n import STRINGS, Lang, t
from cockpit.pipeline import situation_factory
from cockpit.privacy import redact_snapshot
from cockpit.recorder import LogReader
from cockpit.replay import situation_at
from cockpit.rules.config import RuleConfig
from cockpit.rules.thresholds import _unit_ok
from cockpit.settings import Settings
from cockpit.situation import Situation

__all__ = ["MAX_SNAPSHOTS", "build_debrief", "debrief_filename"]

MAX_SNAPSHOTS = 12
# Alert and detection marks get a snapshot of their own when there are at most this many.
FEW_MARKS = 6
TIMELINE_BUCKETS = 140


def debrief_filename(incident: str, lang: Lang, at: float) -> str:
    """nachbesprechung-<incident>-<YYYYmmdd-HHMM>.html (only safe characters)."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in incident)[:80] or "incident"
    stamp = datetime.fromtimestamp(at).strftime("%Y%m%d-%H%M")
    word = "nachbesprechung" if lang == "de" else "debrief"
    return f"{word}-{safe}-{stamp}.html"


@dataclass(frozen=True, slots=True)
class _Moment:
    t: float
    title: str
    note: str = ""
    author: str = ""
    bookmark: bool = False
    end: bool = False  # the picture at the end of the recording (already at hand)


def _e(value: Any) -> str:
    return escape(str(value)) if value is not None else ""


def _label(prefix: str, key: str, lang: Lang) -> str:
    """A translated label if there is one, else the key as it came."""
    full = f"{prefix}{key}"
    return t(full, lang) if full in STRINGS else key


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], cls: str) -> str:
    """Rows are HTML already (escaped by the caller)."""
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _when(f: Fmt, ts: float | None) -> str:
    if ts is None:
        return ""
    return (
        f'<span class="time">{_e(f.clock(ts))}</span> <span class="since">{_e(f.since(ts))}</span>'
    )


def _epoch(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


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
    dl = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts)
    return (
        f"<header><h1>{_e(t('debrief.title', lang))}</h1>"
        f'<p class="incident">{_e(t("debrief.incident", lang, incident=incident))}</p>'
        f'<dl class="facts">{dl}</dl>'
        f'<p class="privacy">{_e(t("debrief.privacy", lang))}</p></header>'
    )


def _timeline(path: Path, settings: Settings, moments: Sequence[_Moment], f: Fmt) -> str:
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
    return (
        f'<section class="timeline-sec"><h2>{_e(t("debrief.timeline", lang))}</h2>{svg}</section>'
    )


def _journal(sit: Situation, f: Fmt) -> str:
    lang = f.lang
    rows = [
        [
            f'<span class="time">{_e(f.clock(j["t"]))}</span>',
            f'<span class="since">{_e(f.since(j["t"]))}</span>',
            _e(j.get("author") or ""),
            _e(_label("ui.journal.cat.", str(j["category"]), lang)),
            _e(j["text"]),
        ]
        for j in sit.journal
    ]
    head = [
        _e(t(f"debrief.col.{k}", lang)) for k in ("time", "since", "author", "category", "text")
    ]
    trimmed = sit.journal_count - len(sit.journal)
    note = (
        f'<p class="note">{_e(t("debrief.journal.trimmed", lang, n=str(trimmed)))}</p>'
        if trimmed > 0
        else ""
    )
    body = (
        _table(head, rows, "journal") if rows else f"<p>{_e(t('debrief.journal.none', lang))}</p>"
    )
    title = _e(t("debrief.journal", lang))
    return f'<section class="page" id="journal"><h2>{title}</h2>{note}{body}</section>'


def _name_of(sit: Situation, entity: str | None) -> str:
    if not entity:
        return ""
    ent = sit.entities.get(entity)
    return str((ent or {}).get("callsign") or entity)


def _alerts(sit: Situation, f: Fmt) -> str:
    lang = f.lang
    rows = []
    for a in sorted(sit.alerts.values(), key=lambda a: (a["raised_at"], a["id"])):
        acked = (
            t(
                "debrief.by",
                lang,
                time=f.clock(a["acknowledged_at"]),
                user=str(a["acknowledged_by"]),
            )
            if a.get("acknowledged_by")
            else t("debrief.no", lang)
        )
        cleared = f.clock(a["cleared_at"]) if a.get("cleared_at") else t("debrief.open", lang)
        rows.append(
            [
                _when(f, a["raised_at"]),
                f'<span class="sev sev-{_e(a["severity"])}">'
                f"{_e(_label('ui.severity.', str(a['severity']), lang))}</span>",
                _e(_name_of(sit, a.get("entity"))),
                _e(a["text"]),
                _e(acked),
                _e(cleared),
            ]
        )
    head = [
        _e(t(f"debrief.col.{k}", lang))
        for k in ("time", "severity", "entity", "alert", "acked", "cleared")
    ]
    body = _table(head, rows, "alerts") if rows else f"<p>{_e(t('debrief.alerts.none', lang))}</p>"
    return f'<section class="page" id="alerts"><h2>{_e(t("debrief.alerts", lang))}</h2>{body}'


def _operational(sit: Situation) -> dict[str, dict[str, Any]]:
    """The detections with their personal part emptied (copies; the picture keeps it)."""
    copy = {k: dict(v) for k, v in sit.detections.items()}
    redact_snapshot({"detections": copy})
    return copy


def _detections(dets: Mapping[str, Mapping[str, Any]], f: Fmt) -> str:
    lang = f.lang
    rows = []
    for d in sorted(dets.values(), key=lambda d: (d["first_seen"], d["id"])):
        place = []
        if d.get("address"):
            place.append(_e(d["address"]) + (f", {_e(d['floor'])}" if d.get("floor") else ""))
        if d.get("lat") is not None and d.get("lon") is not None:
            place.append(f"{d['lat']:.5f}, {d['lon']:.5f}")
        steps = []
        for h in d.get("history") or []:
            at = _epoch(h.get("at"))
            line = t(
                "debrief.step",
                lang,
                time=f.clock(at) if at is not None else "",
                state=_label("ui.adler.state.", str(h["to"]), lang),
                user=str(h.get("actor") or ""),
            )
            if h.get("note"):
                line += f" – {h['note']}"
            steps.append(f"<li>{_e(line)}</li>")
        what = _e(_label("ui.adler.cat.", str(d["category"]), lang))
        if d.get("summary"):
            what += f"<br>{_e(d['summary'])}"
        rows.append(
            [
                _when(f, d["first_seen"]),
                what,
                _e(_label("ui.adler.state.", str(d["state"]), lang)),
                "<br>".join(place),
                f'<ul class="steps">{"".join(steps)}</ul>' if steps else "",
            ]
        )
    head = [
        _e(t(f"debrief.col.{k}", lang)) for k in ("time", "detection", "state", "place", "review")
    ]
    body = (
        _table(head, rows, "detections")
        if rows
        else f"<p>{_e(t('debrief.detections.none', lang))}</p>"
    )
    return f"<h2>{_e(t('debrief.detections.title', lang))}</h2>{body}</section>"


def _thresholds(s: Series, cfg: RuleConfig, f: Fmt) -> tuple[list[Threshold], str]:
    """The rule thresholds that apply to this series, and a note if they cannot."""
    lang = f.lang
    if s.category == "gas":
        limit = cfg.gas[s.name]
        # The rule's own test: a limit is compared only with readings in its unit.
        if not _unit_ok(limit, s.unit):
            note = t("debrief.plot.unit_mismatch", lang, expected=limit.unit, unit=s.unit)
            return [], note
        return [
            Threshold(
                t("debrief.thr.warning", lang, value=f.num(limit.warning)), limit.warning, "warning"
            ),
            Threshold(
                t("debrief.thr.critical", lang, value=f.num(limit.critical)),
                limit.critical,
                "critical",
            ),
        ], ""
    if s.category == "battery":
        return [
            Threshold(
                t("debrief.thr.warning", lang, value=f.num(cfg.battery_warning_pct)),
                cfg.battery_warning_pct,
                "warning",
            ),
            Threshold(
                t("debrief.thr.critical", lang, value=f.num(cfg.battery_critical_pct)),
                cfg.battery_critical_pct,
                "critical",
            ),
        ], ""
    if s.category == "water" and s.entity in cfg.water_marks_cm:
        mark = cfg.water_marks_cm[s.entity] / (100.0 if s.unit == "m" else 1.0)
        return [Threshold(t("debrief.thr.mark", lang, value=f.num(mark)), mark, "critical")], ""
    return [], ""


def _reading_name(s: Series, cfg: RuleConfig, lang: Lang) -> str:
    if s.category == "gas":
        return cfg.gas[s.name].label
    return _label("debrief.reading.", s.name, lang)


def _plots(found: SeriesSet, cfg: RuleConfig, first: float, last: float, f: Fmt) -> str:
    lang = f.lang
    parts = [f'<section class="page" id="plots"><h2>{_e(t("debrief.plots", lang))}</h2>']
    shown = found.ordered()
    if not shown:
        parts.append(f"<p>{_e(t('debrief.plots.none', lang))}</p>")
    family = None
    for s in shown:
        if s.category != family:
            family = s.category
            parts.append(f"<h3>{_e(t(f'debrief.family.{family}', lang))}</h3>")
        thresholds, note = _thresholds(s, cfg, f)
        who = s.callsign or s.entity
        title = f"{who} – {_reading_name(s, cfg, lang)}" + (f" ({s.unit})" if s.unit else "")
        (t_lo, lo), (t_hi, hi) = s.extremes()
        caption = t(
            "debrief.plot.extremes",
            lang,
            low=f"{f.num(lo)} {s.unit}".strip(),
            low_time=f.clock(t_lo),
            high=f"{f.num(hi)} {s.unit}".strip(),
            high_time=f.clock(t_hi),
            n=str(s.count),
        )
        svg = plot_svg(s.points(), first, last, thresholds, f.short, f.num, title)
        parts.append(
            f'<figure class="plot-fig" data-entity="{_e(s.entity)}" data-reading="{_e(s.name)}">'
            f"<figcaption><strong>{_e(title)}</strong><br>{_e(caption)}"
            + (f'<br><span class="note">{_e(note)}</span>' if note else "")
            + f"</figcaption>{svg}</figure>"
        )
    for category in CATEGORIES:
        dropped = found.dropped.get(category)
        if dropped:
            parts.append(
                '<p class="note">'
                + _e(
                    t(
                        "debrief.plots.dropped",
                        lang,
                        n=str(len(dropped)),
                        family=t(f"debrief.family.{category}", lang),
                    )
                )
                + "</p>"
            )
    parts.append("</section>")
    return "".join(parts)


def _moments(
    bookmarks: Sequence[Mapping[str, Any]], sit: Situation, last: float, lang: Lang
) -> tuple[list[_Moment], int]:
    """Bookmarks, the alert and detection marks when there are few of them, and the end;
    and how many marks were left out (too many for a map each)."""
    out = [
        _Moment(
            float(b["t"]),
            t("debrief.snapshot.bookmark", lang, title=str(b["title"])),
            str(b.get("note") or ""),
            str(b.get("author") or ""),
            bookmark=True,
        )
        for b in bookmarks
    ]
    marks = [
        _Moment(float(a["raised_at"]), f"{t('ui.trainer.mark.alert', lang)}: {a['text']}")
        for a in sit.alerts.values()
    ] + [
        _Moment(
            float(d["first_seen"]),
            t("ui.trainer.mark.detection", lang)
            + ": "
            + _label("ui.adler.cat.", str(d["category"]), lang),
        )
        for d in sit.detections.values()
    ]
    left_out = 0
    if len(marks) <= FEW_MARKS:
        out += marks
    else:
        left_out = len(marks)
    out.sort(key=lambda m: m.t)
    out.append(_Moment(last, t("debrief.snapshot.end", lang), end=True))
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
        f'<span class="lg lg-{k}">{sym} {_e(t(key, lang))}</span>' for k, sym, key in keys
    )
    return f'<p class="legend">{spans}</p>'


def _snapshots(
    reader: LogReader,
    factory: Callable[[dict[str, Any] | None], Situation],
    moments: Sequence[_Moment],
    left_out: int,
    final: Situation,
    f: Fmt,
) -> str:
    """A map per moment (at most MAX_SNAPSHOTS rebuilt pictures; the end's is at hand);
    bookmarks beyond that keep their note, without a map."""
    lang = f.lang
    parts = [f'<section class="page" id="snapshots"><h2>{_e(t("debrief.snapshots", lang))}</h2>']
    parts.append(_legend(lang))
    if left_out:
        note = t("debrief.snapshots.few", lang, n=str(left_out), max=str(FEW_MARKS))
        parts.append(f'<p class="note">{_e(note)}</p>')

    def cat(c: str) -> str:
        return _label("ui.adler.cat.", c, lang)

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
                _operational(sit).values(),
                cat,
            )
            svg = map_svg(items, f"{m.title} – {head}", t("debrief.map.empty", lang))
        note = f'<p class="bm-note">{_e(m.note)}</p>' if m.note else ""
        by = (
            f'<p class="note">{_e(t("debrief.snapshot.by", lang, author=m.author))}</p>'
            if m.author
            else ""
        )
        parts.append(
            f'<figure class="snapshot" data-t="{m.t!r}"><figcaption><strong>{_e(m.title)}</strong>'
            f"<br>{_e(head)}</figcaption>{note}{by}{svg}</figure>"
        )
    if len(moments) - 1 > MAX_SNAPSHOTS:
        more = t(
            "debrief.snapshot.more",
            lang,
            n=str(len(moments) - 1 - MAX_SNAPSHOTS),
            max=str(MAX_SNAPSHOTS),
        )
        parts.append(f'<p class="note">{_e(more)}</p>')
    parts.append("</section>")
    return "".join(parts)


def _images(folder: Path, dets: Mapping[str, Mapping[str, Any]], f: Fmt) -> str:
    lang = f.lang
    figures: list[str] = []
    for d in sorted(dets.values(), key=lambda d: (d["first_seen"], d["id"])):
        if len(figures) >= MAX_IMAGES:
            break
        uri = detection_image(folder, d)
        if uri is None:
            continue
        cap = f"{_label('ui.adler.cat.', str(d['category']), lang)} – {f.clock(d['first_seen'])}"
        if d.get("summary"):
            cap += f" – {d['summary']}"
        figures.append(
            f'<figure class="det-image"><img src="{uri}" alt="{_e(cap)}">'
            f"<figcaption>{_e(cap)}</figcaption></figure>"
        )
    if not figures:
        return ""
    return (
        f'<section id="images"><h2>{_e(t("debrief.images", lang))}</h2>'
        f'<p class="note">{_e(t("debrief.images.note", lang))}</p>{"".join(figures)}</section>'
    )


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
    dets = _operational(sit)
    counts = {
        "events": count,
        "alerts": len(sit.alerts),
        "detections": len(dets),
        "journal_count": sit.journal_count,
        "bookmarks": len(bookmarks),
    }
    body = [_header(reader.incident, counts, first, last, f, user, now)]
    if unreadable:
        body.append(f'<p class="note">{_e(unreadable)}</p>')
    if first is None or last is None:
        body.append(f"<p>{_e(t('debrief.empty', lang))}</p>")
    else:
        moments, left_out = _moments(bookmarks, sit, last, lang)
        body += [
            _timeline(path, settings, [m for m in moments if m.bookmark], f),
            _journal(sit, f),
            _alerts(sit, f),
            _detections(dets, f),
            _plots(read_series(path, sit.rules, first, last), sit.rules, first, last, f),
            _snapshots(reader, factory, moments, left_out, sit, f),
            _images(path.with_suffix(""), dets, f),
        ]
    title = f"{t('debrief.title', lang)} – {reader.incident}"
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )
