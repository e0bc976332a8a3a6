"""`dialerd console`: the agent's screen in a terminal (Textual), over MQTT only.

Top to bottom: who and what state (live from the retained state topic), the campaign's
wallboard line, the agent controls (login, pause with a reason, resume, logout, hang up),
then the call: the screen-pop on the left (number, lead fields, scores, funnel phase, the
callback comment highlighted, contact history) and the wrap-up on the right (result-code
buttons made from the screen-pop, the detail/e-mail fields their flags ask for, forced
registration, the call note, reschedule, voicemail, send). One status line at the bottom
carries every reply, refusal and connection problem.

The widgets only hold input; what is sent is built and checked by `dialerd.console.model`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.message import Message
from textual.widget import Widget
from textual.widgets import (
    Button,
    Checkbox,
    DataTable,
    Input,
    Label,
    RadioButton,
    RadioSet,
    Static,
)

from dialerd.console.link import Link, LinkSettings, LinkStatus, NotConnectedError
from dialerd.console.model import (
    ConsoleInputError,
    DispositionForm,
    RescheduleForm,
    ScheduledList,
    ScreenPop,
    disposition_payload,
    login_payload,
    parse_screen,
    pause_payload,
    refreshes_scheduled,
    reply_line,
    schema_warning,
    state_line,
    stats_line,
    voicemail_payload,
)

HISTORY_COLUMNS = ("when", "agent", "result", "outcome", "note", "e-mail")
TIME_HINT = "HH:MM or +40s"

log = logging.getLogger(__name__)


@dataclass
class Incoming(Message):
    """A message from dialerd, moved onto the app's queue (handled in order)."""

    topic: str
    body: dict[str, Any]


@dataclass
class LinkChanged(Message):
    status: LinkStatus


@dataclass(frozen=True)
class Sent:
    """A command awaiting its reply, with the call it was about (if any)."""

    body: dict[str, Any]
    screen: ScreenPop | None


