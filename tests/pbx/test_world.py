"""The simulated world (asterisk/world/extensions_world.conf) behaves as its numbers say.

Every other pbx test and the demo trust these customers: a busy number must be busy, a
machine must sound like one to AMD() (R-DL-3). Originated through dialerd's own AMI
client into the production dialplan (Context dialerd-outbound, Exten s); no FastAGI server
runs here, so live humans take the abandon path, which is fine.
"""

from __future__ import annotations

import asyncio

import pytest

from dialerd.ami import (
    AMIClient,
    CallAmd,
    CallAnswered,
    CallFailed,
    CallHungUp,
    FailReason,
    hangup,
    originate,
)
from tests.conftest import Sandbox
from tests.fixtures.ami.live import (
    BUSY,
    CONGESTION,
    HUMAN,
    INVALID,
    MACHINE,
    NO_ANSWER,
    Calls,
    client,
    hang_up_everything,
    tracked,
    world_number,
)


async def dial(
    ami: AMIClient, calls: Calls, number: str, *, amd: bool = False, ring_timeout: float = 30.0,
    variables: dict[str, str] | None = None,
) -> str:  # fmt: skip
    call_id = f"w-{number}-{'amd' if amd else 'x'}"
    action = originate(
        call_id, f"Local/{number}@world/n", attempt=call_id, amd=amd,
        ring_timeout=ring_timeout, variables=variables,
    )  # fmt: skip
    calls.tracker.expect(call_id, attempt=call_id, action_id=action.action_id)
    await ami.send_action(action)
    return call_id


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        (HUMAN, "answered"),
        (MACHINE, "answered"),
        (BUSY, FailReason.BUSY),
        (NO_ANSWER, FailReason.NO_ANSWER),
        (CONGESTION, FailReason.CONGESTION),
        (INVALID, FailReason.INVALID),
    ],
    ids=["human", "machine", "busy", "no-answer", "congestion", "invalid"],
)
async def test_each_behaviour_has_its_outcome(
    sandbox: Sandbox, behaviour: int, expected: str | FailReason
) -> None:
    async with client(sandbox) as ami, tracked(ami) as calls:
        number = world_number(behaviour, ring=2)
        call_id = await dial(ami, calls, number, ring_timeout=4.0)
        async with asyncio.timeout(20):
            if expected == "answered":
                answered = await calls.wait_for(call_id, CallAnswered)
                assert isinstance(answered, CallAnswered)
                await ami.send_action(hangup(f"/^Local\\/{number}@world-/"))
            await calls.wait_ended(call_id)
    end = calls.ended(call_id)
    if expected == "answered":
        assert isinstance(end, CallHungUp)
        # RR = 02: the world rings two seconds before answering
        assert end.ring_seconds is not None
        assert 1.8 < end.ring_seconds < 3.5
    else:
        assert isinstance(end, CallFailed)
        assert end.reason is expected


async def test_world_behaviour_variable_overrides_the_digits(sandbox: Sandbox) -> None:
    async with client(sandbox) as ami, tracked(ami) as calls:
        number = world_number(HUMAN)
        call_id = await dial(ami, calls, number, variables={"__WORLD_BEHAVIOUR": str(BUSY)})
        await asyncio.wait_for(calls.wait_ended(call_id), 15)
    end = calls.ended(call_id)
    assert isinstance(end, CallFailed)
    assert end.reason is FailReason.BUSY


async def test_amd_tells_humans_from_machines(sandbox: Sandbox) -> None:
    """20 calls at once, 10 humans and 10 machines: AMD() must agree >= 90%."""
    hang_up_everything(sandbox)
    truth: dict[str, str] = {}
    async with client(sandbox) as ami, tracked(ami) as calls:
        for n in range(20):
            behaviour, label = (HUMAN, "HUMAN") if n % 2 else (MACHINE, "MACHINE")
            call_id = await dial(ami, calls, world_number(behaviour, ring=1), amd=True)
            truth[call_id] = label
        verdicts: dict[str, str] = {}
        async with asyncio.timeout(40):
            for call_id in truth:
                verdict = await calls.wait_for(call_id, CallAmd)
                assert isinstance(verdict, CallAmd)
                verdicts[call_id] = verdict.verdict
    hang_up_everything(sandbox)
    agree = sum(verdicts[c] == truth[c] for c in truth)
    assert agree >= 18, {c: (truth[c], verdicts[c]) for c in truth if verdicts[c] != truth[c]}
