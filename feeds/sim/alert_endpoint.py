"""A small HTTP endpoint that takes the cockpit's responder alerts, as a phone platform would.

The cockpit POSTs each alert (`COCKPIT_ADLER_ALERT_URL`, bearer `COCKPIT_ADLER_ALERT_TOKEN`)
as JSON. This server accepts `POST <path>` only, checks the bearer token in constant time,
reads at most `MAX_BODY_BYTES`, and hands the parsed object to a handler that answers
(status, JSON). HTTP/1.1 is parsed by h11 (uvicorn's and httpx's parser) on asyncio
streams: a second uvicorn in the demo's process would take over its signal handling.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import socket
from collections.abc import Callable
from typing import Any

import h11

__all__ = ["MAX_BODY_BYTES", "AlertEndpoint", "Handler"]

log = logging.getLogger("feeds.sim.alerts")

MAX_BODY_BYTES = 64 * 1024
_IDLE_S = 30.0

Handler = Callable[[Any], tuple[int, dict[str, Any]]]


class AlertEndpoint:
    """Serve `handler` at http://host:port{path} behind a bearer token."""

    def __init__(
        self,
        handler: Handler,
        token: str,
        *,
        path: str = "/alert",
        host: str = "127.0.0.1",
        port: int = 0,
        sock: socket.socket | None = None,
    ) -> None:
        if not token:
            raise ValueError("the alert endpoint needs a token (no default secret)")
        self._handler = handler
        self._token = token.encode()
        self.path = path
        self.host = host
        self._port = port
        self._sock = sock
        self._server: asyncio.Server | None = None
        self.refused = 0  # requests answered 4xx, for tests and logs

    @property
    def port(self) -> int:
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        if self._sock is not None:
            return int(self._sock.getsockname()[1])
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"

    async def start(self) -> None:
        if self._sock is not None:
            self._server = await asyncio.start_server(self._serve, sock=self._sock)
        else:
            self._server = await asyncio.start_server(self._serve, self.host, self._port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 3)
            self._server = None
        if self._sock is not None:
            self._sock.close()  # bound ahead but perhaps never served

    async def __aenter__(self) -> AlertEndpoint:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- one connection ----------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=16 * 1024)
        try:
            await self._requests(conn, reader, writer)
        except (h11.ProtocolError, OSError, TimeoutError) as exc:
            log.debug("alert connection ended: %s", exc)
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                with contextlib.suppress(Exception):
                    await self._send(conn, writer, 400, {"error": "bad HTTP request"}, close=True)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _requests(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        request: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await asyncio.wait_for(reader.read(65536), _IDLE_S)
                conn.receive_data(data)  # b"" = the peer closed
                continue
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                request, body = event, bytearray()
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_BODY_BYTES:
                    status, reply = self._refuse(413, f"body: more than {MAX_BODY_BYTES} bytes")
                    await self._send(conn, writer, status, reply, close=True)
                    return
            elif isinstance(event, h11.EndOfMessage) and request is not None:
                status, reply = self._answer(request, bytes(body))
                await self._send(conn, writer, status, reply)
                if conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
                request = None

    def _answer(self, request: h11.Request, body: bytes) -> tuple[int, dict[str, Any]]:
        target = request.target.decode("latin-1").split("?", 1)[0]
        if target != self.path:
            return self._refuse(404, "not found")
        if request.method != b"POST":
            return self._refuse(405, "only POST")
        given = b""
        for name, value in request.headers:
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                given = value[7:].strip()
        if not hmac.compare_digest(given, self._token):
            return self._refuse(401, "Authorization: a valid bearer token is needed")
        try:
            data = json.loads(body)
        except ValueError:
            return self._refuse(400, "body: not JSON")
        status, reply = self._handler(data)
        if status >= 400:
            self.refused += 1
        return status, reply

    def _refuse(self, status: int, reason: str) -> tuple[int, dict[str, Any]]:
        self.refused += 1
        log.warning("alert refused: %d %s", status, reason)
        return status, {"error": reason}

    async def _send(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        status: int,
        reply: dict[str, Any],
        *,
        close: bool = False,
    ) -> None:
        payload = json.dumps(reply, ensure_ascii=False).encode()
        headers = [
            ("content-type", "application/json"),
            ("content-length", str(len(payload))),
        ]
        if status == 401:
            headers.append(("www-authenticate", "Bearer"))
        if close:
            headers.append(("connection", "close"))
        writer.write(conn.send(h11.Response(status_code=status, headers=headers)) or b"")
        writer.write(conn.send(h11.Data(data=payload)) or b"")
        writer.write(conn.send(h11.EndOfMessage()) or b"")
        await writer.drain()
