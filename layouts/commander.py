"""The commander's layout (`/`): a tablet at 1280×800, touch, outdoors.

The map fills the screen; the side panel holds alerts, the selected entity's details and
the Einsatztagebuch. Nothing here reads the picture: `assets/stream.js` keeps it from the
push stream, `assets/livemap.js` draws its live layers on the map in place, and the
clientside functions in `assets/panels.js` draw the panels from the stores stream.js
fills. No server callback runs per event.
"""

from __future__ import annotations

import json
from typing import Any

import dash_leaflet as dl
from dash import ALL, ClientsideFunction, Dash, Input, Output, State, dcc, html

from cockpit.i18n import QUICK_ENTRIES, Lang, t
from layouts.common import attrs

__all__ = ["layout", "register"]


def _fn(name: str) -> dict[str, str]:
    """A function of `assets/map.js`, by name, as dash-leaflet resolves it."""
    return {"variable": f"cockpitMap.{name}"}


def _map(config: dict[str, Any], lang: Lang) -> dl.Map:
    base: list[Any] = []
    if config["tiles"]:
        base.append(
            dl.TileLayer(
                url=config["tiles"], attribution=config["attribution"], maxZoom=19, id="tiles"
            )
        )
    base.append(
        dl.GeoJSON(
            id="layer-basemap",
            url="/assets/basemap/dortmund-hafen.geojson",
            style=_fn("basemapStyle"),
            pointToLayer=_fn("basemapPoint"),
            interactive=False,
        )
    )
    # The live layers (units, drones, tracks, …) and their switch are Leaflet's own,
    # kept by assets/livemap.js: dash-leaflet would redraw a layer whole on every change.
    return dl.Map(
        id="map",
        center=list(config["center"]),
        zoom=config["zoom"],
        preferCanvas=True,
        zoomControl=True,
        className="map",
        children=base,
    )


def _scrolls(label: str) -> dict[str, Any]:
    """A list that scrolls on its own: reachable and scrollable from the keyboard too."""
    return {"tabIndex": "0", "role": "region", "aria-label": label}


def _section(title: str, body: list[Any], cls: str) -> html.Section:
    return html.Section(className=f"card {cls}", children=[html.H2(title), *body])


