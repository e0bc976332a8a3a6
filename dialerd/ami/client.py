"""The one AMI client: a thin asyncio loop around the sans-IO `AMIConnection`.

What it guarantees, because a dialer that gets these wrong dials a customer twice or
leaves a line "busy" forever:

- **Nothing is ever re-sent.** An action written to a connection that then dies fails with
  `OutcomeUnknown`; the caller reconciles (CoreShowChannels, the call tracker) instead of
  retrying blindly. An action asked for while disconnected fails at once with
  `NotConnected`, which means it was certainly not sent.
- **Dead peers are noticed.** A Ping every `ping_interval` seconds must be answered within
  `ping_interval`; after `max_missed_pings` misses in a row (2 by default) the connection is
  dropped, so a half-open TCP connection (a frozen or unplugged PBX) is detected within two
  pings.
- **It comes back.** Reconnects use exponential backoff with jitter, and subscribers see
  `Connected` / `Disconnected` markers in the event stream, in order, so they know when to
  reconcile.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from dialerd.ami.codec import (
    NEED_DATA,
    Action,
    AMIConnection,
    Banner,
    Closed,
    Event,
    ProtocolError,
    Response,
)

log = logging.getLogger(__name__)

__all__ = [
    "AMIClient",
    "AMIError",
    "ActionFailed",
    "ActionTimeout",
    "Connected",
    "Disconnected",
    "LoginFailed",
    "NotConnected",
    "OutcomeUnknown",
    "StreamItem",
    "Subscription",
    "backoff_delays",
]


class AMIError(Exception):
    """Base of every error the client raises."""


class NotConnected(AMIError):
    """No live session: the action was NOT sent. Safe to retry later."""


class OutcomeUnknown(AMIError):
    """The action was sent but its response never came (connection lost or timed out).

    Asterisk may or may not have executed it. For an Originate, never retry: reconcile
    (the call tracker adopts the call if it exists) so the customer is never dialed twice.
    """

    def __init__(self, action: Action, why: str) -> None:
        super().__init__(
            f"{action.name} (ActionID {action.action_id}): {why}; outcome unknown, "
            "reconcile before retrying"
        )
        self.action = action


class ActionTimeout(OutcomeUnknown):
    """No response within the timeout (the action was sent)."""


class ActionFailed(AMIError):
    """Asterisk answered `Response: Error`."""

    def __init__(self, action: Action, response: Response) -> None:
        super().__init__(f"{action.name} failed: {response.message or response.status}")
        self.action = action
        self.response = response


class LoginFailed(AMIError):
    """Asterisk refused our credentials."""


@dataclass(frozen=True, slots=True)
class Connected:
    """Logged in; `generation` counts sessions (1 for the first)."""

    generation: int
    banner: Banner


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The session `generation` ended; in-flight actions failed with OutcomeUnknown."""

    generation: int
    reason: str


StreamItem = Event | Connected | Disconnected


class Subscription:
    """An unbounded, ordered stream of events and connection markers.

    Unbounded on purpose: dropping an AMI event (a Hangup) is worse than memory growth,
    and a slow consumer is visible in `backlog`.
    """

    def __init__(self, client: AMIClient) -> None:
        self._client = client
        self._queue: asyncio.Queue[StreamItem | None] = asyncio.Queue()

    def _put(self, item: StreamItem | None) -> None:
        self._queue.put_nowait(item)

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    def close(self) -> None:
        self._client._subscribers.discard(self)
        self._queue.put_nowait(None)

    def __aiter__(self) -> AsyncIterator[StreamItem]:
        return self

    async def __anext__(self) -> StreamItem:
        item = await self._queue.get()
        if item is None:
            raise StopAsyncIteration
        return item

    async def get(self) -> StreamItem:
        """The next item (wrap in `asyncio.timeout` to bound the wait)."""
        return await self.__anext__()


def backoff_delays(
    initial: float = 0.5, maximum: float = 30.0, rng: random.Random | None = None
) -> Iterator[float]:
    """Exponential backoff with "equal jitter": each delay is in [d/2, d], d doubling up to
    `maximum`. The jitter spreads many dialerd instances (or restarts) apart."""
    rnd = rng or random.Random()
    ceiling = initial
    while True:
        yield ceiling / 2 + rnd.uniform(0, ceiling / 2)
        ceiling = min(maximum, ceiling * 2)


class _ListCollector:
    def __init__(self) -> None:
        self.response: Response | None = None
        self.events: list[Event] = []
        self.done: asyncio.Future[tuple[Response, list[Event]]] = (
            asyncio.get_running_loop().create_future()
        )


