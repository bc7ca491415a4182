"""The trainer's layout (`/trainer`): a laptop at 1280×800 and up, going through a
recorded incident with the crews.

The map and the panels are the commander's (the same ids, so `assets/stream.js` fills
them from the push stream, which on `cockpit replay RECORDING` carries the picture at the
replay time), but read-only and without personal data. Across the bottom sits the
replay's timeline with play, pause, speed and the big replay clock; the side panel gains
the trainer's bookmarks and the incident library. `assets/trainer.js` drives it all
against `/api/v1/replay*`; on a live server the controls are disabled with a note.
"""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from cockpit.api.deps import EXERCISE_ROLES, TRAINER_ROLES
from cockpit.auth import User
from cockpit.i18n import Lang, browser_strings, t
from layouts import commander
from layouts.common import attrs, page_lang, page_path

__all__ = ["PATH", "SPEEDS", "is_trainer", "layout"]

PATH = "/trainer"
SPEEDS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0)


def is_trainer(request: Any) -> bool:
    """Whether Dash builds the layout for `/trainer`."""
    return page_path(request) == PATH


def _speed_label(speed: float, lang: Lang) -> str:
    text = f"{speed:g}"
    return (text.replace(".", ",") if lang == "de" else text) + "×"


def _bar(lang: Lang) -> html.Section:
    speeds = [html.Option(_speed_label(s, lang), value=f"{s:g}", selected=s == 1.0) for s in SPEEDS]
    return html.Section(
        id="trainer-bar",
        className="trainer-bar",
        **attrs({"aria-label": t("ui.trainer.timeline", lang)}),
        children=[
            html.Div(
                className="tr-controls",
                children=[
                    html.Button(
                        "▶ " + t("ui.trainer.play", lang),
                        id="tr-play",
                        className="btn tr-btn",
                        disabled=True,
                    ),
                    html.Button(
                        "❚❚ " + t("ui.trainer.pause", lang),
                        id="tr-pause",
                        className="btn tr-btn",
                        disabled=True,
                    ),
                    html.Label(
                        className="tr-speed",
                        children=[
                            html.Span(t("ui.trainer.speed", lang)),
                            html.Select(id="tr-speed", children=speeds, disabled=True),
                        ],
                    ),
                    html.Div(
                        className="tr-clockbox",
                        children=[
                            html.Span(t("ui.trainer.clock", lang), className="tr-clock-label"),
                            html.Span("–", id="tr-clock", className="tr-clock"),
                        ],
                    ),
                    html.Div(id="tr-status", className="tr-status", role="status"),
                ],
            ),
            html.Div(
                id="tr-timeline",
                className="tr-timeline",
                role="slider",
                tabIndex="0",
                **attrs(
                    {
                        "aria-label": t("ui.trainer.timeline.hint", lang),
                        "aria-valuemin": "0",
                        "aria-valuemax": "100",
                        "aria-valuenow": "0",
                    }
                ),
            ),
            html.Div(
                className="tr-legend",
                children=[
                    html.Span("▲ " + t("ui.trainer.mark.alert", lang), className="lg lg-alert"),
                    html.Span(
                        "◆ " + t("ui.trainer.mark.detection", lang), className="lg lg-detection"
                    ),
                    html.Span("● " + t("ui.trainer.mark.journal", lang), className="lg lg-journal"),
                    html.Span(
                        "⚑ " + t("ui.trainer.mark.bookmark", lang), className="lg lg-bookmark"
                    ),
                    html.Span(id="tr-range", className="tr-range"),
                    html.Div(id="tr-mark", className="tr-mark", role="status"),
                ],
            ),
        ],
    )


def _bookmarks(lang: Lang) -> html.Section:
    return html.Section(
        className="card tr-bookmarks",
        children=[
            html.H2(t("ui.trainer.bookmarks", lang)),
            html.Div(
                className="tr-bm-form",
                children=[
                    html.Label(t("ui.trainer.bookmark.title", lang), htmlFor="tr-bm-title"),
                    dcc.Input(
                        id="tr-bm-title",
                        type="text",
                        maxLength=200,
                        placeholder=t("ui.trainer.bookmark.title", lang),
                        className="entry",
                    ),
                    html.Label(t("ui.trainer.bookmark.note", lang), htmlFor="tr-bm-note"),
                    dcc.Input(
                        id="tr-bm-note",
                        type="text",
                        maxLength=4000,
                        placeholder=t("ui.trainer.bookmark.note", lang),
                        className="entry",
                    ),
                    html.Button(
                        t("ui.trainer.bookmark.add", lang),
                        id="tr-bm-add",
                        className="btn tr-btn",
                        disabled=True,
                    ),
                ],
            ),
            html.Div(id="tr-bm-status", className="status", role="status"),
            html.Div(id="tr-bm-list", className="list"),
        ],
    )


