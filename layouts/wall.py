"""The wall display (`/wall`): a control room's screen, read from 5 m, never touched.

Dark and high contrast, type sized to the viewport (the same page at 1920×1080 and at
3840×2160). The map fits the incident by itself and takes no input; video tiles, the
alert ticker and the weather (a wind rose and the latest readings) sit around it. As on
the commander's page `assets/stream.js` keeps the picture from the push stream and
reconnects by itself; `assets/wall.js` draws what only the wall shows (ticker, weather,
video rotation, the map's framing, the lost-connection veil). Nothing personal: the
push stream carries none, and this page asks for nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import dash_leaflet as dl
from dash import dcc, html

from cockpit.i18n import Lang, t
from layouts.common import attrs, page_lang, page_path

__all__ = ["is_wall", "layout", "page"]


def _map(config: dict[str, Any]) -> dl.Map:
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
            style={"variable": "cockpitMap.basemapStyle"},
            pointToLayer={"variable": "cockpitMap.basemapPoint"},
            interactive=False,
        )
    )
    # No controls and no input of any kind: nobody stands at the wall with a mouse, and
    # a stray touch must not move what the room is looking at (wall.js frames the map).
    return dl.Map(
        id="map",
        center=list(config["center"]),
        zoom=config["zoom"],
        preferCanvas=True,
        zoomControl=False,
        dragging=False,
        touchZoom=False,
        scrollWheelZoom=False,
        doubleClickZoom=False,
        boxZoom=False,
        keyboard=False,
        className="map",
        children=base,
    )


def _card(title: str, body: list[Any], cls: str) -> html.Section:
    return html.Section(className=f"wall-card {cls}", children=[html.H2(title), *body])


def layout(*, lang: Lang, incident: str, config: dict[str, Any]) -> html.Div:
    return html.Div(
        className="wall",
        lang=lang,
        children=[
            html.Div(id="ui-config", hidden=True, **attrs({"data-config": json.dumps(config)})),
            html.Header(
                className="wall-top",
                children=[
                    html.H1(
                        className="wall-inc",
                        children=[
                            html.Span(t("ui.incident", lang), className="wall-inc-label"),
                            html.Span(incident, id="wall-incident", className="wall-inc-id"),
                        ],
                    ),
                    html.Div(
                        t("ui.conn.connecting", lang),
                        id="conn-state",
                        className="conn connecting",
                        role="status",
                    ),
                    html.Div(
                        className="wall-clock-box",
                        children=[
                            html.Div(id="clock", className="wall-clock"),
                            html.Div(id="wall-duration", className="wall-duration"),
                        ],
                    ),
                ],
            ),
            html.Main(
                className="wall-body",
                children=[
                    html.Section(
                        className="map-wrap wall-map",
                        **attrs({"aria-label": t("ui.map", lang)}),
                        children=[_map(config)],
                    ),
                    html.Div(
                        className="wall-side",
                        children=[
                            _card(
                                t("ui.wall.weather", lang),
                                [html.Div(id="wall-weather", className="wall-weather-body")],
                                "wall-weather",
                            ),
                            _card(
                                t("ui.wall.videos", lang),
                                [
                                    # Filled by assets/whep.js (players live outside React).
                                    html.Div(id="video-tiles", className="wall-tiles"),
                                    html.P(id="wall-video-note", className="wall-note"),
                                ],
                                "wall-videos",
                            ),
                        ],
                    ),
                ],
            ),
            html.Section(
                className="wall-ticker",
                **attrs({"aria-label": t("ui.alerts", lang)}),
                children=[
                    html.H2(t("ui.alerts", lang), className="wall-ticker-title"),
                    html.Div(id="wall-alerts", className="wall-alerts"),
                ],
            ),
            # The veil over everything while the stream is down (wall.js shows it).
            html.Div(id="wall-lost", className="wall-lost", role="alert", hidden=True),
            # stream.js hands panels their data through these; the wall reads the picture.
            dcc.Store(id="store-alerts", data=[]),
            dcc.Store(id="store-warnings", data=[]),
            dcc.Store(id="store-journal", data=[]),
            dcc.Store(id="store-selected", data=None),
        ],
    )


def is_wall(request: Any) -> bool:
    return page_path(request) == "/wall"


def page(request: Any, lang: Lang, incident: str, config_of: Callable[[Lang], Any]) -> html.Div:
    """The wall in the language its link asks for (a wall has no toggle), else the cookie's."""
    chosen = page_lang(request, lang)
    # The wall writes nothing and shows nothing personal, whoever is logged in on it.
    config = {**config_of(chosen), "can_write": False, "personal_data": False}
    return layout(lang=chosen, incident=incident, config=config)
