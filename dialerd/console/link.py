"""The console's one MQTT connection to dialerd, kept up with backoff.

The console is a thin client: it subscribes to its agent's topics, the campaign wallboard
and the daemon's status, and publishes commands. A broker that is down or goes away is an
everyday event on a floor, so it becomes a one-line `LinkStatus` for the status bar and a
retry (0.5 s doubling to 15 s, jittered), never an exception reaching the screen.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiomqtt


@dataclass(frozen=True)
class LinkSettings:
    host: str
    port: int
    agent: str
    campaigns: tuple[str, ...]
    prefix: str = "dialerd"
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None

    def topic(self, *parts: str) -> str:
        return "/".join((self.prefix, *parts))

    @property
    def agent_topic(self) -> str:
        return self.topic("agents", self.agent)

    def subscriptions(self) -> list[str]:
        return [
            f"{self.agent_topic}/state",
            f"{self.agent_topic}/screen",
            f"{self.agent_topic}/reply",
            self.topic("status"),
            *(self.topic("campaigns", c, "stats") for c in self.campaigns),
        ]


@dataclass(frozen=True)
class LinkStatus:
    connected: bool
    text: str


MessageHandler = Callable[[str, dict[str, Any]], None]
StatusHandler = Callable[[LinkStatus], None]


class NotConnectedError(RuntimeError):
    """A command while the broker is unreachable: said on the status line, not queued
    (a pause pressed a minute ago must not fire when the network comes back)."""


class Link:
    """Runs until cancelled; hands every JSON object received to ``on_message``."""

    def __init__(
        self,
        settings: LinkSettings,
        on_message: MessageHandler,
        on_status: StatusHandler,
        *,
        max_backoff: float = 15.0,
    ) -> None:
        self.settings = settings
        self._on_message = on_message
        self._on_status = on_status
        self._client: aiomqtt.Client | None = None
        self._ids = itertools.count(1)
        self._tag = f"{random.randrange(16**6):06x}"
        """In every request id: two consoles of one agent share the reply topic, and each
        must take only the answers to its own commands."""
        self.max_backoff = max_backoff

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def run(self) -> None:
        s = self.settings
        delay = 0.5
        while True:
            try:
                async with self._new_client() as client:
                    for topic in s.subscriptions():
                        await client.subscribe(topic, qos=1)
                    self._client = client
                    delay = 0.5
                    self._on_status(LinkStatus(True, f"connected to {s.host}:{s.port}"))
                    async for message in client.messages:
                        self._deliver(message)
            except aiomqtt.MqttError as exc:
                self._client = None
                self._on_status(
                    LinkStatus(
                        False,
                        f"broker {s.host}:{s.port} unreachable ({_reason(exc)}); "
                        f"retrying in {delay:.0f}s",
                    )
                )
            finally:
                self._client = None
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.max_backoff)

    def _new_client(self) -> aiomqtt.Client:
        s = self.settings
        tls = ssl.create_default_context(cafile=s.ca_file) if s.tls else None
        return aiomqtt.Client(
            s.host,
            s.port,
            username=s.username,
            password=s.password,
            tls_context=tls,
            identifier=f"dialerd-console-{s.agent}-{random.randrange(16**6):06x}",
            keepalive=15,
        )

    def _deliver(self, message: aiomqtt.Message) -> None:
        try:
            body = json.loads(message.payload)
        except (UnicodeDecodeError, ValueError):
            return  # malformed: nothing an agent can act on
        if isinstance(body, dict):
            self._on_message(str(message.topic), body)

    async def command(self, body: dict[str, Any]) -> str:
        """Publish a command; its id (echoed on the reply topic)."""
        client = self._client
        if client is None:
            raise NotConnectedError("not connected to the broker; the command was not sent")
        request_id = f"{body.get('command')}-{self._tag}-{next(self._ids)}"
        payload = json.dumps({"id": request_id, **body}).encode()
        try:
            await client.publish(f"{self.settings.agent_topic}/cmd", payload, qos=1)
        except aiomqtt.MqttError as exc:
            raise NotConnectedError(f"the command was not sent ({_reason(exc)})") from None
        return request_id


def _reason(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:120]


def parse_broker(value: str, default_port: int = 1883) -> tuple[str, int]:
    """``HOST[:PORT]`` (``[v6]:PORT`` too) -> (host, port); ValueError with a clear text."""
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    else:  # a name, an IPv4 address or a bare IPv6 address
        host, port = value, ""
    if port and (not port.isdigit() or not 0 < int(port) < 65536):
        raise ValueError(f"broker {value!r}: the port must be a number 1-65535")
    return host or "127.0.0.1", int(port) if port else default_port


def split_campaigns(values: Sequence[str]) -> tuple[str, ...]:
    """``--campaign a --campaign b,c`` -> (a, b, c)."""
    return tuple(c.strip() for v in values for c in v.split(",") if c.strip())
