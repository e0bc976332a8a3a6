"""Result codes, contact priorities and funnel phases: the vocabulary of a finished call.

These are the rules' own types. The campaign YAML (``dialerd.config``) is parsed and
validated by pydantic there and *built into* these frozen dataclasses, so the queue rules
never depend on how configuration is spelled (R-RC-1, R-RC-2, R-RC-4, R-RC-5, R-AD-1).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum


class ContactPriority(Enum):
    """How far a contact attempt got; the value is the documents' score (R-RC-2)."""

    VERY_LOW = 1
    """Nobody reached (voicemail, busy)."""
    OPEN = 2
    """The address was never worked (the implicit first history entry)."""
    MEDIUM = 3
    """Somebody reached, not the contact person."""
    HIGH = 4
    """Contact person reached, may call back any time."""
    VERY_HIGH = 6
    """Contact person reached, callback at an agreed time."""

    @property
    def score(self) -> int:
        return self.value

    @property
    def reached_contact_person(self) -> bool:
        """Scores 4 and 6 mean the contact person was reached: the address gets linked (R-RC-6)."""
        return self in (ContactPriority.HIGH, ContactPriority.VERY_HIGH)


class Outcome(StrEnum):
    """What the dialer saw of one attempt (the agent's result code comes on top)."""

    ANSWERED = "answered"
    """A person answered and was connected to an agent, who gives the result code."""
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    """Rang without answer — or an agent marked the call as voicemail (R-REG-4a)."""
    MACHINE = "machine"
    """Answering-machine detection said "machine"; no agent heard it."""
    ABANDONED = "abandoned"
    """A person answered and no agent was connected in time."""
    FAILED = "failed"
    """Congestion, invalid number, channel unavailable."""


class Category(StrEnum):
    """What a result code means for the address's future (R-RC-1)."""

    NO_CONTACT = "no-contact"
    """Retry later under the retry policy."""
    CALLBACK = "callback"
    """The documents' "4. Callback": offered again after the callback minutes."""
    POSITIVE = "positive"
    """Goal reached (appointment, sale): the address is done for the dialer."""
    NEGATIVE = "negative"
    """Not interested: the address leaves the funnel."""
    DISCARDED = "discarded"
    """Wrong number, duplicate, unusable: the address leaves the funnel."""

    @property
    def closes(self) -> bool:
        """Whether using a code of this category ends dialing of the address."""
        return self in (Category.POSITIVE, Category.NEGATIVE, Category.DISCARDED)


class FunnelPhase(StrEnum):
    """Sales-funnel phase of an address (R-AD-1), in funnel order, then the exits."""

    SUSPECT = "suspect"
    PROSPECT = "prospect"
    QUALIFIED_PROSPECT = "qualified_prospect"
    LEAD = "lead"
    QUALIFIED_LEAD = "qualified_lead"
    QUOTE = "quote"
    ORDER = "order"
    DISCARDED = "discarded"
    NEGATIVE = "negative"
    LOST = "lost"

    @property
    def in_funnel(self) -> bool:
        return self not in _EXITS

    @property
    def rank(self) -> int:
        """Position in the funnel (Suspect 0 … Order 6); exits have no rank (-1)."""
        return _FUNNEL.index(self) if self.in_funnel else -1


_EXITS = frozenset({FunnelPhase.DISCARDED, FunnelPhase.NEGATIVE, FunnelPhase.LOST})
_FUNNEL: tuple[FunnelPhase, ...] = tuple(p for p in FunnelPhase if p not in _EXITS)


@dataclass(frozen=True)
class ResultCode:
    """One disposition an agent (or the dialer) can give a finished attempt.

    ``funnel_phase`` is the phase this code moves the address to; ``None`` lets the
    defaults of :func:`dialerd.queue.scoring.next_phase` decide. ``force_phase`` allows the
    one defined backward move (e.g. outside sales rejects a lead back to qualified
    prospect); without it phases only move forward. ``retry_as`` makes a no-contact code
    wait the retry delay of a dialer outcome (e.g. an agent's "voicemail" code retrying like
    ``no_answer``); it changes the delay only, never the AMD/abandon redial guards.
    """

    code: str
    category: Category
    priority: ContactPriority
    label: str = ""
    callback_minutes: int | None = None
    detail_screen: bool = False
    allow_reassign: bool = False
    require_email: bool = False
    funnel_phase: FunnelPhase | None = None
    force_phase: bool = False
    retry_as: Outcome | None = None

    def __post_init__(self) -> None:
        if not self.code:
            raise ValueError("a result code needs a non-empty code")
        if self.priority is ContactPriority.OPEN:
            raise ValueError(
                f"result code {self.code!r}: priority 'open' only describes an address "
                "never worked; pick very-low, medium, high or very-high"
            )
        if self.category is Category.CALLBACK and not self.callback_minutes:
            raise ValueError(
                f"result code {self.code!r}: category 'callback' needs callback_minutes > 0"
            )
        if self.callback_minutes is not None and self.callback_minutes <= 0:
            raise ValueError(f"result code {self.code!r}: callback_minutes must be > 0")
        if self.force_phase and self.funnel_phase is None:
            raise ValueError(f"result code {self.code!r}: force_phase needs a funnel_phase")
        if self.retry_as is not None and (
            self.category is not Category.NO_CONTACT or self.retry_as is Outcome.ANSWERED
        ):
            raise ValueError(
                f"result code {self.code!r}: retry_as is for no-contact codes and names a "
                "dialer outcome (busy, no_answer, machine, abandoned, failed)"
            )
