"""A DWD-style CAP 1.2 weather warning for the demo area, posted like DWD's would be.

First an Alert (STURMBÖEN, Moderate) over Dortmund's harbour, German and English, with a
polygon and the WARNCELLID of the city (an area the map lists by name); `update_after_s`
later an Update that references it and raises it to SCHWERE STURMBÖEN (Severe). Both go
to `POST /api/v1/ingest/cap` with a device token for the feed `cap`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import escape

import httpx

from feeds.cap import CAP12_NS

__all__ = ["demo_warning", "run_cap_warnings"]

log = logging.getLogger(__name__)

SENDER = "opendata@dwd.de"
# Around the demo incident (51.527, 7.4445): the harbour and the Nordstadt, lat,lon pairs.
POLYGON = (
    (51.545, 7.405), (51.548, 7.470), (51.528, 7.490), (51.508, 7.470), (51.510, 7.415),
    (51.545, 7.405),
)  # fmt: skip
TEXTS = {
    "Moderate": {
        "de-DE": ("STURMBÖEN", "Amtliche WARNUNG vor STURMBÖEN",
                  "Es treten Sturmböen mit Geschwindigkeiten um 70 km/h (20 m/s) auf."),
        "en-GB": ("gale-force gusts", "Official WARNING of GALE-FORCE GUSTS",
                  "There is a risk of gale-force gusts of about 70 km/h (20 m/s)."),
    },
    "Severe": {
        "de-DE": ("SCHWERE STURMBÖEN", "Amtliche UNWETTERWARNUNG vor SCHWEREN STURMBÖEN",
                  "Es treten schwere Sturmböen um 95 km/h (26 m/s) auf."),
        "en-GB": ("storm-force gusts", "Official SEVERE WEATHER WARNING of STORM-FORCE GUSTS",
                  "There is a risk of storm-force gusts of about 95 km/h (26 m/s)."),
    },
}  # fmt: skip


def _t(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _identifier(sent: datetime) -> str:
    """DWD's form: 2.49.0.0.276.0.DWD.PVW.<ms>.<uuid>.MUL (a usable id as it is)."""
    return f"2.49.0.0.276.0.DWD.PVW.{int(sent.timestamp() * 1000)}.{uuid.uuid4()}.MUL"


def demo_warning(
    sent: datetime,
    *,
    severity: str = "Moderate",
    hours: float = 3.0,
    references: tuple[str, datetime] | None = None,
) -> tuple[str, str]:
    """(identifier, CAP 1.2 XML) of one demo warning; an Update when `references` names
    the (identifier, sent) of the warning it replaces."""
    identifier = _identifier(sent)
    ring = " ".join(f"{lat},{lon}" for lat, lon in POLYGON)
    refs = ""
    if references is not None:
        refs = f"<references>{SENDER},{references[0]},{_t(references[1])}</references>"
    infos = []
    for language, (event, headline, description) in TEXTS[severity].items():
        infos.append(f"""  <info>
    <language>{language}</language>
    <category>Met</category>
    <event>{escape(event)}</event>
    <responseType>Prepare</responseType>
    <urgency>Immediate</urgency>
    <severity>{severity}</severity>
    <certainty>Likely</certainty>
    <eventCode><valueName>GROUP</valueName><value>WIND</value></eventCode>
    <onset>{_t(sent)}</onset>
    <expires>{_t(sent + timedelta(hours=hours))}</expires>
    <senderName>Deutscher Wetterdienst</senderName>
    <headline>{escape(headline)}</headline>
    <description>{escape(description)}</description>
    <web>https://www.wettergefahren.de</web>
    <area><areaDesc>polygonal event area</areaDesc><polygon>{ring}</polygon></area>
    <area>
      <areaDesc>Stadt Dortmund</areaDesc>
      <geocode><valueName>WARNCELLID</valueName><value>105913000</value></geocode>
    </area>
  </info>""")
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="{CAP12_NS}">
  <identifier>{identifier}</identifier>
  <sender>{SENDER}</sender>
  <sent>{_t(sent)}</sent>
  <status>Actual</status>
  <msgType>{"Update" if references else "Alert"}</msgType>
  <scope>Public</scope>
  {refs}
{chr(10).join(infos)}
</alert>
"""
    return identifier, xml


async def _post(client: httpx.AsyncClient, url: str, token: str, xml: str) -> None:
    try:
        r = await client.post(
            url,
            content=xml.encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/cap+xml"},
        )
    except httpx.HTTPError as exc:  # the demo goes on without its weather
        log.warning("CAP warning not posted: %s", exc)
        return
    if r.status_code != 202:
        log.warning("CAP warning not accepted: %s %s", r.status_code, r.text)


async def run_cap_warnings(
    base_url: str, token: str, *, first_after_s: float = 20.0, update_after_s: float = 300.0
) -> None:
    """Post the Alert after `first_after_s`, its Update `update_after_s` later."""
    url = f"{base_url.rstrip('/')}/api/v1/ingest/cap"
    async with httpx.AsyncClient(timeout=10.0) as client:
        await asyncio.sleep(first_after_s)
        sent = datetime.now(UTC).replace(microsecond=0)
        first, xml = demo_warning(sent)
        await _post(client, url, token, xml)
        await asyncio.sleep(update_after_s)
        later = datetime.now(UTC).replace(microsecond=0)
        _, xml = demo_warning(later, severity="Severe", references=(first, sent))
        await _post(client, url, token, xml)