class ConsoleApp(App[None]):
    """One agent's console; `link` is created here so tests drive the real thing."""

    TITLE = "dialerd console"
    CSS = """
    Screen { layout: vertical; }
    #top { height: 1; background: $primary; color: $text; padding: 0 1; }
    #stats { height: 1; padding: 0 1; color: $text-muted; }
    #controls { height: 1; margin: 1 0 0 0; }
    #controls Button { margin: 0 1 0 0; }
    #controls Input { width: 24; margin: 0 1 0 0; }
    #main { height: 1fr; }
    #call { width: 1fr; padding: 0 1; }
    #number { text-style: bold; color: $accent; }
    #callback { background: $warning; color: $background; text-style: bold; padding: 0 1; }
    #callback.empty { display: none; }
    #history { height: 1fr; margin: 1 0 0 0; }
    #scheduled { height: auto; max-height: 8; margin: 1 0 0 0; color: $text-muted; }
    #wrapup { width: 66; border-left: solid $primary; padding: 0 1; }
    #codes { grid-size: 2; grid-gutter: 0 1; height: auto; grid-rows: 1; }
    #codes Button { width: 100%; }
    .hidden { display: none; }
    .heading { text-style: bold; margin: 1 0 0 0; }
    #wrapup Input { margin: 1 0 0 0; }
    #wrapup RadioSet { height: auto; width: 100%; border: none; padding: 0; }
    #wrapup Checkbox { margin: 0; }
    #registration { height: auto; }
    .when { height: 1; margin: 1 0 0 0; }
    #wrapup .when Input { width: 1fr; margin: 0 1 0 0; }
    #actions { height: 1; margin: 1 0 0 0; }
    #actions Button { margin: 0 1 0 0; }
    #status { height: 1; padding: 0 1; background: $panel; }
    #status.error { background: $error; color: $text; }
    #status.ok { background: $success-darken-2; color: $text; }
    """
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("ctrl+q", "quit", "quit", priority=True),
        Binding("f2", "hangup", "hang up"),
        Binding("f9", "send", "send"),
        Binding("f5", "refresh_scheduled", "refresh my callbacks"),
    ]
    scheduled_timeout = 10.0
    """Seconds a `scheduled` request waits for dialerd before the panel says so."""

    def __init__(self, settings: LinkSettings) -> None:
        super().__init__()
        self.settings = settings
        self.link = Link(settings, self._incoming, self._link_changed)
        self.agent_state: dict[str, Any] = {}
        self.daemon_online: bool | None = None
        self.link_status = LinkStatus(False, f"connecting to {settings.host}:{settings.port}")
        self.screen_pop: ScreenPop | None = None
        self.closed = False
        """The screen-pop on display was dispositioned; kept for reference until the next."""
        self.selected_code: str | None = None
        self.pending: dict[str, Sent] = {}
        """Request id -> what was sent, to say which command a reply answers."""
        self.scheduled = ScheduledList()
        """R-CB-1: the agent's scheduled calls as dialerd last sent them."""
        self.scheduled_answers = 0
        """Answers to `scheduled` requests since start: lets a caller wait for the next."""
        self.replies: list[tuple[str, dict[str, Any]]] = []
        """(verb, reply) for the agent's own commands as received (not the background
        `scheduled` requests): the console's own log, read by tests."""
        self.stats: dict[str, str] = {}
        self.screens_seen = 0
        """Screen-pops received since start: lets a caller wait for the next one."""

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Static(id="top")
        yield Static("waiting for the wallboard...", id="stats")
        with Horizontal(id="controls"):
            yield Button("Login", id="login", compact=True, variant="success")
            yield Input(placeholder="pause reason", id="pause-reason", compact=True)
            yield Button("Pause", id="pause", compact=True, variant="warning")
            yield Button("Resume", id="resume", compact=True, variant="primary")
            yield Button("Dial", id="dial", compact=True, variant="success")
            yield Button("Skip", id="skip", compact=True)
            yield Button("Hang up (F2)", id="hangup", compact=True, variant="error")
            yield Button("Logout", id="logout", compact=True)
        with Horizontal(id="main"):
            with Vertical(id="call"):
                yield Static("no call", id="number")
                yield Static("", id="summary")
                yield Static("", id="callback", classes="empty")
                yield Static("", id="fields")
                yield DataTable(id="history", zebra_stripes=True, cursor_type="row")
                yield Static(self.scheduled.text(), id="scheduled")
            with VerticalScroll(id="wrapup"):
                yield Label("Result code", classes="heading")
                yield Grid(id="codes")
                yield Input(placeholder="detail note", id="detail", classes="hidden", compact=True)
                yield Input(
                    placeholder="customer e-mail", id="email", classes="hidden", compact=True
                )
                yield Label("Registration", id="registration-heading", classes="heading")
                yield Vertical(id="registration")
                yield Label("Call note", classes="heading")
                yield Input(
                    placeholder="typed during the call, sent with the code", id="note", compact=True
                )
                yield Checkbox("Reschedule", id="reschedule", compact=True)
                with Horizontal(classes="when"):
                    yield Input(placeholder="YYYY-MM-DD", id="when-date", compact=True)
                    yield Input(placeholder=TIME_HINT, id="when-time", compact=True)
                with RadioSet(id="resched-to"):
                    yield RadioButton("to myself", id="to-myself", value=True)
                    yield RadioButton("to any agent", id="to-any")
                yield Input(
                    placeholder="comment (required to reschedule)",
                    id="resched-comment",
                    compact=True,
                )
                with Horizontal(id="actions"):
                    yield Button("Send (F9)", id="send", compact=True, variant="success")
                    yield Button("Voicemail", id="voicemail", compact=True, variant="warning")
        yield Static("", id="status")

    def on_mount(self) -> None:
        # Held, not queried: timers and link messages may still fire while the app closes
        # and its screen is already gone; updating a detached widget is harmless.
        self._top = self.query_one("#top", Static)
        self._status = self.query_one("#status", Static)
        self._stats = self.query_one("#stats", Static)
        self._scheduled = self.query_one("#scheduled", Static)
        self.query_one("#history", DataTable).add_columns(*HISTORY_COLUMNS)
        self.run_worker(self.link.run(), name="mqtt", group="mqtt", exit_on_error=False)
        self.set_interval(1.0, self._refresh_top)
        self._refresh_top()
        self._refresh_controls()

    # ------------------------------------------------------------------ link callbacks
    def _incoming(self, topic: str, body: dict[str, Any]) -> None:
        self.post_message(Incoming(topic, body))

    def _link_changed(self, status: LinkStatus) -> None:
        self.post_message(LinkChanged(status))

    def on_link_changed(self, message: LinkChanged) -> None:
        self.link_status = message.status
        if not message.status.connected:
            self.daemon_online = None  # unknown until the retained status arrives again
        self.set_status(message.status.text, ok=None if message.status.connected else False)
        self._refresh_top()

    async def on_incoming(self, message: Incoming) -> None:
        try:
            await self._handle(message.topic, message.body)
        except NoMatches:  # arrived while the app was closing: nothing left to show it on
            log.debug("dropped %s: the screen is gone", message.topic)

    async def _handle(self, topic: str, body: dict[str, Any]) -> None:
        warning = schema_warning(body)
        if warning:
            self.set_status(warning, ok=False)
        s = self.settings
        if topic == s.topic("status"):
            was_offline = self.daemon_online is False
            came_online = self.daemon_online is not True and bool(body.get("online"))
            self.daemon_online = bool(body.get("online"))
            if came_online:  # console start, broker back, dialerd back: the list may differ
                await self.request_scheduled()
                await self.request_screen()
            if not self.daemon_online:
                self.set_status(
                    "dialerd is offline: commands get no answer until it is back", ok=False
                )
            elif was_offline:
                self.set_status("dialerd is back online", ok=True)
            self._refresh_top()
        elif topic == f"{s.agent_topic}/state":
            self.agent_state = body
            self._refresh_top()
            self._refresh_controls()
        elif topic == f"{s.agent_topic}/screen":
            await self.show_screen(parse_screen(body))
        elif topic == f"{s.agent_topic}/reply":
            await self._on_reply(body)
        elif topic.endswith("/stats"):
            campaign = topic.split("/")[-2]
            self.stats[campaign] = stats_line(campaign, body)
            self._stats.update("   ".join(self.stats.values()))

    async def _on_reply(self, body: dict[str, Any]) -> None:
        sent = self.pending.pop(str(body.get("id")), None)
        verb = str(sent.body["command"]) if sent else "dialerd"
        if verb == "scheduled":  # the panel's own request: the status line stays the agent's
            self.scheduled_answers += 1
            self._show_scheduled(self.scheduled.answered(body))
            return
        if verb == "screen":  # asked at start; a screen-pop that came meanwhile is newer
            missed = body.get("screen")
            if body.get("ok") and isinstance(missed, dict) and self.screen_pop is None:
                await self.show_screen(parse_screen(missed))
            return
        self.replies.append((verb, body))
        ok, text = reply_line(verb, body)
        self.set_status(text, ok=ok)
        screen = sent.screen if sent else None
        if ok and verb in ("disposition", "skip") and screen and screen is self.screen_pop:
            self._call_closed("closed" if verb == "disposition" else "skipped")
        if refreshes_scheduled(verb, ok):
            await self.request_scheduled()

    async def request_scheduled(self) -> None:
        """Ask dialerd for the agent's scheduled calls (R-CB-1); the answer, a refusal or
        its absence after `scheduled_timeout` lands in the panel as one line."""
        try:
            request_id = await self.link.command({"command": "scheduled"})
        except NotConnectedError as exc:
            self._show_scheduled(self.scheduled.failed(str(exc)))
            return
        self.pending[request_id] = Sent({"command": "scheduled"}, None)
        self.set_timer(self.scheduled_timeout, partial(self._scheduled_unanswered, request_id))

    async def request_screen(self) -> None:
        """Ask dialerd for the call on the agent's screen: a console started mid-call would
        otherwise show nothing until the next customer (screen-pops are not retained)."""
        with contextlib.suppress(NotConnectedError):  # the next "online" asks again
            request_id = await self.link.command({"command": "screen"})
            self.pending[request_id] = Sent({"command": "screen"}, None)

    def _scheduled_unanswered(self, request_id: str) -> None:
        # Left pending: an answer arriving late is still the newest list and is shown.
        if request_id in self.pending:
            wait = f"{self.scheduled_timeout:g} s"
            self._show_scheduled(self.scheduled.failed(f"no answer from dialerd within {wait}"))

    def _show_scheduled(self, scheduled: ScheduledList) -> None:
        self.scheduled = scheduled
        self._scheduled.update(scheduled.text())

    # ------------------------------------------------------------------ rendering
    def _refresh_top(self) -> None:
        s = self.settings
        if not self.link_status.connected:
            link = ("broker down", "bold red")
        elif self.daemon_online is False:
            link = ("dialerd OFFLINE", "bold red")
        else:
            link = ("dialerd online" if self.daemon_online else "dialerd ?", "")
        state = state_line(self.agent_state, time.time()) if self.agent_state else "unknown"
        self._top.update(
            Text.assemble(
                "agent ",
                (s.agent, "bold"),
                f"  |  {', '.join(s.campaigns)}  |  state: ",
                (state, "bold"),
                "  |  ",
                link,
            )
        )

    def _refresh_controls(self) -> None:
        state = str(self.agent_state.get("state") or "logged_out")
        previewing = (
            state == "reserved"
            and self.screen_pop is not None
            and self.screen_pop.preview
            and not self.closed
        )
        enabled = {
            "login": state == "logged_out",
            "logout": state != "logged_out",
            "pause": state in ("ready", "talking", "wrapup", "reserved"),
            "resume": state == "paused",
            "dial": previewing,
            "skip": previewing,
            "hangup": state == "talking",
            "send": state == "wrapup" and self.screen_pop is not None and not self.closed,
            "voicemail": state == "wrapup" and self.screen_pop is not None and not self.closed,
        }
        for button_id, on_ in enabled.items():
            self.query_one(f"#{button_id}", Button).disabled = not on_

    def set_status(self, text: str, *, ok: bool | None) -> None:
        status = self._status
        status.update(text)
        status.set_class(ok is False, "error")
        status.set_class(ok is True, "ok")

    async def show_screen(self, screen: ScreenPop) -> None:
        """A new customer: the left pane shows them, the wrap-up is reset for them.

        The same attempt popping up again (a previewed lead, now dialled and answered)
        refreshes the left pane only: what the agent typed while previewing stays.
        """
        same_call = (
            self.screen_pop is not None
            and not self.closed
            and bool(screen.attempt)
            and screen.attempt == self.screen_pop.attempt
        )
        self.screen_pop, self.closed = screen, False
        self.screens_seen += 1
        if not same_call and (self.scheduled.holds(screen.lead_id) or screen.callback_comment):
            await self.request_scheduled()  # a callback was delivered: no longer pending
        self.query_one("#number", Static).update(screen.title or "(no number)")
        self.query_one("#summary", Static).update(screen.summary())
        callback = self.query_one("#callback", Static)
        callback.update(f"CALLBACK: {screen.callback_comment}" if screen.callback_comment else "")
        callback.set_class(not screen.callback_comment, "empty")
        self.query_one("#fields", Static).update(
            "\n".join(f"[b]{k}[/]: {v}" for k, v in screen.fields.items()) or "(no fields)"
        )
        table = self.query_one("#history", DataTable)
        table.clear()
        for row in screen.history:
            table.add_row(row.when, row.agent, row.result, row.outcome, row.note, row.email)
        self._refresh_controls()
        if screen.preview:
            self.set_status(f"preview: {screen.number}; press Dial to call", ok=None)
        else:
            self.set_status(f"call with {screen.number} (attempt {screen.attempt})", ok=None)
        if same_call:
            return
        self.selected_code = None
        codes = self.query_one("#codes", Grid)
        await codes.remove_children()
        await codes.mount_all(
            Button(c.label, id=f"code-{i}", name=c.code, compact=True, classes="code")
            for i, c in enumerate(screen.agent_codes)
        )
        await self._build_registration(screen)
        for input_id in ("note", "detail", "email", "resched-comment", "when-time"):
            self.query_one(f"#{input_id}", Input).value = ""
        self.query_one("#when-date", Input).value = datetime.now().astimezone().date().isoformat()
        self.query_one("#reschedule", Checkbox).value = False
        self.query_one("#to-myself", RadioButton).value = True
        self._show_code_fields()
        self.query_one("#note", Input).focus()  # the agent types the call note at once

    async def _build_registration(self, screen: ScreenPop) -> None:
        box = self.query_one("#registration", Vertical)
        await box.remove_children()
        widgets: list[Widget] = []
        for i, category in enumerate(screen.categories):
            kind = "any of" if category.multi else "one of"
            widgets.append(Label(f"{category.name} ({kind})"))
            if category.multi:
                widgets.extend(
                    Checkbox(t, id=f"reg-{i}-{j}", compact=True)
                    for j, t in enumerate(category.topics)
                )
            else:
                widgets.append(
                    RadioSet(
                        *(RadioButton(t, id=f"reg-{i}-{j}") for j, t in enumerate(category.topics)),
                        id=f"reg-{i}",
                    )
                )
        await box.mount_all(widgets)
        heading = "Registration (required)" if screen.registration_forced else "Registration"
        self.query_one("#registration-heading", Label).update(heading)

    def _show_code_fields(self) -> None:
        code = None
        if self.screen_pop is not None and self.selected_code is not None:
            code = self.screen_pop.code(self.selected_code)
        for button in self.query(".code").results(Button):
            button.variant = "primary" if button.name == self.selected_code else "default"
        self.query_one("#detail", Input).set_class(not (code and code.detail_screen), "hidden")
        self.query_one("#email", Input).set_class(not (code and code.require_email), "hidden")
        # R-RC-4: without a reschedule the code's own delay applies; say which.
        minutes = code.callback_minutes if code else None
        self.query_one("#when-time", Input).placeholder = TIME_HINT + (
            f" (else in {minutes} min)" if minutes else ""
        )

    def _call_closed(self, how: str) -> None:
        self.closed = True
        self.selected_code = None
        self.query_one("#note", Input).value = ""
        self.query_one("#summary", Static).update(
            (self.screen_pop.summary() if self.screen_pop else "") + f"  |  {how}"
        )
        self._show_code_fields()
        self._refresh_controls()

    # ------------------------------------------------------------------ reading the form
    def registration(self) -> dict[str, list[str]]:
        chosen: dict[str, list[str]] = {}
        if self.screen_pop is None:
            return chosen
        for i, category in enumerate(self.screen_pop.categories):
            if category.multi:
                picked = [
                    t
                    for j, t in enumerate(category.topics)
                    if self.query_one(f"#reg-{i}-{j}", Checkbox).value
                ]
            else:
                index = self.query_one(f"#reg-{i}", RadioSet).pressed_index
                picked = [category.topics[index]] if index >= 0 else []
            if picked:
                chosen[category.name] = picked
        return chosen

    def form(self) -> DispositionForm:
        def value(widget_id: str) -> str:
            return self.query_one(f"#{widget_id}", Input).value

        return DispositionForm(
            result_code=self.selected_code,
            note=value("note"),
            detail_note=value("detail"),
            email_to=value("email"),
            registration=self.registration(),
            reschedule=RescheduleForm(
                enabled=self.query_one("#reschedule", Checkbox).value,
                day=value("when-date"),
                clock=value("when-time"),
                to="any" if self.query_one("#to-any", RadioButton).value else "myself",
                comment=value("resched-comment"),
            ),
        )

    # ------------------------------------------------------------------ actions
    async def send(self, body: dict[str, Any]) -> None:
        verb = str(body["command"])
        try:
            request_id = await self.link.command(body)
        except NotConnectedError as exc:
            self.set_status(f"{verb}: {exc}", ok=False)
            return
        self.pending[request_id] = Sent(body, self.screen_pop)
        self.set_status(f"{verb}: sent, waiting for dialerd...", ok=None)

    async def action_refresh_scheduled(self) -> None:
        await self.request_scheduled()

    @on(Button.Pressed, ".code")
    def pick_code(self, event: Button.Pressed) -> None:
        code = event.button.name
        self.selected_code = None if code == self.selected_code else code
        self._show_code_fields()

    @on(Button.Pressed, "#login")
    async def login(self) -> None:
        await self.send(login_payload(self.settings.campaigns))

    @on(Button.Pressed, "#logout")
    async def logout(self) -> None:
        await self.send({"command": "logout"})

    @on(Button.Pressed, "#pause")
    async def pause(self) -> None:
        await self.send(pause_payload(self.query_one("#pause-reason", Input).value))

    @on(Button.Pressed, "#resume")
    async def resume(self) -> None:
        await self.send({"command": "resume"})

    @on(Button.Pressed, "#dial")
    async def dial(self) -> None:
        """Preview mode (R-DL-1): dial the lead on screen."""
        await self.send({"command": "dial"})

    @on(Button.Pressed, "#skip")
    async def skip(self) -> None:
        """Preview mode: give the lead on screen back undialled and be shown the next."""
        await self.send({"command": "skip"})

    @on(Button.Pressed, "#hangup")
    async def action_hangup(self) -> None:
        await self.send({"command": "hangup"})

    @on(Button.Pressed, "#send")
    async def action_send(self) -> None:
        if self.screen_pop is None or self.closed:
            self.set_status("no call to close", ok=False)
            return
        try:
            body = disposition_payload(self.screen_pop, self.form(), datetime.now().astimezone())
        except ConsoleInputError as exc:
            self.set_status("not sent: " + "; ".join(exc.problems), ok=False)
            return
        await self.send(body)

    @on(Button.Pressed, "#voicemail")
    async def voicemail(self) -> None:
        await self.send(voicemail_payload(self.query_one("#note", Input).value))


def run_console(settings: LinkSettings) -> None:
    """Run the console in this terminal until the agent quits (ctrl+q)."""
    ConsoleApp(settings).run()
