"""Scheduled callbacks and personal reservation windows (R-CB-1..8, R-REG-4b, R-RC-6).

The campaign's reservation window is 20 minutes; ann schedules callbacks for herself, bob
and cem are her colleagues. "pool" is campaign-level dialling for whoever is free.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from dialerd.queue import (
    Callback,
    CallbackPhase,
    CallbackRequest,
    CallbackTarget,
    Lead,
    OfferKind,
    Presence,
    apply_attempt,
    callback_status,
    next_lead,
    scheduled_calls,
    select,
)
from tests.unit.queue_builders import answered, at, lead, rules

pytestmark = pytest.mark.unit

RULES = rules(reservation_window=timedelta(minutes=20))
COMMENT = "CP back from holiday, wants the offer explained"


def myself(due: str = "mon 12:00", agent: str = "ann", lead_id: str = "CB") -> Lead:
    return lead(
        id=lead_id,
        attempts=1,
        score_total=6,
        last_attempt_at=at("mon 09:00"),
        callback=Callback(at(due), CallbackTarget.MYSELF, agent, COMMENT),
    )


def any_agent(due: str = "mon 12:00", lead_id: str = "ANY") -> Lead:
    return lead(
        id=lead_id,
        attempts=1,
        score_total=5,
        last_attempt_at=at("mon 09:00"),
        callback=Callback(at(due), CallbackTarget.ANY, "ann", COMMENT),
    )


FRESH = lead(id="FRESH")
HOT = lead(id="HOT", attempts=1, score_total=8, last_attempt_at=at("sun 09:00"))  # score 8


def who_gets(leads: list[Lead], presence: Presence, now: str) -> dict[str, str | None]:
    """For each asker (each available agent, and the pool), the lead id they are offered."""
    askers: list[str | None] = [a for a in sorted(presence.agents) if presence.available(a)]
    result: dict[str, str | None] = {}
    for asker in [*askers, None]:
        offer = next_lead(leads, RULES, presence, at(now), agent=asker)
        result[asker or "pool"] = offer.lead.id if offer else None
    return result


def test_myself_callbacks_in_the_scheduled_calls_list_ordered_by_time_r_cb_1() -> None:
    """R-CB-1: a "myself" callback appears in that agent's scheduled calls, by time."""
    leads = [
        myself("wed 09:00", lead_id="C3"),
        myself("mon 15:00", lead_id="C1"),
        myself("tue 11:00", agent="bob", lead_id="B1"),
        any_agent("mon 13:00", lead_id="A1"),
        myself("tue 08:00", lead_id="C2"),
        FRESH,
    ]
    assert [(c.lead_id, c.due_at) for c in scheduled_calls(leads, "ann")] == [
        ("C1", at("mon 15:00")),
        ("C2", at("tue 08:00")),
        ("C3", at("wed 09:00")),
    ]
    assert [c.lead_id for c in scheduled_calls(leads, "bob")] == ["B1"]
    assert scheduled_calls(leads, "ann")[0].comment == COMMENT


def test_rescheduling_to_myself_puts_it_in_my_list_r_cb_1_r_reg_4b() -> None:
    """R-CB-1 / R-REG-4b: rescheduling to "myself" via a disposition lands in the list."""
    request = CallbackRequest(at("tue 10:00"), CallbackTarget.MYSELF, COMMENT)
    ld = apply_attempt(lead(), answered("mon 10:00", "not-in", reschedule=request), RULES).lead
    assert [(c.lead_id, c.due_at, c.comment) for c in scheduled_calls([ld], "ann")] == [
        ("L1", at("tue 10:00"), COMMENT)
    ]


