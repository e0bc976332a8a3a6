"""The console app headless, without a broker: rendering and failures an agent can see.

Messages are handed to the app exactly as its MQTT link would (`Incoming`); the link itself
keeps failing to connect, which is the "broker down" case under test.
"""

from __future__ import annotations

import asyncio
import socket
import time

from textual.widgets import Button, Input, Static

from dialerd.console.app import ConsoleApp, Incoming, LinkChanged
from dialerd.console.link import LinkSettings, LinkStatus, NotConnectedError
from tests.unit.test_console_model import screen_body


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def text(app: ConsoleApp, selector: str) -> str:
    return str(app.query_one(selector, Static).content)


def stand_in_link(app: ConsoleApp) -> list[dict[str, object]]:
    """A link that says "connected" and records each command sent (ids `<verb>-<n>`), so
    the app's side of a conversation is tested without a broker."""
    sent: list[dict[str, object]] = []

    async def connected() -> None:
        app.post_message(LinkChanged(LinkStatus(True, "connected")))
        await asyncio.Event().wait()

    async def command(body: dict[str, object]) -> str:
        sent.append(body)
        return f"{body['command']}-{len(sent)}"

    app.link.run = connected  # type: ignore[method-assign]
    app.link.command = command  # type: ignore[method-assign]
    return sent


async def test_broker_down_is_one_line_and_a_retry_while_the_screen_still_works() -> None:
    app = ConsoleApp(LinkSettings("127.0.0.1", free_port(), "1001", ("demo",)))
    async with app.run_test(size=(150, 44)) as pilot:
        await pilot.pause(0.8)
        status = text(app, "#status")
        assert "unreachable" in status and "retrying in" in status
        assert "\n" not in status
        assert "broker down" in text(app, "#top")
        app.workers.cancel_group(app, "mqtt")  # no more retry lines racing the assertions

        topic = "dialerd/agents/1001"
        app.post_message(Incoming("dialerd/status", {"online": False}))
        app.post_message(Incoming(f"{topic}/state", {"state": "wrapup", "since": time.time()}))
        app.post_message(Incoming(f"{topic}/screen", screen_body()))
        await pilot.pause(0.3)
        assert "+31611030000" in text(app, "#number")
        assert "wants the offer explained" in text(app, "#callback")
        assert "city" in text(app, "#fields")
        assert app.query_one("#history").row_count == 2  # type: ignore[attr-defined]
        codes = {b.name: b for b in app.query(".code").results(Button)}
        assert list(codes) == ["not_cp", "callback", "appointment", "order", "wrong_number"]

        # The code's flags decide which fields the agent sees (R-RC-5).
        await pilot.click(f"#{codes['appointment'].id}")
        assert not app.query_one("#email", Input).has_class("hidden")
        assert not app.query_one("#detail", Input).has_class("hidden")
        assert codes["appointment"].variant == "primary"
        assert app.query_one("#when-time", Input).placeholder == "HH:MM or +40s"
        await pilot.click(f"#{codes['callback'].id}")
        assert app.query_one("#when-time", Input).placeholder.endswith("(else in 180 min)")
        await pilot.click(f"#{codes['order'].id}")
        assert app.query_one("#email", Input).has_class("hidden")
        assert app.query_one("#detail", Input).has_class("hidden")

        # A complete disposition meets the dead broker: said, not queued, not a traceback.
        await pilot.click("#reg-0-1")
        await pilot.click("#send")
        assert "not connected to the broker" in text(app, "#status")
        assert app.query_one("#status").has_class("error")

        app.post_message(Incoming("dialerd/status", {"online": True}))
        app.post_message(Incoming(f"{topic}/state", {"state": "logged_out"}))
        await pilot.pause(0.2)
        assert not app.query_one("#login", Button).disabled
        assert app.query_one("#hangup", Button).disabled


async def test_dialerd_offline_is_shown() -> None:
    """The broker is up (the link says so) but dialerd's last will says it is gone."""
    app = ConsoleApp(LinkSettings("127.0.0.1", free_port(), "1001", ("demo",)))

    async def connected() -> None:
        app.post_message(LinkChanged(LinkStatus(True, "connected")))
        await asyncio.Event().wait()

    app.link.run = connected  # type: ignore[method-assign]
    async with app.run_test(size=(150, 44)) as pilot:
        await pilot.pause(0.2)
        assert "dialerd ?" in text(app, "#top")
        app.post_message(Incoming("dialerd/status", {"schema": 1, "online": False}))
        await pilot.pause(0.2)
        assert "dialerd OFFLINE" in text(app, "#top")
        assert "dialerd is offline" in text(app, "#status")
        app.post_message(Incoming("dialerd/status", {"schema": 1, "online": True}))
        await pilot.pause(0.2)
        assert "dialerd online" in text(app, "#top")
        assert "back online" in text(app, "#status")


