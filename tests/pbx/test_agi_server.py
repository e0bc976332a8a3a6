"""The FastAGI server as the sandbox dialplan calls it: AGI(${DIALERD_AGI}/connect,...).

Fail-open (R-DL-5): whatever goes wrong in dialerd's handler — an exception, a handler
slower than its budget, a route nobody registered — the customer still hears the
safe-harbour message (the dialplan's abandon path), never silence or a stuck channel.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from dialerd.agi import AGIHangup, AGIRequest, AGIServer
from dialerd.ami import (
    AMIClient,
    CallAbandoned,
    CallAnswered,
    CallBridged,
    CallEvent,
    hangup,
    originate,
)
from tests.conftest import Sandbox
from tests.fixtures.ami.live import HUMAN, Calls, agent_leg, client, tracked, world_number

Handler = Callable[[AGIRequest], Awaitable[None]]


async def one_live_call(ami: AMIClient, calls: Calls, label: str) -> tuple[str, str]:
    number = world_number(HUMAN)
    call_id = f"agi-{label}-{number}"
    await ami.send_action(
        originate(call_id, f"Local/{number}@world/n", lead=f"lead-{label}", attempt=call_id)
    )
    return call_id, number


async def outcome(
    sandbox: Sandbox, handler: Handler | None, *, budget: float = 2.0, route: str = "/connect"
) -> tuple[type[CallEvent], AGIServer, list[str]]:
    """Run one human call through the dialplan with `handler` on `route`; return whether
    it was bridged or abandoned."""
    seen: list[str] = []
    agi = AGIServer(port=sandbox.agi_port, timeout=budget)
    if handler is not None:

        async def recording(req: AGIRequest) -> None:
            seen.append(f"{req.path} {req.args} {req.uniqueid}")
            await handler(req)

        agi.route(route)(recording)
    async with agi, client(sandbox) as ami, tracked(ami) as calls:
        agent = await agent_leg(ami, "1002")
        await asyncio.sleep(0.5)
        call_id, number = await one_live_call(ami, calls, "x")
        async with asyncio.timeout(20):
            while True:
                kinds = [type(e) for e in calls.by_call.get(call_id, [])]
                if CallBridged in kinds or CallAbandoned in kinds:
                    break
                calls.changed.clear()
                await calls.changed.wait()
        await ami.send_action(hangup(f"/^Local\\/{number}@world-/"))
        await ami.send_action(hangup(agent))
        async with asyncio.timeout(10):
            await calls.wait_ended(call_id)
    result = CallBridged if CallBridged in kinds else CallAbandoned
    return result, agi, seen


async def test_connect_sets_the_bridge_and_reads_variables(sandbox: Sandbox) -> None:
    leads: list[str | None] = []

    async def connect(req: AGIRequest) -> None:
        leads.append(await req.get_variable("DIALERD_LEAD"))
        assert await req.get_variable("DIALERD_NOT_SET_ANYWHERE") is None
        await req.set_variable("DIALERD_BRIDGE", "dialerd-agent-1002")

    result, agi, seen = await outcome(sandbox, connect)
    assert result is CallBridged
    assert leads == ["lead-x"]
    assert len(seen) == 1
    assert seen[0].startswith("/connect ['agi-x-")
    assert agi.stats.handled == 1


async def test_a_failing_handler_fails_open_to_the_abandon_path(sandbox: Sandbox) -> None:
    async def broken(req: AGIRequest) -> None:
        raise RuntimeError("database is down")

    result, agi, _ = await outcome(sandbox, broken)
    assert result is CallAbandoned
    assert agi.stats.failed == 1


async def test_a_slow_handler_is_cut_at_its_budget(sandbox: Sandbox) -> None:
    async def slow(req: AGIRequest) -> None:
        await asyncio.sleep(30)
        await req.set_variable("DIALERD_BRIDGE", "dialerd-agent-1002")  # too late

    loop = asyncio.get_running_loop()
    started = loop.time()
    result, agi, _ = await outcome(sandbox, slow, budget=0.5)
    assert result is CallAbandoned
    assert agi.stats.timed_out == 1
    assert loop.time() - started < 20


@pytest.mark.parametrize("route", ["/somewhere-else"])
async def test_an_unknown_route_fails_open(sandbox: Sandbox, route: str) -> None:
    async def never(req: AGIRequest) -> None:
        raise AssertionError("not routed here")

    result, agi, seen = await outcome(sandbox, never, route=route)
    assert result is CallAbandoned
    assert agi.stats.unrouted == 1
    assert seen == []


async def test_a_hangup_during_a_handler_ends_it_cleanly(sandbox: Sandbox) -> None:
    """Asterisk's HANGUP notice: the next command raises AGIHangup, which the server
    counts as handled (the call is simply over), not as a failure."""
    hung_up = asyncio.Event()

    async def waits(req: AGIRequest) -> None:
        try:
            while True:
                await req.get_variable("DIALERD_LEAD")
                await asyncio.sleep(0.2)
        except AGIHangup:
            hung_up.set()
            raise

    agi = AGIServer(port=sandbox.agi_port, timeout=15.0)
    agi.route("/connect")(waits)
    async with agi, client(sandbox) as ami, tracked(ami) as calls:
        call_id, number = await one_live_call(ami, calls, "hup")
        await asyncio.wait_for(calls.wait_for(call_id, CallAnswered), 10)
        await asyncio.sleep(1.0)
        await ami.send_action(hangup(f"/^Local\\/{number}@world-/"))
        await asyncio.wait_for(hung_up.wait(), 10)
        await asyncio.wait_for(calls.wait_ended(call_id), 10)
    assert agi.stats.handled == 1
    assert agi.stats.failed == 0
