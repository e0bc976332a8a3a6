"""Retries: per-outcome delays, max attempts, calling hours, DNC and the live-agent guards
(R-DL-4, R-DL-3, R-REG-4a)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dialerd.queue import (
    DialMode,
    Lead,
    Outcome,
    Presence,
    RetryPolicy,
    apply_attempt,
    explain,
)
from tests.unit.queue_builders import OFFICE_HOURS, answered, at, dialer, lead, rules

pytestmark = pytest.mark.unit

POLICY = RetryPolicy(
    max_attempts=3,
    busy=timedelta(minutes=10),
    no_answer=timedelta(hours=1),
    machine=timedelta(hours=2),
    abandoned=timedelta(hours=3),
    failed=timedelta(minutes=30),
    answered=timedelta(hours=4),
)
NOBODY = Presence()


def blockers(ld: Lead, now: str, agent: str | None = None, **kw: object) -> list[str]:
    r = rules(retry=POLICY, **kw)
    return [reason.check for reason in explain(ld, r, NOBODY, at(now), agent).blocking]


def after(attempt_outcome: Outcome, when: str = "mon 10:00") -> Lead:
    return apply_attempt(lead(), dialer(when, attempt_outcome), rules(retry=POLICY)).lead


@pytest.mark.parametrize(
    ("outcome", "too_early", "due"),
    [
        # outcome at Mon 10:00,  still waiting at, dialable (pool) from
        (Outcome.BUSY, "mon 10:09", "mon 10:10"),
        (Outcome.NO_ANSWER, "mon 10:59", "mon 11:00"),
        (Outcome.FAILED, "mon 10:29", "mon 10:30"),
        # machine: own delay 2 h, but the 24 h AMD guard dominates pool dialling
        (Outcome.MACHINE, "tue 09:59", "tue 10:00"),
        # abandoned: own delay 3 h, but the 72 h guard dominates pool dialling
        (Outcome.ABANDONED, "thu 09:59", "thu 10:00"),
    ],
)
def test_per_outcome_retry_delays_r_dl_4(outcome: Outcome, too_early: str, due: str) -> None:
    """R-DL-4: each outcome has its own retry delay."""
    ld = after(outcome)
    assert blockers(ld, too_early) != []
    assert blockers(ld, due) == []


def test_answered_without_callback_waits_the_answered_delay_r_dl_4() -> None:
    """R-DL-4: a live call that neither closed nor rescheduled waits ``answered``."""
    ld = apply_attempt(lead(), answered("mon 10:00", "not-in"), rules(retry=POLICY)).lead
    assert blockers(ld, "mon 13:59") == ["retry"]
    assert blockers(ld, "mon 14:00") == []


@pytest.mark.parametrize(
    ("attempts", "dialable"),
    [(0, True), (1, True), (2, True), (3, False), (7, False)],
)
def test_max_attempts_r_dl_4(attempts: int, dialable: bool) -> None:
    """R-DL-4: never more than ``max_attempts`` dials."""
    ld = lead(attempts=attempts, score_total=2 + attempts)
    assert (blockers(ld, "mon 10:00") == []) is dialable
    assert ("attempts" in blockers(ld, "mon 10:00")) is not dialable


def test_dnc_blocks_every_path_r_dl_4() -> None:
    """R-DL-4: the do-not-call list wins over preview, callbacks and agents."""
    ld = lead(dnc=True)
    assert blockers(ld, "mon 10:00") == ["dnc"]
    assert blockers(ld, "mon 10:00", agent="ann", mode=DialMode.PREVIEW) == ["dnc"]


def test_calling_hours_block_with_the_next_opening_r_dl_4() -> None:
    """R-DL-4: outside the lead's local window the lead waits for the next opening."""
    r = rules(retry=POLICY, hours=OFFICE_HOURS)
    ld = lead(timezone="America/New_York")
    e = explain(ld, r, NOBODY, at("mon 12:00"))  # 07:00 in New York
    assert [b.check for b in e.blocking] == ["hours"]
    assert e.blocking[0].until == at("mon 14:00")
    assert explain(ld, r, NOBODY, at("mon 14:00")).dialable