async def test_scheduled_calls_panel_asks_dialerd_and_says_when_it_cannot() -> None:
    """R-CB-1: the panel shows dialerd's list, asked for when dialerd comes online, after a
    login or disposition, on a callback's screen-pop and on F5; no answer, a refusal or a
    dead broker is one line in the panel; the status line stays the agent's."""
    app = ConsoleApp(LinkSettings("127.0.0.1", free_port(), "1001", ("demo",)))
    app.scheduled_timeout = 0.3
    sent = stand_in_link(app)
    topic = "dialerd/agents/1001"
    async with app.run_test(size=(150, 44)) as pilot:
        await pilot.pause(0.2)
        assert text(app, "#scheduled") == "My callbacks: waiting for dialerd..."
        app.post_message(Incoming("dialerd/status", {"schema": 1, "online": True}))
        await pilot.pause(0.6)
        assert sent == [{"command": "scheduled"}, {"command": "screen"}]
        assert text(app, "#scheduled") == (
            "My callbacks: no answer from dialerd within 0.3 s (F5 retries)"
        )
        assert app.scheduled_answers == 0

        # The late answer is still the newest list.
        app.set_status("disposition: ok", ok=True)
        due = time.time() + 3600
        row = {"lead": 7, "number": "+31611030000", "due_at": due, "comment": "after lunch"}
        app.post_message(
            Incoming(f"{topic}/reply", {"id": "scheduled-1", "ok": True, "scheduled": [row]})
        )
        await pilot.pause(0.2)
        assert app.scheduled_answers == 1
        lines = text(app, "#scheduled").splitlines()
        assert lines[0] == "My callbacks (F5 refreshes):"
        assert lines[1].endswith("#7  +31611030000  after lunch")
        assert text(app, "#status") == "disposition: ok"  # not overwritten
        assert app.replies == []  # background answers are not the agent's replies

        await pilot.press("f5")
        await pilot.pause(0.1)
        assert len(sent) == 3
        refusal = {"id": "scheduled-3", "ok": False, "error": "store unavailable"}
        app.post_message(Incoming(f"{topic}/reply", refusal))
        await pilot.pause(0.2)
        assert text(app, "#scheduled").splitlines() == [
            "My callbacks: dialerd refused: store unavailable (F5 retries); as last shown:",
            lines[1],
        ]

        # A login accepted: asked again; the callback's lead popping up: asked again.
        await pilot.click("#login")
        assert sent[-1]["command"] == "login"
        app.post_message(Incoming(f"{topic}/reply", {"id": "login-4", "ok": True}))
        await pilot.pause(0.2)
        assert sent[-1] == {"command": "scheduled"} and len(sent) == 5
        app.post_message(Incoming(f"{topic}/reply", {"id": "scheduled-5", "ok": True}))
        await pilot.pause(0.2)
        assert text(app, "#scheduled") == "My callbacks: none scheduled (F5 refreshes)"
        app.post_message(Incoming(f"{topic}/screen", screen_body()))  # has a callback comment
        await pilot.pause(0.3)
        assert sent[-1] == {"command": "scheduled"} and len(sent) == 6

        # The broker gone: said in the panel, nothing raised.
        async def down(body: dict[str, object]) -> str:
            raise NotConnectedError("not connected to the broker; the command was not sent")

        app.link.command = down  # type: ignore[method-assign]
        await pilot.press("f5")
        await pilot.pause(0.1)
        assert text(app, "#scheduled").startswith("My callbacks: not connected to the broker")


async def test_preview_offers_dial_and_skip_and_a_skip_closes_the_screen() -> None:
    """R-DL-1 preview: the previewed lead can be dialled or skipped; a skip dialerd
    accepted marks the screen skipped and leaves nothing to press. A pushed (non-preview)
    call being connected offers neither."""
    app = ConsoleApp(LinkSettings("127.0.0.1", free_port(), "1001", ("demo",)))
    sent = stand_in_link(app)
    topic = "dialerd/agents/1001"

    def enabled(button: str) -> bool:
        return not app.query_one(f"#{button}", Button).disabled

    async with app.run_test(size=(150, 44)) as pilot:
        app.post_message(Incoming(f"{topic}/state", {"schema": 1, "state": "reserved"}))
        app.post_message(Incoming(f"{topic}/screen", screen_body()))
        await pilot.pause(0.3)
        assert not enabled("dial") and not enabled("skip"), "a pushed call is not a preview"

        app.post_message(Incoming(f"{topic}/screen", screen_body(attempt="p1", preview=True)))
        await pilot.pause(0.3)
        assert enabled("dial") and enabled("skip")
        await pilot.click("#skip")
        assert sent[-1] == {"command": "skip"}
        request = f"skip-{len(sent)}"
        reply = {"id": request, "ok": True, "state": "ready", "skipped": 7}
        app.post_message(Incoming(f"{topic}/reply", reply))
        app.post_message(Incoming(f"{topic}/state", {"schema": 1, "state": "ready"}))
        await pilot.pause(0.3)
        assert text(app, "#summary").endswith("|  skipped")
        assert not enabled("dial") and not enabled("skip")


async def test_a_console_started_mid_call_asks_for_the_screen_it_missed() -> None:
    """R-CB-7: screen-pops are events, not retained; the console asks dialerd for the
    call on screen when it sees dialerd online, and a screen-pop that arrived meanwhile
    (newer) is not replaced by the answer."""
    topic = "dialerd/agents/1001"
    for popped_meanwhile in (False, True):
        app = ConsoleApp(LinkSettings("127.0.0.1", free_port(), "1001", ("demo",)))
        sent = stand_in_link(app)
        async with app.run_test(size=(150, 44)) as pilot:
            app.post_message(Incoming("dialerd/status", {"schema": 1, "online": True}))
            await pilot.pause(0.3)
            assert sent == [{"command": "scheduled"}, {"command": "screen"}]
            if popped_meanwhile:
                app.post_message(Incoming(f"{topic}/screen", screen_body(attempt="c8")))
            missed = {"id": "screen-2", "ok": True, "screen": screen_body(attempt="c7")}
            app.post_message(Incoming(f"{topic}/reply", missed))
            await pilot.pause(0.3)
            assert app.screen_pop is not None
            assert app.screen_pop.attempt == ("c8" if popped_meanwhile else "c7")
            assert "+31611030000" in text(app, "#number")
            assert app.replies == []  # the console's own question, not the agent's
            assert "screen" not in text(app, "#status")
