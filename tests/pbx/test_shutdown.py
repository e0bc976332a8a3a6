"""A stop (SIGTERM's path) on the real floor: what agents and their consoles are left with.

A clean MQTT disconnect makes the broker discard dialerd's will, so the retained status
would say "online" forever and each agent's retained state "ready", while the agents sat
nailed up in a conference nobody feeds. After the drain dialerd signs everyone out, hangs
up their legs and says it is offline, each step bounded.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from dialerd.floor.agents import AgentState
from tests.conftest import Broker, Sandbox
from tests.pbx.floor import in_process_floor

pytestmark = [pytest.mark.pbx, pytest.mark.sip, pytest.mark.mqtt]


async def retained(broker: Broker, *topics: str) -> dict[str, dict[str, Any]]:
    """The retained message of each topic, as a console starting now would read it."""
    seen: dict[str, dict[str, Any]] = {}
    async with aiomqtt.Client(broker.host, broker.port, identifier="test-retained") as client:
        for topic in topics:
            await client.subscribe(topic, qos=1)
        async with asyncio.timeout(5):
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                seen[str(message.topic)] = json.loads(message.payload)
                if len(seen) == len(topics):
                    break
    return seen


def agent_legs(sandbox: Sandbox) -> list[str]:
    return [
        line for line in sandbox.cli("core show channels").splitlines() if "PJSIP/1001-" in line
    ]


async def test_a_stop_signs_the_agents_out_hangs_up_and_says_offline(
    sandbox: Sandbox, mqtt_broker: Broker, tmp_path: Path
) -> None:
    async with in_process_floor(
        sandbox,
        mqtt_broker,
        tmp_path,
        leads=2,
        seed=3,
        ring=(1, 2),
        mode="preview",
        pacing={},
        registration={"forced": False, "categories": []},
    ) as (daemon, _, stop):
        await daemon._command("1001", "login", {"campaigns": ["demo"]})
        deadline = time.monotonic() + 30
        while daemon.agents["1001"].state is not AgentState.RESERVED:  # a lead on screen
            assert time.monotonic() < deadline, daemon.agents["1001"]
            await asyncio.sleep(0.2)
        assert agent_legs(sandbox), "the agent's leg is nailed up"
        assert (await retained(mqtt_broker, "dialerd/status"))["dialerd/status"]["online"]
        stop.set()
        async with asyncio.timeout(10):
            while not daemon.draining:  # noqa: ASYNC110 - a flag the daemon sets, no event
                await asyncio.sleep(0.05)
        with pytest.raises(Exception, match="dialerd is stopping"):
            await daemon._command("1001", "login", {"campaigns": ["demo"]})
    # The daemon has returned from run(): what is left for the next console and the PBX.
    state, status = "dialerd/agents/1001/state", "dialerd/status"
    seen = await retained(mqtt_broker, state, status)
    assert seen[status]["online"] is False
    assert seen[state]["state"] == "logged_out"
    deadline = time.monotonic() + 10
    while agent_legs(sandbox):
        assert time.monotonic() < deadline, agent_legs(sandbox)
        await asyncio.sleep(0.5)
