"""Small HTML helpers shared by the debrief's sections (every text escaped here)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import Any

from cockpit.debrief.fmt import Fmt
from cockpit.i18n import STRINGS, Lang, t

__all__ = ["e", "epoch", "label", "table", "when"]


def e(value: Any) -> str:
    return escape(str(value)) if value is not None else ""


def label(prefix: str, key: str, lang: Lang) -> str:
    """A translated label if there is one, else the key as it came."""
    full = f"{prefix}{key}"
    return t(full, lang) if full in STRINGS else key


def table(head: Sequence[str], rows: Sequence[Sequence[str]], cls: str) -> str:
    """Rows are HTML already (escaped by the caller)."""
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def when(f: Fmt, ts: float | None) -> str:
    if ts is None:
        return ""
    return f'<span class="time">{e(f.clock(ts))}</span> <span class="since">{e(f.since(ts))}</span>'


def epoch(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
