"""Every user-facing string, German first, English second. One table, one lookup."""

from __future__ import annotations

from typing import Literal

__all__ = ["LANGS", "STRINGS", "Lang", "t"]

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
    "home.logged_in": {
        "de": "Angemeldet als {user} ({role}).",
        "en": "Logged in as {user} ({role}).",
    },
    "home.lage": {"de": "Lage (JSON)", "en": "Situation (JSON)"},
    "home.docs": {"de": "API-Dokumentation", "en": "API documentation"},
    "home.pending_ui": {
        "de": "Die Lagekarte folgt; bis dahin liefert die API das Lagebild.",
        "en": "The map view follows; until then the API serves the situation picture.",
    },
}


def t(key: str, lang: Lang = "de", **params: str) -> str:
    """The string for `key` in `lang` (German if missing), with {params} filled in."""
    entry = STRINGS[key]
    text = entry.get(lang) or entry["de"]
    return text.format(**params) if params else text
