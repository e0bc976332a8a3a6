"""The hopper: which lead is offered next, for the campaign pool or a free agent.

The exact rule (the store's SQL prefilter must return a superset of what this accepts):

1. a lead is a candidate iff :func:`dialerd.queue.explain.explain` finds no blocker
   (asked through :func:`~dialerd.queue.explain.offer_kind`, its verdict without the text);
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

from dialerd.queue.explain import OfferKind, offer_kind
from dialerd.queue.model import CampaignRules, Lead, LeadId, Presence, TieBreak
from dialerd.queue.scoring import call_score


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
    kind = offer_kind(lead, rules, presence, now, agent)
    return None if kind is None else _offer(lead, kind, agent)


def _offer(lead: Lead, kind: OfferKind, agent: str | None) -> Offer:
    if kind is OfferKind.RESERVED_CALLBACK or kind is OfferKind.CALLBACK:
        assert lead.callback is not None
        return Offer(lead, kind, agent, lead.callback.comment)
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
    Only the `limit` winners become `Offer` objects; the position in ``leads`` breaks exact
    ties (as a stable sort would) and keeps the comparison from reaching the leads.
    """
    tie_break = rules.tie_break
    ranked: list[tuple[_Key, int, Lead, OfferKind]] = []
    for i, lead in enumerate(leads):
        kind = offer_kind(lead, rules, presence, now, agent)
        if kind is not None:
            ranked.append((_sort_key(lead, kind, tie_break), i, lead, kind))
    return [_offer(lead, kind, agent) for _, _, lead, kind in heapq.nsmallest(limit, ranked)]


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