def test_unknown_time_zone_is_never_dialled_r_dl_4() -> None:
    """R-DL-4: without the lead's local time, the calling-hours rule cannot pass."""
    assert blockers(lead(timezone="Nowhere/Else"), "mon 10:00") == ["hours"]


@pytest.mark.parametrize(
    ("mode", "agent", "at_", "blocked"),
    [
        # 72 h after an abandoned call at Mon 10:00 (delay 3 h already passed)
        (DialMode.PREDICTIVE, None, "mon 14:00", ["abandon-72h"]),
        (DialMode.PROGRESSIVE, None, "wed 10:00", ["abandon-72h"]),
        (DialMode.PREDICTIVE, None, "thu 10:00", []),
        # a live agent is guaranteed: preview mode, or dialled for a named agent
        (DialMode.PREVIEW, None, "mon 14:00", []),
        (DialMode.PREDICTIVE, "ann", "mon 14:00", []),
        # the own retry delay still applies with a live agent
        (DialMode.PREVIEW, "ann", "mon 12:59", ["retry"]),
    ],
)
def test_no_redial_of_an_abandoned_number_within_72h_r_dl_4(
    mode: DialMode, agent: str | None, at_: str, blocked: list[str]
) -> None:
    """R-DL-4 / R-DL-2: an abandoned number is not redialled within 72 h unless a live
    agent is guaranteed (preview, or reserved for an agent)."""
    assert blockers(after(Outcome.ABANDONED), at_, agent, mode=mode) == blocked


@pytest.mark.parametrize(
    ("mode", "agent", "at_", "blocked"),
    [
        (DialMode.PREDICTIVE, None, "mon 12:00", ["machine-24h"]),
        (DialMode.PROGRESSIVE, None, "tue 09:59", ["machine-24h"]),
        (DialMode.PREDICTIVE, None, "tue 10:00", []),
        (DialMode.PREVIEW, None, "mon 12:00", []),
        (DialMode.PROGRESSIVE, "ann", "mon 12:00", []),
        (DialMode.PREDICTIVE, "ann", "mon 11:59", ["retry"]),
    ],
)
def test_no_redial_within_24h_after_amd_machine_r_dl_3_r_dl_4(
    mode: DialMode, agent: str | None, at_: str, blocked: list[str]
) -> None:
    """R-DL-3 / R-DL-4: after an AMD "machine" verdict, 24 h unless a live agent is
    guaranteed; AMD feeds the retry logic."""
    assert blockers(after(Outcome.MACHINE), at_, agent, mode=mode) == blocked


@pytest.mark.parametrize(
    ("attempts_before", "dialable_again"),
    [(0, True), (1, True), (2, False)],
)
def test_voicemail_mark_retries_while_attempts_remain_r_reg_4a(
    attempts_before: int, dialable_again: bool
) -> None:
    """R-REG-4a: a voicemail-marked call is retried as "not answered", attempts permitting,
    and without the 24 h AMD guard."""
    r = rules(retry=POLICY)
    ld = lead(attempts=attempts_before, score_total=2 + attempts_before)
    ld = apply_attempt(ld, answered("mon 10:00", None, voicemail_marked=True), r).lead
    assert blockers(ld, "mon 10:59") == (["retry"] if dialable_again else ["attempts", "retry"])
    assert (blockers(ld, "mon 11:00") == []) is dialable_again


@pytest.mark.parametrize(
    "code", ["appointment", "not-interested", "wrong-number", "ordered", "lost"]
)
def test_closing_codes_stop_dialling_r_dl_4(code: str) -> None:
    """R-DL-4: positive, negative and discarded results end the retries."""
    ld = apply_attempt(lead(), answered("mon 10:00", code), rules(retry=POLICY)).lead
    assert "closed" in blockers(ld, "fri 10:00")
