"""Contact priority, call score, funnel phases and engagement score (R-RC-2/3, R-AD-1/2)."""

from __future__ import annotations

from functools import reduce

import pytest

from dialerd.queue import (
    ContactPriority,
    EmailStatus,
    FunnelPhase,
    HistoryEntry,
    Outcome,
    apply_attempt,
    call_score,
    call_score_of,
    engagement_score,
    next_phase,
)
from tests.unit.queue_builders import CODES, answered, at, lead, rules

pytestmark = pytest.mark.unit

P = FunnelPhase
CODE = {c.code: c for c in CODES}


@pytest.mark.parametrize(
    ("priority", "score"),
    [
        (ContactPriority.VERY_LOW, 1),
        (ContactPriority.OPEN, 2),
        (ContactPriority.MEDIUM, 3),
        (ContactPriority.HIGH, 4),
        (ContactPriority.VERY_HIGH, 6),
    ],
)
def test_contact_priority_scores_r_rc_2(priority: ContactPriority, score: int) -> None:
    """R-RC-2: the documents' score per contact-priority level."""
    assert priority.score == score


def test_call_score_worked_example_r_rc_3() -> None:
    """R-RC-3: Open 2, Voicemail 1, Callback 4 → total 7, call score 3.5.

    The Open entry is in the total but is not a dial attempt: 7 / 2 = 3.5.
    """
    assert call_score_of([1, 4]) == 3.5
    lead_after = reduce(
        lambda ld, a: apply_attempt(ld, a, rules()).lead,
        [answered("mon 10:00", "voicemail"), answered("mon 14:00", "callback")],
        lead(),
    )
    assert lead_after.score_total == 7
    assert lead_after.attempts == 2
    assert call_score(lead_after) == 3.5


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ([], 2.0),  # fresh lead: just the Open entry
        ([1], 3.0),  # one voicemail: 3 / 1
        ([1, 1], 2.0),
        ([1, 1, 1], 5 / 3),
        ([1, 4], 3.5),  # the documents' example
        ([3, 6], 5.5),
        ([6], 8.0),
    ],
)
def test_call_score_table_r_rc_3(scores: list[int], expected: float) -> None:
    """R-RC-3: (2 + sum of attempt scores) / max(attempts, 1)."""
    assert call_score_of(scores) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("current", "priority", "code", "expected"),
    [
        # current phase,        priority,                     result code,      next phase
        (P.SUSPECT, ContactPriority.VERY_LOW, None, P.PROSPECT),
        (P.SUSPECT, ContactPriority.VERY_LOW, "voicemail", P.PROSPECT),
        (P.SUSPECT, ContactPriority.MEDIUM, "not-in", P.PROSPECT),
        (P.SUSPECT, ContactPriority.HIGH, "callback", P.QUALIFIED_PROSPECT),
        (P.PROSPECT, ContactPriority.VERY_HIGH, "agreed", P.QUALIFIED_PROSPECT),
        (P.QUALIFIED_PROSPECT, ContactPriority.VERY_LOW, "voicemail", P.QUALIFIED_PROSPECT),
        (P.QUALIFIED_PROSPECT, ContactPriority.VERY_HIGH, "appointment", P.LEAD),
        (P.LEAD, ContactPriority.HIGH, "sales-accepted", P.QUALIFIED_LEAD),
        (P.QUALIFIED_LEAD, ContactPriority.VERY_HIGH, "quote-sent", P.QUOTE),
        (P.QUOTE, ContactPriority.VERY_HIGH, "ordered", P.ORDER),
        # never backwards by default
        (P.QUOTE, ContactPriority.VERY_LOW, None, P.QUOTE),
        (P.ORDER, ContactPriority.HIGH, "callback", P.ORDER),
        (P.QUOTE, ContactPriority.VERY_HIGH, "appointment", P.QUOTE),
        # the exits, from anywhere in the funnel
        (P.PROSPECT, ContactPriority.HIGH, "not-interested", P.NEGATIVE),
        (P.SUSPECT, ContactPriority.MEDIUM, "wrong-number", P.DISCARDED),
        (P.QUOTE, ContactPriority.HIGH, "lost", P.LOST),
        # exits are final…
        (P.NEGATIVE, ContactPriority.HIGH, "appointment", P.NEGATIVE),
        # …and the one defined way back: a code that forces its phase
        (P.LEAD, ContactPriority.HIGH, "sales-rejected", P.QUALIFIED_PROSPECT),
        (P.LOST, ContactPriority.HIGH, "sales-rejected", P.QUALIFIED_PROSPECT),
    ],
)
def test_funnel_transitions_r_ad_1(
    current: FunnelPhase, priority: ContactPriority, code: str | None, expected: FunnelPhase
) -> None:
    """R-AD-1: Suspect → Prospect → Qualified prospect → Lead → … → Order; exits leave."""
    assert next_phase(current, priority, CODE[code] if code else None) is expected


def test_phase_is_set_by_applying_attempts_r_ad_1() -> None:
    """R-AD-1: the result code used sets the phase, and an exit closes the address."""
    r = rules()
    ld = apply_attempt(lead(), answered("mon 10:00", "callback"), r).lead
    assert (ld.phase, ld.closed) == (P.QUALIFIED_PROSPECT, False)
    ld = apply_attempt(ld, answered("mon 13:00", "not-interested"), r).lead
    assert (ld.phase, ld.closed) == (P.NEGATIVE, True)


def _entry(priority: ContactPriority, email: EmailStatus | None = None) -> HistoryEntry:
    return HistoryEntry(
        at=at("mon 10:00"),
        agent="ann",
        outcome=Outcome.ANSWERED,
        result_code="x",
        priority=priority,
        note="",
        email_to="a@example.org" if email else None,
        email_status=email,
    )


@pytest.mark.parametrize(
    ("phase", "history", "expected"),
    [
        (P.SUSPECT, [], 0),
        (P.PROSPECT, [_entry(ContactPriority.VERY_LOW)], 10 + 5),
        (P.PROSPECT, [_entry(ContactPriority.VERY_LOW), _entry(ContactPriority.MEDIUM)], 10 + 15),
        (P.QUALIFIED_PROSPECT, [_entry(ContactPriority.HIGH)], 20 + 20),
        (
            P.QUALIFIED_PROSPECT,
            [_entry(ContactPriority.HIGH, EmailStatus.DELIVERED)],
            20 + 20 + 5,
        ),
        (
            P.LEAD,
            [_entry(ContactPriority.VERY_HIGH, EmailStatus.CLICKED)],
            30 + 30 + 10,
        ),
        (P.ORDER, [_entry(ContactPriority.VERY_HIGH, EmailStatus.OPENED)], 100),
        (P.NEGATIVE, [_entry(ContactPriority.VERY_HIGH, EmailStatus.CLICKED)], 0),
        (P.LOST, [_entry(ContactPriority.HIGH)], 0),
    ],
)
def test_engagement_score_r_ad_2(
    phase: FunnelPhase, history: list[HistoryEntry], expected: int
) -> None:
    """R-AD-2: 10/phase + 5×best contact score + e-mail response, 0 outside the funnel."""
    assert engagement_score(phase, history) == expected
