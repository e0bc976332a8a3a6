"""The hopper: order of retries and fresh leads, tie-breaks and linked addresses
(R-RC-3, R-RC-6, R-DL-4)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dialerd.queue import (
    Lead,
    OfferKind,
    Outcome,
    Presence,
    TieBreak,
    apply_attempt,
    next_lead,
    select,
)
from tests.unit.queue_builders import answered, at, lead, rules

pytestmark = pytest.mark.unit

FLOOR = Presence.of(available=["ann", "bob"])
NOW = at("wed 12:00")


def scored(lead_id: str, attempts: int, total: int, last: str | None, rank: int = 0) -> Lead:
    return lead(
        id=lead_id,
        attempts=attempts,
        score_total=total,
        last_attempt_at=at(last) if last else None,
        last_outcome=Outcome.NO_ANSWER if last else None,
        rank=rank,
    )


# call scores: FRESH 2.0, VM1 3.0, VM2 2.0, MED 5.0, CP 8.0, VM3 1.67
LEADS = [
    scored("VM2", 2, 4, "mon 10:00", rank=5),
    scored("FRESH-B", 0, 2, None, rank=2),
    scored("VM3", 3, 5, "mon 09:00", rank=1),
    scored("FRESH-A", 0, 2, None, rank=3),
    scored("MED", 1, 5, "tue 10:00", rank=9),
    scored("VM1", 1, 3, "tue 08:00", rank=4),
    scored("VM2-OLD", 2, 4, "mon 08:00", rank=0),
]


@pytest.mark.parametrize(
    ("tie_break", "order"),
    [
        (
            TieBreak.LEAST_RECENT,  # equal scores: never dialled, then longest ago
            ["MED", "VM1", "FRESH-B", "FRESH-A", "VM2-OLD", "VM2", "VM3"],
        ),
        (
            TieBreak.FEWEST_ATTEMPTS,
            ["MED", "VM1", "FRESH-B", "FRESH-A", "VM2-OLD", "VM2", "VM3"],
        ),
        (
            TieBreak.IMPORT_ORDER,
            ["MED", "VM1", "VM2-OLD", "FRESH-B", "FRESH-A", "VM2", "VM3"],
        ),
    ],
)
def test_retries_and_fresh_leads_by_call_score_then_tie_break_r_rc_3(
    tie_break: TieBreak, order: list[str]
) -> None:
    """R-RC-3: the call score decides the address's priority in the dial queue; the
    campaign's tie-break orders equal scores (then rank, then id, for determinism)."""
    offers = select(LEADS, rules(tie_break=tie_break), FLOOR, NOW, limit=len(LEADS))
    assert [o.lead.id for o in offers] == order


def test_offer_kinds_and_limit() -> None:
    """A retry is told apart from a fresh lead; ``limit`` caps the batch."""
    offers = select(LEADS, rules(), FLOOR, NOW, limit=3)
    assert [(o.lead.id, o.kind) for o in offers] == [
        ("MED", OfferKind.RETRY),
        ("VM1", OfferKind.RETRY),
        ("FRESH-B", OfferKind.FRESH),
    ]
    assert select([], rules(), FLOOR, NOW) == []
    assert next_lead([], rules(), FLOOR, NOW) is None


@pytest.mark.parametrize(
    ("release", "now", "ann", "bob", "pool"),
    [
        # ann reached the CP Mon 10:00 ("callback" → due 13:00, reserved for ann)
        # the link holds for retries: only ann is offered it
        (None, "tue 10:00", "L1", None, None),
        (timedelta(hours=48), "wed 09:59", "L1", None, None),
        # released after 48 h: anyone
        (timedelta(hours=48), "wed 10:00", "L1", "L1", "L1"),
    ],
)
def test_linked_address_only_offered_to_its_owner_until_release_r_rc_6(
    release: timedelta | None, now: str, ann: str | None, bob: str | None, pool: str | None
) -> None:
    """R-RC-6: while linked only the owner gets it; the campaign's release time frees it."""
    r = rules(link_release=release)
    ld = apply_attempt(lead(), answered("mon 10:00", "callback"), r).lead
    # the callback was made; the follow-up retry is what the link governs
    ld = apply_attempt(ld, answered("mon 13:00", "not-in", agent="ann"), r).lead
    got = {
        asker or "pool": (o.lead.id if (o := next_lead([ld], r, FLOOR, at(now), asker)) else None)
        for asker in ("ann", "bob", None)
    }
    assert got == {"ann": ann, "bob": bob, "pool": pool}


def test_unlinked_address_is_worked_by_any_agent_r_rc_6() -> None:
    """R-RC-6: while the CP has not been reached (scores 1 and 3) any agent may work it."""
    r = rules()
    ld = apply_attempt(lead(), answered("mon 10:00", "not-in"), r).lead
    for asker in ("ann", "bob", None):
        assert next_lead([ld], r, FLOOR, at("tue 10:00"), asker) is not None
