"""The hopper: which lead is offered next, for the campaign pool or a free agent.

The exact rule (the store's SQL prefilter must return a superset of what this accepts):

1. a lead is a candidate iff :func:`dialerd.queue.explain.explain` finds no blocker;
2. candidates are ordered by class, then within the class:

   ========  =====================================================  ==========================
   class     what                                                   order
   ========  =====================================================  ==========================
   0         due callbacks reserved for this agent (R-CB-2/3)        due time, then lead id
   1         due callbacks open to anyone (R-CB-5/6/8)               due time, then lead id
   2         retries and fresh leads                                 call score (high first),
                                                                     tie-break, rank, lead id
   ========  =====================================================  ==========================

Callbacks due are therefore always served before fresh leads and retries.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum

from dialerd.queue.callbacks import CallbackPhase
from dialerd.queue.explain import explain
from dialerd.queue.model import CampaignRules, Lead, LeadId, Presence, TieBreak
from dialerd.queue.scoring import call_score


class OfferKind(IntEnum):
    RESERVED_CALLBACK = 0
    CALLBACK = 1
    RETRY = 2
    FRESH = 3


@dataclass(frozen=True)
class Offer:
    """A lead the dialer may dial now, and what the receiving agent should see."""

    lead: Lead
    kind: OfferKind
    agent: str | None
    """The agent this lead is dialled for (``None``: the campaign pool)."""
    comment: str
    """The callback's rescheduling comment, shown to whoever gets the call (R-CB-7)."""


_Key = tuple[int, float, float, int, LeadId]


def _sort_key(lead: Lead, kind: OfferKind, tie_break: TieBreak) -> _Key:
    if kind in (OfferKind.RESERVED_CALLBACK, OfferKind.CALLBACK):
        assert lead.callback is not None
        return (int(kind), lead.callback.due_at.timestamp(), 0.0, lead.rank, lead.id)
    if tie_break is TieBreak.LEAST_RECENT:
        tie = (
            lead.last_attempt_at.timestamp() if lead.last_attempt_at is not None else float("-inf")
        )
    elif tie_break is TieBreak.FEWEST_ATTEMPTS:
        tie = float(lead.attempts)
    else:
        tie = float(lead.rank)
    return (int(OfferKind.RETRY), -call_score(lead), tie, lead.rank, lead.id)


def offer_for(
    lead: Lead,
    rules: CampaignRules,
    presence: Presence,
    now: datetime,
    agent: str | None = None,
) -> Offer | None:
    """The offer ``lead`` makes at ``now`` (for ``agent``), or ``None`` if not dialable."""
    explanation = explain(lead, rules, presence, now, agent)
    if not explanation.dialable:
        return None
    cb = explanation.callback
    if cb is not None:
        assert lead.callback is not None
        kind = (
            OfferKind.RESERVED_CALLBACK
            if cb.phase is CallbackPhase.RESERVED
            else OfferKind.CALLBACK
        )
        return Offer(lead, kind, agent, lead.callback.comment)
    kind = OfferKind.RETRY if lead.attempts else OfferKind.FRESH
    return Offer(lead, kind, agent, "")


def select(
    leads: Iterable[Lead],
    rules: CampaignRules,
    presence: Presence,
    now: datetime,
    agent: str | None = None,
    limit: int = 1,
) -> list[Offer]:
    """Up to ``limit`` offers, best first (see the module docstring for the order).

    ``agent`` names the free agent the leads will be dialled for: it receives its own
    reserved callbacks and linked addresses, and counts as a guaranteed live agent. With
    ``agent=None`` (pool dialling) reserved and linked leads are left to their agents.
    """
    ranked: list[tuple[_Key, Offer]] = []
    for lead in leads:
        offer = offer_for(lead, rules, presence, now, agent)
        if offer is not None:
            ranked.append((_sort_key(lead, offer.kind, rules.tie_break), offer))
    return [offer for _, offer in heapq.nsmallest(limit, ranked, key=lambda pair: pair[0])]


def next_lead(
    leads: Iterable[Lead],
    rules: CampaignRules,
    presence: Presence,
    now: datetime,
    agent: str | None = None,
) -> Offer | None:
    """The single best offer, or ``None`` when nothing may be dialled now."""
    best = select(leads, rules, presence, now, agent, limit=1)
    return best[0] if best else None
