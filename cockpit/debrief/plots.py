"""The debrief's plots: one per key reading of each entity, with its rule thresholds."""

from __future__ import annotations

from cockpit.debrief.fmt import Fmt
from cockpit.debrief.markup import e, label
from cockpit.debrief.series import CATEGORIES, Series, SeriesSet
from cockpit.debrief.svg import Threshold, plot_svg
from cockpit.i18n import Lang, t
from cockpit.rules.config import RuleConfig
from cockpit.rules.thresholds import _unit_ok

__all__ = ["plots"]


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
    return label("debrief.reading.", s.name, lang)


def plots(found: SeriesSet, cfg: RuleConfig, first: float, last: float, f: Fmt) -> str:
    lang = f.lang
    parts = [f'<section class="page" id="plots"><h2>{e(t("debrief.plots", lang))}</h2>']
    shown = found.ordered()
    if not shown:
        parts.append(f"<p>{e(t('debrief.plots.none', lang))}</p>")
    family = None
    for s in shown:
        if s.category != family:
            family = s.category
            parts.append(f"<h3>{e(t(f'debrief.family.{family}', lang))}</h3>")
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
            f'<figure class="plot-fig" data-entity="{e(s.entity)}" data-reading="{e(s.name)}">'
            f"<figcaption><strong>{e(title)}</strong><br>{e(caption)}"
            + (f'<br><span class="note">{e(note)}</span>' if note else "")
            + f"</figcaption>{svg}</figure>"
        )
    for category in CATEGORIES:
        dropped = found.dropped.get(category)
        if dropped:
            parts.append(
                '<p class="note">'
                + e(
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
