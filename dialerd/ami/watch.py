"""Glue between the client and the tracker: a stream of call events that survives reconnects.

On every `Connected` (the first one too, so a restarted daemon adopts the calls still up)
it takes a CoreShowChannels snapshot and lets the tracker reconcile; on `Disconnected` it
marks every known call as needing that check. Events keep their order: the snapshot is
folded before any event that arrived after the reconnect.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

from dialerd.ami.calls import CallEvent, CallTracker
from dialerd.ami.client import AMIClient, AMIError, Connected, Disconnected
from dialerd.ami.codec import Action, Event

log = logging.getLogger(__name__)

__all__ = ["follow_calls"]


async def follow_calls(client: AMIClient, tracker: CallTracker) -> AsyncIterator[CallEvent]:
    """Yield the tracker's call events for as long as the client runs.

    Subscribe before `client.start()` (or pass a fresh client) so no event is missed.
    """
    sub = client.subscribe()
    try:
        async for item in sub:
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
