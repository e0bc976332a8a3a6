"""The AMI client, call tracker and FastAGI server against the sandbox Asterisk.

R-DL-3: AMD verdicts and failure reasons reach dialerd typed; R-DL-5: an unconnected human
is marked abandoned (the dialplan plays the safe-harbour message); R-LOG-1: durations and
causes per call.
"""

from __future__ import annotations

import asyncio

import pytest

from dialerd.agi import AGIRequest, AGIServer
from dialerd.ami import (
    Action,
    AMIClient,
    CallAbandoned,
    CallAmd,
    CallAnswered,
    CallBridged,
    CallFailed,
    CallHungUp,
    CallOriginated,
    CallRinging,
    Event,
    FailReason,
    LocalProtocolError,
    hangup,
    originate,
    unescape_c,
)
from dialerd.ami.actions import CALLER_NAME_LIMIT
from dialerd.ami.codec import safe_value
from tests.conftest import Sandbox
from tests.fixtures.ami.live import (
    BUSY,
    CONGESTION,
    HUMAN,
    INVALID,
    MACHINE,
    NO_ANSWER,
    agent_leg,
    client,
    hang_up_everything,
    tracked,
    world_number,
)


@pytest.mark.parametrize("challenge", [True, False], ids=["md5", "plain"])
async def test_login_ping_and_list(sandbox: Sandbox, challenge: bool) -> None:
    async with client(sandbox, challenge=challenge) as ami:
        pong = await ami.send_action(Action("Ping"))
        assert pong.get("Ping") == "Pong"
        response, channels = await ami.send_list(Action("CoreShowChannels"))
        assert response.ok
        assert isinstance(channels, list)
    assert not ami.connected


async def test_bad_secret_never_connects(sandbox: Sandbox) -> None:
    ami = AMIClient(
        sandbox.ami_host, sandbox.ami_port, sandbox.ami_user, "wrong", backoff_initial=0.05
    )
    ami.start()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(2.5):  # Asterisk sleeps 1 s after a failed login
            await ami.wait_connected()
    assert ami.last_error is not None
    assert "LoginFailed" in ami.last_error
    await ami.close()


async def test_every_world_behaviour_has_its_lifecycle(sandbox: Sandbox) -> None:
    """One call per behaviour, all at once, each followed from originate to its end."""
    hang_up_everything(sandbox)
    bridge_attempts: set[str] = set()
    agi = AGIServer(port=sandbox.agi_port, timeout=3.0)

    @agi.route("/connect")
    async def connect(req: AGIRequest) -> None:
        if req.args and req.args[0] in bridge_attempts:
            await req.set_variable("DIALERD_BRIDGE", "dialerd-agent-1001")

    plan = {  # call id -> (behaviour, amd, ring timeout)
        "bridged": (HUMAN, True, 30.0),
        "abandon": (HUMAN, False, 30.0),
        "machine": (MACHINE, True, 30.0),
        "busy": (BUSY, False, 30.0),
        "noanswer": (NO_ANSWER, False, 2.0),
        "congestion": (CONGESTION, False, 30.0),
        "invalid": (INVALID, False, 30.0),
    }
    async with agi, client(sandbox) as ami, tracked(ami) as calls:
        agent = await agent_leg(ami, "1001")
        await asyncio.sleep(0.5)
        ids: dict[str, str] = {}
        numbers: dict[str, str] = {}
        for label, (behaviour, amd, ring_timeout) in plan.items():
            number = world_number(behaviour)
            call_id = ids[label] = f"lc-{label}-{number}"
            numbers[label] = number
            if label == "bridged":
                bridge_attempts.add(f"att-{call_id}")
            action = originate(
                call_id, f"Local/{number}@world/n", lead=f"lead-{label}",
                attempt=f"att-{call_id}", campaign="lifecycle", amd=amd,
                ring_timeout=ring_timeout,
            )  # fmt: skip
            calls.tracker.expect(call_id, lead=f"lead-{label}", action_id=action.action_id)
            await ami.send_action(action)
        async with asyncio.timeout(40):
            await calls.wait_for(ids["bridged"], CallBridged)
            await calls.wait_for(ids["abandon"], CallAbandoned)
            for label in ("bridged", "abandon"):
                await ami.send_action(hangup(f"/^Local\\/{numbers[label]}@world-/"))
            await calls.wait_ended(*ids.values())
        await ami.send_action(hangup(agent))
        assert agi.stats.handled >= 2
        assert agi.stats.failed == 0

    def kinds(label: str) -> list[type]:
        return [type(e) for e in calls.by_call[ids[label]]]

    answered = [CallOriginated, CallRinging, CallAnswered]
    assert kinds("bridged") == [*answered, CallAmd, CallBridged, CallHungUp]
    assert kinds("abandon") == [*answered, CallAbandoned, CallHungUp]
    assert kinds("machine") == [*answered, CallAmd, CallHungUp]
    bridged_end = calls.ended(ids["bridged"])
    assert isinstance(bridged_end, CallHungUp)
    assert bridged_end.agent == "1001"
    assert bridged_end.amd == "HUMAN"
    assert bridged_end.talk_seconds
    machine_end = calls.ended(ids["machine"])
    assert isinstance(machine_end, CallHungUp)
    assert machine_end.amd == "MACHINE"
    abandon_end = calls.ended(ids["abandon"])
    assert isinstance(abandon_end, CallHungUp)
    assert abandon_end.abandoned
    originated = calls.by_call[ids["busy"]][0]
    assert isinstance(originated, CallOriginated)
    assert originated.lead == "lead-busy"
    for label, reason in [
        ("busy", FailReason.BUSY), ("noanswer", FailReason.NO_ANSWER),
        ("congestion", FailReason.CONGESTION), ("invalid", FailReason.INVALID),
    ]:  # fmt: skip
        end = calls.ended(ids[label])
        assert isinstance(end, CallFailed), (label, calls.by_call[ids[label]])
        assert end.reason is reason, (label, end)
    assert calls.tracker.active == frozenset()


