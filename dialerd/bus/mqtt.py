"""The one MQTT connection: agents, consoles and wallboards talk to dialerd through it.

aiomqtt 2.x leaves reconnection to the caller, and its 3.0 changes the API, so all of MQTT
stays behind this module.  The floor must keep dialing while the broker is down, so
`publish` never blocks and never raises: messages wait in a bounded buffer (events in
order, the oldest dropped first and counted; retained state coalesced per topic, since only
the latest state matters) and are flushed when the connection comes back.

Every payload is a JSON object carrying ``"schema": SCHEMA_VERSION`` so consumers can tell
an old dialerd from a new one.  The topic tree (under a configurable prefix) is documented
in docs/mqtt.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import ssl
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt

from dialerd.config.models import MqttConfig

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

CommandHandler = Callable[[str, str, dict[str, Any]], Awaitable[dict[str, Any] | None]]
"""(agent id, command verb, payload) -> reply payload, or None for no reply."""


class CommandError(Exception):
    """A command that cannot be carried out; its message goes back to the agent."""


@dataclass(frozen=True)
class MqttSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    prefix: str = "dialerd"
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    """CA bundle the broker's certificate must chain to; None: the system's trust store."""
    cert_file: str | None = None
    """Client certificate (PEM) for brokers that require one (mosquitto require_certificate)."""
    key_file: str | None = None
    insecure: bool = False
    """Skip certificate and host name checks: a lab broker only, never production."""
    client_id: str = "dialerd"
    buffer_limit: int = 10_000
    keepalive: int = 30

    @classmethod
    def from_config(cls, mq: MqttConfig, directory: Path, client_id: str) -> MqttSettings:
        """The daemon's settings from ``dialerd.yaml``; relative TLS file paths are taken
        from the configuration directory, as the store path is, so the daemon finds them
        whatever its working directory (systemd starts it in /)."""

        def path(value: str | None) -> str | None:
            return None if value is None else str(directory / value)

        return cls(
            host=mq.host,
            port=mq.port,
            prefix=mq.prefix,
            username=mq.user,
            password=mq.password.get_secret_value() if mq.password else None,
            tls=mq.tls.enabled,
            ca_file=path(mq.tls.ca_file),
            cert_file=path(mq.tls.cert_file),
            key_file=path(mq.tls.key_file),
            insecure=mq.tls.insecure,
            client_id=client_id,
        )

    def tls_context(self) -> ssl.SSLContext | None:
        """A fresh context per connection attempt, so a renewed CA or client certificate
        is picked up on the next reconnect without a restart."""
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


@dataclass(frozen=True)
class Outgoing:
    topic: str
    payload: bytes
    retain: bool
    qos: int


class Bus:
    """Publishes dialerd's events and feeds agents' commands to one handler."""

    def __init__(self, settings: MqttSettings, on_command: CommandHandler | None = None) -> None:
        self.settings = settings
        self._on_command = on_command
        self._events: deque[Outgoing] = deque()
        self._retained: OrderedDict[str, Outgoing] = OrderedDict()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()  # the send loop has delivered everything queued
        self.connected = asyncio.Event()
        self.dropped = 0
        self.reconnects = 0

    # ------------------------------------------------------------------ topics
    def topic(self, *parts: str) -> str:
        return "/".join((self.settings.prefix, *parts))

    # ------------------------------------------------------------------ publish
    def publish(
        self, topic: str, body: Mapping[str, Any], *, retain: bool = False, qos: int = 1
    ) -> None:
        """Queue a message; never blocks, never raises (the floor must not wait on MQTT)."""
        payload = json.dumps({"schema": SCHEMA_VERSION, **body}, default=str).encode()
        message = Outgoing(topic, payload, retain, qos)
        if retain:
            self._retained.pop(topic, None)
            self._retained[topic] = message
        else:
            if len(self._events) >= self.settings.buffer_limit:
                self._events.popleft()
                self.dropped += 1
            self._events.append(message)
        self._idle.clear()
        self._wakeup.set()

    @property
    def pending(self) -> int:
        return len(self._events) + len(self._retained)

    async def say_goodbye(self, seconds: float) -> bool:
        """Publish `online: false` and wait (bounded) until everything queued is delivered.

        A clean disconnect makes the broker discard the will, so without this a stopped
        dialerd would stay "online" in every console's retained status. True if all was
        delivered in time; a broker that is down just makes this wait `seconds`.
        """
        self.publish(self.topic("status"), {"online": False}, retain=True)
        try:
            async with asyncio.timeout(seconds):
                await self._idle.wait()
        except TimeoutError:
            log.warning("mqtt: %d messages undelivered at shutdown", self.pending)
            return False
        return True

    # ------------------------------------------------------------------ run
    async def run(self) -> None:
        """Stay connected until cancelled: reconnect with jittered exponential backoff."""
        delay = 0.5
        while True:
            try:
                async with self._client() as client:
                    self.connected.set()
                    delay = 0.5
                    log.info("mqtt connected to %s:%s", self.settings.host, self.settings.port)
                    await client.subscribe(self.topic("agents", "+", "cmd"), qos=1)
                    sender = asyncio.create_task(self._send_loop(client))
                    try:
                        async for message in client.messages:
                            await self._dispatch(message)
                    finally:
                        sender.cancel()
                        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                            await sender
            except (aiomqtt.MqttError, OSError) as exc:  # OSError: unreadable TLS files
                # Never up this round and TLS on: the failure is the handshake's.
                handshake = self.settings.tls and not self.connected.is_set()
                self.connected.clear()
                self.reconnects += 1
                log.warning(
                    "mqtt %s:%s unavailable: %s; retrying in %.1fs, %d queued",
                    self.settings.host,
                    self.settings.port,
                    explain(exc, tls_handshake=handshake),
                    delay,
                    self.pending,
                )
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, 30.0)

    def _client(self) -> aiomqtt.Client:
        s = self.settings
        return aiomqtt.Client(
            s.host,
            s.port,
            username=s.username,
            password=s.password,
            tls_context=s.tls_context(),
            identifier=s.client_id,
            keepalive=s.keepalive,
            will=aiomqtt.Will(
                self.topic("status"),
                json.dumps({"schema": SCHEMA_VERSION, "online": False}).encode(),
                qos=1,
                retain=True,
            ),
        )

    async def _send_loop(self, client: aiomqtt.Client) -> None:
        await client.publish(
            self.topic("status"),
            json.dumps({"schema": SCHEMA_VERSION, "online": True}).encode(),
            qos=1,
            retain=True,
        )
        while True:
            while self._retained or self._events:
                if self._retained:
                    _, message = self._retained.popitem(last=False)
                else:
                    message = self._events.popleft()
                try:
                    await client.publish(
                        message.topic, message.payload, qos=message.qos, retain=message.retain
                    )
                except (aiomqtt.MqttError, asyncio.CancelledError):
                    # Cancelled: the connection died while this one awaited its PUBACK.
                    # Send it again on the next connection (QoS 1 is at-least-once).
                    self._requeue(message)
                    raise
            self._wakeup.clear()
            self._idle.set()
            await self._wakeup.wait()

    def _requeue(self, message: Outgoing) -> None:
        if message.retain:
            self._retained.setdefault(message.topic, message)
            self._retained.move_to_end(message.topic, last=False)
        else:
            self._events.appendleft(message)

    # ------------------------------------------------------------------ commands
    async def _dispatch(self, message: aiomqtt.Message) -> None:
        parts = str(message.topic).split("/")
        agent = parts[-2] if len(parts) >= 2 else ""
        reply_topic = self.topic("agents", agent, "reply")
        request_id: Any = None
        try:
            raw = message.payload
            if not isinstance(raw, bytes | bytearray):
                raise CommandError("payload must be a JSON object")
            try:
                body = json.loads(raw)
            except (UnicodeDecodeError, ValueError) as exc:
                raise CommandError(f"payload is not JSON: {exc}") from None
            if not isinstance(body, dict):
                raise CommandError("payload must be a JSON object")
            request_id = body.get("id")
            verb = body.get("command")
            if not isinstance(verb, str) or not verb:
                raise CommandError("missing 'command' (a string)")
            if self._on_command is None:
                raise CommandError("this dialerd takes no commands")
            result = await self._on_command(agent, verb, body)
        except CommandError as exc:
            self.publish(reply_topic, {"id": request_id, "ok": False, "error": str(exc)})
            return
        except Exception:  # a handler bug must not take the floor down
            log.exception("command on %s failed", message.topic)
            self.publish(
                reply_topic,
                {"id": request_id, "ok": False, "error": "internal error; see the dialerd log"},
            )
            return
        if result is not None:
            self.publish(reply_topic, {"id": request_id, "ok": True, **result})


def explain(exc: Exception, *, tls_handshake: bool = False) -> str:
    """One line an operator can act on: which setting to check, not a traceback.

    aiomqtt flattens TLS failures into `MqttError(str(ssl_error))` and a refused login into
    `MqttCodeError` (MQTT 3.1.1 CONNACK 4 "bad user name or password", 5 "not authorised"),
    so the text and the code are all there is to go on.
    """
    text = " ".join(str(exc).split()) or type(exc).__name__
    code = getattr(exc, "rc", None)
    if getattr(code, "value", code) in (4, 5, 134, 135):
        return f"broker refused the login ({text}): check mqtt.user and mqtt.password"
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return f"broker certificate not trusted ({text}): check mqtt.tls.ca_file"
    reset = "Connection reset" in text or "EOF" in text
    if "WRONG_VERSION_NUMBER" in text or (tls_handshake and reset):
        # A plain broker resets a TLS hello (or answers it with plain bytes).
        return f"TLS handshake failed ({text}): is mqtt.tls.enabled right for this port?"
    if isinstance(exc, OSError):  # aiomqtt wraps its own; this one is from reading TLS files
        return f"{text}: check the mqtt.tls files"
    return text
