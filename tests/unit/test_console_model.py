"""The console's pure parts: reading dialerd's payloads and building the agent's commands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from click.testing import CliRunner

from dialerd.cli import cli
from dialerd.console.link import LinkSettings, parse_broker, split_campaigns
from dialerd.console.model import (
    ConsoleInputError,
    DispositionForm,
    RegistrationCategory,
    RescheduleForm,
    ScheduledList,
    disposition_payload,
    parse_screen,
    parse_when,
    pause_payload,
    refreshes_scheduled,
    registration_problems,
    reply_line,
    reschedule_payload,
    schema_warning,
    state_line,
    stats_line,
    voicemail_payload,
)
from dialerd.daemon.app import _reschedule

AMSTERDAM = timezone(timedelta(hours=1))
NOW = datetime(2026, 11, 23, 21, 0, 0, tzinfo=AMSTERDAM)


def code(code: str, category: str, priority: str, **flags: Any) -> dict[str, Any]:
    return {
        "code": code,
        "label": code.replace("_", " ").title(),
        "category": category,
        "contact_priority": priority,
        "score": 1,
        "callback_minutes": flags.pop("callback_minutes", None),
        "detail_screen": False,
        "allow_reassign": False,
        "require_email": False,
        **flags,
    }


def screen_body(**overrides: Any) -> dict[str, Any]:
    """A screen-pop as the daemon publishes it (LeadFlow.screen_pop + attempt + comment)."""
    body: dict[str, Any] = {
        "schema": 1,
        "attempt": "c7n2rabc123",
        "lead_id": 7,
        "campaign": "demo",
        "number": "+31611030000",
        "tz": "Europe/Amsterdam",
        "fields": {"name": "Customer 1", "city": "Leeuwarden"},
        "status": "dialing",
        "phase": "qualified_prospect",
        "attempts": 1,
        "call_score": 6.0,
        "engagement_score": 40,
        "linked_agent": "1001",
        "callback": None,
        "history": [
            {
                "at": NOW.timestamp() - 3600,
                "ended_at": NOW.timestamp() - 3500,
                "agent": "1001",
                "result_code": "callback",
                "label": "Call back later",
                "outcome": "human",
                "score": 6,
                "note": "asked about prices",
                "recordings": [],
                "email_to": None,
                "email_status": None,
            },
            {"at": NOW.timestamp() - 7200, "agent": None, "result_code": "busy", "outcome": "busy"},
        ],
        "result_codes": [
            code("busy", "no-contact", "very_low"),
            code("voicemail", "no-contact", "very_low"),
            code("not_cp", "no-contact", "medium"),
            code("callback", "callback", "high", detail_screen=True, callback_minutes=180),
            code("appointment", "positive", "very_high", detail_screen=True, require_email=True),
            code("order", "positive", "very_high"),
            code("wrong_number", "discarded", "very_low"),
        ],
        "registration": {
            "forced": True,
            "categories": [
                {"name": "Reason for call", "multi": False, "topics": ["Information", "Sale"]},
                {"name": "Products", "multi": True, "topics": ["Energy", "Internet"]},
            ],
        },
        "callback_comment": "wants the offer explained",
    }
    body.update(overrides)
    return body


SCREEN = parse_screen(screen_body(), AMSTERDAM)
REGISTRATION = {"Reason for call": ["Sale"]}


# ------------------------------------------------------------------ reading the screen-pop
def test_screen_pop_shows_the_lead_its_scores_and_the_callback_comment() -> None:
    """R-AD-1/2/4, R-CB-7: what the left pane shows."""
    assert SCREEN.title == "+31611030000  Customer 1"
    assert SCREEN.summary() == (
        "phase qualified prospect  |  call score 6  |  engagement 40  |  attempt 2"
    )
    assert SCREEN.callback_comment == "wants the offer explained"
    assert SCREEN.fields == {"name": "Customer 1", "city": "Leeuwarden"}
    first, second = SCREEN.history
    assert (first.when, first.agent, first.result, first.note) == (
        "2026-11-23 20:00",
        "1001",
        "Call back later",
        "asked about prices",
    )
    assert (second.agent, second.result) == ("dialer", "busy")


def test_buttons_leave_out_the_dialers_nobody_reached_codes() -> None:
    """R-RC-2: busy/no answer/voicemail are the dialer's verdicts; voicemail has a button."""
    assert [c.code for c in SCREEN.agent_codes] == [
        "not_cp",
        "callback",
        "appointment",
        "order",
        "wrong_number",
    ]
    assert SCREEN.categories == (
        RegistrationCategory("Reason for call", False, ("Information", "Sale")),
        RegistrationCategory("Products", True, ("Energy", "Internet")),
    )
    assert SCREEN.registration_forced


