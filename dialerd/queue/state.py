"""The lead's dial state and next-dial time, precomputed by the store after each attempt.

The store keeps ``status`` and ``next_dial_at`` on every lead row so that "what may be dialled
now" is an index range scan over a million leads instead of a rule evaluated per row. These
two functions are the rule for those columns; together they make the store's prefilter a
superset of :func:`dialerd.queue.explain.explain`: every lead the hopper would offer is
``READY`` (or ``CALLBACK`` with its callback due) — the property tests check exactly that.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from dialerd.queue.hours import require_aware
from dialerd.queue.model import CampaignRules, Lead


class LeadState(StrEnum):
    """Values match the store's ``leads.status`` (which adds ``dialing``, its own claim)."""

    READY = "ready"
    """No retry delay left: dialable as far as the lead itself goes."""
    WAITING = "waiting"
    """Inside its retry delay, until :func:`retry_due_at`."""
    CALLBACK = "callback"
    """A scheduled callback owns the next attempt."""
    DONE = "done"
    """Closed by a result code (positive, negative, discarded) or out of the funnel."""
    EXHAUSTED = "exhausted"
    """All attempts used."""
    DNC = "dnc"
    """On the do-not-call list."""


def retry_due_at(lead: Lead, rules: CampaignRules) -> datetime | None:
    """When the retry delay of the last outcome ends; ``None`` for a never-dialled lead.

    The 72 h / 24 h redial guards are deliberately not folded in: a live-agent-guaranteed
    call (preview, a reserved agent) may dial inside them, so they are checked at selection
    time from ``last_abandoned_at`` / ``last_machine_at``.
    """
    if lead.last_attempt_at is None or lead.last_outcome is None:
        return None
    return lead.last_attempt_at + rules.retry.delay(lead.last_outcome)


def lead_state(lead: Lead, rules: CampaignRules, now: datetime) -> LeadState:
    """The lead's dial state at ``now`` (first match wins: DNC, done, exhausted, callback)."""
    require_aware(now)
    if lead.dnc:
        return LeadState.DNC
    if lead.closed or not lead.phase.in_funnel:
        return LeadState.DONE
    if lead.attempts >= rules.retry.max_attempts:
        return LeadState.EXHAUSTED
    if lead.callback is not None:
        return LeadState.CALLBACK
    due = retry_due_at(lead, rules)
    if due is not None and now < due:
        return LeadState.WAITING
    return LeadState.READY
