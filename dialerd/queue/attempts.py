"""What a finished attempt means: apply it to a lead and write its history entry.

:func:`apply_attempt` is the single place where a call's end changes a lead: attempt count
and call score (R-RC-3), funnel phase (R-AD-1), link to the first agent who reached the
contact person (R-RC-6), callback (R-RC-4, R-REG-4b), the carried-over note (R-AD-3) and the
contact history entry with its e-mail status (R-AD-4, R-RC-5). It validates the agent's
disposition first, so an invalid one changes nothing (the caller keeps the old lead).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from dialerd.queue.callbacks import linked_owner
from dialerd.queue.codes import Category, ContactPriority, Outcome, ResultCode
from dialerd.queue.model import (
    Attempt,
    Callback,
    CallbackTarget,
    CampaignRules,
    EmailStatus,
    HistoryEntry,
    Lead,
)
from dialerd.queue.registration import registration_problems
from dialerd.queue.scoring import next_phase


class DispositionError(ValueError):
    """The agent's disposition cannot close the call; lists every problem at once."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


VOICEMAIL_CODE = "agent:voicemail"
"""The result code recorded when an agent marks an answered call as voicemail (R-REG-4a)."""


def system_code(outcome: Outcome) -> str:
    """The built-in result code for a dialer outcome the campaign maps to none (R-RC-1)."""
    return f"dialer:{outcome.value}"


@dataclass(frozen=True)
class Applied:
    """The lead's new summary and the history entry to append, stored together."""

    lead: Lead
    entry: HistoryEntry


def carry_note(call_note: str, detail_note: str) -> str:
    """The final note: what was typed during the call, then the detail screen's (R-AD-3)."""
    parts = [p.strip() for p in (call_note, detail_note) if p.strip()]
    return "\n".join(parts)


def effective_outcome(attempt: Attempt, code: ResultCode | None = None) -> Outcome:
    """The outcome the retry delay is taken from: a voicemail mark means not answered
    (R-REG-4a); an agent's code may ask to retry like a dialer outcome (``retry_as``)."""
    if attempt.voicemail_marked:
        return Outcome.NO_ANSWER
    if code is not None and code.retry_as is not None:
        return code.retry_as
    return attempt.outcome


def disposition_problems(attempt: Attempt, rules: CampaignRules) -> list[str]:
    """Everything that stops this attempt from being recorded as given."""
    if attempt.outcome is not Outcome.ANSWERED:
        if attempt.voicemail_marked:
            what = "ring-no-answer" if attempt.outcome is Outcome.NO_ANSWER else attempt.outcome
            return [
                f"only a call an agent answered can be marked as voicemail; {what} is "
                "already known to the dialer (R-REG-4a)"
            ]
        if attempt.result_code is not None:
            return [f"a {attempt.outcome} attempt gets the dialer's result code, not an agent's"]
        return []
    if attempt.agent is None:
        return ["an answered attempt needs the agent who took it"]
    if attempt.voicemail_marked:
        if attempt.result_code is not None:
            return ["a call marked as voicemail takes no result code (R-REG-4a)"]
        return []
    if attempt.result_code is None:
        return ["pick a result code before closing the call (R-RC-1)"]
    try:
        code = rules.code(attempt.result_code)
    except KeyError as exc:
        return [str(exc.args[0])]
    problems: list[str] = []
    if code.require_email and not (attempt.email_to or "").strip():
        problems.append(f"result code {code.code!r} requires an e-mail: pick an address (R-RC-5)")
    if attempt.detail_note.strip() and not code.detail_screen:
        problems.append(f"result code {code.code!r} has no detail screen for a note")
    if attempt.assign_to is not None and not code.allow_reassign:
        problems.append(f"result code {code.code!r} does not allow assigning to another agent")
    if attempt.reschedule is not None and code.category.closes:
        problems.append(f"result code {code.code!r} closes the address; it cannot be rescheduled")
    problems += registration_problems(
        rules.registration, attempt.registration, rules.forced_registration
    )
    return problems