def test_a_sparse_or_odd_screen_pop_still_renders() -> None:
    """A newer (or older) dialerd must not crash the console."""
    screen = parse_screen({"schema": 2, "number": "+3120", "history": ["junk"], "fields": []})
    assert screen.title == "+3120"
    assert screen.summary() == "phase ?  |  call score -  |  engagement -  |  attempt 1"
    assert screen.history == () and screen.result_codes == () and screen.categories == ()
    assert schema_warning({"schema": 2}) is not None
    assert schema_warning({"schema": 1}) is None


def test_state_stats_and_reply_lines() -> None:
    now = NOW.timestamp()
    paused = {"state": "paused", "since": now - 125, "pause_reason": "coffee"}
    assert state_line(paused, now) == "paused (coffee) for 2:05"
    assert state_line({"state": "logged_out"}, now) == "logged out"
    stats = {
        "dialed": 10,
        "human_answered": 4,
        "connected": 4,
        "abandoned": 0,
        "abandon_rate": 0.0,
        "in_flight": 1,
        "agents": {"talking": 1, "ready": 2},
    }
    assert stats_line("demo", stats) == (
        "demo: dialed 10, live 4, connected 4, abandoned 0 (0.0%), in flight 1"
        "  |  agents: ready 2, talking 1"
    )
    assert reply_line("pause", {"id": "p-1", "ok": True, "state": "paused", "schema": 1}) == (
        True,
        "pause: ok (state paused)",
    )
    assert reply_line("disposition", {"ok": False, "error": "registration is required"}) == (
        False,
        "disposition: registration is required",
    )


# ------------------------------------------------------------------ reschedule
@pytest.mark.parametrize(
    ("day", "clock", "expected"),
    [
        ("", "+40s", NOW + timedelta(seconds=40)),
        ("ignored", "+15m", NOW + timedelta(minutes=15)),
        ("", "+2h", NOW + timedelta(hours=2)),
        ("", "22:30", NOW.replace(hour=22, minute=30)),
        ("2026-11-24", "09:15:30", datetime(2026, 11, 24, 9, 15, 30, tzinfo=AMSTERDAM)),
    ],
)
def test_reschedule_time_is_absolute_or_relative_in_the_agents_zone(
    day: str, clock: str, expected: datetime
) -> None:
    assert parse_when(day, clock, NOW) == expected


@pytest.mark.parametrize(("day", "clock"), [("", "tomorrow"), ("24-11-2026", "10:00"), ("", "")])
def test_a_bad_reschedule_time_says_the_format(day: str, clock: str) -> None:
    with pytest.raises(ConsoleInputError, match=r"use (HH:MM|YYYY-MM-DD)"):
        parse_when(day, clock, NOW)


def test_reschedule_payload_is_what_the_daemon_parses() -> None:
    """R-REG-4b: ISO 8601 with the offset; the daemon's own parser agrees on the moment."""
    form = RescheduleForm(True, "2026-11-24", "10:00", "any", "after the meeting")
    body = reschedule_payload(form, NOW)
    assert body == {"when": "2026-11-24T10:00:00+01:00", "to": "any", "comment": form.comment}
    parsed = _reschedule(body)
    assert parsed is not None
    assert parsed.when == datetime(2026, 11, 24, 9, 0, tzinfo=UTC).timestamp()
    assert parsed.target.value == "any"
    assert parsed.comment == "after the meeting"


def test_reschedule_needs_a_comment_and_a_future_time() -> None:
    """All problems at once, so the agent fixes them in one go."""
    with pytest.raises(ConsoleInputError) as err:
        reschedule_payload(RescheduleForm(True, "2026-11-23", "20:00", "someone", "  "), NOW)
    assert err.value.problems == (
        "rescheduling needs a comment",
        "reschedule to 'myself' or 'any' agent",
        "the rescheduled time 2026-11-23 20:00:00 is not in the future",
    )


# ------------------------------------------------------------------ registration
@pytest.mark.parametrize(
    ("chosen", "forced", "problems"),
    [
        ({}, True, ["registration is required: pick a topic"]),
        ({"Reason for call": []}, True, ["registration is required: pick a topic"]),
        ({}, False, []),
        ({"Reason for call": ["Sale"]}, True, []),
        ({"Products": ["Energy", "Internet"]}, True, []),
        ({"Reason for call": ["Sale", "Information"]}, True, ["'Reason for call' takes one topic"]),
        ({"Colour": ["Red"]}, True, ["unknown registration category 'Colour'"]),
        ({"Products": ["Gas"]}, True, ["'Products': unknown topic"]),
    ],
)
def test_registration_is_checked_as_the_daemon_does(
    chosen: dict[str, list[str]], forced: bool, problems: list[str]
) -> None:
    """R-REG-1/2: radio categories take one topic, checkbox ones any; forced means some."""
    assert registration_problems(SCREEN.categories, chosen, forced) == problems


