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

__all__ = ["LABEL_DE", "NEXT", "allowed"]

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