@pytest.mark.parametrize(
    ("target", "presence", "now", "phase", "reserved_for"),
    [
        # before the due time nobody gets it
        (CallbackTarget.MYSELF, Presence.of(available=["ann"]), "mon 11:59", "pending", None),
        (CallbackTarget.ANY, Presence.of(available=["ann"]), "mon 11:59", "pending", None),
        # R-CB-2/3: due, reserved for ann while she is logged in
        (CallbackTarget.MYSELF, Presence.of(available=["ann"]), "mon 12:00", "reserved", "ann"),
        # R-CB-4: logged in but busy: still reserved inside the window
        (CallbackTarget.MYSELF, Presence.of(busy=["ann"]), "mon 12:19", "reserved", "ann"),
        # R-CB-5: the window expired
        (CallbackTarget.MYSELF, Presence.of(busy=["ann"]), "mon 12:20", "open", None),
        # R-CB-6: logged out at the due time
        (CallbackTarget.MYSELF, Presence.of(available=["bob"]), "mon 12:00", "open", None),
        # R-CB-8: any agent
        (CallbackTarget.ANY, Presence.of(busy=["ann"]), "mon 12:00", "open", None),
    ],
)
def test_callback_state_machine_r_cb_2_to_r_cb_8(
    target: CallbackTarget, presence: Presence, now: str, phase: str, reserved_for: str | None
) -> None:
    """R-CB-2..6, R-CB-8: the callback's phase is a pure function of who is logged in."""
    status = callback_status(
        Callback(at("mon 12:00"), target, "ann", COMMENT), RULES, presence, at(now)
    )
    assert (status.phase, status.reserved_for) == (CallbackPhase(phase), reserved_for)


def test_due_callback_enters_the_queue_reserved_for_its_agent_r_cb_2() -> None:
    """R-CB-2: at the due time the lead re-enters the same campaign's queue, reserved for
    the agent for the reservation window; before it, nobody is offered it."""
    floor = Presence.of(available=["ann", "bob"])
    assert who_gets([myself()], floor, "mon 11:59") == {"ann": None, "bob": None, "pool": None}
    assert who_gets([myself()], floor, "mon 12:00") == {"ann": "CB", "bob": None, "pool": None}
    assert who_gets([myself()], floor, "mon 12:19") == {"ann": "CB", "bob": None, "pool": None}


def test_available_agent_gets_the_callback_at_once_r_cb_3() -> None:
    """R-CB-3: agent available at the due time → the call goes to that agent at once,
    ahead of hotter retries and fresh leads."""
    floor = Presence.of(available=["ann", "bob"])
    offer = next_lead([FRESH, HOT, myself()], RULES, floor, at("mon 12:00"), agent="ann")
    assert offer is not None
    assert (offer.lead.id, offer.kind, offer.agent) == ("CB", OfferKind.RESERVED_CALLBACK, "ann")
    assert who_gets([FRESH, HOT, myself()], floor, "mon 12:00") == {
        "ann": "CB",
        "bob": "HOT",
        "pool": "HOT",
    }


def test_busy_agent_the_callback_waits_inside_the_window_r_cb_4() -> None:
    """R-CB-4: agent logged in but not available → the call waits for them in the window;
    colleagues get other work, and the agent gets it as soon as they are free."""
    busy = Presence.of(available=["bob"], busy=["ann"])
    assert who_gets([FRESH, myself()], busy, "mon 12:05") == {"bob": "FRESH", "pool": "FRESH"}
    free_again = Presence.of(available=["ann", "bob"])
    assert who_gets([FRESH, myself()], free_again, "mon 12:15")["ann"] == "CB"


def test_window_expires_then_any_agent_gets_it_r_cb_5() -> None:
    """R-CB-5: the window expires without the agent becoming available → any agent."""
    busy = Presence.of(available=["bob", "cem"], busy=["ann"])
    assert who_gets([FRESH, myself()], busy, "mon 12:19") == {
        "bob": "FRESH",
        "cem": "FRESH",
        "pool": "FRESH",
    }
    assert who_gets([FRESH, myself()], busy, "mon 12:20") == {
        "bob": "CB",
        "cem": "CB",
        "pool": "CB",
    }
    offer = next_lead([myself()], RULES, busy, at("mon 12:20"), agent="bob")
    assert offer is not None
    assert offer.kind is OfferKind.CALLBACK


