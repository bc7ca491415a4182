"""What every layout needs: which page and language a layout request is for, and Dash's
way of taking `data-*` / `aria-*` attributes."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from cockpit.i18n import Lang

__all__ = ["attrs", "page_lang", "page_path"]


def _page_url(request: Any) -> tuple[str, str]:
    """The page's path and query: the page asks for its layout from `/_dash-layout`, so
    there they are the request's referrer's (same origin: the browser sends it whole)."""
    path = str(getattr(request, "path", "") or "")
    if path.startswith("/_dash"):
        url = urlsplit(str(request.headers.get("referer") or ""))
        return url.path, url.query
    return path, ""


def page_path(request: Any) -> str:
    """The path of the page the layout is for (`/`, `/wall`, `/trainer`)."""
    return _page_url(request)[0].rstrip("/") or "/"


def page_lang(request: Any, lang: Lang) -> Lang:
    """`?lang=` on the page's own address wins (a link to `/wall?lang=en`), else `lang`."""
    asked = parse_qs(_page_url(request)[1]).get("lang", [""])[0]
    return "en" if asked == "en" else "de" if asked == "de" else lang


def attrs(values: dict[str, str]) -> dict[str, Any]:
    """`data-*` / `aria-*` attributes, which Dash takes as keyword arguments."""
    return values