def layout(
    *, lang: Lang, user: str, role: str, can_write: bool, incident: str, config: dict[str, Any]
) -> html.Div:
    quick = [
        html.Button(
            t(f"ui.quick.{key}", lang),
            id={"type": "quick", "key": key},
            className="btn quick",
            disabled=not can_write,
        )
        for key in QUICK_ENTRIES
    ]
    journal_form = (
        [
            html.Div(className="quick-row", children=quick),
            html.Div(
                className="entry-row",
                children=[
                    dcc.Input(
                        id="journal-text",
                        type="text",
                        maxLength=4000,
                        placeholder=t("ui.journal.placeholder", lang),
                        className="entry",
                        debounce=False,
                    ),
                    html.Button(t("ui.journal.send", lang), id="journal-send", className="btn"),
                ],
            ),
        ]
        if can_write
        else [html.P(t("ui.journal.readonly", lang), className="muted")]
    )
    return html.Div(
        className="cockpit",
        lang=lang,
        children=[
            html.Div(id="ui-config", hidden=True, **attrs({"data-config": json.dumps(config)})),
            html.Header(
                className="topbar",
                children=[
                    html.Div(
                        className="brand",
                        children=[
                            html.Span(t("app.title", lang), className="title"),
                            html.Span(f"{t('ui.incident', lang)} {incident}", className="inc"),
                        ],
                    ),
                    html.Div(
                        t("ui.conn.connecting", lang),
                        id="conn-state",
                        className="conn connecting",
                        role="status",
                    ),
                    html.Div(id="clock", className="clock"),
                    html.Span(f"{user} · {role}", className="who"),
                    # A.D.Le.R.'s tone switch ("Ton an/aus"), drawn by assets/adler.js,
                    # which remembers the choice in this browser.
                    html.Div(id="sound-slot"),
                    html.Button(t("ui.lang_toggle", lang), id="lang-toggle", className="btn"),
                    html.Button(t("ui.logout", lang), id="logout", className="btn"),
                ],
            ),
            html.Div(id="conn-banner", className="banner", role="alert", hidden=True),
            # The pop-up of a new A.D.Le.R. detection (assets/adler.js draws it here).
            html.Div(id="adler-popup-root"),
            html.Main(
                className="body",
                children=[
                    html.Div(
                        className="map-wrap",
                        children=[
                            _map(config, lang),
                            # Filled by assets/whep.js, outside React: players must persist.
                            html.Div(id="video-tiles", className="video-tiles"),
                        ],
                    ),
                    html.Aside(
                        className="panel",
                        children=[
                            _section(
                                t("ui.alerts", lang),
                                [
                                    html.Div(id="ack-status", className="status", role="status"),
                                    html.Div(id="alerts-list", className="list"),
                                ],
                                "alerts",
                            ),
                            # Filled by assets/adler.js outside React, as the video tiles:
                            # each item keeps its own buttons and their pending state.
                            _section(
                                t("ui.adler.title", lang),
                                [
                                    html.Div(
                                        id="adler-list",
                                        className="list",
                                        **_scrolls(t("ui.adler.title", lang)),
                                    )
                                ],
                                "adler-card",
                            ),
                            _section(
                                t("ui.responders", lang),
                                [
                                    html.Div(
                                        id="responders-list",
                                        className="list",
                                        **_scrolls(t("ui.responders", lang)),
                                    )
                                ],
                                "responders-card",
                            ),
                            _section(
                                t("ui.warnings", lang),
                                [html.Div(id="warnings-list", className="list")],
                                "warnings-card",
                            ),
                            _section(
                                t("ui.details", lang),
                                [
                                    html.Div(id="details", className="details"),
                                    dcc.Graph(
                                        id="details-spark",
                                        config={"displayModeBar": False, "staticPlot": True},
                                        style={"height": "150px", "display": "none"},
                                    ),
                                ],
                                "details-card",
                            ),
                            _section(
                                t("ui.journal", lang),
                                [
                                    *journal_form,
                                    html.Div(
                                        id="journal-status", className="status", role="status"
                                    ),
                                    html.Div(id="journal-list", className="list journal"),
                                ],
                                "journal-card",
                            ),
                        ],
                    ),
                ],
            ),
            dcc.Store(id="store-alerts", data=[]),
            dcc.Store(id="store-warnings", data=[]),
            dcc.Store(id="store-journal", data=[]),
            dcc.Store(id="store-selected", data=None),
        ],
    )


def register(app: Dash) -> None:
    """The clientside wiring (functions in `assets/panels.js`); no server callbacks."""

    def cs(name: str) -> ClientsideFunction:
        return ClientsideFunction(namespace="cockpit", function_name=name)

    app.clientside_callback(
        cs("renderAlerts"), Output("alerts-list", "children"), Input("store-alerts", "data")
    )
    app.clientside_callback(
        cs("renderWarnings"), Output("warnings-list", "children"), Input("store-warnings", "data")
    )
    app.clientside_callback(
        cs("renderJournal"), Output("journal-list", "children"), Input("store-journal", "data")
    )
    app.clientside_callback(
        cs("renderDetails"),
        Output("details", "children"),
        Output("details-spark", "figure"),
        Output("details-spark", "style"),
        Input("store-selected", "data"),
    )
    app.clientside_callback(
        cs("acknowledge"),
        Output("ack-status", "children"),
        Input({"type": "ack", "alert": ALL}, "n_clicks"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        cs("writeJournal"),
        Output("journal-status", "children"),
        Output("journal-text", "value"),
        Input("journal-send", "n_clicks"),
        Input("journal-text", "n_submit"),
        Input({"type": "quick", "key": ALL}, "n_clicks"),
        State("journal-text", "value"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        cs("toggleLanguage"),
        Output("lang-toggle", "n_clicks"),
        Input("lang-toggle", "n_clicks"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        cs("logout"),
        Output("logout", "n_clicks"),
        Input("logout", "n_clicks"),
        prevent_initial_call=True,
    )