def test_agent_logged_out_at_due_time_next_available_agent_r_cb_6() -> None:
    """R-CB-6: agent logged out at the due time → straight to the next available agent."""
    floor = Presence.of(available=["bob"])
    assert who_gets([FRESH, myself()], floor, "mon 12:00") == {"bob": "CB", "pool": "CB"}


@pytest.mark.parametrize(
    ("presence", "now", "asker"),
    [
        (Presence.of(available=["ann"]), "mon 12:00", "ann"),  # the owner
        (Presence.of(available=["bob"], busy=["ann"]), "mon 12:25", "bob"),  # after expiry
        (Presence.of(available=["bob"]), "mon 12:00", "bob"),  # owner logged out
        (Presence.of(available=["bob"]), "mon 12:00", None),  # pool
    ],
)
def test_rescheduling_comment_travels_with_the_callback_r_cb_7(
    presence: Presence, now: str, asker: str | None
) -> None:
    """R-CB-7: the rescheduling comment is shown to whichever agent receives the callback."""
    for ld in (myself(), any_agent()):
        offer = next_lead([ld], RULES, presence, at(now), agent=asker)
        assert offer is not None
        assert offer.comment == COMMENT


def test_any_agent_callback_goes_to_the_first_available_agent_r_cb_8() -> None:
    """R-CB-8: "any agent" callbacks go to the first available agent at the due time."""
    floor = Presence.of(available=["bob", "cem"], busy=["ann"])
    assert who_gets([FRESH, any_agent()], floor, "mon 11:59") == {
        "bob": "FRESH",
        "cem": "FRESH",
        "pool": "FRESH",
    }
    assert who_gets([FRESH, HOT, any_agent()], floor, "mon 12:00") == {
        "bob": "ANY",
        "cem": "ANY",
        "pool": "ANY",
    }


def test_callbacks_due_are_served_before_fresh_leads_and_retries_r_cb_8() -> None:
    """R-CB-2 / R-CB-8: due callbacks (reserved first, then open, each by due time) come
    before any retry or fresh lead, whatever their call score."""
    leads = [
        FRESH,
        HOT,
        any_agent("mon 11:00", lead_id="ANY-11"),
        any_agent("mon 10:00", lead_id="ANY-10"),
        myself("mon 11:50", lead_id="MINE"),
        any_agent("mon 13:00", lead_id="ANY-LATER"),
    ]
    offers = select(leads, RULES, Presence.of(available=["ann"]), at("mon 12:00"), "ann", limit=9)
    assert [(o.lead.id, o.kind) for o in offers] == [
        ("MINE", OfferKind.RESERVED_CALLBACK),
        ("ANY-10", OfferKind.CALLBACK),
        ("ANY-11", OfferKind.CALLBACK),
        ("HOT", OfferKind.RETRY),
        ("FRESH", OfferKind.FRESH),
    ]


def test_agreed_callback_outranks_the_link_once_the_window_lapses_r_cb_5_r_rc_6() -> None:
    """R-CB-5 over R-RC-6: the customer was promised a call, so an expired reservation goes
    to any agent even though the address is linked; the link itself stays with ann."""
    ld = apply_attempt(lead(), answered("mon 09:00", "agreed"), RULES).lead  # due 10:00, ann
    assert ld.linked_agent == "ann"
    busy = Presence.of(available=["bob"], busy=["ann"])
    assert who_gets([ld], busy, "mon 10:19") == {"bob": None, "pool": None}
    assert who_gets([ld], busy, "mon 10:20") == {"bob": "L1", "pool": "L1"}
    after = apply_attempt(ld, answered("mon 10:21", "not-in", agent="bob"), RULES).lead
    assert after.linked_agent == "ann"
    # without a callback, the linked address is only ann's again
    assert who_gets([after], Presence.of(available=["bob"]), "tue 10:00") == {
        "bob": None,
        "pool": None,
    }
    assert next_lead([after], RULES, Presence.of(available=["ann"]), at("tue 10:00"), "ann")
