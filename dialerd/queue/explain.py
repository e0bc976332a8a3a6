"""Why a lead is or is not dialable now — the single eligibility rule.

:func:`explain` runs every check and returns them all, passed and failed, so an operator
sees the whole picture ("outside calling hours *and* abandoned 30 h ago"), not just the first
obstacle. :func:`offer_kind` is the same verdict without the sentences, stopping at the
first blocker: the hopper (:mod:`dialerd.queue.selection`) asks it about every candidate,
hundreds per selection, and formatting a dozen sentences per lead only to keep the yes/no
made that more than twice as slow.
Each check is one small predicate below that both call, so ``dialerd leads why LEAD`` can
never disagree with the hopper (and a property test holds the two to the same answer).

A call has a **live agent guaranteed** when the campaign dials in preview mode or the lead
is being selected *for a named agent* (``agent=...``), who waits for this very call. Only
then may a number be redialled inside the 72 h abandon guard or the 24 h machine guard.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from functools import lru_cache

from dialerd.queue.callbacks import (
    CallbackPhase,
    CallbackStatus,
    callback_phase,
    callback_status,
    link_expires_at,
    linked_owner,
)
from dialerd.queue.hours import (
    CallingHours,
    UnknownTimeZone,
    calling_allowed,
    next_opening,
    require_aware,
    zone,
    zones,
)
from dialerd.queue.model import CampaignRules, DialMode, Lead, LeadId, Presence
from dialerd.queue.scoring import call_score
from dialerd.queue.state import retry_due_at


class OfferKind(IntEnum):
    """What a dialable lead is offered as; the value is its class in the hopper's order."""

    RESERVED_CALLBACK = 0
    CALLBACK = 1
    RETRY = 2
    FRESH = 3


@dataclass(frozen=True)
class Reason:
    """One check: its id, whether it passed, a sentence, and when a failure lifts by itself."""

    check: str
    ok: bool
    message: str
    until: datetime | None = None


@dataclass(frozen=True)
class Explanation:
    lead_id: LeadId
    at: datetime
    agent: str | None
    reasons: tuple[Reason, ...]
    callback: CallbackStatus | None

    @property
    def dialable(self) -> bool:
        return all(r.ok for r in self.reasons)

    @property
    def blocking(self) -> tuple[Reason, ...]:
        return tuple(r for r in self.reasons if not r.ok)

    @property
    def earliest(self) -> datetime | None:
        """A lower bound for when the lead may become dialable: the latest ``until`` of the
        time-bound blockers; ``None`` if dialable now or some blocker never lifts by itself
        (closed, DNC, attempts used up, no calling window)."""
        blocking = self.blocking
        if not blocking or any(r.until is None for r in blocking):
            return None
        return max(r.until for r in blocking if r.until is not None)


