"""The lead's dial state and next-dial time the store precomputes (R-DL-4, R-CB-2)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dialerd.queue import (
    Callback,
    CallbackTarget,
    FunnelPhase,
    Lead,
    LeadState,
    Outcome,
    RetryPolicy,
    lead_state,
    retry_due_at,
)
from tests.unit.queue_builders import at, lead, rules

pytestmark = pytest.mark.unit

R = rules(retry=RetryPolicy(max_attempts=3, busy=timedelta(minutes=10)))
BUSY_AT_10 = {"attempts": 1, "last_attempt_at": at("mon 10:00"), "last_outcome": Outcome.BUSY}
CB = Callback(at("tue 10:00"), CallbackTarget.ANY, "ann", "x")


@pytest.mark.parametrize(
    ("ld", "now", "state", "due"),
    [
        # lead,                                              now,        state,          retry due
        (lead(), "mon 10:00", LeadState.READY, None),
        (lead(**BUSY_AT_10), "mon 10:09", LeadState.WAITING, "mon 10:10"),
        (lead(**BUSY_AT_10), "mon 10:10", LeadState.READY, "mon 10:10"),
        (lead(**BUSY_AT_10, callback=CB), "mon 10:10", LeadState.CALLBACK, "mon 10:10"),
        (lead(attempts=3), "mon 10:00", LeadState.EXHAUSTED, None),
        (lead(attempts=3, callback=CB), "mon 10:00", LeadState.EXHAUSTED, None),
        (lead(closed=True), "mon 10:00", LeadState.DONE, None),
        (lead(phase=FunnelPhase.LOST), "mon 10:00", LeadState.DONE, None),
        (lead(dnc=True, closed=True), "mon 10:00", LeadState.DNC, None),
    ],
)
def test_lead_state_and_retry_due_r_dl_4(
    ld: Lead, now: str, state: LeadState, due: str | None
) -> None:
    """R-DL-4: the store's status/next_dial_at columns come from these two rules."""
    assert lead_state(ld, R, at(now)) is state
    assert retry_due_at(ld, R) == (at(due) if due else None)