def _debrief(lang: Lang) -> html.A:
    """The debrief of the recording served (a plain link: the file is a download)."""
    return html.A(
        t("ui.trainer.debrief", lang),
        id="tr-debrief",
        href=f"/api/v1/replay/debrief?lang={lang}",
        className="btn tr-btn tr-debrief",
    )


def _library(lang: Lang, can_drive: bool) -> html.Section:
    return html.Section(
        className="card tr-library",
        children=[
            html.H2(t("ui.trainer.library", lang)),
            *([_debrief(lang)] if can_drive else []),
            html.P(id="tr-note", className="muted tr-note", hidden=True),
            html.Div(id="tr-library", className="list"),
        ],
    )


def _exercise(lang: Lang) -> html.Section:
    """The trainer's card in an exercise (`--as-live`); assets/exercise.js shows and drives
    it (hidden on a replay or a live server)."""
    sev = ("warning", "critical", "info")
    return html.Section(
        id="ex-card",
        className="card ex-card",
        hidden=True,
        children=[
            html.H2(t("ui.exercise.title", lang)),
            html.P(id="ex-state", className="ex-state", role="status"),
            html.Div(
                className="ex-row",
                children=[
                    html.Button(t("ui.exercise.pause", lang), id="ex-pause", className="btn"),
                    html.Button(t("ui.exercise.play", lang), id="ex-play", className="btn"),
                    html.Button(t("ui.exercise.skip", lang), id="ex-skip", className="btn"),
                ],
            ),
            html.Div(
                className="ex-inject",
                children=[
                    html.Label(t("ui.exercise.kind", lang), htmlFor="ex-kind"),
                    html.Select(
                        id="ex-kind",
                        children=[
                            html.Option(t(f"ui.exercise.kind.{k}", lang), value=k)
                            for k in ("journal", "alert")
                        ],
                    ),
                    html.Label(t("ui.exercise.severity", lang), htmlFor="ex-severity"),
                    html.Select(
                        id="ex-severity",
                        children=[html.Option(t(f"ui.severity.{k}", lang), value=k) for k in sev],
                    ),
                    html.Label(t("ui.exercise.text", lang), htmlFor="ex-text"),
                    dcc.Input(id="ex-text", type="text", maxLength=500, className="entry"),
                    html.Button(t("ui.exercise.inject", lang), id="ex-send", className="btn"),
                ],
            ),
            html.P(id="ex-said", className="muted", role="status"),
        ],
    )


def _video(lang: Lang) -> html.Div:
    """The recorded video's tiles over the map, filled by assets/trainer_video.js outside
    React (the players must persist), as the live tiles are by assets/whep.js."""
    return html.Div(
        id="tr-video",
        className="video-tiles tr-video",
        role="region",
        **attrs({"aria-label": t("ui.trainer.video.title", lang)}),
    )


def layout(request: Any, user: User, incident: str, config: dict[str, Any]) -> html.Div:
    lang = page_lang(request, config["lang"])
    # Read-only whatever the role: a trainer watches what was, and never sees the
    # personal part of a detection here (no button asks for it).
    config = {
        **config,
        "lang": lang,
        "strings": browser_strings(lang),
        "can_write": False,
        "personal_data": False,
        "page": "trainer",
        # In an exercise the commanders are the ones trained: only trainers drive it.
        "can_drive": user.role in (EXERCISE_ROLES if config.get("exercise") else TRAINER_ROLES),
    }
    page = commander.layout(
        lang=lang, user=user.name, role=user.role, can_write=False, incident=incident, config=config
    )
    page.className = "cockpit trainer-page"  # type: ignore[attr-defined]  # a Dash prop
    children: list[Any] = list(page.children)
    for child in children:
        if isinstance(child, html.Header):
            child.children = [
                html.Span(t("ui.trainer.title", lang), className="tr-title"),
                *child.children,
            ]
        if isinstance(child, html.Main):
            child.children[0].children.append(_video(lang))  # the map's box
            aside = child.children[1]
            aside.children = [
                _exercise(lang),
                _bookmarks(lang),
                _library(lang, config["can_drive"]),
                *aside.children,
            ]
    at = next(i for i, c in enumerate(children) if isinstance(c, html.Main))
    children.insert(at + 1, _bar(lang))
    page.children = children
    return page