class _Session:
    """One TCP connection: codec, writer and the futures waiting on it."""

    def __init__(self, writer: asyncio.StreamWriter, generation: int) -> None:
        self.conn = AMIConnection()
        self.writer = writer
        self.generation = generation
        self.waiters: dict[str, tuple[Action, asyncio.Future[Response]]] = {}
        self.lists: dict[str, _ListCollector] = {}
        self.banner: asyncio.Future[Banner] = asyncio.get_running_loop().create_future()
        self.alive = True

    def fail_all(self, why: str) -> None:
        self.alive = False
        for action, fut in self.waiters.values():
            if not fut.done():
                fut.set_exception(OutcomeUnknown(action, why))
        for collector in self.lists.values():
            if not collector.done.done():
                collector.done.set_exception(
                    AMIError(f"connection lost before the event list completed: {why}")
                )
        self.waiters.clear()
        self.lists.clear()


class AMIClient:
    """Connects, logs in, correlates actions with responses, streams events, reconnects.

    Use as `async with AMIClient(...) as ami:`; `start()` / `close()` do the same by hand.
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        challenge: bool = True,
        action_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        ping_interval: float = 10.0,
        max_missed_pings: int = 2,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._secret = secret
        self.challenge = challenge
        self.action_timeout = action_timeout
        self.connect_timeout = connect_timeout
        self.ping_interval = ping_interval
        self.max_missed_pings = max_missed_pings
        self._backoff = (backoff_initial, backoff_max, rng)
        self._subscribers: set[Subscription] = set()
        self._session: _Session | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._stop = asyncio.Event()
        self.generation = 0
        self.events_received = 0
        self.last_error: str | None = None

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> AMIClient:
        self.start()
        async with asyncio.timeout(self.connect_timeout * 2):
            await self.wait_connected()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start(self) -> None:
        """Start the connection loop (returns at once; see `wait_connected`)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"ami-{self.host}:{self.port}")

    async def wait_connected(self) -> None:
        """Until logged in (bound it with `asyncio.timeout`)."""
        await self._connected.wait()

    @property
    def connected(self) -> bool:
        return self._session is not None and self._session.alive and self._connected.is_set()

    async def close(self) -> None:
        """Log off (best effort) and stop reconnecting."""
        self._stop.set()
        session = self._session
        if session is not None and self.connected:
            with contextlib.suppress(AMIError, OSError, TimeoutError):
                await self._request(session, Action("Logoff"), 1.0)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for sub in list(self._subscribers):
            sub.close()

    def subscribe(self) -> Subscription:
        """A new stream of every event (and Connected/Disconnected) from now on."""
        sub = Subscription(self)
        self._subscribers.add(sub)
        return sub

    def drop_connection(self) -> None:
        """Abort the current TCP connection (tests, or an operator's "reconnect now")."""
        if self._session is not None:
            self._session.writer.transport.abort()

    # ------------------------------------------------------------------ actions
    async def send_action(
        self, action: Action, *, response_timeout: float | None = None, check: bool = True
    ) -> Response:
        """Send `action` once and return its response.

        Raises `NotConnected` (not sent), `OutcomeUnknown`/`ActionTimeout` (sent, no
        answer), `ActionFailed` (answered with an error, when `check`).
        """
        session = self._live_session()
        response = await self._request(session, action, response_timeout=response_timeout)
        if check and not response.ok:
            raise ActionFailed(action, response)
        return response

    async def send_list(
        self, action: Action, *, response_timeout: float | None = None
    ) -> tuple[Response, list[Event]]:
        """Send a list action (CoreShowChannels...) and collect its events up to the
        `...Complete` one (excluded)."""
        session = self._live_session()
        collector = _ListCollector()
        session.lists[action.action_id] = collector
        try:
            response = await self._request(session, action, response_timeout=response_timeout)
            if not response.ok:
                raise ActionFailed(action, response)
            if not response.starts_list:
                return response, []
            async with asyncio.timeout(response_timeout or self.action_timeout):
                return await collector.done
        except TimeoutError:
            raise ActionTimeout(action, "event list did not complete in time") from None
        finally:
            session.lists.pop(action.action_id, None)
            session.conn.forget(action.action_id)

    def _live_session(self) -> _Session:
        session = self._session
        if session is None or not session.alive or not self._connected.is_set():
            raise NotConnected(f"AMI {self.host}:{self.port} is not connected")
        return session

    async def _request(
        self, session: _Session, action: Action, response_timeout: float | None
    ) -> Response:
        data = session.conn.send(action)  # LocalProtocolError: nothing sent
        fut: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        session.waiters[action.action_id] = (action, fut)
        try:
            session.writer.write(data)
        except (OSError, RuntimeError) as exc:
            session.waiters.pop(action.action_id, None)
            session.conn.forget(action.action_id)
            raise OutcomeUnknown(action, f"write failed: {exc}") from exc
        limit = response_timeout or self.action_timeout
        try:
            async with asyncio.timeout(limit):
                return await fut
        except TimeoutError:
            raise ActionTimeout(action, f"no response within {limit}s") from None
        finally:
            session.waiters.pop(action.action_id, None)
            session.conn.forget(action.action_id)

    # ------------------------------------------------------------------ the loop
    def _publish(self, item: StreamItem) -> None:
        for sub in self._subscribers:
            sub._put(item)

    async def _run(self) -> None:
        delays = backoff_delays(*self._backoff)
        while not self._stop.is_set():
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port), self.connect_timeout
                )
            except (OSError, TimeoutError) as exc:
                self.last_error = f"connect: {exc!r}"
            else:
                self.generation += 1
                session = _Session(writer, self.generation)
                self._session = session
                reason = "closed"
                try:
                    reason = await self._serve(session, reader)
                except (OSError, ProtocolError, AMIError, TimeoutError) as exc:
                    reason = f"{type(exc).__name__}: {exc}"
                finally:
                    was_connected = self._connected.is_set()
                    self._connected.clear()
                    session.fail_all(reason)
                    writer.transport.abort()
                    if self._stop.is_set():
                        reason = "client closed"
                    self.last_error = reason
                    if was_connected:
                        delays = backoff_delays(*self._backoff)  # it worked: start over
                        if not self._stop.is_set():
                            log.warning("AMI session %d lost: %s", session.generation, reason)
                        self._publish(Disconnected(session.generation, reason))
            if self._stop.is_set():
                return
            delay = next(delays)
            log.info("AMI reconnect to %s:%d in %.2fs", self.host, self.port, delay)
            await asyncio.sleep(delay)

    async def _serve(self, session: _Session, reader: asyncio.StreamReader) -> str:
        """Run one session to its end; returns why it ended."""
        read_task = asyncio.create_task(self._read_loop(session, reader))
        try:
            banner = await self._login(session, read_task)
            self._connected.set()
            log.info("AMI session %d up (%s)", session.generation, banner.text)
            self._publish(Connected(session.generation, banner))
            ping_task = asyncio.create_task(self._ping_loop(session))
            try:
                done, _ = await asyncio.wait(
                    {read_task, ping_task}, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                ping_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await ping_task
            return done.pop().result()
        finally:
            read_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await read_task

    async def _login(self, session: _Session, read_task: asyncio.Task[str]) -> Banner:
        def no_banner(_: object) -> None:
            if not session.banner.done():
                session.banner.set_exception(AMIError("connection closed before the banner"))

        read_task.add_done_callback(no_banner)
        async with asyncio.timeout(self.connect_timeout):
            banner = await session.banner
        if self.challenge:
            reply = await self._request(session, Action("Challenge", (("AuthType", "MD5"),)), None)
            if not reply.ok or not reply.get("Challenge"):
                raise LoginFailed(f"MD5 challenge refused: {reply.message}")
            key = hashlib.md5(
                (reply["Challenge"] + self._secret).encode(), usedforsecurity=False
            ).hexdigest()
            creds: tuple[tuple[str, str], ...] = (("AuthType", "MD5"), ("Key", key))
        else:
            creds = (("Secret", self._secret),)
        login = Action("Login", (("Username", self.username), *creds, ("Events", "on")))
        reply = await self._request(session, login, None)
        if not reply.ok:
            raise LoginFailed(f"login as {self.username!r} refused: {reply.message}")
        return banner

    async def _read_loop(self, session: _Session, reader: asyncio.StreamReader) -> str:
        conn = session.conn
        while True:
            data = await reader.read(65536)
            conn.receive_data(data)
            while True:
                item = conn.next_event()
                if item is NEED_DATA:
                    break
                if isinstance(item, Closed):
                    return "connection closed by Asterisk"
                if isinstance(item, Event):
                    self._on_event(session, item)
                elif isinstance(item, Response):
                    self._on_response(session, item)
                elif not session.banner.done():
                    session.banner.set_result(item)

    def _on_response(self, session: _Session, response: Response) -> None:
        aid = response.action_id
        waiter = session.waiters.get(aid) if aid is not None else None
        if waiter is None:
            log.debug("AMI: response for no waiter (late or foreign): %s", aid)
            return
        if aid in session.lists:
            session.lists[aid].response = response
        if not waiter[1].done():
            waiter[1].set_result(response)

    def _on_event(self, session: _Session, event: Event) -> None:
        self.events_received += 1
        aid = event.action_id
        if aid is not None and aid in session.lists:
            collector = session.lists[aid]
            if event.completes_list:
                if not collector.done.done() and collector.response is not None:
                    collector.done.set_result((collector.response, collector.events))
            else:
                collector.events.append(event)
            return
        self._publish(event)

    async def _ping_loop(self, session: _Session) -> str:
        missed = 0
        while True:
            await asyncio.sleep(self.ping_interval)
            try:
                await self._request(session, Action("Ping"), self.ping_interval)
                missed = 0
            except ActionTimeout:
                missed += 1
                log.warning("AMI: ping %d unanswered", missed)
                if missed >= self.max_missed_pings:
                    return f"{missed} pings unanswered (peer dead or frozen)"
