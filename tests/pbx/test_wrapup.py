"""Wrap-up timeout and preview skip/logout on the real floor (issue 7 item 2).

Real Asterisk (the sandbox and its simulated customers), one real pjsua2 softphone, a real
mosquitto, the daemon in-process; the test is the agent at the console, speaking MQTT only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from prometheus_client import REGISTRY

from dialerd.daemon.app import Daemon
from tests.conftest import Broker, Sandbox
from tests.pbx.floor import in_process_floor

pytestmark = [pytest.mark.pbx, pytest.mark.sip, pytest.mark.mqtt]

AGENT = "1001"
Message = tuple[str, dict[str, Any], float]  # topic suffix, payload, when it arrived


class Console:
    """The agent's side of MQTT: sends commands, waits for what dialerd publishes."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.seen: list[Message] = []
        self._new = asyncio.Condition()

    async def listen(self) -> None:
        async for message in self.client.messages:
            if message.retain:  # an earlier floor's last word (the broker outlives tests)
                continue
            suffix = str(message.topic).rsplit("/", 1)[-1]
            body = json.loads(message.payload)
            async with self._new:
                self.seen.append((suffix, body, time.monotonic()))
                self._new.notify_all()

    async def send(self, command: str, **fields: Any) -> str:
        """Publish a command; its id, echoed by the reply."""
        body = {"id": f"{command}-{len(self.seen)}", "command": command, **fields}
        await self.client.publish(f"dialerd/agents/{AGENT}/cmd", json.dumps(body), qos=1)
        return str(body["id"])

    async def reply(self, request: str, start: int, seconds: float = 30) -> dict[str, Any]:
        """The reply to command `request`."""
        found = await self.expect(
            f"reply to {request}",
            lambda t, b: t == "reply" and b.get("id") == request,
            start,
            seconds,
        )
        return self.seen[found][1]

    async def expect(
        self, what: str, match: Callable[[str, dict[str, Any]], bool], start: int, seconds: float
    ) -> int:
        """Index of the first matching message at or after index `start`; fails after
        `seconds`."""
        try:
            async with asyncio.timeout(seconds), self._new:
                while True:
                    for i in range(start, len(self.seen)):
                        if match(self.seen[i][0], self.seen[i][1]):
                            return i
                    await self._new.wait()
        except TimeoutError:
            raise AssertionError(f"no {what} in {seconds} s; saw {self.seen[start:]}") from None

    async def state(self, name: str, start: int, seconds: float = 30) -> int:
        return await self.expect(
            f"state {name}", lambda t, b: t == "state" and b.get("state") == name, start, seconds
        )

    async def talk(self, start: int) -> None:
        """Hang up once the customer is bridged (the screen-pop comes at the reservation,
        a moment before the customer joins the agent's conference)."""
        await self.state("talking", start, 60)
        await self.send("hangup")

    async def login(self) -> int:
        """Log in until the nailed-up leg is up (the phone may still be registering).

        The state topic is retained and dialerd keeps only the newest retained message per
        topic, so a short "ready" may be overtaken by "reserved": any state past nailing
        means the leg is up."""
        for _ in range(10):
            mark = len(self.seen)
            await self.send("login", campaigns=["demo"])
            found = await self.expect(
                "the leg up or lost",
                lambda t, b: t == "state" and b.get("state") not in ("nailing", None),
                mark,
                40,
            )
            if self.seen[found][1]["state"] != "logged_out":
                return found
            await asyncio.sleep(1.0)
        raise AssertionError("the agent never got a nailed-up leg")


@contextlib.asynccontextmanager
async def live_floor(
    sandbox: Sandbox, broker: Broker, work: Path, leads: int, **campaign: Any
) -> AsyncIterator[tuple[Daemon, Console]]:
    """The floor of tests/pbx/floor.py on `leads` human customers, registration not
    forced unless `campaign` says so, and the agent's console connected."""
    async with (
        in_process_floor(
            sandbox,
            broker,
            work,
            leads=leads,
            seed=5,
            ring=(1, 2),
            **{"registration": {"forced": False, "categories": []}, **campaign},
        ) as (daemon, _, _),
        aiomqtt.Client(broker.host, broker.port, identifier="test-console") as client,
    ):
        await client.subscribe(f"dialerd/agents/{AGENT}/#", qos=1)
        console = Console(client)
        listener = asyncio.create_task(console.listen())
        try:
            yield daemon, console
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener


