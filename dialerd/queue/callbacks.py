"""Scheduled callbacks, personal reservation windows and linked addresses.

The callback state is a pure function of (callback, campaign rules, who is logged in, now):
nothing is stored about "the window has started". That makes every R-CB case a table row
and lets the daemon re-evaluate at any instant without a timer per callback:

====================  =========================================  ==========  =========
callback              at ``now``                                  phase       who
====================  =========================================  ==========  =========
any                   now < due                                   PENDING     nobody
any                   now ≥ due                                   OPEN        any agent (R-CB-8)
myself (agent A)      now < due                                   PENDING     nobody
myself (agent A)      due ≤ now < due+window, A logged in         RESERVED    A only (R-CB-2/3/4)
myself (agent A)      due ≤ now < due+window, A logged out        OPEN        any agent (R-CB-6)
myself (agent A)      now ≥ due+window                            OPEN        any agent (R-CB-5)
====================  =========================================  ==========  =========

An agreed-time callback outranks a linked address (R-RC-6): the customer was promised a call
at that time, so once the reservation lapses any agent keeps the promise; the link (who owns
the address for later retries) is unchanged by who happens to deliver the callback.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum, StrEnum, auto

from dialerd.queue.hours import require_aware
from dialerd.queue.model import Callback, CallbackTarget, CampaignRules, Lead, LeadId, Presence


class CallbackPhase(StrEnum):
    PENDING = "pending"
    """Not due yet: the lead is not offered at all."""
    RESERVED = "reserved"
    """Due and held for one agent inside the reservation window."""
    OPEN = "open"
    """Due and deliverable to the first available agent."""


@dataclass(frozen=True)
class CallbackStatus:
    """A callback's phase at one instant, for whom, until when, and why (for ``explain``)."""

    phase: CallbackPhase
    reserved_for: str | None
    until: datetime | None
    """When the phase ends by itself: the due time (PENDING) or window end (RESERVED)."""
    why: str


def callback_phase(
    cb: Callback, rules: CampaignRules, presence: Presence, now: datetime
) -> tuple[CallbackPhase, str | None]:
    """The phase of a callback at ``now`` and the agent it is reserved for (see the module
    table): the decision alone, no text, for the selection's per-candidate fast path.
    :func:`callback_status` adds until-when and why on top of this very answer."""
    phase, _ = _phase_and_cause(cb, rules, presence, now)
    return phase, cb.agent if phase is CallbackPhase.RESERVED else None


def callback_status(
    cb: Callback, rules: CampaignRules, presence: Presence, now: datetime
) -> CallbackStatus:
    """Where a callback stands at ``now`` (see the module table), and why."""
    phase, cause = _phase_and_cause(cb, rules, presence, now)
    window_end = cb.due_at + rules.reservation_window
    if cause is _Cause.NOT_DUE:
        return CallbackStatus(phase, None, cb.due_at, "callback not due yet")
    if cause is _Cause.ANYONE:
        return CallbackStatus(phase, None, None, "any-agent callback due: first available agent")
    assert cb.agent is not None  # a MYSELF callback always names its agent
    if cause is _Cause.EXPIRED:
        return CallbackStatus(
            phase,
            None,
            None,
            f"reservation for {cb.agent} expired at {window_end:%Y-%m-%d %H:%M} UTC: any agent",
        )
    if cause is _Cause.LOGGED_OUT:
        return CallbackStatus(phase, None, None, f"{cb.agent} is logged out: next available agent")
    waiting = "available now" if presence.available(cb.agent) else "busy; waits inside the window"
    return CallbackStatus(
        phase,
        cb.agent,
        window_end,
        f"reserved for {cb.agent} until {window_end:%Y-%m-%d %H:%M} UTC ({waiting})",
    )


class _Cause(Enum):
    """Which row of the module table applies: the phase, and what ``why`` says about it."""

    NOT_DUE = auto()
    ANYONE = auto()
    EXPIRED = auto()
    LOGGED_OUT = auto()
    RESERVED = auto()


def _phase_and_cause(
    cb: Callback, rules: CampaignRules, presence: Presence, now: datetime
) -> tuple[CallbackPhase, _Cause]:
    """The module table, once: both :func:`callback_phase` and :func:`callback_status`."""
    require_aware(now)
    if now < cb.due_at:
        return CallbackPhase.PENDING, _Cause.NOT_DUE
    if cb.target is CallbackTarget.ANY:
        return CallbackPhase.OPEN, _Cause.ANYONE
    assert cb.agent is not None  # a MYSELF callback always names its agent
    if now >= cb.due_at + rules.reservation_window:
        return CallbackPhase.OPEN, _Cause.EXPIRED
    if not presence.logged_in(cb.agent):
        return CallbackPhase.OPEN, _Cause.LOGGED_OUT
    return CallbackPhase.RESERVED, _Cause.RESERVED


@dataclass(frozen=True)
class ScheduledCall:
    """One row of an agent's "scheduled calls" list (R-CB-1)."""

    due_at: datetime
    lead_id: LeadId
    phone: str
    comment: str


def scheduled_calls(leads: Iterable[Lead], agent: str) -> list[ScheduledCall]:
    """The agent's own ("myself") callbacks, earliest first (R-CB-1)."""
    rows = [
        ScheduledCall(lead.callback.due_at, lead.id, lead.phone, lead.callback.comment)
        for lead in leads
        if lead.callback is not None
        and lead.callback.target is CallbackTarget.MYSELF
        and lead.callback.agent == agent
    ]
    return sorted(rows, key=lambda r: (r.due_at, r.lead_id))


def link_expires_at(lead: Lead, rules: CampaignRules) -> datetime | None:
    """When the lead's link is released; ``None`` when unlinked or never released."""
    if lead.linked_at is None or rules.link_release is None:
        return None
    return lead.linked_at + rules.link_release


def linked_owner(lead: Lead, rules: CampaignRules, now: datetime) -> str | None:
    """The agent who owns the address at ``now`` (R-RC-6), or ``None`` if anyone may work it."""
    if lead.linked_agent is None:
        return None
    expires = link_expires_at(lead, rules)
    if expires is not None and now >= expires:
        return None
    return lead.linked_agent
