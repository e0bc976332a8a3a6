"""The asyncio FastAGI server: routes `agi://host:port/<route>` to typed handlers.

Fail-open is the rule. The dialplan (asterisk/conf/extensions_dialerd.conf) is written so
that every AGI has a safe default: if `/connect` sets nothing the customer hears the
abandon message, if `/inbound` sets nothing the call goes to its fallback. So when a
handler raises, exceeds its time budget, or the route is unknown, the server logs it and
closes the connection: `AGI()` returns, and the dialplan carries on with its defaults. A
customer never waits on a stuck handler.

    server = AGIServer(port=4573, timeout=2.5)

    @server.route("/connect")
    async def connect(req: AGIRequest) -> None:
        await req.set_variable("DIALERD_BRIDGE", "dialerd-agent-1001")

    async with server:
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from dialerd.agi.codec import (
    NEED_DATA,
    AGIConnection,
    Closed,
    Environment,
    HangupNotice,
    ProtocolError,
    Reply,
)

log = logging.getLogger(__name__)

__all__ = ["AGICommandError", "AGIHangup", "AGIRequest", "AGIServer", "Handler", "RequestStats"]


class AGIHangup(Exception):
    """The channel hung up: no further command can run on it."""


class AGICommandError(Exception):
    """Asterisk refused a command (510 unknown, 520 usage, result=-1...)."""

    def __init__(self, command: str, reply: Reply) -> None:
        super().__init__(f"{command}: {reply.code} {reply.text}")
        self.reply = reply


class AGIRequest:
    """One FastAGI call into dialerd: the environment, and commands back to the channel."""

    def __init__(
        self,
        env: Environment,
        conn: AGIConnection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.env = env
        self._conn = conn
        self._reader = reader
        self._writer = writer

    @property
    def path(self) -> str:
        return self.env.path

    @property
    def args(self) -> list[str]:
        return self.env.args

    @property
    def channel(self) -> str:
        return self.env.get("channel")

    @property
    def uniqueid(self) -> str:
        return self.env.get("uniqueid")

    @property
    def caller_number(self) -> str:
        return self.env.get("callerid")

    @property
    def caller_name(self) -> str:
        return self.env.get("calleridname")

    @property
    def extension(self) -> str:
        return self.env.get("extension")

    @property
    def hung_up(self) -> bool:
        return self._conn.hung_up

    async def command(self, command: str, *args: str) -> Reply:
        """Run one AGI command; `AGIHangup` if the channel is gone, `AGICommandError` if
        Asterisk refuses it."""
        if self._conn.hung_up:
            raise AGIHangup(f"{command}: channel already hung up")
        self._writer.write(self._conn.send(command, *args))
        while True:
            item = self._conn.next_event()
            if item is NEED_DATA:
                self._conn.receive_data(await self._reader.read(65536))
                continue
            if isinstance(item, Reply):
                if item.code == 511:
                    raise AGIHangup(f"{command}: {item.text}")
                if not item.ok or item.result == "-1":
                    raise AGICommandError(command, item)
                return item
            if isinstance(item, Closed):
                raise AGIHangup(f"{command}: connection closed by Asterisk")
            if isinstance(item, HangupNotice):
                continue  # the 511 reply (or EOF) follows

    async def set_variable(self, name: str, value: str) -> None:
        await self.command("SET VARIABLE", name, value)

    async def get_variable(self, name: str) -> str | None:
        """The variable's value, or None when it is not set."""
        reply = await self.command("GET VARIABLE", name)
        return reply.data if reply.result == "1" else None

    async def verbose(self, message: str, level: int = 1) -> None:
        await self.command("VERBOSE", message, str(level))


Handler = Callable[[AGIRequest], Awaitable[None]]


@dataclass
class RequestStats:
    """Counters an operator (and the tests) can read."""

    handled: int = 0
    failed: int = 0
    timed_out: int = 0
    unrouted: int = 0


class AGIServer:
    """Accepts FastAGI connections and runs the handler registered for the path."""

    def __init__(
        self,
        routes: dict[str, Handler] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 4573,
        timeout: float = 5.0,
    ) -> None:
        self.routes: dict[str, Handler] = dict(routes or {})
        self.host = host
        self.port = port
        self.timeout = timeout
        self.stats = RequestStats()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def route(self, path: str) -> Callable[[Handler], Handler]:
        """Decorator: `@server.route("/connect")`."""

        def register(handler: Handler) -> Handler:
            self.routes[path if path.startswith("/") else "/" + path] = handler
            return handler

        return register

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        sock = self._server.sockets[0]
        self.port = int(sock.getsockname()[1])
        log.info("FastAGI listening on %s:%d (%s)", self.host, self.port, ", ".join(self.routes))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def __aenter__(self) -> AGIServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            async with asyncio.timeout(self.timeout):
                await self._session(reader, writer)
        except TimeoutError:
            self.stats.timed_out += 1
            log.warning("FastAGI: request exceeded %.1fs; the dialplan continues", self.timeout)
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = AGIConnection()
        try:
            env = await _read_environment(conn, reader)
        except ProtocolError as exc:
            log.warning("FastAGI: bad environment block: %s", exc)
            return
        if env is None:
            return
        handler = self.routes.get(env.path)
        if handler is None:
            self.stats.unrouted += 1
            log.warning("FastAGI: no route for %r (%s)", env.path, env.request)
            return
        request = AGIRequest(env, conn, reader, writer)
        try:
            await handler(request)
            self.stats.handled += 1
        except AGIHangup as exc:
            self.stats.handled += 1
            log.info("FastAGI %s: channel hung up (%s)", env.path, exc)
        except Exception:
            self.stats.failed += 1
            log.exception("FastAGI %s failed; the dialplan continues with its defaults", env.path)


async def _read_environment(
    conn: AGIConnection, reader: asyncio.StreamReader
) -> Environment | None:
    while True:
        item = conn.next_event()
        if item is NEED_DATA:
            conn.receive_data(await reader.read(65536))
            continue
        if isinstance(item, Environment):
            return item
        return None  # closed before the block ended