def attempts(db: Path) -> list[tuple[int, str, str | None, str | None]]:
    """(lead, result code, agent, note) of every attempt, in order."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute(
            "SELECT lead_id, result_code, agent, note FROM attempts ORDER BY id"
        ).fetchall()


def statuses(db: Path) -> dict[int, tuple[str, int]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT id, status, attempts FROM leads").fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def is_screen(preview: bool) -> Callable[[str, dict[str, Any]], bool]:
    return lambda t, b: t == "screen" and bool(b.get("preview")) is preview


@pytest.mark.timeout(300)
async def test_wrapup_times_out_with_its_code_and_the_agent_takes_the_next_call(
    sandbox: Sandbox, mqtt_broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The agent hangs up and never dispositions: after the campaign's 2 s the timeout code
    is recorded as the agent's disposition would be, the agent is published ready on MQTT,
    and the next customer is bridged to them."""
    caplog.set_level(logging.INFO, logger="dialerd")
    before = REGISTRY.get_sample_value("dialerd_wrapup_timeouts_total", {"campaign": "demo"})
    wrapup = {"timeout_seconds": 2, "result_code": "not_cp"}
    async with live_floor(
        sandbox, mqtt_broker, tmp_path / "w", 2, mode="progressive", wrapup=wrapup
    ) as (daemon, console):
        start = await console.login()
        first = await console.expect("the first call", is_screen(False), start, 60)
        await console.talk(start)
        wrapping = await console.state("wrapup", first)
        freed = await console.state("ready", wrapping, 30)
        # The daemon's own times (each state's "since"), not when MQTT delivered them.
        waited = console.seen[freed][1]["since"] - console.seen[wrapping][1]["since"]
        notice = await console.expect(
            "the timeout notice",
            lambda t, b: t == "reply" and b.get("closed") == "wrap-up timed out",
            wrapping,
            5,
        )
        second = await console.expect("the next call", is_screen(False), freed, 60)
        await console.talk(freed)
        await console.state("wrapup", second)
        sent = await console.send("disposition", result_code="order", note="bought")
        assert (await console.reply(sent, second))["ok"]
        db = daemon.config.store_path
        print(f"wrap-up -> ready after the timeout: {waited:.2f} s")

    first_lead = console.seen[first][1]["lead_id"]
    # "since" is wall time rebuilt from the monotonic clock at each publish: allow 10 ms.
    assert waited >= 1.99, "the timeout never fires early"
    assert console.seen[notice][1]["result_code"] == "not_cp"
    assert attempts(db) == [
        (first_lead, "not_cp", AGENT, "wrap-up timed out after 2 s without a disposition"),
        (console.seen[second][1]["lead_id"], "order", AGENT, "bought"),
    ]
    assert statuses(db)[first_lead] == ("waiting", 1), "retried like any live no-contact code"
    lines = [r.getMessage() for r in caplog.records if "timed out after" in r.getMessage()]
    assert len(lines) == 1 and "recorded not_cp" in lines[0], lines
    after = REGISTRY.get_sample_value("dialerd_wrapup_timeouts_total", {"campaign": "demo"})
    assert (after or 0) - (before or 0) == 1


@pytest.mark.timeout(300)
async def test_preview_skip_and_logout_leave_the_leads_dialable(
    sandbox: Sandbox, mqtt_broker: Broker, tmp_path: Path
) -> None:
    """R-DL-1 preview: a skipped lead and one shown at logout are back in the queue
    untouched (no attempt); after a new login one of them is shown again, dialled and
    answered."""
    async with live_floor(sandbox, mqtt_broker, tmp_path / "p", 3, mode="preview", pacing={}) as (
        daemon,
        console,
    ):
        db = daemon.config.store_path
        start = await console.login()
        shown = await console.expect("a preview", is_screen(True), start, 30)
        skipped = console.seen[shown][1]["lead_id"]
        sent = await console.send("skip")
        reply = await console.reply(sent, shown)
        assert reply == {"schema": 1, "id": sent, "ok": True, "state": "ready", "skipped": skipped}
        assert statuses(db)[skipped] == ("ready", 0)
        nxt = await console.expect("the next preview", is_screen(True), shown + 1, 30)
        held = console.seen[nxt][1]["lead_id"]
        assert held != skipped, "a skipped lead is not shown straight back"

        sent = await console.send("logout")
        assert await console.reply(sent, nxt) == {
            "schema": 1,
            "id": sent,
            "ok": True,
            "state": "logged_out",
        }
        assert statuses(db)[held] == ("ready", 0)
        assert attempts(db) == []

        out = len(console.seen)
        again = await console.login()
        shown = await console.expect("a preview after login", is_screen(True), again, 30)
        lead = console.seen[shown][1]["lead_id"]
        assert lead in {skipped, held}
        await console.send("dial")
        call = await console.expect("the customer", is_screen(False), shown, 60)
        assert console.seen[call][1]["lead_id"] == lead
        await console.talk(shown)
        await console.state("wrapup", call)
        sent = await console.send("disposition", result_code="not_interested")
        assert (await console.reply(sent, call))["ok"]
        assert out <= again
    assert [(a[0], a[1]) for a in attempts(db)] == [(lead, "not_interested")]
