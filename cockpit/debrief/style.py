"""The debrief's stylesheet: A4 print first, light background, readable on screen too."""

from __future__ import annotations

__all__ = ["CSS"]

CSS = """
@page { size: A4; margin: 14mm 12mm 16mm 12mm; }
* { box-sizing: border-box; }
html, body { background: #fff; color: #111; }
body { font: 10pt/1.35 "DejaVu Sans", "Liberation Sans", Arial, sans-serif; margin: 0 auto;
  max-width: 190mm; padding: 8mm 4mm; }
h1 { font-size: 20pt; margin: 0 0 2mm; }
h2 { font-size: 14pt; margin: 6mm 0 3mm; border-bottom: 1.5pt solid #b00; padding-bottom: 1mm; }
h3 { font-size: 11.5pt; margin: 4mm 0 2mm; }
.incident { font-size: 13pt; font-weight: bold; margin: 0 0 3mm; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 1mm 6mm; margin: 0 0 3mm; }
.facts dt { font-weight: bold; }
.facts dd { margin: 0; }
.privacy, .note { color: #444; font-size: 9pt; }
.page { break-before: page; }
table { width: 100%; border-collapse: collapse; font-size: 9pt; }
thead { display: table-header-group; }
tr { break-inside: avoid; }
th { text-align: left; background: #eee; border-bottom: 1pt solid #888; }
th, td { padding: 1mm 1.5mm; vertical-align: top; border-bottom: 0.5pt solid #ccc; }
td .since, .since { color: #555; font-variant-numeric: tabular-nums; }
.time { font-variant-numeric: tabular-nums; font-weight: bold; }
.sev-critical { color: #b00; font-weight: bold; }
.sev-warning { color: #a60; font-weight: bold; }
ul.steps { margin: 0; padding-left: 4mm; }
figure { margin: 0 0 5mm; break-inside: avoid; }
figcaption { font-size: 9pt; margin-bottom: 1mm; }
svg { width: 100%; height: auto; display: block; }
svg text { font-family: inherit; }
svg .tick { font-size: 9px; fill: #333; }
svg .frame { fill: #fafafa; stroke: #999; stroke-width: 0.6; }
svg .series { fill: none; stroke: #1a4f9c; stroke-width: 1.4; stroke-linejoin: round; }
svg .dot { fill: #1a4f9c; }
svg .threshold { stroke-width: 1; stroke-dasharray: 5 3; }
svg .thr-warning { stroke: #d08000; fill: #a66000; }
svg .thr-critical { stroke: #c00000; fill: #b00000; }
svg .thr-label { font-size: 9px; stroke: none; }
svg .density { fill: #9aa7b8; }
svg .mark { font-size: 10px; }
svg .mark-alert, svg .lane-alert { fill: #c00000; }
svg .mark-detection, svg .lane-detection { fill: #d06000; }
svg .mark-journal, svg .lane-journal { fill: #1a4f9c; }
svg .mark-bookmark, svg .lane-bookmark { fill: #2e7d32; }
svg .map-bg { fill: #f4f1ea; stroke: #999; stroke-width: 0.6; }
svg .area { stroke-width: 1; }
svg .area-danger_area, svg .area-drawn { fill: rgba(200, 0, 0, 0.18); stroke: #c00000; }
svg .area-downwind_sector { fill: rgba(230, 140, 0, 0.15); stroke: #d08000;
  stroke-dasharray: 4 2; }
svg .sym { stroke: #111; stroke-width: 0.8; }
svg .sym-unit { fill: #c62828; }
svg .sym-drone { fill: #1565c0; }
svg .sym-robot { fill: #6a1b9a; }
svg .sym-sensor { fill: #2e7d32; }
svg .sym-detection { fill: #ff9800; }
svg .label { font-size: 9px; fill: #111; paint-order: stroke; stroke: #fff; stroke-width: 2.5px; }
svg .scale { stroke: #111; stroke-width: 2; }
.bm-note { white-space: pre-wrap; border-left: 2pt solid #2e7d32; padding-left: 2mm;
  margin: 1mm 0; }
.legend { font-size: 9pt; display: flex; flex-wrap: wrap; gap: 1mm 4mm; }
.lg-unit { color: #c62828; } .lg-drone { color: #1565c0; } .lg-robot { color: #6a1b9a; }
.lg-sensor { color: #2e7d32; } .lg-detection { color: #e68a00; }
.lg-danger_area { color: #c00000; } .lg-downwind_sector { color: #d08000; }
.det-image img { max-width: 100%; max-height: 90mm; border: 0.5pt solid #999; }
@media print { body { padding: 0; max-width: none; } }
"""