HOSTILE_NAMES = [
    'He said "hi" \\ bye',
    "Line one\r\nAction: Hangup\r\nChannel: /.*/",
    "Zoë Ångström 日本語 ☎ 🎉",
    "x" * 700 + "\n" + "ü" * 700 + '"' * 600,  # ~2 KB of junk
]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=["quotes", "injection", "utf8", "2kb"])
async def test_hostile_caller_id_round_trips_without_injection(sandbox: Sandbox, name: str) -> None:
    """A caller-ID name from an imported CSV must not crash the codec, inject headers,
    or be mangled beyond the documented clean-up (CR/LF -> space, cut to 80 bytes)."""
    async with client(sandbox) as ami:
        sub = ami.subscribe()
        number = world_number(INVALID)  # fails fast, still creates the channels
        call_id = f"cid-{number}"
        await ami.send_action(
            originate(call_id, f"Local/{number}@world/n", caller_name=name, caller_number="+33 1")
        )
        seen: list[str] = []
        async with asyncio.timeout(10):
            async for event in sub:
                if not isinstance(event, Event) or event.get("Linkedid") != f"{call_id}-a":
                    continue
                if "CallerIDName" in event:
                    seen.append(unescape_c(event["CallerIDName"]))
                if event.name == "Hangup" and event.get("Uniqueid") == f"{call_id}-a":
                    break
        assert (await ami.send_action(Action("Ping"))).ok  # the session is intact
    expected = safe_value(name, CALLER_NAME_LIMIT)
    assert "\n" not in expected
    assert len(expected.encode()) <= CALLER_NAME_LIMIT
    assert expected in seen, seen
    # the ;1 leg carries it; nothing else (no injected action ran, no mangled name)
    assert set(seen) <= {expected, "<unknown>"}


async def test_raw_crlf_in_a_header_is_refused_and_the_session_survives(
    sandbox: Sandbox,
) -> None:
    async with client(sandbox) as ami:
        with pytest.raises(LocalProtocolError):
            await ami.send_action(
                Action("Setvar", (("Variable", "X"), ("Value", "a\r\nAction: Logoff")))
            )
        assert (await ami.send_action(Action("Ping"))).ok


async def test_dialerd_channel_variables_reach_every_channel_event(sandbox: Sandbox) -> None:
    """manager_dialerd.conf's channelvars (only honoured in [general]) put DIALERD_* on
    the events: what lets a restarted dialerd adopt its calls."""
    async with client(sandbox) as ami:
        sub = ami.subscribe()
        number = world_number(INVALID)
        call_id = f"var-{number}"
        await ami.send_action(
            originate(call_id, f"Local/{number}@world/n", lead="L-42", attempt=call_id)
        )
        async with asyncio.timeout(10):
            async for event in sub:
                if (
                    isinstance(event, Event)
                    and event.name == "Hangup"
                    and event.get("Uniqueid") == f"{call_id}-a"
                ):
                    break
    variables = event.variables()
    assert variables["DIALERD_LEAD"] == "L-42"
    assert variables["DIALERD_ATTEMPT"] == call_id
    assert event.get("Timestamp")  # timestampevents, for the tracker's durations
