"""`Strict-Transport-Security` on every HTTP answer of a server reached over HTTPS.

A browser that has seen it once goes to this host over HTTPS only for a year (max-age),
even when someone types or links http://. No `includeSubDomains`: the cockpit is usually
one host among others of an authority's domain (a radio gateway, a printer, an old
intranet page on plain HTTP), and the header would lock all of those to HTTPS too; and
no `preload`, a decision for the domain's owner, not for one application.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HSTS", "Hsts"]

HSTS = "max-age=31536000"


class Hsts:
    """Adds the header to every `http` answer (pages, API, errors, redirects)."""

    def __init__(self, app: ASGIApp, value: str = HSTS) -> None:
        self.app = app
        self.value = value

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["Strict-Transport-Security"] = self.value
            await send(message)

        await self.app(scope, receive, send_with_header)
