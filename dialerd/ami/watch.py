"""Glue between the client and the tracker: a stream of call events that survives reconnects.

On every `Connected` (the first one too, so a restarted daemon adopts the calls still up)
it takes a CoreShowChannels snapshot and lets the tracker reconcile; on `Disconnected` it
marks every known call as needing that check. Events keep their order: the snapshot is
folded before any event that arrived after the reconnect. When the tracker waits for a
failed originate's trailing channel events, the stream wakes at its deadline to settle it,
so a quiet PBX cannot leave that call open.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from dialerd.ami.calls import CallEvent, CallTracker
from dialerd.ami.client import AMIClient, AMIError, Connected, Disconnected, Subscription
from dialerd.ami.codec import Action, Event

log = logging.getLogger(__name__)

__all__ = ["follow_calls"]


def follow_calls(client: AMIClient, tracker: CallTracker) -> AsyncIterator[CallEvent]:
    """The tracker's call events for as long as the client runs.

    Subscribes at once (not at the first iteration), so calling this before
    `client.start()` guarantees the first `Connected` and every event after it are seen.
    """
    return _follow(client, tracker, client.subscribe())


async def _follow(
    client: AMIClient, tracker: CallTracker, sub: Subscription
) -> AsyncIterator[CallEvent]:
    try:
        while True:
            deadline = tracker.settle_deadline()
            try:
                if deadline is None:
                    item = await sub.get()
                else:
                    async with asyncio.timeout(max(0.0, deadline - time.time())):
                        item = await sub.get()
            except TimeoutError:
                for call_event in tracker.settle(time.time()):
                    yield call_event
                continue
            except StopAsyncIteration:
                return
            if isinstance(item, Event):
                for call_event in tracker.feed(item):
                    yield call_event
            elif isinstance(item, Disconnected):
                tracker.connection_lost()
            elif isinstance(item, Connected):
                try:
                    _, channels = await client.send_list(Action("CoreShowChannels"))
                except AMIError as exc:
                    log.warning(
                        "reconcile after reconnect failed (%s); will retry on the next", exc
                    )
                    continue
                for call_event in tracker.reconcile(channels, time.time()):
                    yield call_event
    finally:
        sub.close()