def _utc(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def live_agent_guaranteed(rules: CampaignRules, agent: str | None) -> bool:
    """Preview mode, or a call dialled for a named agent who waits for it."""
    return rules.mode is DialMode.PREVIEW or agent is not None


# The checks: one predicate each, shared by `explain` (which words them) and `offer_kind`.


def is_closed(lead: Lead) -> bool:
    """Closed by a result code, or out of the sales funnel: never dialled again."""
    return lead.closed or not lead.phase.in_funnel


def attempts_left(lead: Lead, rules: CampaignRules) -> bool:
    """Fewer real dial attempts than the campaign allows."""
    return lead.attempts < rules.retry.max_attempts


def callback_ok(phase: CallbackPhase, reserved_for: str | None, agent: str | None) -> bool:
    """A callback may be delivered by ``agent`` (``None``: the pool): it is due, and not
    reserved for somebody else (R-CB-4)."""
    return phase is not CallbackPhase.PENDING and (
        phase is not CallbackPhase.RESERVED or reserved_for == agent
    )


def link_ok(owner: str | None, agent: str | None) -> bool:
    """A linked address goes to its owner only (R-RC-6); ``owner`` from `linked_owner`."""
    return owner is None or owner == agent


def retry_due(lead: Lead, rules: CampaignRules, now: datetime) -> bool:
    """The last outcome's retry delay is over (or the lead was never dialled)."""
    ready = retry_due_at(lead, rules)
    return ready is None or now >= ready


def guarded(last: datetime | None, guard: timedelta, now: datetime) -> bool:
    """Inside a redial guard (72 h after an abandon, 24 h after a machine) that began at
    ``last``; only a guaranteed live agent may dial then."""
    return last is not None and now < last + guard


def offer_kind(
    lead: Lead,
    rules: CampaignRules,
    presence: Presence,
    now: datetime,
    agent: str | None = None,
) -> OfferKind | None:
    """What ``lead`` is offered as at ``now`` (for ``agent``), or ``None`` exactly when
    ``explain(...)`` is not dialable: the same predicates, without the sentences, and
    stopping at the first blocker. The hopper's per-candidate path."""
    require_aware(now)
    if is_closed(lead) or lead.dnc or not attempts_left(lead, rules):
        return None
    if not calling_allowed(rules.hours, lead.timezone, now):
        return None
    cb = lead.callback
    if cb is not None:
        phase, reserved_for = callback_phase(cb, rules, presence, now)
        if not callback_ok(phase, reserved_for, agent):
            return None
        kind = (
            OfferKind.RESERVED_CALLBACK if phase is CallbackPhase.RESERVED else OfferKind.CALLBACK
        )
    elif not link_ok(linked_owner(lead, rules, now), agent) or not retry_due(lead, rules, now):
        return None
    else:
        kind = OfferKind.RETRY if lead.attempts else OfferKind.FRESH
    if not live_agent_guaranteed(rules, agent) and (
        guarded(lead.last_abandoned_at, rules.retry.abandon_guard, now)
        or guarded(lead.last_machine_at, rules.retry.machine_guard, now)
    ):
        return None
    return kind


def explain(
    lead: Lead,
    rules: CampaignRules,
    presence: Presence,
    now: datetime,
    agent: str | None = None,
) -> Explanation:
    """Every reason ``lead`` may or may not be offered at ``now``.

    ``agent`` is the free agent the lead would be dialled for; ``None`` asks about the
    campaign pool (any agent, e.g. predictive over-dialling).
    """
    require_aware(now)
    reasons: list[Reason] = []
    add = reasons.append

    if is_closed(lead):
        add(Reason("closed", False, f"closed (funnel phase {lead.phase})"))
    if lead.dnc:
        add(Reason("dnc", False, f"{lead.phone} is on the do-not-call list"))

    max_attempts = rules.retry.max_attempts
    if attempts_left(lead, rules):
        add(Reason("attempts", True, f"attempt {lead.attempts + 1} of {max_attempts}"))
    else:
        add(Reason("attempts", False, f"all {max_attempts} attempts used"))

    add(_hours_reason(rules.hours, lead.timezone, now))

    cb = None
    if lead.callback is not None:
        cb = callback_status(lead.callback, rules, presence, now)
        add(_callback_reason(cb, lead, agent))
    if cb is None:
        link = _link_reason(lead, rules, now, agent)
        if link is not None:
            add(link)
        add(_retry_delay_reason(lead, rules, now))

    guaranteed = live_agent_guaranteed(rules, agent)
    for check, last, guard, what in (
        ("abandon-72h", lead.last_abandoned_at, rules.retry.abandon_guard, "abandoned"),
        ("machine-24h", lead.last_machine_at, rules.retry.machine_guard, "judged a machine"),
    ):
        if last is None or not guarded(last, guard, now):
            continue
        hours = guard.total_seconds() / 3600
        if guaranteed:
            add(Reason(check, True, f"{what} at {_utc(last)}; allowed: a live agent is guaranteed"))
        else:
            add(
                Reason(
                    check,
                    False,
                    f"{what} at {_utc(last)}: no redial within {hours:g} h unless a live agent "
                    f"is guaranteed (preview or reserved); pool dialling from {_utc(last + guard)}",
                    last + guard,
                )
            )
    return Explanation(lead.id, now, agent, tuple(reasons), cb)


@lru_cache(maxsize=4096)
def _hours_reason(hours: CallingHours, tz: str, now: datetime) -> Reason:
    """Cached: a campaign's leads share a handful of zones, and a selection asks about all
    of them at one ``now`` — the verdict depends on nothing else."""
    try:
        names = zones(tz)
    except UnknownTimeZone as exc:
        return Reason("hours", False, f"{exc}: cannot tell the local time, never dialled")
    open_now = calling_allowed(hours, tz, now)
    opening = None if open_now else next_opening(hours, tz, now)
    local = ", ".join(f"{now.astimezone(zone(n)):%a %H:%M} {n}" for n in names)
    if open_now:
        return Reason("hours", True, f"inside calling hours ({local})")
    if opening is None:
        return Reason("hours", False, f"outside calling hours ({local}); no window within a year")
    first = zone(names[0])
    return Reason(
        "hours",
        False,
        f"outside calling hours ({local}); next window opens "
        f"{opening.astimezone(first):%a %Y-%m-%d %H:%M} {names[0]} ({_utc(opening)})",
        opening,
    )


def _callback_reason(cb: CallbackStatus, lead: Lead, agent: str | None) -> Reason:
    assert lead.callback is not None
    comment = f' — "{lead.callback.comment}"' if lead.callback.comment else ""
    if callback_ok(cb.phase, cb.reserved_for, agent):
        return Reason("callback", True, f"callback due: {cb.why}{comment}")
    if cb.phase is CallbackPhase.PENDING:
        return Reason(
            "callback",
            False,
            f"callback not due until {_utc(lead.callback.due_at)}{comment}",
            lead.callback.due_at,
        )
    return Reason("callback", False, f"callback {cb.why}{comment}", cb.until)


def _link_reason(
    lead: Lead, rules: CampaignRules, now: datetime, agent: str | None
) -> Reason | None:
    owner = linked_owner(lead, rules, now)
    if owner is None:
        return None
    expires = link_expires_at(lead, rules)
    release = f"; released {_utc(expires)}" if expires is not None else ""
    if link_ok(owner, agent):
        return Reason("linked", True, f"linked to {owner} (this agent){release}")
    return Reason("linked", False, f"linked to {owner}: only {owner} gets it{release}", expires)


def _retry_delay_reason(lead: Lead, rules: CampaignRules, now: datetime) -> Reason:
    ready = retry_due_at(lead, rules)
    if ready is None:
        return Reason("retry", True, f"fresh lead, call score {call_score(lead):.2f}")
    if not retry_due(lead, rules, now):
        assert lead.last_attempt_at is not None  # a retry time comes from the last attempt
        return Reason(
            "retry",
            False,
            f"last attempt {lead.last_outcome} at {_utc(lead.last_attempt_at)}; "
            f"retry not before {_utc(ready)}",
            ready,
        )
    return Reason(
        "retry",
        True,
        f"retry after {lead.last_outcome} is due, call score {call_score(lead):.2f}",
    )


def render(explanation: Explanation) -> str:
    """Human-readable text for ``dialerd leads why``: a verdict line, then one line per check."""
    who = f"for agent {explanation.agent}" if explanation.agent else "for any agent"
    if explanation.dialable:
        verdict = "DIALABLE"
    else:
        earliest = explanation.earliest
        verdict = "NOT dialable" + (f" (earliest {_utc(earliest)})" if earliest is not None else "")
    lines = [f"lead {explanation.lead_id} at {_utc(explanation.at)} {who}: {verdict}"]
    for r in explanation.reasons:
        lines.append(f"  {'ok ' if r.ok else 'NO '} {r.check:<12} {r.message}")
    return "\n".join(lines)
