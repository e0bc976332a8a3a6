"""The AMI client against a scripted in-process peer: the failure modes that are hard to
time on a real Asterisk (tests/pbx/ covers the same promises on the sandbox)."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from dialerd.ami import (
    Action,
    AMIClient,
    Connected,
    Disconnected,
    NotConnected,
    OutcomeUnknown,
    Subscription,
)
from dialerd.ami.client import backoff_delays
from dialerd.ami.codec import AMIConnection, Event


class ScriptedAsterisk:
    """Banner, Login, Ping, CoreShowChannels; Originate is recorded and never answered;
    `silent` stops every reply (a frozen PBX)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str]] = []  # (action, ActionID)
        self.silent = False
        self.sessions = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sessions += 1
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        conn = AMIConnection()
        conn.receive_data(b"Asterisk Call Manager/11.0.0\r\n")  # parse actions as frames
        conn.next_event()
        while data := await reader.read(65536):
            conn.receive_data(data.replace(b"Action: ", b"Event: "))
            while isinstance(frame := conn.next_event(), Event):
                name, aid = frame.name, frame.get("ActionID", "") or ""
                self.received.append((name, aid))
                if self.silent or name == "Originate":
                    continue
                if name == "CoreShowChannels":
                    writer.write(
                        f"Response: Success\r\nActionID: {aid}\r\nEventList: start\r\n\r\n"
                        f"Event: CoreShowChannel\r\nActionID: {aid}\r\nUniqueid: x-a\r\n\r\n"
                        f"Event: CoreShowChannelsComplete\r\nActionID: {aid}\r\n"
                        "EventList: Complete\r\n\r\n".encode()
                    )
                    continue
                writer.write(f"Response: Success\r\nActionID: {aid}\r\n\r\n".encode())
        writer.close()


@asynccontextmanager
async def scripted(**kw: float) -> AsyncIterator[tuple[ScriptedAsterisk, AMIClient, Subscription]]:
    peer = ScriptedAsterisk()
    server = await asyncio.start_server(peer.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ami = AMIClient("127.0.0.1", port, "u", "s", challenge=False, backoff_initial=0.05, **kw)
    sub = ami.subscribe()
    try:
        async with ami:
            yield peer, ami, sub
    finally:
        server.close()


async def next_of(sub: Subscription, kind: type) -> object:
    async with asyncio.timeout(5):
        while not isinstance(item := await sub.get(), kind):
            pass
    return item


async def test_in_flight_action_fails_outcome_unknown_and_is_never_resent() -> None:
    async with scripted() as (peer, ami, sub):
        await next_of(sub, Connected)
        originate = Action("Originate", (("Channel", "Local/1@world/n"), ("Async", "true")))
        pending = asyncio.create_task(ami.send_action(originate))
        await asyncio.sleep(0.1)
        ami.drop_connection()
        with pytest.raises(OutcomeUnknown, match="reconcile"):
            await pending
        await next_of(sub, Disconnected)
        back = await next_of(sub, Connected)
        assert isinstance(back, Connected)
        assert back.generation == 2
        assert (await ami.send_action(Action("Ping"))).ok
    assert [a for a in peer.received if a[0] == "Originate"] == [("Originate", originate.action_id)]


async def test_a_silent_peer_is_dropped_after_two_missed_pings() -> None:
    async with scripted(ping_interval=0.1) as (peer, _, sub):
        await next_of(sub, Connected)
        peer.silent = True
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        lost = await next_of(sub, Disconnected)
        assert isinstance(lost, Disconnected)
        assert "2 pings unanswered" in lost.reason
        assert loop.time() - t0 < 1.0
        peer.silent = False
        await next_of(sub, Connected)
        assert peer.sessions == 2


async def test_lists_are_collected_and_not_broadcast() -> None:
    async with scripted() as (_, ami, sub):
        await next_of(sub, Connected)
        response, items = await ami.send_list(Action("CoreShowChannels"))
        assert response.starts_list
        assert [e.get("Uniqueid") for e in items] == ["x-a"]
        assert sub.backlog == 0


async def test_not_connected_means_not_sent() -> None:
    ami = AMIClient("127.0.0.1", 9, "u", "s")  # nothing listens on the discard port
    with pytest.raises(NotConnected):
        await ami.send_action(Action("Ping"))


def test_backoff_doubles_up_to_the_cap_with_equal_jitter() -> None:
    delays = list(itertools.islice(backoff_delays(0.5, 8.0, random.Random(1)), 12))
    ceilings = [min(8.0, 0.5 * 2**n) for n in range(12)]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert max(delays[6:]) <= 8.0
    assert min(delays[6:]) >= 4.0


def test_backoff_jitter_spreads_two_clients_apart() -> None:
    a = list(itertools.islice(backoff_delays(rng=random.Random(1)), 8))
    b = list(itertools.islice(backoff_delays(rng=random.Random(2)), 8))
    assert a != b
