"""The review of a detection: which state may follow which, and how each reads in German.

new -> confirmed | dismissed; confirmed -> dispatched; dispatched -> on_scene;
on_scene -> closed. Two more steps are deliberate: a dismissal can be undone
(dismissed -> confirmed: a wrongly dismissed fall must not be lost), and a confirmed or
dispatched detection can be closed without arriving (the person called back, the crew
was stood down). Closed is final.
"""

from __future__ import annotations

from collections.abc import Mapping

from cockpit.events import DetectionState

__all__ = [
    "CALL_LABEL_DE",
    "CALL_NEXT",
    "LABEL_DE",
    "NEXT",
    "QUALIFICATION_DE",
    "allowed",
    "call_allowed",
]

NEXT: Mapping[str, tuple[DetectionState, ...]] = {
    "new": ("confirmed", "dismissed"),
    "confirmed": ("dispatched", "closed"),
    "dismissed": ("confirmed",),
    "dispatched": ("on_scene", "closed"),
    "on_scene": ("closed",),
    "closed": (),
}

# Einsatztagebuch wording (the journal is written in German, as the service keeps it).
LABEL_DE: Mapping[str, str] = {
    "new": "neu",
    "confirmed": "bestätigt",
    "dismissed": "verworfen",
    "dispatched": "Kräfte entsandt",
    "on_scene": "Kräfte vor Ort",
    "closed": "abgeschlossen",
}


def allowed(current: str, to: str) -> bool:
    return to in NEXT.get(current, ())


# A first responder's call: alerted by a person; accepted, declined or arrived from the
# responder; released by a person (or anew alerted after a decline or a release). An
# accepted call may still be declined (the responder turned back). Arrived ends the
# responder's part until released.
CALL_NEXT: Mapping[str | None, tuple[str, ...]] = {
    None: ("alerted",),
    "alerted": ("accepted", "declined", "arrived", "released"),
    "accepted": ("arrived", "declined", "released"),
    "declined": ("alerted",),
    "arrived": ("released",),
    "released": ("alerted",),
}

CALL_LABEL_DE: Mapping[str, str] = {
    "alerted": "alarmiert",
    "accepted": "zugesagt",
    "declined": "abgesagt",
    "arrived": "eingetroffen",
    "released": "entlassen",
}

# Qualifications as the journal names them (German ranks of the rescue service).
QUALIFICATION_DE: Mapping[str, str] = {
    "first_aid": "Ersthelfer",
    "paramedic": "Rettungssanitäter",
    "emergency_paramedic": "Notfallsanitäter",
    "doctor": "Arzt",
    "nurse": "Pflegekraft",
    "firefighter": "Feuerwehr",
}


def call_allowed(current: str | None, to: str) -> bool:
    return to in CALL_NEXT.get(current, ())