# ------------------------------------------------------------------ disposition
def test_disposition_with_registration_note_and_reschedule() -> None:
    form = DispositionForm(
        result_code="callback",
        note="asked about prices",
        detail_note="after 14:00",
        email_to="ignored@example.org",
        registration={**REGISTRATION, "Products": []},
        reschedule=RescheduleForm(True, "", "+40s", "myself", "after the meeting"),
    )
    assert disposition_payload(SCREEN, form, NOW) == {
        "command": "disposition",
        "result_code": "callback",
        "note": "asked about prices",
        "detail_note": "after 14:00",
        "registration": REGISTRATION,
        "reschedule": {
            "when": "2026-11-23T21:00:40+01:00",
            "to": "myself",
            "comment": "after the meeting",
        },
    }


def test_flags_decide_the_detail_note_and_the_email() -> None:
    """R-RC-5: a detail note only where the code has a detail screen; e-mail when required."""
    plain = DispositionForm("order", detail_note="stray text", registration=REGISTRATION)
    assert "detail_note" not in disposition_payload(SCREEN, plain, NOW)
    appointment = DispositionForm("appointment", registration=REGISTRATION)
    with pytest.raises(ConsoleInputError, match="needs the customer's e-mail"):
        disposition_payload(SCREEN, appointment, NOW)
    ok = DispositionForm("appointment", email_to=" a@b.nl ", registration=REGISTRATION)
    assert disposition_payload(SCREEN, ok, NOW)["email_to"] == "a@b.nl"


def test_nothing_is_sent_until_every_problem_is_fixed() -> None:
    form = DispositionForm(reschedule=RescheduleForm(True, "", "+1m", "myself", ""))
    with pytest.raises(ConsoleInputError) as err:
        disposition_payload(SCREEN, form, NOW)
    assert err.value.problems == (
        "pick a result code",
        "registration is required: pick a topic",
        "rescheduling needs a comment",
    )
    with pytest.raises(ConsoleInputError, match="unknown result code 'nope'"):
        disposition_payload(SCREEN, DispositionForm("nope", registration=REGISTRATION), NOW)


def test_voicemail_and_pause_payloads() -> None:
    """R-REG-4a: voicemail is a disposition without a code; a pause always has a reason."""
    assert voicemail_payload("  ") == {"command": "disposition", "voicemail": True}
    assert voicemail_payload("beep")["note"] == "beep"
    assert pause_payload(" coffee ") == {"command": "pause", "reason": "coffee"}
    assert pause_payload("") == {"command": "pause", "reason": "pause"}


# ------------------------------------------------------------------ command line
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("mqtt.example:8883", ("mqtt.example", 8883)),
        ("mqtt.example", ("mqtt.example", 1883)),
        ("[::1]:1884", ("::1", 1884)),
        ("::1", ("::1", 1883)),
        (":1885", ("127.0.0.1", 1885)),
    ],
)
def test_broker_address(value: str, expected: tuple[str, int]) -> None:
    assert parse_broker(value) == expected


@pytest.mark.parametrize("value", ["host:port", "host:0", "host:70000"])
def test_bad_broker_port(value: str) -> None:
    with pytest.raises(ValueError, match="port must be a number"):
        parse_broker(value)


def test_topics_follow_the_prefix_and_campaigns() -> None:
    settings = LinkSettings("h", 1, "1001", split_campaigns(["demo", "a, b"]), prefix="floor2")
    assert settings.campaigns == ("demo", "a", "b")
    assert settings.subscriptions() == [
        "floor2/agents/1001/state",
        "floor2/agents/1001/screen",
        "floor2/agents/1001/reply",
        "floor2/status",
        "floor2/campaigns/demo/stats",
        "floor2/campaigns/a/stats",
        "floor2/campaigns/b/stats",
    ]


def scheduled_reply(*rows: dict[str, Any]) -> dict[str, Any]:
    """A `scheduled` reply as the bus publishes it (`Daemon._cmd_scheduled` + id/ok/schema)."""
    return {"id": "scheduled-ab12cd-3", "ok": True, "schema": 1, "scheduled": list(rows)}


