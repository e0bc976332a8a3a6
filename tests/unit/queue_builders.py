"""Shared builders for the queue's table-driven tests: a fixed clock, a campaign, leads.

Every test passes time in explicitly; ``at("Mon 12:00")`` style helpers keep the tables
readable. The reference week starts Monday 2026-11-23 (UTC).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any

from dialerd.queue import (
    Attempt,
    CallingHours,
    CampaignRules,
    Category,
    ContactPriority,
    FunnelPhase,
    Lead,
    Outcome,
    RegistrationCategory,
    ResultCode,
    RetryPolicy,
)

MONDAY = datetime(2026, 11, 23, tzinfo=UTC)
_DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


def at(spec: str) -> datetime:
    """``"mon 12:00"`` (UTC, reference week), ``"mon+7 12:00"`` (a week later) or ISO."""
    day, _, hhmm = spec.partition(" ")
    name, _, plus = day.partition("+")
    if name.lower() in _DAYS:
        h, m = (int(x) for x in hhmm.split(":"))
        offset = _DAYS[name.lower()] + int(plus or 0)
        return MONDAY + timedelta(days=offset, hours=h, minutes=m)
    return datetime.fromisoformat(spec).replace(tzinfo=UTC)


VERY_LOW = ContactPriority.VERY_LOW
MEDIUM = ContactPriority.MEDIUM
HIGH = ContactPriority.HIGH
VERY_HIGH = ContactPriority.VERY_HIGH

CODES = (
    ResultCode("voicemail", Category.NO_CONTACT, VERY_LOW),
    ResultCode("not-in", Category.NO_CONTACT, MEDIUM),
    ResultCode("callback", Category.CALLBACK, HIGH, callback_minutes=180),
    ResultCode("agreed", Category.CALLBACK, VERY_HIGH, callback_minutes=60),
    ResultCode("gatekeeper-cb", Category.CALLBACK, MEDIUM, callback_minutes=30),
    ResultCode("appointment", Category.POSITIVE, VERY_HIGH, funnel_phase=FunnelPhase.LEAD),
    ResultCode("not-interested", Category.NEGATIVE, HIGH),
    ResultCode("wrong-number", Category.DISCARDED, MEDIUM),
    ResultCode(
        "brochure",
        Category.CALLBACK,
        HIGH,
        callback_minutes=1440,
        require_email=True,
        detail_screen=True,
    ),
    ResultCode("handover", Category.NO_CONTACT, HIGH, allow_reassign=True),
    ResultCode("sales-accepted", Category.POSITIVE, HIGH, funnel_phase=FunnelPhase.QUALIFIED_LEAD),
    ResultCode("quote-sent", Category.POSITIVE, VERY_HIGH, funnel_phase=FunnelPhase.QUOTE),
    ResultCode("ordered", Category.POSITIVE, VERY_HIGH, funnel_phase=FunnelPhase.ORDER),
    ResultCode("lost", Category.NEGATIVE, HIGH, funnel_phase=FunnelPhase.LOST),
    ResultCode(
        "sales-rejected",
        Category.NO_CONTACT,
        HIGH,
        funnel_phase=FunnelPhase.QUALIFIED_PROSPECT,
        force_phase=True,
    ),
)

TOPICS = (
    RegistrationCategory("reason", ("price", "quality", "service")),
    RegistrationCategory("interest", ("solar", "heat-pump", "battery"), multi=True),
)

OFFICE_HOURS = CallingHours.weekdays(time(9), time(21))


def rules(**kw: Any) -> CampaignRules:
    """A campaign that is always open unless ``hours=`` says otherwise."""
    base = CampaignRules(result_codes=CODES, hours=CallingHours.always(), registration=TOPICS)
    if "retry" not in kw:
        kw["retry"] = RetryPolicy()
    return replace(base, **kw)


def lead(**kw: Any) -> Lead:
    base: dict[str, Any] = {"id": "L1", "phone": "+31205550101", "timezone": "Europe/Amsterdam"}
    base.update(kw)
    return Lead(**base)


def answered(when: str, code: str | None = "not-in", agent: str = "ann", **kw: Any) -> Attempt:
    return Attempt(at=at(when), outcome=Outcome.ANSWERED, agent=agent, result_code=code, **kw)


def dialer(when: str, outcome: Outcome) -> Attempt:
    return Attempt(at=at(when), outcome=outcome)
