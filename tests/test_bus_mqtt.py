"""The MQTT bus against a real mosquitto: commands in, replies and events out, buffering."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiomqtt
import pytest

from dialerd.bus.mqtt import Bus, CommandError, MqttSettings
from tests.conftest import Broker

pytestmark = pytest.mark.mqtt


async def handler(agent: str, verb: str, body: dict[str, Any]) -> dict[str, Any] | None:
    if verb == "echo":
        return {"agent": agent, "said": body.get("text")}
    if verb == "explode":
        raise RuntimeError("handler bug")
    raise CommandError(f"unknown command {verb!r}")


async def collect(client: aiomqtt.Client, count: int) -> list[tuple[str, dict[str, Any]]]:
    out = []
    async with asyncio.timeout(10):
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            out.append((str(message.topic), json.loads(message.payload)))
            if len(out) == count:
                return out
    return out


@pytest.fixture
async def bus(mqtt_broker: Broker) -> Any:
    b = Bus(
        MqttSettings(
            host=mqtt_broker.host, port=mqtt_broker.port, prefix="t1", client_id="dialerd-test"
        ),
        on_command=handler,
    )
    task = asyncio.create_task(b.run())
    await asyncio.wait_for(b.connected.wait(), 10)
    yield b
    task.cancel()


async def test_commands_get_replies_and_bad_input_gets_errors(
    bus: Bus, mqtt_broker: Broker
) -> None:
    async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as client:
        await client.subscribe("t1/agents/+/reply", qos=1)
        await asyncio.sleep(0.2)
        await client.publish(
            "t1/agents/1001/cmd", json.dumps({"id": 1, "command": "echo", "text": "hi"}), qos=1
        )
        await client.publish("t1/agents/1001/cmd", b"\xff{not json", qos=1)
        await client.publish("t1/agents/1001/cmd", json.dumps({"id": 3, "command": "nope"}), qos=1)
        await client.publish(
            "t1/agents/1001/cmd", json.dumps({"id": 4, "command": "explode"}), qos=1
        )
        await client.publish("t1/agents/1001/cmd", json.dumps([1, 2]), qos=1)
        replies = [body for _, body in await collect(client, 5)]
    assert replies[0] == {"schema": 1, "id": 1, "ok": True, "agent": "1001", "said": "hi"}
    assert replies[1]["ok"] is False and "not JSON" in replies[1]["error"]
    assert replies[2] == {"schema": 1, "id": 3, "ok": False, "error": "unknown command 'nope'"}
    assert replies[3]["error"] == "internal error; see the dialerd log"
    assert replies[4]["error"] == "payload must be a JSON object"


async def test_events_published_while_broker_unreachable_are_delivered_later(
    mqtt_broker: Broker,
) -> None:
    """Mosquitto down = the floor keeps going; events wait in a bounded buffer."""
    b = Bus(
        MqttSettings(
            host=mqtt_broker.host,
            port=mqtt_broker.port,
            prefix="t2",
            client_id="dialerd-buffer",
            buffer_limit=3,
        )
    )
    for n in range(5):
        b.publish("t2/calls/events", {"n": n})
    b.publish("t2/agents/1001/state", {"state": "ready"}, retain=True)
    b.publish("t2/agents/1001/state", {"state": "talking"}, retain=True)
    assert b.dropped == 2 and b.pending == 4
    async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as client:
        await client.subscribe("t2/#", qos=1)
        task = asyncio.create_task(b.run())
        got: list[tuple[str, dict[str, Any]]] = []
        while not any(body.get("n") == 4 for _, body in got):
            got += await collect(client, 1)
        task.cancel()
    # QoS 1 is at-least-once: a reconnect under load may repeat a message (and the status),
    # never reorder, lose or resurrect one.
    assert got[0] == ("t2/status", {"schema": 1, "online": True}), got
    states = [body["state"] for t, body in got if t == "t2/agents/1001/state"]
    events = [body["n"] for t, body in got if t == "t2/calls/events"]
    assert set(states) == {"talking"}, got
    assert list(dict.fromkeys(events)) == [2, 3, 4], got
    first_event = next(i for i, (t, _) in enumerate(got) if t == "t2/calls/events")
    assert all(t != "t2/agents/1001/state" for t, _ in got[first_event:]), "retained state first"
