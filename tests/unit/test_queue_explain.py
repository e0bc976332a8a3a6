"""``explain``: every reason a lead is or is not dialable now, and its rendering
(R-DL-4, R-CB-2, R-RC-6)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dialerd.queue import (
    Callback,
    CallbackTarget,
    DialMode,
    Lead,
    Outcome,
    Presence,
    RetryPolicy,
    explain,
    render,
)
from tests.unit.queue_builders import OFFICE_HOURS, at, lead, rules

pytestmark = pytest.mark.unit

R = rules(
    hours=OFFICE_HOURS,
    retry=RetryPolicy(max_attempts=4, abandoned=timedelta(hours=3)),
    link_release=timedelta(days=7),
    mode=DialMode.PREDICTIVE,
)
NOBODY = Presence()


@pytest.mark.parametrize(
    ("ld", "now", "agent", "checks"),
    [
        # lead state                                              now (UTC), asker, (check, ok)…
        (lead(), "mon 10:00", None, [("attempts", True), ("hours", True), ("retry", True)]),
        (lead(closed=True), "mon 10:00", None, [("closed", False), ("attempts", True)]),
        (lead(dnc=True), "mon 10:00", None, [("dnc", False), ("attempts", True)]),
        (lead(attempts=4, score_total=6), "mon 10:00", None, [("attempts", False)]),
        (lead(), "mon 22:00", None, [("attempts", True), ("hours", False)]),
        (
            lead(linked_agent="ann", linked_at=at("mon 09:00")),
            "mon 10:00",
            "bob",
            [("attempts", True), ("hours", True), ("linked", False)],
        ),
        (
            lead(linked_agent="ann", linked_at=at("mon 09:00")),
            "mon 10:00",
            "ann",
            [("attempts", True), ("hours", True), ("linked", True)],
        ),
        (
            lead(
                attempts=1,
                score_total=3,
                last_attempt_at=at("mon 09:00"),
                last_outcome=Outcome.ABANDONED,
                last_abandoned_at=at("mon 09:00"),
            ),
            "tue 10:00",
            None,
            [("attempts", True), ("hours", True), ("retry", True), ("abandon-72h", False)],
        ),
        (
            lead(
                attempts=1,
                score_total=3,
                last_attempt_at=at("mon 09:00"),
                last_outcome=Outcome.MACHINE,
                last_machine_at=at("mon 09:00"),
            ),
            "mon 12:00",
            None,
            [("attempts", True), ("hours", True), ("retry", False), ("machine-24h", False)],
        ),
        (
            lead(callback=Callback(at("tue 10:00"), CallbackTarget.ANY, "ann", "x")),
            "mon 10:00",
            None,
            [("attempts", True), ("hours", True), ("callback", False)],
        ),
    ],
)
def test_explain_lists_every_check_r_dl_4(
    ld: Lead, now: str, agent: str | None, checks: list[tuple[str, bool]]
) -> None:
    """R-DL-4: all checks are reported, passed and failed, not just the first obstacle."""
    e = explain(ld, R, NOBODY, at(now), agent)
    got = [(r.check, r.ok) for r in e.reasons]
    assert got[: len(checks)] == checks
    assert e.dialable is all(ok for _, ok in got)


def test_render_shows_verdict_next_window_and_72h_rule_r_dl_4() -> None:
    """R-DL-4: the text for ``dialerd leads why`` names each obstacle and when it lifts."""
    ld = lead(
        id="42",
        attempts=2,
        score_total=4,
        last_attempt_at=at("mon 09:00"),
        last_outcome=Outcome.ABANDONED,
        last_abandoned_at=at("mon 09:00"),
    )
    text = render(explain(ld, R, NOBODY, at("mon 21:30")))
    assert text.splitlines() == [
        "lead 42 at 2026-11-23 21:30 UTC for any agent: NOT dialable "
        "(earliest 2026-11-26 09:00 UTC)",
        "  ok  attempts     attempt 3 of 4",
        "  NO  hours        outside calling hours (Mon 22:30 Europe/Amsterdam); next window "
        "opens Tue 2026-11-24 09:00 Europe/Amsterdam (2026-11-24 08:00 UTC)",
        "  ok  retry        retry after abandoned is due, call score 2.00",
        "  NO  abandon-72h  abandoned at 2026-11-23 09:00 UTC: no redial within 72 h unless a "
        "live agent is guaranteed (preview or reserved); pool dialling from 2026-11-26 09:00 UTC",
    ]


def test_render_reserved_callback_and_link_r_cb_2_r_rc_6() -> None:
    """R-CB-2 / R-RC-6: a reserved callback says for whom and until when."""
    ld = lead(
        id="7",
        attempts=1,
        score_total=6,
        linked_agent="ann",
        linked_at=at("mon 09:00"),
        callback=Callback(at("mon 10:00"), CallbackTarget.MYSELF, "ann", "ask for Joke"),
    )
    text = render(explain(ld, R, Presence.of(busy=["ann"]), at("mon 10:05"), "bob"))
    assert "for agent bob: NOT dialable (earliest 2026-11-23 10:20 UTC)" in text
    assert (
        "callback reserved for ann until 2026-11-23 10:20 UTC (busy; waits inside the window)"
        ' — "ask for Joke"'
    ) in text
    text = render(explain(ld, R, Presence.of(available=["ann"]), at("mon 10:05"), "ann"))
    assert ": DIALABLE" in text.splitlines()[0]


def test_earliest_is_none_when_a_blocker_never_lifts_by_itself_r_dl_4() -> None:
    """R-DL-4: DNC, closed and used-up attempts have no "until"."""
    e = explain(lead(dnc=True), R, NOBODY, at("mon 22:00"))
    assert not e.dialable
    assert e.earliest is None
    assert "NOT dialable\n" in render(e) + "\n"
