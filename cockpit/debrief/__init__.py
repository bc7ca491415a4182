"""The trainer's debrief export: one self-contained, printable HTML file of a recording
(timeline, Einsatztagebuch, alerts, detections, plots of the key readings, snapshots),
without personal data."""

from cockpit.debrief.page import MAX_SNAPSHOTS, build_debrief, debrief_filename

__all__ = ["MAX_SNAPSHOTS", "build_debrief", "debrief_filename"]
