"""The agent console on the real floor: a person's day, driven through Textual's pilot.

Everything is real: the sandbox Asterisk with its simulated customers, mosquitto, the
daemon in-process, a `dialerd phone` softphone for agent 1001, and the console app talking
MQTT only. The pilot clicks the buttons an agent would click; nothing reaches the daemon
except through the console.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiomqtt
import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Input, Static

from dialerd.console.app import ConsoleApp
from dialerd.console.link import LinkSettings
from dialerd.daemon.app import Daemon
from dialerd.demo.services import Mosquitto
from dialerd.demo.world import generate
from tests.conftest import Broker, Sandbox
from tests.pbx.floor import in_process_floor

pytestmark = [pytest.mark.pbx, pytest.mark.sip, pytest.mark.mqtt]

CALLBACK_DELAY = 40.0
COMMENT = "wants the offer explained after the meeting"
TOMORROW_COMMENT = "call back tomorrow, the partner decides"
SCREENSHOT_DIR = "DIALERD_CONSOLE_SCREENSHOT"
"""Set to a directory to keep the screenshot of the callback's screen-pop (docs/console.png)."""


async def until(pilot: Pilot[None], what: str, check: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            status = pilot.app.query_one("#status", Static).content
            raise AssertionError(f"timed out waiting for {what}; status line: {status}")
        await pilot.pause(0.2)


def text(app: ConsoleApp, selector: str) -> str:
    return str(app.query_one(selector, Static).content)


async def type_into(pilot: Pilot[None], selector: str, value: str) -> None:
    """Click the field and type, key by key, as the agent does."""
    await pilot.click(selector)
    pilot.app.query_one(selector, Input).value = ""
    await pilot.press(*value)


async def click_code(pilot: Pilot[None], code: str) -> None:
    button = next(b for b in pilot.app.query(".code").results(Button) if b.name == code)
    await pilot.click(f"#{button.id}")


def state(app: ConsoleApp) -> str:
    return str(app.agent_state.get("state"))


async def close_call(pilot: Pilot[None], app: ConsoleApp, code: str) -> None:
    """Hang up and disposition with `code` and the first registration topic."""
    await pilot.click("#hangup")
    await until(pilot, "wrap-up", lambda: state(app) == "wrapup", 15)
    await click_code(pilot, code)
    await pilot.click("#reg-0-0")
    replies = len(app.replies)
    await pilot.click("#send")
    await until(pilot, "the disposition reply", lambda: len(app.replies) > replies, 15)
    assert app.replies[-1] == ("disposition", app.replies[-1][1])
    assert app.replies[-1][1]["ok"], app.replies[-1]


async def reschedule_to_myself(
    pilot: Pilot[None], app: ConsoleApp, clock: str, comment: str
) -> None:
    """Hang up and close the call as "callback", rescheduled to myself at ``clock``."""
    await pilot.click("#hangup")
    await until(pilot, "wrap-up", lambda: state(app) == "wrapup", 15)
    await click_code(pilot, "callback")
    await pilot.click("#reg-0-0")
    await pilot.click("#reschedule")
    await type_into(pilot, "#when-time", clock)
    await type_into(pilot, "#resched-comment", comment)
    replies = len(app.replies)
    await pilot.click("#send")
    await until(pilot, "the disposition reply", lambda: len(app.replies) > replies, 15)
    assert app.replies[-1][0] == "disposition" and app.replies[-1][1]["ok"], app.replies[-1]


Row = tuple[int | None, str, str, float]


async def daemons_list(daemon: Daemon) -> list[Row]:
    """R-CB-1 as dialerd itself keeps it: (lead, number, comment, due) earliest first."""
    calls = await daemon.flow.scheduled_calls("1001", time.time())
    return [(c.lead_id, c.number, c.comment, c.due_at) for c in calls]


def consoles_list(app: ConsoleApp) -> list[Row]:
    return [(c.lead_id, c.number, c.comment, c.due.timestamp()) for c in app.scheduled.calls]


async def next_screen(pilot: Pilot[None], app: ConsoleApp, seen: int) -> None:
    await until(
        pilot,
        "a screen-pop",
        lambda: app.screens_seen > seen and state(app) == "talking",
        CALLBACK_DELAY + 60,
    )


@contextlib.asynccontextmanager
async def floor(
    sandbox: Sandbox, broker: Broker, work: Path, *, mode: str, leads: int
) -> AsyncIterator[tuple[set[str], Daemon]]:
    """The real floor for agent 1001 (tests/pbx/floor.py) on `leads` human-only numbers, one
    call per free agent: their numbers and the daemon."""
    async with in_process_floor(
        sandbox, broker, work, leads=leads, seed=11, ring=(2, 3), mode=mode, pacing={}
    ) as (daemon, opts, _):
        yield {c.number for c in generate(opts.leads, opts.seed, opts.mix, opts.ring)}, daemon


def console(broker: Broker) -> ConsoleApp:
    return ConsoleApp(LinkSettings(broker.host, broker.port, "1001", ("demo",), prefix="dialerd"))


@pytest.mark.timeout(420)
async def test_agent_works_a_call_and_gets_the_callback_back(
    sandbox: Sandbox, mqtt_broker: Broker, tmp_path: Path
) -> None:
    """R-REG-2, R-REG-4b, R-CB-1/2/3/7 through the console: log in, see the screen-pop, hang
    up, reschedule to myself with a comment, register, pick the callback code; the daemon's
    refusals appear inline; the scheduled-calls panel shows dialerd's own list as it changes;
    the callback comes back to this agent with the comment shown. A console started afresh
    for the agent then shows the same server-side list."""
    floor_ = floor(sandbox, mqtt_broker, tmp_path, mode="progressive", leads=3)
    async with floor_ as (numbers, daemon):
        app = console(mqtt_broker)
        async with app.run_test(size=(150, 44)) as pilot:
            await until(pilot, "dialerd online", lambda: bool(app.daemon_online), 15)
            assert "dialerd online" in text(app, "#top")
            await until(pilot, "the list", lambda: "none scheduled" in text(app, "#scheduled"), 15)
            await pilot.click("#login")
            await next_screen(pilot, app, 0)
            first = app.screen_pop
            assert first is not None and first.number in numbers
            assert first.number in text(app, "#number")
            assert not first.callback_comment
            # What a console restarted now would be given (R-CB-7): this very call.
            missed = (await daemon._command("1001", "screen", {}))["screen"]
            assert (missed["attempt"], missed["lead_id"]) == (first.attempt, first.lead_id)
            await type_into(pilot, "#note", "asked about prices")
            # A pause asked for mid-call starts after the wrap-up, never mid-call.
            await type_into(pilot, "#pause-reason", "coffee")
            replies = len(app.replies)
            await pilot.click("#pause")
            await until(pilot, "the pause reply", lambda: len(app.replies) > replies, 15)
            assert app.replies[-1][0] == "pause" and app.replies[-1][1]["ok"]
            assert state(app) == "talking"

            await pilot.click("#hangup")
            await until(pilot, "wrap-up", lambda: state(app) == "wrapup", 15)

            # Checked by the console, nothing sent: no code, then no registration.
            await pilot.click("#send")
            assert "pick a result code" in text(app, "#status")
            await click_code(pilot, "callback")
            await pilot.click("#send")
            assert "registration is required" in text(app, "#status")
            await pilot.click("#reg-0-2")  # Reason for call: Sale
            await pilot.click("#reschedule")
            await type_into(pilot, "#when-time", f"+{CALLBACK_DELAY:.0f}s")
            await pilot.click("#send")
            assert "needs a comment" in text(app, "#status")
            await type_into(pilot, "#resched-comment", COMMENT)

            # Refused by the daemon, shown inline: an order closes the address.
            await click_code(pilot, "order")
            replies = len(app.replies)
            await pilot.click("#send")
            await until(pilot, "the refusal", lambda: len(app.replies) > replies, 15)
            verb, reply = app.replies[-1]
            assert (verb, reply["ok"]) == ("disposition", False)
            assert "cannot be rescheduled" in text(app, "#status")
            assert app.query_one("#status").has_class("error")

            await click_code(pilot, "callback")
            await type_into(pilot, "#detail", "call after 14:00")
            sent = time.time()
            await pilot.click("#send")
            await until(pilot, "the disposition reply", lambda: len(app.replies) > replies + 1, 15)
            verb, reply = app.replies[-1]
            assert (verb, reply["ok"]) == ("disposition", True), reply
            assert app.closed
            # R-CB-1: the panel shows the entry as dialerd returns it, in local time.
            await until(pilot, "the list", lambda: app.scheduled.holds(first.lead_id), 15)
            assert consoles_list(app) == await daemons_list(daemon)
            (due,) = (c.due for c in app.scheduled.calls)
            assert sent + CALLBACK_DELAY - 1 <= due.timestamp() <= sent + CALLBACK_DELAY + 2
            shown = text(app, "#scheduled").splitlines()
            assert shown[1].startswith(f"  {due.astimezone():%a %d %b %H:%M}  #{first.lead_id}  ")
            assert shown[1].endswith(f"{first.number}  {COMMENT}")
            await until(pilot, "the pause", lambda: state(app) == "paused", 15)
            assert "paused (coffee)" in text(app, "#top")
            await pilot.click("#resume")
            await until(pilot, "back from the pause", lambda: state(app) != "paused", 15)

            # Other customers meanwhile (the first of them rescheduled to myself tomorrow); the
            # callback comes back to this agent when due.
            tomorrow: int | None = None
            while True:
                await next_screen(pilot, app, app.screens_seen)
                screen = app.screen_pop
                assert screen is not None
                if screen.lead_id == first.lead_id:
                    break
                assert time.time() < sent + CALLBACK_DELAY + 60, "the callback never came"
                if tomorrow is None:
                    tomorrow = screen.lead_id
                    await reschedule_to_myself(pilot, app, "+1d", TOMORROW_COMMENT)
                    held = lambda lead=tomorrow: app.scheduled.holds(lead)  # noqa: E731
                    await until(pilot, "the list", held, 15)
                    later = app.scheduled.calls[-1]  # tomorrow comes after the callback
                    assert (later.lead_id, later.comment) == (tomorrow, TOMORROW_COMMENT)
                else:
                    await close_call(pilot, app, "not_interested")
            assert tomorrow is not None, "the callback came before any other customer"
            came = time.time()
            assert sent + CALLBACK_DELAY - 2 <= came <= sent + CALLBACK_DELAY + 60
            assert screen.callback_comment == COMMENT
            assert COMMENT in text(app, "#callback")
            assert not app.query_one("#callback").has_class("empty")
            assert any("asked about prices" in row.note for row in screen.history)
            # Delivered, so no longer scheduled: the panel asked dialerd again.
            await until(pilot, "the list", lambda: not app.scheduled.holds(first.lead_id), 15)
            assert COMMENT not in text(app, "#scheduled")
            assert consoles_list(app) == await daemons_list(daemon)
            print(
                f"callback popped {came - sent:.1f}s after the disposition (due {CALLBACK_DELAY}s)"
            )

            # An appointment: its flags ask for a detail note and the customer's e-mail.
            await type_into(pilot, "#note", "agreed to a visit")
            await pilot.click("#hangup")
            await until(pilot, "wrap-up", lambda: state(app) == "wrapup", 15)
            await click_code(pilot, "appointment")
            await type_into(pilot, "#detail", "Tuesday 10:00 at home")
            await type_into(pilot, "#email", "customer@example.org")
            await pilot.click("#reg-0-2")
            await pilot.click("#reg-1-0")
            shot = app.save_screenshot("console.svg", os.environ.get(SCREENSHOT_DIR, str(tmp_path)))
            assert shot.endswith("console.svg")
            replies = len(app.replies)
            await pilot.click("#send")
            await until(pilot, "the disposition reply", lambda: len(app.replies) > replies, 15)
            assert app.replies[-1][1]["ok"], app.replies[-1]
            await pilot.click("#logout")
            await until(pilot, "logged out", lambda: state(app) == "logged_out", 15)
            left = consoles_list(app)
            left_text = text(app, "#scheduled")
        assert [lead for lead, *_ in left] == [tomorrow]
        assert TOMORROW_COMMENT in left_text

        # A fresh console (new app, new MQTT session) for the same agent: the same list,
        # asked for when dialerd is seen online, again at login and on F5.
        fresh = console(mqtt_broker)
        async with fresh.run_test(size=(150, 44)) as pilot:
            await until(pilot, "the list", lambda: fresh.scheduled_answers >= 1, 15)
            assert consoles_list(fresh) == left == await daemons_list(daemon)
            assert fresh.screen_pop is None  # logged out: no call to show
            assert text(fresh, "#scheduled") == left_text
            answers = fresh.scheduled_answers
            await pilot.click("#login")
            await until(pilot, "the list", lambda: fresh.scheduled_answers > answers, 15)
            assert consoles_list(fresh) == left
            await until(pilot, "ready", lambda: state(fresh) == "ready", 15)
            await pilot.press("f5")
            await until(pilot, "the list", lambda: fresh.scheduled_answers > answers + 1, 15)
            assert text(fresh, "#scheduled") == left_text
            await pilot.click("#logout")
            await until(pilot, "logged out", lambda: state(fresh) == "logged_out", 15)


async def test_console_rides_out_a_broker_restart() -> None:
    """The broker goes away mid-shift and comes back: one status line while it is gone,
    then the console is subscribed again by itself (retained state shown, commands sent)."""
    port = int(os.environ.get("DIALERD_TEST_MQTT_PORT", 21883)) + 1
    broker = await asyncio.to_thread(Mosquitto, port)
    app = ConsoleApp(LinkSettings(broker.host, port, "1001", ("demo",)))
    app.link.max_backoff = 1.0  # keep the test short; the shipped ceiling is 15 s
    try:
        async with app.run_test(size=(150, 44)) as pilot:
            await until(pilot, "the connection", lambda: app.link.connected, 10)
            await asyncio.to_thread(broker.stop)
            await until(pilot, "the outage", lambda: not app.link.connected, 10)
            await until(pilot, "the retry line", lambda: "retrying" in text(app, "#status"), 10)
            assert "broker down" in text(app, "#top")
            await pilot.click("#login")
            assert "not connected to the broker" in text(app, "#status")

            broker = await asyncio.to_thread(Mosquitto, port)
            await until(pilot, "the reconnection", lambda: app.link.connected, 15)
            async with aiomqtt.Client(broker.host, port) as daemon_side:
                await daemon_side.subscribe("dialerd/agents/1001/cmd", qos=1)
                state = json.dumps({"schema": 1, "state": "logged_out", "since": time.time()})
                await daemon_side.publish(
                    "dialerd/agents/1001/state", state.encode(), qos=1, retain=True
                )
                await until(pilot, "the state", lambda: bool(app.agent_state), 10)
                await pilot.click("#login")
                async with asyncio.timeout(10):
                    command = json.loads((await anext(daemon_side.messages)).payload)
                    while command["command"] == "scheduled":  # the panel's own request
                        command = json.loads((await anext(daemon_side.messages)).payload)
            assert command["command"] == "login"
            assert command["campaigns"] == ["demo"]
    finally:
        await asyncio.to_thread(broker.stop)


async def test_preview_agent_dials_the_lead_on_screen(
    sandbox: Sandbox, mqtt_broker: Broker, tmp_path: Path
) -> None:
    """R-DL-1 preview: the lead pops up before any call; the console's Dial places it, and
    the note typed while previewing survives the call's own screen-pop."""
    # One lead: with a second, the next preview would hold the agent reserved until it is
    # dialled or skipped, which this test does not need.
    async with floor(sandbox, mqtt_broker, tmp_path, mode="preview", leads=1) as (numbers, _):
        app = console(mqtt_broker)
        async with app.run_test(size=(150, 44)) as pilot:
            await until(pilot, "dialerd online", lambda: bool(app.daemon_online), 15)
            await pilot.click("#login")
            await until(pilot, "the preview", lambda: app.screens_seen > 0, 30)
            await until(pilot, "reserved", lambda: state(app) == "reserved", 10)
            shown = app.screen_pop
            assert shown is not None and shown.preview and shown.number in numbers
            assert "press Dial" in text(app, "#status")
            assert not app.query_one("#dial", Button).disabled
            await type_into(pilot, "#note", "read the file first")

            await pilot.click("#dial")
            await until(pilot, "the customer", lambda: state(app) == "talking", 30)
            assert app.screen_pop is not None and not app.screen_pop.preview
            assert app.screen_pop.lead_id == shown.lead_id
            assert app.query_one("#note", Input).value == "read the file first"
            assert app.query_one("#dial", Button).disabled
            await close_call(pilot, app, "order")
            assert app.screens_seen >= 2
            await pilot.click("#logout")
            await until(pilot, "logged out", lambda: state(app) == "logged_out", 15)
