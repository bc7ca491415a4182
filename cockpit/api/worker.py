"""Which web worker answered: a header for people and a cookie for the reverse proxy.

Behind nginx (docker/nginx.conf.template) the cookie `cockpit_worker` picks the worker a
browser's requests go to, so its push stream and its WebSockets stay on one process; when
that worker is gone the proxy sends the browser to another, whose answers move the cookie.
"""

from __future__ import annotations

from http.cookies import SimpleCookie

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["WORKER_COOKIE", "WORKER_HEADER", "WorkerTag"]

WORKER_COOKIE = "cockpit_worker"
WORKER_HEADER = "x-cockpit-worker"


class WorkerTag:
    def __init__(self, app: ASGIApp, name: str, *, secure: bool = False) -> None:
        self.app = app
        self.name = name
        self.secure = secure  # behind a TLS proxy the request itself looks like http
        self._header = (WORKER_HEADER.encode(), name.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tagged = _cookie(scope) == self.name
        secure = self.secure or scope.get("scheme") == "https"

        async def tagging(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append(self._header)
                if not tagged:  # only when it changes: no Set-Cookie on every answer
                    attrs = "Path=/; SameSite=Lax; HttpOnly" + ("; Secure" if secure else "")
                    headers.append(
                        (b"set-cookie", f"{WORKER_COOKIE}={self.name}; {attrs}".encode())
                    )
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, tagging)


def _cookie(scope: Scope) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed Cookie header: treat as absent, set ours
                return None
            morsel = jar.get(WORKER_COOKIE)
            if morsel is not None:
                return morsel.value
    return None
