"""The MQTT subscription for The Things Stack uplinks: connect, subscribe, hand each message
on, and reconnect with backoff when the broker goes away.

The Things Stack's MQTT server speaks MQTT 3.1.1 with QoS 0; its username is
`{application id}@{tenant id}` (just the application id on an open-source deployment) and
its password an API key. Nothing here parses uplinks: `on_message(topic, payload)` does,
and whatever it raises is counted as an error and logged, never ends the subscription.

State, as /healthz shows it: `connected` (subscribed), `reconnecting` (lost, or not yet
back, retrying), `down` (the last three attempts in a row failed; still retrying).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import aiomqtt

__all__ = ["BrokerUrl", "MqttState", "MqttSubscription", "parse_broker_url"]

log = logging.getLogger("feeds.ttn_mqtt")

MqttState = Literal["connected", "reconnecting", "down"]
_DOWN_AFTER = 3  # failed attempts in a row before the broker counts as down
_QUEUE = 10_000  # messages received but not yet handled; paho drops beyond it


@dataclass(frozen=True)
class BrokerUrl:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None

    def display(self) -> str:
        """host:port, never the credentials (for logs and /healthz)."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerUrl:
    """`mqtt://[user[:password]@]host[:port]` or `mqtts://…`; ValueError naming the part."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"scheme {parts.scheme!r}: use mqtt:// or mqtts://")
    if not parts.hostname:
        raise ValueError("no host")
    tls = parts.scheme == "mqtts"
    port = parts.port or (8883 if tls else 1883)  # .port raises ValueError when not a port
    return BrokerUrl(
        host=parts.hostname,
        port=port,
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


class MqttSubscription:
    """One subscription kept alive until `aclose()`."""

    def __init__(
        self,
        broker: BrokerUrl,
        topic: str,
        on_message: Callable[[str, bytes], Awaitable[None]],
        *,
        on_state: Callable[[MqttState], None] | None = None,
        backoff: tuple[float, float] = (0.5, 30.0),
        keepalive: int = 30,
    ) -> None:
        self.broker = broker
        self.topic = topic
        self.on_message = on_message
        self.on_state = on_state
        self.backoff = backoff
        self.keepalive = keepalive
        self.state: MqttState = "reconnecting"
        self.messages = 0
        self.errors = 0
        self.connects = 0
        self.last_message: float | None = None
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"mqtt {self.topic}")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def stats(self) -> dict[str, Any]:
        return {
            "broker": self.broker.display(),
            "topic": self.topic,
            "state": self.state,
            "connects": self.connects,
            "messages": self.messages,
            "errors": self.errors,
            "last_error": self.last_error,
        }

    def _set(self, state: MqttState) -> None:
        if state != self.state:
            log.info("MQTT %s: %s", self.broker.display(), state)
        self.state = state
        if self.on_state is not None:
            self.on_state(state)

    async def _run(self) -> None:
        failures, delay = 0, self.backoff[0]
        self._set("reconnecting")
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a broker error, refused log-in, DNS, TLS: retry
                failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                log.warning("MQTT %s: %s", self.broker.display(), self.last_error)
            else:
                failures = 0  # a clean end (the broker closed): come back soon
            if self.state == "connected":
                failures, delay = min(failures, 1), self.backoff[0]
            self._set("down" if failures >= _DOWN_AFTER else "reconnecting")
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff[1])

    async def _session(self) -> None:
        b = self.broker
        client = aiomqtt.Client(
            b.host,
            b.port,
            username=b.username,
            password=b.password,
            identifier=f"cockpit-{secrets.token_hex(6)}",
            tls_context=ssl.create_default_context() if b.tls else None,
            keepalive=self.keepalive,
            timeout=10.0,
            max_queued_incoming_messages=_QUEUE,
        )
        async with client:
            granted = await client.subscribe(self.topic, qos=0)
            if any(
                (g if isinstance(g, int) else g.value) >= 0x80 for g in granted
            ):  # SUBACK failure
                raise aiomqtt.MqttError(f"subscription to {self.topic!r} refused")
            self.connects += 1
            self._set("connected")
            async for message in client.messages:
                await self._handle(str(message.topic), message.payload)

    async def _handle(self, topic: str, payload: Any) -> None:
        self.messages += 1
        self.last_message = time.time()
        data = payload if isinstance(payload, bytes | bytearray) else str(payload).encode()
        try:
            await self.on_message(topic, bytes(data))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in handling one message must not end the feed
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            log.exception("MQTT message on %s not handled", topic)
