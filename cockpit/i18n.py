"""Every user-facing string, German first, English second. One table, one lookup."""

from __future__ import annotations

from typing import Literal

__all__ = ["LANGS", "QUICK_ENTRIES", "STRINGS", "Lang", "browser_strings", "t"]

Lang = Literal["de", "en"]
LANGS: tuple[Lang, ...] = ("de", "en")

STRINGS: dict[str, dict[Lang, str]] = {
    "app.title": {"de": "Einsatz-Cockpit", "en": "Incident cockpit"},
    "login.title": {"de": "Anmeldung", "en": "Log in"},
    "login.username": {"de": "Benutzername", "en": "User name"},
    "login.password": {"de": "Passwort", "en": "Password"},
    "login.submit": {"de": "Anmelden", "en": "Log in"},
    "login.failed": {
        "de": "Anmeldung fehlgeschlagen: Name oder Passwort falsch, oder vorübergehend gesperrt.",
        "en": "Log-in failed: wrong name or password, or temporarily locked.",
    },
    "login.other_lang": {"de": "English", "en": "Deutsch"},
    # --- the commander layout (keys starting with "ui." also go to the browser) ---
    "ui.incident": {"de": "Einsatz", "en": "Incident"},
    "ui.lang_toggle": {"de": "English", "en": "Deutsch"},
    "ui.logout": {"de": "Abmelden", "en": "Log out"},
    "ui.map": {"de": "Lagekarte", "en": "Situation map"},
    "ui.layer.units": {"de": "Einheiten", "en": "Units"},
    "ui.layer.drones": {"de": "Drohnen", "en": "Drones"},
    "ui.layer.robots": {"de": "Roboter", "en": "Robots"},
    "ui.layer.sensors": {"de": "Sensoren", "en": "Sensors"},
    "ui.layer.persons": {"de": "Personen", "en": "People"},
    "ui.layer.tracks": {"de": "Fahrspuren", "en": "Tracks"},
    "ui.layer.footprints": {"de": "Kamerablick", "en": "Camera view"},
    "ui.layer.detections": {"de": "Meldungen", "en": "Detections"},
    "ui.layer.hazards": {"de": "Gefahrenbereiche", "en": "Hazard areas"},
    "ui.layer.warnings": {"de": "Warnungen", "en": "Warnings"},
    "ui.layer.basemap": {"de": "Grundkarte", "en": "Base map"},
    "ui.warning.exercise": {"de": "ÜBUNG", "en": "EXERCISE"},
    "ui.warning.places": {"de": "Gebiete: {names}", "en": "Areas: {names}"},
    "ui.warning.until": {"de": "bis {time}", "en": "until {time}"},
    "ui.conn.live": {"de": "Live", "en": "Live"},
    "ui.conn.connecting": {"de": "Verbinde …", "en": "Connecting …"},
    "ui.conn.lost": {
        "de": "Verbindung unterbrochen — Stand {time}",
        "en": "Connection lost — as of {time}",
    },
    "ui.conn.never": {"de": "Keine Verbindung zum Server", "en": "No connection to the server"},
    "ui.alerts": {"de": "Alarme", "en": "Alerts"},
    "ui.alerts.none": {"de": "Keine offenen Alarme", "en": "No open alerts"},
    "ui.warnings": {
        "de": "Unwetter- und Bevölkerungswarnungen",
        "en": "Weather and public warnings",
    },
    "ui.warnings.none": {"de": "Keine Warnungen", "en": "No warnings"},
    "ui.cap.Extreme": {"de": "Extreme Gefahr", "en": "Extreme"},
    "ui.cap.Severe": {"de": "Hohe Gefahr", "en": "Severe"},
    "ui.cap.Moderate": {"de": "Mittlere Gefahr", "en": "Moderate"},
    "ui.cap.Minor": {"de": "Geringe Gefahr", "en": "Minor"},
    "ui.cap.Unknown": {"de": "Warnung", "en": "Warning"},
    "ui.alerts.ack": {"de": "Quittieren", "en": "Acknowledge"},
    "ui.alerts.acked": {"de": "quittiert von {user}", "en": "acknowledged by {user}"},
    "ui.alerts.cleared": {"de": "aufgehoben", "en": "cleared"},
    "ui.alerts.ack_failed": {
        "de": "Quittieren nicht möglich: {reason}",
        "en": "Could not acknowledge: {reason}",
    },
    "ui.severity.critical": {"de": "Kritisch", "en": "Critical"},
    "ui.severity.warning": {"de": "Warnung", "en": "Warning"},
    "ui.severity.info": {"de": "Hinweis", "en": "Info"},
    "ui.details": {"de": "Details", "en": "Details"},
    "ui.details.none": {
        "de": "Ein Symbol auf der Karte antippen",
        "en": "Tap a symbol on the map",
    },
    "ui.details.kind": {"de": "Art", "en": "Kind"},
    "ui.details.last": {"de": "Letzte Meldung", "en": "Last report"},
    "ui.details.position": {"de": "Position", "en": "Position"},
    "ui.details.speed": {"de": "Geschwindigkeit", "en": "Speed"},
    "ui.details.battery": {"de": "Akku", "en": "Battery"},
    "ui.details.link": {"de": "Verbindung", "en": "Link"},
    "ui.details.readings": {"de": "Messwerte", "en": "Readings"},
    "ui.details.stale": {"de": "VERALTET", "en": "STALE"},
    "ui.kind.unit": {"de": "Fahrzeug", "en": "Vehicle"},
    "ui.kind.drone": {"de": "Drohne", "en": "Drone"},
    "ui.kind.robot": {"de": "Roboter", "en": "Robot"},
    "ui.kind.sensor": {"de": "Sensor", "en": "Sensor"},
    "ui.kind.person": {"de": "Person", "en": "Person"},
    "ui.journal": {"de": "Einsatztagebuch", "en": "Incident log"},
    "ui.journal.placeholder": {"de": "Eintrag …", "en": "Entry …"},
    "ui.journal.send": {"de": "Eintragen", "en": "Add"},
    "ui.journal.empty": {"de": "Noch keine Einträge", "en": "No entries yet"},
    "ui.journal.failed": {"de": "Nicht gespeichert: {reason}", "en": "Not saved: {reason}"},
    "ui.journal.readonly": {
        "de": "Nur Lesen: diese Rolle schreibt nicht ins Einsatztagebuch",
        "en": "Read-only: this role does not write to the log",
    },
    "ui.quick.lage": {"de": "Lage erkundet", "en": "Situation assessed"},
    "ui.quick.nachforderung": {"de": "Kräfte nachgefordert", "en": "Resources requested"},
    "ui.quick.wasser": {"de": "Wasserversorgung steht", "en": "Water supply established"},
    "ui.quick.menschenrettung": {"de": "Menschenrettung abgeschlossen", "en": "Rescue complete"},
    "ui.quick.unter_kontrolle": {"de": "Feuer unter Kontrolle", "en": "Fire under control"},
    "ui.quick.feuer_aus": {"de": "Feuer aus", "en": "Fire out"},
    "ui.age.now": {"de": "jetzt", "en": "now"},
    "ui.age.s": {"de": "{n} s", "en": "{n} s"},
    "ui.age.min": {"de": "{n} min", "en": "{n} min"},
    "ui.age.h": {"de": "{n} h", "en": "{n} h"},
    "ui.age.ago": {"de": "vor {age}", "en": "{age} ago"},
    "ui.journal.cat.alert": {"de": "Alarm", "en": "Alert"},
    "ui.journal.cat.ack": {"de": "Quittung", "en": "Acknowledged"},
    "ui.journal.cat.note": {"de": "Eintrag", "en": "Entry"},
    "ui.journal.cat.detection": {"de": "Meldung", "en": "Detection"},
    "ui.journal.cat.hazard": {"de": "Gefahrenbereich", "en": "Hazard area"},
    "ui.hazard.draw": {"de": "Gefahrenbereich setzen", "en": "Mark hazard"},
    "ui.hazard.placing": {
        "de": "Auf die Gefahrenstelle tippen",
        "en": "Tap where the hazard is",
    },
    "ui.hazard.cancel": {"de": "Abbrechen", "en": "Cancel"},
    "ui.hazard.default_label": {"de": "Gefahrenstelle", "en": "Hazard"},
    "ui.hazard.lift": {"de": "Aufheben", "en": "Lift"},
    "ui.hazard.failed": {"de": "Nicht gespeichert: {reason}", "en": "Not saved: {reason}"},
    "ui.hazard.area": {"de": "Gefahrenbereich", "en": "Hazard area"},
    "ui.hazard.sector": {"de": "Windsektor", "en": "Downwind sector"},
    "ui.hazard.wind": {
        "de": "Wind aus {dir}° mit {speed} m/s ({station}, {age})",
        "en": "Wind from {dir}° at {speed} m/s ({station}, {age})",
    },
    # Reading names as a fire service says them (unknown names are shown as they come).
    "ui.reading.wind_speed": {"de": "Windgeschwindigkeit", "en": "Wind speed"},
    "ui.reading.wind_dir": {"de": "Windrichtung (aus)", "en": "Wind from"},
    "ui.reading.gust": {"de": "Böen", "en": "Gusts"},
    "ui.reading.temperature": {"de": "Temperatur", "en": "Temperature"},
    "ui.reading.humidity": {"de": "Luftfeuchte", "en": "Humidity"},
    "ui.reading.pressure": {"de": "Luftdruck", "en": "Air pressure"},
    "ui.reading.precipitation": {"de": "Niederschlag", "en": "Precipitation"},
    "ui.reading.water_level": {"de": "Pegel", "en": "Water level"},
    "ui.reading.water_rise": {"de": "Pegelanstieg", "en": "Water rise"},
    "ui.reading.pm10": {"de": "Feinstaub PM10", "en": "Particulates PM10"},
    "ui.reading.pm25": {"de": "Feinstaub PM2,5", "en": "Particulates PM2.5"},
    "ui.reading.no2": {"de": "NO₂", "en": "NO₂"},
    "ui.reading.co2": {"de": "CO₂", "en": "CO₂"},
    "ui.reading.co": {"de": "CO", "en": "CO"},
    "ui.reading.h2s": {"de": "H₂S", "en": "H₂S"},
    "ui.reading.ch4": {"de": "CH₄", "en": "CH₄"},
    "ui.reading.o2": {"de": "O₂", "en": "O₂"},
    "ui.reading.lel": {"de": "Ex (UEG)", "en": "Ex (LEL)"},
    "ui.reading.hcn": {"de": "HCN", "en": "HCN"},
    "ui.reading.nh3": {"de": "NH₃", "en": "NH₃"},
    "ui.reading.cl2": {"de": "Cl₂", "en": "Cl₂"},
    "ui.reading.battery": {"de": "Akku", "en": "Battery"},
    "ui.link.ok": {"de": "verbunden", "en": "connected"},
    "ui.link.degraded": {"de": "gestört", "en": "degraded"},
    "ui.link.lost": {"de": "verloren", "en": "lost"},
    # Alert texts by rule (and variant); the fold's own text is German.
    "ui.alert.gas_threshold": {"de": "{gas} {value} {unit}", "en": "{gas} {value} {unit}"},
    "ui.alert.gas_threshold.unit": {
        "de": "{gas}: Einheit {unit} nicht auswertbar (erwartet {expected})",
        "en": "{gas}: unit {unit} cannot be evaluated (expected {expected})",
    },
    "ui.alert.battery_low": {"de": "Akku {value} %", "en": "Battery {value} %"},
    "ui.alert.link_lost.lost": {"de": "Verbindung verloren", "en": "Link lost"},
    "ui.alert.link_lost.degraded": {"de": "Verbindung gestört", "en": "Link degraded"},
    "ui.alert.stale": {"de": "Keine Meldung seit {s} s", "en": "No report for {s} s"},
    "ui.alert.feed_stale": {
        "de": "Zuleitung {feed}: seit {min} min keine Daten",
        "en": "Feed {feed}: no data for {min} min",
    },
    "ui.alert.wind_shift": {
        "de": "Winddrehung {deg}° in {min} min, jetzt aus {dir}°",
        "en": "Wind turned {deg}° in {min} min, now from {dir}°",
    },
    "ui.alert.water.level": {
        "de": "Pegel {level} cm, {over} cm über Warnmarke",
        "en": "Water level {level} cm, {over} cm above the warning mark",
    },
    "ui.alert.water.rise": {"de": "Pegel steigt {rate} cm/h", "en": "Water rising {rate} cm/h"},
    "ui.alert.in_zone.danger_area": {
        "de": "Im Gefahrenbereich: {label}",
        "en": "In the hazard area: {label}",
    },
    "ui.alert.in_zone.downwind_sector": {
        "de": "Im Windsektor: {label}",
        "en": "In the downwind sector: {label}",
    },
    "ui.system": {"de": "System", "en": "System"},
    "ui.video.waiting": {"de": "Warte auf Bild …", "en": "Waiting for video …"},
    "ui.video.age": {"de": "Bild {age} s alt", "en": "Picture {age} s old"},
    "ui.video.stale": {"de": "KEIN BILD seit {age} s", "en": "NO PICTURE for {age} s"},
}

# The quick entries a commander can tap, in this order; the text is written in the
# language of the person tapping (the Einsatztagebuch keeps what was written).
QUICK_ENTRIES = (
    "lage",
    "nachforderung",
    "wasser",
    "menschenrettung",
    "unter_kontrolle",
    "feuer_aus",
)


def browser_strings(lang: Lang) -> dict[str, str]:
    """The `ui.*` strings in `lang`, for the page scripts (without the prefix)."""
    return {k[3:]: t(k, lang) for k in STRINGS if k.startswith("ui.")}


def t(key: str, lang: Lang = "de", **params: str) -> str:
    """The string for `key` in `lang` (German if missing), with {params} filled in."""
    entry = STRINGS[key]
    text = entry.get(lang) or entry["de"]
    return text.format(**params) if params else text
