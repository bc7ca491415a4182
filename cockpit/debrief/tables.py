"""The debrief's tables: the Einsatztagebuch, alerts, detections with their review.

Operational fields only: detections are copied with `personal` emptied before anything
here reads them (`operational`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cockpit.debrief.fmt import Fmt
from cockpit.debrief.markup import e, epoch, label, table, when
from cockpit.i18n import Lang, t
from cockpit.privacy import redact_snapshot
from cockpit.situation import Situation

__all__ = ["alerts", "detections", "journal", "operational"]


def journal(sit: Situation, f: Fmt) -> str:
    lang = f.lang
    rows = [
        [
            f'<span class="time">{e(f.clock(j["t"]))}</span>',
            f'<span class="since">{e(f.since(j["t"]))}</span>',
            e(j.get("author") or ""),
            e(label("ui.journal.cat.", str(j["category"]), lang)),
            e(j["text"]),
        ]
        for j in sit.journal
    ]
    head = [e(t(f"debrief.col.{k}", lang)) for k in ("time", "since", "author", "category", "text")]
    trimmed = sit.journal_count - len(sit.journal)
    note = (
        f'<p class="note">{e(t("debrief.journal.trimmed", lang, n=str(trimmed)))}</p>'
        if trimmed > 0
        else ""
    )
    body = table(head, rows, "journal") if rows else f"<p>{e(t('debrief.journal.none', lang))}</p>"
    title = e(t("debrief.journal", lang))
    return f'<section class="page" id="journal"><h2>{title}</h2>{note}{body}</section>'


def _name_of(sit: Situation, entity: str | None, lang: Lang) -> str:
    if not entity:
        return ""
    ent = sit.entities.get(entity) or {}
    if ent.get("kind") == "person" or entity in sit.responders:
        # A person (a volunteer in a hazard area) is named in no export.
        return t("debrief.person", lang)
    return str(ent.get("callsign") or entity)


def alerts(sit: Situation, f: Fmt) -> str:
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
                when(f, a["raised_at"]),
                f'<span class="sev sev-{e(a["severity"])}">'
                f"{e(label('ui.severity.', str(a['severity']), lang))}</span>",
                e(_name_of(sit, a.get("entity"), lang)),
                e(a["text"]),
                e(acked),
                e(cleared),
            ]
        )
    head = [
        e(t(f"debrief.col.{k}", lang))
        for k in ("time", "severity", "entity", "alert", "acked", "cleared")
    ]
    body = table(head, rows, "alerts") if rows else f"<p>{e(t('debrief.alerts.none', lang))}</p>"
    return f'<section class="page" id="alerts"><h2>{e(t("debrief.alerts", lang))}</h2>{body}'


def operational(sit: Situation) -> dict[str, dict[str, Any]]:
    """The detections with their personal part emptied (copies; the picture keeps it)."""
    copy = {k: dict(v) for k, v in sit.detections.items()}
    redact_snapshot({"detections": copy})
    return copy


def detections(dets: Mapping[str, Mapping[str, Any]], f: Fmt) -> str:
    lang = f.lang
    rows = []
    for d in sorted(dets.values(), key=lambda d: (d["first_seen"], d["id"])):
        place = []
        if d.get("address"):
            place.append(e(d["address"]) + (f", {e(d['floor'])}" if d.get("floor") else ""))
        if d.get("lat") is not None and d.get("lon") is not None:
            place.append(f"{d['lat']:.5f}, {d['lon']:.5f}")
        steps = []
        for h in d.get("history") or []:
            at = epoch(h.get("at"))
            line = t(
                "debrief.step",
                lang,
                time=f.clock(at) if at is not None else "",
                state=label("ui.adler.state.", str(h["to"]), lang),
                user=str(h.get("actor") or ""),
            )
            if h.get("note"):
                line += f" – {h['note']}"
            steps.append(f"<li>{e(line)}</li>")
        what = e(label("ui.adler.cat.", str(d["category"]), lang))
        if d.get("summary"):
            what += f"<br>{e(d['summary'])}"
        rows.append(
            [
                when(f, d["first_seen"]),
                what,
                e(label("ui.adler.state.", str(d["state"]), lang)),
                "<br>".join(place),
                f'<ul class="steps">{"".join(steps)}</ul>' if steps else "",
            ]
        )
    head = [
        e(t(f"debrief.col.{k}", lang)) for k in ("time", "detection", "state", "place", "review")
    ]
    body = (
        table(head, rows, "detections")
        if rows
        else f"<p>{e(t('debrief.detections.none', lang))}</p>"
    )
    return f"<h2>{e(t('debrief.detections.title', lang))}</h2>{body}</section>"
