"""Call score, funnel transitions and engagement score (R-RC-3, R-AD-1, R-AD-2).

See docs/queue.md for the reasoning behind each formula; the short version:

* call score = (2 + sum of attempt scores) / max(attempts, 1). The "2" is the implicit Open
  entry every address starts with; it adds to the total but is not an attempt. That is the
  only reading of the documents' example (Open 2, Voicemail 1, Callback 4 → total 7,
  score 3.5) that reproduces its number: 7 / 2 dial attempts.
* funnel phases only move forward, except into an exit (discarded/negative/lost) or when a
  result code explicitly forces its phase.
* engagement score 0–100 = funnel progress + best contact reached + e-mail response.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from dialerd.queue.codes import Category, ContactPriority, FunnelPhase, ResultCode
from dialerd.queue.model import EmailStatus, HistoryEntry, Lead


def call_score_of(scores: Sequence[int]) -> float:
    """Call score from the scores of the real attempts, in order (R-RC-3).

    >>> call_score_of([1, 4])   # Open 2 + Voicemail 1 + Callback 4 = 7, over 2 dials
    3.5
    """
    return (ContactPriority.OPEN.score + sum(scores)) / max(len(scores), 1)


def call_score(lead: Lead) -> float:
    """The lead's call score from its summary; higher is dialled sooner."""
    return lead.score_total / max(lead.attempts, 1)


def next_phase(
    current: FunnelPhase, priority: ContactPriority, code: ResultCode | None
) -> FunnelPhase:
    """The funnel phase after an attempt with ``priority`` and result ``code`` (R-AD-1).

    ``code`` is ``None`` for attempts the dialer closed on its own (busy, no answer, …).
    """
    if code is not None and code.force_phase:
        assert code.funnel_phase is not None  # guaranteed by ResultCode
        return code.funnel_phase
    if not current.in_funnel:
        return current  # exits are final unless a code forces a way back
    if code is not None:
        exit_phase = _exit_for(code)
        if exit_phase is not None:
            return exit_phase
    floor = FunnelPhase.PROSPECT
    if priority.reached_contact_person:
        floor = FunnelPhase.QUALIFIED_PROSPECT
    candidates = [current, floor]
    if code is not None and code.funnel_phase is not None:
        candidates.append(code.funnel_phase)
    return max(candidates, key=lambda p: p.rank)


def _exit_for(code: ResultCode) -> FunnelPhase | None:
    if code.funnel_phase is not None and not code.funnel_phase.in_funnel:
        return code.funnel_phase
    if code.category is Category.NEGATIVE:
        return FunnelPhase.NEGATIVE
    if code.category is Category.DISCARDED:
        return FunnelPhase.DISCARDED
    return None


_EMAIL_POINTS = {
    EmailStatus.DELIVERED: 5,
    EmailStatus.OPENED: 10,
    EmailStatus.CLICKED: 10,
}


def engagement_score(phase: FunnelPhase, history: Iterable[HistoryEntry]) -> int:
    """How engaged an address is, 0–100 (R-AD-2; our own definition).

    * funnel: 10 points per phase past Suspect (Prospect 10 … Order 60);
    * contact: 5 × the best contact-priority score reached (very low 5 … very high 30);
    * e-mail: 10 if any e-mail was opened or clicked, 5 if only delivered.

    An address outside the funnel (discarded, negative, lost) scores 0: it is no longer
    engaged, whatever happened before.
    """
    if not phase.in_funnel:
        return 0
    best = 0
    email = 0
    for entry in history:
        best = max(best, entry.priority.score)
        if entry.email_status is not None:
            email = max(email, _EMAIL_POINTS.get(entry.email_status, 0))
    return min(100, 10 * phase.rank + 5 * best + email)