def apply_attempt(lead: Lead, attempt: Attempt, rules: CampaignRules) -> Applied:
    """The lead after ``attempt`` and the history entry to append.

    Raises :class:`DispositionError` (nothing applied) if the disposition is incomplete.
    """
    problems = disposition_problems(attempt, rules)
    if problems:
        raise DispositionError(problems)
    code = _agent_code(attempt, rules)
    recorded = _recorded_code(attempt, code, rules)
    priority = recorded.priority if recorded is not None else ContactPriority.VERY_LOW
    outcome = effective_outcome(attempt, code)
    at = attempt.at
    phase = next_phase(lead.phase, priority, recorded)
    callback = _callback(attempt, code, priority, carry_note(attempt.call_note, ""))
    linked_agent, linked_at = _link(lead, attempt, priority, rules)
    new = replace(
        lead,
        attempts=lead.attempts + 1,
        score_total=lead.score_total + priority.score,
        last_attempt_at=at,
        last_outcome=outcome,
        # the guards follow what the dialer saw, not a code's retry_as
        last_abandoned_at=at if attempt.outcome is Outcome.ABANDONED else lead.last_abandoned_at,
        last_machine_at=at if attempt.outcome is Outcome.MACHINE else lead.last_machine_at,
        phase=phase,
        closed=lead.closed
        or not phase.in_funnel
        or (recorded is not None and recorded.category.closes),
        linked_agent=linked_agent,
        linked_at=linked_at,
        callback=callback,
    )
    email_to = (attempt.email_to or "").strip() or None
    entry = HistoryEntry(
        at=at,
        agent=attempt.agent,
        outcome=attempt.outcome,  # what happened; the retry view is on the lead
        result_code=recorded.code if recorded is not None else _builtin_code(attempt),
        priority=priority,
        note=carry_note(attempt.call_note, attempt.detail_note),
        recording=attempt.recording,
        email_to=email_to if code is not None and code.require_email else None,
        email_status=EmailStatus.PROCESSED if code is not None and code.require_email else None,
        voicemail_marked=attempt.voicemail_marked,
        callback_due=callback.due_at if callback is not None else None,
        callback_comment=callback.comment if callback is not None else "",
    )
    return Applied(new, entry)


def _agent_code(attempt: Attempt, rules: CampaignRules) -> ResultCode | None:
    if attempt.outcome is not Outcome.ANSWERED or attempt.voicemail_marked:
        return None
    assert attempt.result_code is not None  # checked by disposition_problems
    return rules.code(attempt.result_code)


def _recorded_code(
    attempt: Attempt, code: ResultCode | None, rules: CampaignRules
) -> ResultCode | None:
    """The campaign code the attempt is recorded with: the agent's, or the one the campaign
    maps a dialer outcome to; ``None`` means a built-in code (score "very low")."""
    if code is not None:
        return code
    mapped = rules.outcome_codes.get(attempt.outcome)
    if mapped is not None and not attempt.voicemail_marked:
        return rules.code(mapped)
    return None


def _builtin_code(attempt: Attempt) -> str:
    return VOICEMAIL_CODE if attempt.voicemail_marked else system_code(attempt.outcome)


def _callback(
    attempt: Attempt, code: ResultCode | None, priority: ContactPriority, note: str
) -> Callback | None:
    """The callback after this attempt; any earlier one is consumed by the attempt.

    An explicit reschedule wins (R-REG-4b, R-RC-4 "the agent may override"). Otherwise a
    callback-category code schedules ``callback_minutes`` ahead, reserved for the agent
    when the contact person was reached (the agreed call is theirs), else for any agent;
    its comment is what the agent typed during the call.
    """
    if attempt.reschedule is not None:
        r = attempt.reschedule
        return Callback(r.due_at, r.target, attempt.agent, r.comment.strip())
    if code is None or code.category is not Category.CALLBACK:
        return None
    assert code.callback_minutes is not None  # guaranteed by ResultCode
    target = CallbackTarget.MYSELF if priority.reached_contact_person else CallbackTarget.ANY
    due = attempt.at + timedelta(minutes=code.callback_minutes)
    return Callback(due, target, attempt.agent, note)


def _link(
    lead: Lead, attempt: Attempt, priority: ContactPriority, rules: CampaignRules
) -> tuple[str | None, datetime | None]:
    """Who owns the address after the attempt (R-RC-6).

    The first agent to reach the contact person owns it; an explicit assignment (a result
    code that allows it, R-RC-5) hands it over; a released link is forgotten.
    """
    if attempt.assign_to is not None:
        return attempt.assign_to, attempt.at
    if linked_owner(lead, rules, attempt.at) is not None:
        return lead.linked_agent, lead.linked_at
    if priority.reached_contact_person and attempt.agent is not None:
        return attempt.agent, attempt.at
    return None, None


_EMAIL_RANK = {
    EmailStatus.PROCESSED: 0,
    EmailStatus.DEFERRED: 1,
    EmailStatus.BOUNCED: 2,
    EmailStatus.DELIVERED: 2,
    EmailStatus.OPENED: 3,
    EmailStatus.CLICKED: 4,
}


def advance_email_status(current: EmailStatus | None, event: EmailStatus) -> EmailStatus:
    """The e-mail status after a delivery event (R-AD-4).

    Mail events arrive out of order (an "opened" can beat its "delivered"), so the status
    only moves forward; bounced and delivered are alternative ends of delivery and the first
    one reported stands, unless the mail is later opened or clicked (proof of delivery).
    """
    if current is None or _EMAIL_RANK[event] > _EMAIL_RANK[current]:
        return event
    return current


def record_email_event(entry: HistoryEntry, event: EmailStatus) -> HistoryEntry:
    """The history entry with its e-mail status advanced by ``event``."""
    if entry.email_to is None:
        raise ValueError("this history entry sent no e-mail")
    return replace(entry, email_status=advance_email_status(entry.email_status, event))
