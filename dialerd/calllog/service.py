"""The call log at run time: AMI events -> fold -> store, recorder and too-long notices.

`CallLogService.follow(client)` is the daemon's loop; `apply` is the one place a fold
output turns into side effects, so tests can drive it with recorded events too. After a
reconnect the AMI channel list is folded in (`CallLogFold.reconcile`): calls that ended
while we were away are logged with status *unknown*, never guessed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from dialerd.ami.client import AMIClient, AMIError, Connected, Disconnected
from dialerd.ami.codec import Action, Event
from dialerd.calllog.fold import CallConnected, CallEntry, CallLogFold, FoldOutput
from dialerd.mail import Mailer, MailError
from dialerd.recorder.recorder import Recorder

log = logging.getLogger(__name__)

__all__ = ["CallLogService", "CallSink", "TooLongNotifier"]

TOO_LONG_TOPIC = ("notifications", "too-long")


class CallSink(Protocol):
    async def save_call(self, call: CallEntry) -> int: ...


class Publisher(Protocol):
    """`dialerd.bus.mqtt.Bus`, as far as notices need it."""

    def topic(self, *parts: str) -> str: ...

    def publish(
        self, topic: str, body: Mapping[str, Any], *, retain: bool = False, qos: int = 1
    ) -> None: ...


class TooLongNotifier:
    """R-LOG-3: tell the reviewer about a too-long call, on MQTT and by e-mail.

    Both channels are best effort and independent: MQTT buffers while the broker is
    down; a mail failure is logged with the reason (the flag stays in the call log).
    """

    def __init__(
        self,
        threshold_seconds: float,
        bus: Publisher | None = None,
        mailer: Mailer | None = None,
        reviewer_email: str | None = None,
    ) -> None:
        self.threshold_seconds = threshold_seconds
        self.bus = bus
        self.mailer = mailer
        self.reviewer_email = reviewer_email

    async def notify(self, entry: CallEntry, call_id: int) -> None:
        started = datetime.fromtimestamp(entry.started_at, UTC)
        body = {
            "call_id": call_id,
            "uniqueid": entry.linkedid,
            "direction": entry.direction.value,
            "number": entry.number,
            "extension": entry.extension,
            "agent": entry.agent,
            "started_at": started.isoformat(),
            "duration_seconds": entry.duration_seconds,
            "threshold_seconds": self.threshold_seconds,
        }
        if self.bus is not None:
            self.bus.publish(self.bus.topic(*TOO_LONG_TOPIC), body)
        if self.mailer is not None and self.reviewer_email:
            agent = f" ({entry.agent})" if entry.agent else ""
            subject = (
                f"Call too long: {entry.duration_seconds:.0f} s on extension"
                f" {entry.extension or '-'}{agent}"
            )
            text = "\n".join(f"{k}: {v}" for k, v in body.items())
            try:
                await self.mailer.send(self.reviewer_email, subject, text + "\n")
            except MailError as exc:
                log.error("too-long notice for call %s not mailed: %s", call_id, exc)


class CallLogService:
    """Folds the AMI stream into the call log and drives the recorder and the notices."""

    def __init__(
        self,
        store: CallSink,
        fold: CallLogFold,
        recorder: Recorder | None = None,
        notifier: TooLongNotifier | None = None,
        on_logged: Callable[[CallEntry, int], None] | None = None,
    ) -> None:
        self.store = store
        self.fold = fold
        self.recorder = recorder
        self.notifier = notifier
        self.on_logged = on_logged
        self.logged = 0
        self._after: set[asyncio.Task[None]] = set()

    async def apply(self, out: FoldOutput) -> int | None:
        """Carry out one fold output; the call id for a finished call.

        Filing the recording (which waits for Asterisk to close the file) and the
        too-long notices run in the background, so the event stream never waits on them;
        `on_logged` is called once they are done.
        """
        if isinstance(out, CallConnected):
            if self.recorder is not None:
                await self.recorder.on_connected(out)
            return None
        call_id = await self.store.save_call(out)
        self.logged += 1
        task = asyncio.create_task(self._complete(out, call_id))
        self._after.add(task)
        task.add_done_callback(self._after.discard)
        return call_id

    async def _complete(self, entry: CallEntry, call_id: int) -> None:
        if self.recorder is not None:
            try:
                await self.recorder.on_finished(entry.linkedid, call_id)
            except Exception:
                log.exception("call %s: filing its recording failed", entry.linkedid)
        if entry.too_long and self.notifier is not None:
            await self.notifier.notify(entry, call_id)
        if self.on_logged is not None:
            self.on_logged(entry, call_id)

    async def drain(self) -> None:
        """Wait for the background work of every call logged so far."""
        while self._after:
            await asyncio.gather(*list(self._after), return_exceptions=True)

    async def feed(self, event: Event) -> None:
        """Fold one event and carry out what it means. A failure on one call (a store
        error, say) is logged with the call and never stops the call log."""
        for out in self.fold.feed(event):
            await self._apply_logged(out)

    async def _apply_logged(self, out: FoldOutput) -> None:
        try:
            await self.apply(out)
        except Exception:
            log.exception("call log: %s of call %s not processed", type(out).__name__,
                          out.linkedid)  # fmt: skip

    async def follow(self, client: AMIClient) -> None:
        """Run until cancelled (subscribe before the client connects to miss nothing)."""
        sub = client.subscribe()
        try:
            async for item in sub:
                if isinstance(item, Event):
                    await self.feed(item)
                elif isinstance(item, Disconnected):
                    self.fold.connection_lost()
                elif isinstance(item, Connected):
                    await self._reconcile(client)
        finally:
            sub.close()
            await self.drain()

    async def _reconcile(self, client: AMIClient) -> None:
        try:
            _, channels = await client.send_list(Action("CoreShowChannels"))
        except AMIError as exc:
            log.warning("call log: channel snapshot after reconnect failed: %s", exc)
            return
        live = {c.get("Linkedid") or "" for c in channels}
        for out in self.fold.reconcile(live, time.time()):
            await self._apply_logged(out)
