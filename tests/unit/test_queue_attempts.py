"""Applying a finished attempt to a lead (R-RC-1/4/5/6, R-AD-3/4, R-REG-2, R-REG-4)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from dialerd.queue import (
    VOICEMAIL_CODE,
    Attempt,
    CallbackRequest,
    CallbackTarget,
    Category,
    ContactPriority,
    DispositionError,
    EmailStatus,
    Outcome,
    ResultCode,
    advance_email_status,
    apply_attempt,
    carry_note,
    record_email_event,
)
from tests.unit.queue_builders import CODES, answered, at, dialer, lead, rules

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("attempt", "code", "priority"),
    [
        (dialer("mon 10:00", Outcome.BUSY), "dialer:busy", ContactPriority.VERY_LOW),
        (dialer("mon 10:00", Outcome.NO_ANSWER), "dialer:no_answer", ContactPriority.VERY_LOW),
        (dialer("mon 10:00", Outcome.MACHINE), "dialer:machine", ContactPriority.VERY_LOW),
        (dialer("mon 10:00", Outcome.ABANDONED), "dialer:abandoned", ContactPriority.VERY_LOW),
        (dialer("mon 10:00", Outcome.FAILED), "dialer:failed", ContactPriority.VERY_LOW),
        (answered("mon 10:00", "not-in"), "not-in", ContactPriority.MEDIUM),
        (answered("mon 10:00", "agreed"), "agreed", ContactPriority.VERY_HIGH),
        (
            answered("mon 10:00", None, voicemail_marked=True),
            VOICEMAIL_CODE,
            ContactPriority.VERY_LOW,
        ),
    ],
)
def test_every_attempt_gets_exactly_one_result_code_r_rc_1(
    attempt: Attempt, code: str, priority: ContactPriority
) -> None:
    """R-RC-1: agent-disposed or not, each attempt is recorded with one result code."""
    applied = apply_attempt(lead(), attempt, rules())
    assert applied.entry.result_code == code
    assert applied.entry.priority is priority
    assert applied.lead.attempts == 1


@pytest.mark.parametrize(
    ("attempt", "problem"),
    [
        (answered("mon 10:00", None), "pick a result code"),
        (answered("mon 10:00", "no-such-code"), "unknown result code 'no-such-code'"),
        (Attempt(at=at("mon 10:00"), outcome=Outcome.ANSWERED, result_code="not-in"), "agent"),
        (
            Attempt(at=at("mon 10:00"), outcome=Outcome.BUSY, result_code="not-in"),
            "dialer's result code",
        ),
    ],
)
def test_missing_or_wrong_result_code_is_refused_r_rc_1(attempt: Attempt, problem: str) -> None:
    """R-RC-1: no result code, an unknown one, or an agent code on a dialer outcome."""
    with pytest.raises(DispositionError, match=problem):
        apply_attempt(lead(), attempt, rules())


@pytest.mark.parametrize(
    ("code", "reschedule", "due", "target"),
    [
        # code,           agent's override,                           due,          target
        ("callback", None, "mon 13:00", CallbackTarget.MYSELF),  # 180 min (doc)
        ("agreed", None, "mon 11:00", CallbackTarget.MYSELF),
        ("gatekeeper-cb", None, "mon 10:30", CallbackTarget.ANY),  # CP not reached
        ("callback", ("wed 15:00", CallbackTarget.ANY), "wed 15:00", CallbackTarget.ANY),
        ("not-in", ("tue 09:30", CallbackTarget.MYSELF), "tue 09:30", CallbackTarget.MYSELF),
    ],
)
def test_callback_minutes_and_override_r_rc_4(
    code: str,
    reschedule: tuple[str, CallbackTarget] | None,
    due: str,
    target: CallbackTarget,
) -> None:
    """R-RC-4: callback minutes give the default delay; the agent may override date/time."""
    request = (
        CallbackRequest(at(reschedule[0]), reschedule[1], "call after lunch")
        if reschedule
        else None
    )
    applied = apply_attempt(
        lead(), answered("mon 10:00", code, reschedule=request, call_note="wants brochure"), rules()
    )
    cb = applied.lead.callback
    assert cb is not None
    assert (cb.due_at, cb.target, cb.agent) == (at(due), target, "ann")
    assert applied.entry.callback_due == at(due)
    assert cb.comment == ("call after lunch" if reschedule else "wants brochure")


def test_an_attempt_consumes_the_previous_callback_r_rc_4() -> None:
    """R-RC-4: a callback is offered once; the call made for it replaces it."""
    r = rules()
    ld = apply_attempt(lead(), answered("mon 10:00", "callback"), r).lead
    assert ld.callback is not None
    ld = apply_attempt(ld, answered("mon 13:00", "not-in"), r).lead
    assert ld.callback is None


@pytest.mark.parametrize(
    ("kw", "problem"),
    [
        ({"code": "brochure"}, "requires an e-mail"),
        ({"code": "brochure", "email_to": "  "}, "requires an e-mail"),
        ({"code": "not-in", "detail_note": "x"}, "no detail screen"),
        ({"code": "not-in", "assign_to": "bob"}, "does not allow assigning"),
        ({"code": "not-interested", "reschedule": "r"}, "cannot be rescheduled"),
    ],
)
def test_result_code_flags_are_enforced_r_rc_5(kw: dict[str, Any], problem: str) -> None:
    """R-RC-5: detail screen, assign-to-another-agent and required e-mail flags."""
    if kw.get("reschedule"):
        kw["reschedule"] = CallbackRequest(at("tue 10:00"), CallbackTarget.ANY, "later")
    code = kw.pop("code")
    with pytest.raises(DispositionError, match=problem):
        apply_attempt(lead(), answered("mon 10:00", code, **kw), rules())


def test_required_email_is_recorded_with_status_r_rc_5_r_ad_4() -> None:
    """R-RC-5 / R-AD-4: the picked address and its e-mail status go into the history."""
    applied = apply_attempt(
        lead(),
        answered(
            "mon 10:00",
            "brochure",
            email_to="cp@example.org",
            detail_note="send the solar brochure",
            recording="rec/2026/11/23/abc.wav",
        ),
        rules(),
    )
    e = applied.entry
    assert (e.email_to, e.email_status) == ("cp@example.org", EmailStatus.PROCESSED)
    assert (e.at, e.agent, e.result_code, e.recording) == (
        at("mon 10:00"),
        "ann",
        "brochure",
        "rec/2026/11/23/abc.wav",
    )
    assert e.note == "send the solar brochure"


def test_assign_hands_the_address_to_another_agent_r_rc_5() -> None:
    """R-RC-5: a code that allows assigning links the address to the chosen agent."""
    ld = apply_attempt(lead(), answered("mon 10:00", "handover", assign_to="bob"), rules()).lead
    assert (ld.linked_agent, ld.linked_at) == ("bob", at("mon 10:00"))


@pytest.mark.parametrize(
    ("events", "final"),
    [
        ([EmailStatus.DELIVERED, EmailStatus.OPENED, EmailStatus.CLICKED], EmailStatus.CLICKED),
        ([EmailStatus.OPENED, EmailStatus.DELIVERED], EmailStatus.OPENED),  # out of order
        ([EmailStatus.DEFERRED, EmailStatus.BOUNCED], EmailStatus.BOUNCED),
        ([EmailStatus.BOUNCED, EmailStatus.DELIVERED], EmailStatus.BOUNCED),
        ([EmailStatus.DEFERRED, EmailStatus.DELIVERED], EmailStatus.DELIVERED),
        ([EmailStatus.BOUNCED, EmailStatus.OPENED], EmailStatus.OPENED),
    ],
)
def test_email_status_only_moves_forward_r_ad_4(
    events: list[EmailStatus], final: EmailStatus
) -> None:
    """R-AD-4: processed, deferred, bounced, delivered, opened, clicked — events may arrive
    out of order, the status never regresses."""
    entry = apply_attempt(
        lead(), answered("mon 10:00", "brochure", email_to="cp@example.org"), rules()
    ).entry
    for event in events:
        entry = record_email_event(entry, event)
    assert entry.email_status is final
    assert advance_email_status(None, EmailStatus.DEFERRED) is EmailStatus.DEFERRED


def test_email_event_on_an_entry_without_email_is_refused_r_ad_4() -> None:
    """R-AD-4: e-mail status exists only where an e-mail was sent."""
    entry = apply_attempt(lead(), answered("mon 10:00", "not-in"), rules()).entry
    with pytest.raises(ValueError, match="no e-mail"):
        record_email_event(entry, EmailStatus.OPENED)


@pytest.mark.parametrize(
    ("call_note", "detail_note", "note"),
    [
        ("CP on holiday until 5/12", "", "CP on holiday until 5/12"),
        ("", "send brochure", "send brochure"),
        ("asked for prices", "send brochure", "asked for prices\nsend brochure"),
        ("  ", "", ""),
    ],
)
def test_call_note_is_carried_into_the_result_note_r_ad_3(
    call_note: str, detail_note: str, note: str
) -> None:
    """R-AD-3: text typed during the call ends up in the note of the chosen result code."""
    assert carry_note(call_note, detail_note) == note
    entry = apply_attempt(
        lead(),
        answered(
            "mon 10:00",
            "brochure",
            call_note=call_note,
            detail_note=detail_note,
            email_to="cp@example.org",
        ),
        rules(),
    ).entry
    assert entry.note == note


def test_contact_history_entry_per_attempt_r_ad_4() -> None:
    """R-AD-4: every attempt gives an entry with time, agent, code, note and recording."""
    r = rules()
    history = []
    ld = lead()
    for attempt in (
        dialer("mon 10:00", Outcome.BUSY),
        answered("mon 11:00", "not-in", call_note="secretary", recording="r1.wav"),
        answered("tue 11:00", "callback", agent="bob", recording="r2.wav"),
    ):
        applied = apply_attempt(ld, attempt, r)
        ld, history = applied.lead, [*history, applied.entry]
    assert [(e.at, e.agent, e.result_code, e.note, e.recording) for e in history] == [
        (at("mon 10:00"), None, "dialer:busy", "", None),
        (at("mon 11:00"), "ann", "not-in", "secretary", "r1.wav"),
        (at("tue 11:00"), "bob", "callback", "", "r2.wav"),
    ]


@pytest.mark.parametrize(
    ("history", "owner", "linked_at"),
    [
        # (agent, code, when) in order;                                       owner,  since
        ([("ann", "not-in", "mon 10:00")], None, None),  # score 3: anyone
        ([("ann", "voicemail", "mon 10:00")], None, None),  # score 1: anyone
        ([("ann", "callback", "mon 10:00")], "ann", "mon 10:00"),  # score 4
        ([("ann", "agreed", "mon 10:00")], "ann", "mon 10:00"),  # score 6
        ([("ann", "not-in", "mon 10:00"), ("bob", "callback", "mon 12:00")], "bob", "mon 12:00"),
        # the *first* agent to reach the CP keeps it
        ([("ann", "callback", "mon 10:00"), ("bob", "agreed", "mon 12:00")], "ann", "mon 10:00"),
        ([("ann", "agreed", "mon 10:00"), ("ann", "not-in", "mon 12:00")], "ann", "mon 10:00"),
        # released after 48 h: the link is forgotten, the next CP contact links afresh
        ([("ann", "callback", "mon 10:00"), ("bob", "not-in", "wed 11:00")], None, None),
        ([("ann", "callback", "mon 10:00"), ("bob", "agreed", "wed 11:00")], "bob", "wed 11:00"),
    ],
)
def test_linked_addresses_r_rc_6(
    history: list[tuple[str, str, str]], owner: str | None, linked_at: str | None
) -> None:
    """R-RC-6: the first agent to reach the CP (4 or 6) owns the address until release."""
    r = rules(link_release=timedelta(hours=48))
    ld = lead()
    for agent, code, when in history:
        ld = apply_attempt(ld, answered(when, code, agent=agent), r).lead
    assert ld.linked_agent == owner
    assert ld.linked_at == (at(linked_at) if linked_at else None)


@pytest.mark.parametrize(
    ("attempt", "problem"),
    [
        (
            Attempt(at=at("mon 10:00"), outcome=Outcome.NO_ANSWER, voicemail_marked=True),
            "ring-no-answer is already known",
        ),
        (
            Attempt(at=at("mon 10:00"), outcome=Outcome.BUSY, voicemail_marked=True),
            "busy is already known",
        ),
        (answered("mon 10:00", "not-in", voicemail_marked=True), "takes no result code"),
    ],
)
def test_voicemail_mark_only_on_answered_calls_r_reg_4a(attempt: Attempt, problem: str) -> None:
    """R-REG-4a: ring-no-answer is never marked as voicemail — the dialer already knows."""
    with pytest.raises(DispositionError, match=problem):
        apply_attempt(lead(), attempt, rules())


def test_voicemail_mark_turns_the_attempt_into_not_answered_r_reg_4a() -> None:
    """R-REG-4a: the contact goes back to "not answered" and is retried on that delay."""
    applied = apply_attempt(
        lead(), answered("mon 10:00", None, voicemail_marked=True), rules(forced_registration=True)
    )
    assert applied.lead.last_outcome is Outcome.NO_ANSWER
    assert applied.lead.last_machine_at is None  # the 24 h AMD guard is for AMD verdicts
    assert applied.lead.closed is False
    assert applied.entry.voicemail_marked is True
    assert applied.entry.outcome is Outcome.ANSWERED  # history says what happened


def test_reschedule_needs_a_comment_r_reg_4b() -> None:
    """R-REG-4b: reschedule to myself or any agent, with date/time and a mandatory comment."""
    with pytest.raises(ValueError, match="comment"):
        CallbackRequest(at("tue 10:00"), CallbackTarget.MYSELF, "   ")
    request = CallbackRequest(at("tue 10:00"), CallbackTarget.ANY, "ask for Mr Visser")
    cb = apply_attempt(lead(), answered("mon 10:00", "not-in", reschedule=request), rules())
    assert cb.lead.callback is not None
    assert (cb.lead.callback.target, cb.lead.callback.comment) == (
        CallbackTarget.ANY,
        "ask for Mr Visser",
    )
    assert cb.entry.callback_comment == "ask for Mr Visser"


@pytest.mark.parametrize(
    ("registration", "ok"),
    [
        (None, False),
        ({}, False),
        ({"reason": ()}, False),
        ({"reason": ("price",)}, True),
        ({"interest": ("solar", "battery")}, True),
    ],
)
def test_forced_registration_blocks_closing_the_call_r_reg_2(
    registration: dict[str, tuple[str, ...]] | None, ok: bool
) -> None:
    """R-REG-2: with forced registration the call cannot be closed without one."""
    attempt = answered("mon 10:00", "not-in", registration=registration)
    r = rules(forced_registration=True)
    if ok:
        assert apply_attempt(lead(), attempt, r).lead.attempts == 1
    else:
        with pytest.raises(DispositionError, match="registration is required"):
            apply_attempt(lead(), attempt, r)
    # without forcing, no registration is fine
    assert apply_attempt(lead(), answered("mon 10:00", "not-in"), rules()).lead.attempts == 1


def test_invalid_disposition_lists_every_problem_at_once() -> None:
    """A refused disposition names all its problems so the agent fixes them in one go."""
    attempt = answered(
        "mon 10:00", "not-in", assign_to="bob", registration={"reason": ("price", "quality")}
    )
    with pytest.raises(DispositionError) as err:
        apply_attempt(lead(), attempt, rules(forced_registration=True))
    assert len(err.value.problems) == 2


def test_dialer_outcomes_recorded_with_the_campaigns_mapped_codes_r_rc_1() -> None:
    """R-RC-1: a campaign maps each dialer outcome to one of its no-contact codes; the
    attempt is recorded with it and scores its contact priority."""
    r = rules(outcome_codes={Outcome.BUSY: "voicemail", Outcome.NO_ANSWER: "not-in"})
    assert apply_attempt(lead(), dialer("mon 10:00", Outcome.BUSY), r).entry.result_code == (
        "voicemail"
    )
    applied = apply_attempt(lead(), dialer("mon 10:00", Outcome.NO_ANSWER), r)
    assert (applied.entry.result_code, applied.lead.score_total) == ("not-in", 2 + 3)
    assert apply_attempt(lead(), dialer("mon 10:00", Outcome.FAILED), r).entry.result_code == (
        "dialer:failed"
    )
    with pytest.raises(ValueError, match="not a no-contact"):
        rules(outcome_codes={Outcome.BUSY: "callback"})
    with pytest.raises(ValueError, match="not a no-contact"):
        rules(outcome_codes={Outcome.BUSY: "nope"})


def test_agent_voicemail_code_with_retry_as_r_reg_4a() -> None:
    """R-REG-4a: a campaign may instead give agents a "voicemail" code that retries like a
    dialer outcome; only the delay changes, the AMD guard stays for AMD verdicts."""
    vm = ResultCode("vm", Category.NO_CONTACT, ContactPriority.VERY_LOW, retry_as=Outcome.MACHINE)
    r = rules(result_codes=(*CODES, vm))
    ld = apply_attempt(lead(), answered("mon 10:00", "vm"), r).lead
    assert (ld.last_outcome, ld.last_machine_at) == (Outcome.MACHINE, None)
    with pytest.raises(ValueError, match="retry_as is for no-contact codes"):
        ResultCode(
            "x", Category.CALLBACK, ContactPriority.HIGH, callback_minutes=5, retry_as=Outcome.BUSY
        )