def row(lead: int, due: datetime, comment: str, **extra: Any) -> dict[str, Any]:
    return {
        "lead": lead,
        "campaign": "demo",
        "number": f"+3161103000{lead}",
        "due_at": due.timestamp(),
        "reserved_until": None,
        "comment": comment,
        "state": "upcoming",
        **extra,
    }


def test_scheduled_calls_are_read_from_dialerds_reply_in_time_order() -> None:
    """R-CB-1: the rows are dialerd's, earliest first, due times in the agent's zone; rows
    the console cannot place in time are skipped, unknown fields ignored."""
    later = row(2, NOW + timedelta(days=1), "after the meeting", name="Jan Jansen", extra=1)
    sooner = row(1, NOW + timedelta(minutes=40), "wants the offer explained")
    body = scheduled_reply(later, sooner, {"lead": 3, "due_at": "soon"}, "junk")
    listed = ScheduledList().answered(body)
    assert listed.loaded and not listed.problem
    assert [c.lead_id for c in listed.calls] == [1, 2]
    assert listed.calls[1].name == "Jan Jansen"
    assert listed.holds(2) and not listed.holds(3) and not listed.holds(None)
    assert listed.text(AMSTERDAM).splitlines() == [
        "My callbacks (F5 refreshes):",
        "  Mon 23 Nov 21:40  #1  +31611030001  wants the offer explained",
        "  Tue 24 Nov 21:00  #2  Jan Jansen  +31611030002  after the meeting",
    ]
    # The same moments read on a machine two hours further east.
    assert "Mon 23 Nov 23:40" in listed.text(timezone(timedelta(hours=3)))


def test_due_callbacks_say_whether_they_are_still_held_for_the_agent() -> None:
    """R-CB-2/5: a due callback is held for the agent until the window ends, then open."""
    held = row(
        1, NOW, "a", state="reserved", reserved_until=(NOW + timedelta(minutes=20)).timestamp()
    )
    other = row(2, NOW - timedelta(hours=1), "b", state="open", campaign="winback")
    lines = ScheduledList().answered(scheduled_reply(held, other)).text(AMSTERDAM).splitlines()
    assert lines[1:] == [
        "  Mon 23 Nov 20:00  #2  +31611030002 [winback]  b  (due: open to any agent now)",
        "  Mon 23 Nov 21:00  #1  +31611030001 [demo]  a  (due: held for you until 21:20)",
    ]


def test_an_empty_list_says_so_and_a_failure_is_one_line_over_the_last_rows() -> None:
    waiting = ScheduledList()
    assert waiting.text() == "My callbacks: waiting for dialerd..."
    assert waiting.failed("no answer from dialerd within 10 s").text() == (
        "My callbacks: no answer from dialerd within 10 s (F5 retries)"
    )
    empty = waiting.answered(scheduled_reply())
    assert empty.text() == "My callbacks: none scheduled (F5 refreshes)"

    listed = empty.answered(scheduled_reply(row(1, NOW, "a")))
    refused = listed.answered({"id": "x", "ok": False, "error": "database is locked\nline 2"})
    lines = refused.text(AMSTERDAM).splitlines()
    assert (
        lines[0] == "My callbacks: dialerd refused: database is locked (F5 retries); as last shown:"
    )
    assert lines[1:] == ["  Mon 23 Nov 21:00  #1  +31611030001  a"]
    assert refused.calls == listed.calls and refused.loaded
    # The next answer clears the problem.
    assert refused.answered(scheduled_reply()).text().endswith("none scheduled (F5 refreshes)")


@pytest.mark.parametrize(
    ("verb", "ok", "refresh"),
    [
        ("login", True, True),
        ("disposition", True, True),
        ("disposition", False, False),
        ("pause", True, False),
        ("dialerd", True, False),
    ],
)
def test_the_list_is_asked_for_again_after_commands_that_change_it(
    verb: str, ok: bool, refresh: bool
) -> None:
    assert refreshes_scheduled(verb, ok) is refresh


def test_the_command_line_refuses_a_bad_broker_before_starting() -> None:
    runner = CliRunner()
    result = runner.invoke(
        cli, ["console", "--agent", "1001", "--campaign", "demo", "--broker", "h:x"]
    )
    assert result.exit_code == 2
    assert "the port must be a number" in result.output
    result = runner.invoke(cli, ["console", "--agent", "1001", "--campaign", " , "])
    assert result.exit_code == 2
    assert "name at least one campaign" in result.output
    result = runner.invoke(cli, ["console", "--help"])
    assert result.exit_code == 0 and "--password-file" in result.output
