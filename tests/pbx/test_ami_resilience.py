"""The AMI client when Asterisk misbehaves: frozen (SIGSTOP: a silent half-open TCP
connection) and restarted mid-call.

The two promises under test: a dead peer is noticed within two pings, and nothing is ever
re-sent, so a customer is never dialed twice; calls that ended while we were away are
closed, and calls still up are kept (or adopted by a fresh tracker).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator

import pytest

from dialerd.ami import (
    Action,
    CallAdopted,
    CallAnswered,
    CallHungUp,
    Connected,
    Disconnected,
    Event,
    OutcomeUnknown,
    originate,
)
from tests.conftest import Sandbox
from tests.fixtures.ami.live import (
    HUMAN,
    SandboxLike,
    asterisk_pid,
    client,
    hang_up_everything,
    tracked,
    world_number,
)


@contextlib.contextmanager
def frozen(sandbox: SandboxLike) -> Iterator[int]:
    """Asterisk stopped with SIGSTOP (its sockets stay open but silent); always resumed."""
    pid = asterisk_pid(sandbox)
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)


def hang_up_number(sandbox: SandboxLike, number: str) -> None:
    for line in sandbox.cli("core show channels concise").splitlines():
        name = line.split("!", 1)[0]
        if name.startswith(f"Local/{number}@world-"):
            sandbox.cli(f"channel request hangup {name}")


async def next_marker(sub: object, kind: type) -> object:
    async for item in sub:  # type: ignore[attr-defined]
        if isinstance(item, kind):
            return item
    raise AssertionError("stream ended")


async def test_frozen_asterisk_is_detected_within_two_pings_and_nothing_is_resent(
    sandbox: Sandbox,
) -> None:
    hang_up_everything(sandbox)
    ping = 0.5
    number = world_number(HUMAN, ring=1)
    call_id = f"frz-{number}"
    async with (
        client(sandbox, ping_interval=60) as observer,
        client(sandbox, ping_interval=ping, backoff_initial=0.2, action_timeout=30) as ami,
    ):
        watch = observer.subscribe()
        sub = ami.subscribe()
        loop = asyncio.get_running_loop()
        with frozen(sandbox):
            frozen_at = loop.time()
            # Written into a frozen peer's socket: the outcome can only be unknown.
            pending = asyncio.create_task(
                ami.send_action(originate(call_id, f"Local/{number}@world/n", attempt=call_id))
            )
            lost = await asyncio.wait_for(next_marker(sub, Disconnected), 10)
            detected_after = loop.time() - frozen_at
            with pytest.raises(OutcomeUnknown, match="reconcile"):
                await pending
        assert isinstance(lost, Disconnected)
        assert "pings unanswered" in lost.reason
        # two pings of 0.5 s each, a ping can start up to one interval late, plus slack
        assert detected_after < 3 * ping + 1.0
        back = await asyncio.wait_for(next_marker(sub, Connected), 15)
        assert isinstance(back, Connected)
        assert back.generation == 2
        assert (await ami.send_action(Action("Ping"))).ok
        # Give a (wrong) re-send every chance to show up on the observer's stream.
        await asyncio.sleep(3)
        originates = 0
        while watch.backlog:
            item = await watch.get()
            if isinstance(item, Event) and item.name == "Newchannel":
                originates += item.get("Uniqueid") == f"{call_id}-a"
        assert originates <= 1, "the Originate was sent twice"
    hang_up_everything(sandbox)


async def test_calls_ending_while_disconnected_are_closed_and_live_ones_kept(
    sandbox: Sandbox,
) -> None:
    hang_up_everything(sandbox)
    gone, kept = world_number(HUMAN, ring=1), world_number(HUMAN, ring=1)
    async with (
        client(sandbox, ping_interval=0.5, backoff_initial=3.0) as ami,
        tracked(ami) as calls,
    ):
        for number in (gone, kept):
            await ami.send_action(
                originate(f"dis-{number}", f"Local/{number}@world/n", attempt=f"dis-{number}")
            )
        async with asyncio.timeout(10):
            for number in (gone, kept):
                await calls.wait_for(f"dis-{number}", CallAnswered)
        sub = ami.subscribe()
        with frozen(sandbox):
            await asyncio.wait_for(next_marker(sub, Disconnected), 10)
        hang_up_number(sandbox, gone)  # while dialerd is not connected
        await asyncio.wait_for(next_marker(sub, Connected), 15)
        async with asyncio.timeout(10):
            await calls.wait_ended(f"dis-{gone}")
        end = calls.ended(f"dis-{gone}")
        assert isinstance(end, CallHungUp)
        assert end.reconciled
        assert f"dis-{kept}" in calls.tracker.active
        # a fresh tracker (a restarted daemon) adopts the call still up
        fresh = client(sandbox)
        async with tracked(fresh) as fresh_calls, fresh:  # subscribed before it connects
            adopted = await asyncio.wait_for(fresh_calls.wait_for(f"dis-{kept}", CallAdopted), 10)
            assert isinstance(adopted, CallAdopted)
            assert adopted.answered
            assert adopted.attempt == f"dis-{kept}"
        hang_up_number(sandbox, kept)
        async with asyncio.timeout(10):
            await calls.wait_ended(f"dis-{kept}")
        kept_end = calls.ended(f"dis-{kept}")
        assert isinstance(kept_end, CallHungUp)
        assert not kept_end.reconciled


async def test_asterisk_restart_mid_call(sandbox: Sandbox) -> None:
    hang_up_everything(sandbox)
    number = world_number(HUMAN, ring=1)
    call_id = f"rst-{number}"
    async with (
        client(sandbox, ping_interval=1.0, backoff_initial=0.2) as ami,
        tracked(ami) as calls,
    ):
        sub = ami.subscribe()
        await ami.send_action(originate(call_id, f"Local/{number}@world/n", attempt=call_id))
        await asyncio.wait_for(calls.wait_for(call_id, CallAnswered), 10)
        await asyncio.to_thread(sandbox.cli, "core restart now")
        lost = await asyncio.wait_for(next_marker(sub, Disconnected), 15)
        assert isinstance(lost, Disconnected)
        back = await asyncio.wait_for(next_marker(sub, Connected), 30)
        assert isinstance(back, Connected)
        assert back.generation == 2
        await asyncio.wait_for(calls.wait_ended(call_id), 10)
        ends = [e for e in calls.by_call[call_id] if isinstance(e, CallHungUp)]
        assert len(ends) == 1
        # nothing was re-dialed after the restart
        await asyncio.sleep(2)
        assert number not in sandbox.cli("core show channels concise")
        assert (await ami.send_action(Action("Ping"))).ok
