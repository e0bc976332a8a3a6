"""The queue's own model of a lead, an attempt and a campaign's rules.

Everything is a frozen dataclass and every instant is a tz-aware ``datetime`` passed in by
the caller: the rules read no clock and do no I/O. The store maps its rows to these types
(one row per lead carries exactly the summary fields of :class:`Lead`; the contact history
is its own table of :class:`HistoryEntry`), and the config layer builds
:class:`CampaignRules` from the campaign YAML.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum, StrEnum

from dialerd.queue.codes import Category, ContactPriority, FunnelPhase, Outcome, ResultCode
from dialerd.queue.hours import CallingHours, require_aware

LeadId = int | str
"""The store's integer id; tests may use readable strings. Final tie-break of the queue."""


class EmailStatus(StrEnum):
    """Tracked state of the e-mail a result code required (R-AD-4), in delivery order."""

    PROCESSED = "processed"
    DEFERRED = "deferred"
    BOUNCED = "bounced"
    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"


class CallbackTarget(StrEnum):
    """Who a rescheduled call is for (R-REG-4b)."""

    MYSELF = "myself"
    ANY = "any"


class DialMode(StrEnum):
    """Per campaign (R-DL-1), named as in ``dialerd.pacing.create_pacer``. Preview
    guarantees a live agent on every call it makes."""

    PREVIEW = "preview"
    PROGRESSIVE = "progressive"
    RATIO = "ratio"
    PREDICTIVE = "predictive"


class TieBreak(StrEnum):
    """Order among retries/fresh leads with an equal call score."""

    LEAST_RECENT = "least-recent"
    """Longest since the last attempt first; never-dialled leads before all others."""
    FEWEST_ATTEMPTS = "fewest-attempts"
    IMPORT_ORDER = "import-order"
    """By :attr:`Lead.rank` (the order of the import file, or an explicit priority)."""


@dataclass(frozen=True)
class Callback:
    """A scheduled callback on a lead (R-CB, R-RC-4).

    ``agent`` is the agent who scheduled it; for ``MYSELF`` it is also the agent the call is
    reserved for. ``comment`` travels with the call to whoever receives it (R-CB-7).
    """

    due_at: datetime
    target: CallbackTarget
    agent: str | None
    comment: str

    def __post_init__(self) -> None:
        require_aware(self.due_at)
        if self.target is CallbackTarget.MYSELF and not self.agent:
            raise ValueError("a 'myself' callback needs the agent it is reserved for")


@dataclass(frozen=True)
class CallbackRequest:
    """The agent's reschedule: date/time, target and a mandatory comment (R-REG-4b)."""

    due_at: datetime
    target: CallbackTarget
    comment: str

    def __post_init__(self) -> None:
        require_aware(self.due_at)
        if not self.comment.strip():
            raise ValueError("rescheduling needs a comment (R-REG-4b)")


@dataclass(frozen=True)
class Lead:
    """One address as the rules see it: identity plus a summary of its history.

    ``score_total`` starts at 2, the implicit "Open" entry every address begins with, and
    ``attempts`` counts real dial attempts only; together they give the call score
    (see :func:`dialerd.queue.scoring.call_score`).
    """

    id: LeadId
    phone: str
    timezone: str
    """IANA zone; several joined by "," when the number's zone is ambiguous (all must be
    inside calling hours)."""
    rank: int = 0
    dnc: bool = False
    phase: FunnelPhase = FunnelPhase.SUSPECT
    closed: bool = False
    attempts: int = 0
    score_total: int = ContactPriority.OPEN.score
    last_attempt_at: datetime | None = None
    last_outcome: Outcome | None = None
    last_abandoned_at: datetime | None = None
    last_machine_at: datetime | None = None
    linked_agent: str | None = None
    linked_at: datetime | None = None
    callback: Callback | None = None

    def __post_init__(self) -> None:
        if self.attempts < 0:
            raise ValueError(f"lead {self.id}: attempts must be >= 0")
        if (self.linked_agent is None) != (self.linked_at is None):
            raise ValueError(f"lead {self.id}: linked_agent and linked_at go together")
        for when in (self.last_attempt_at, self.last_abandoned_at, self.last_machine_at):
            if when is not None:
                require_aware(when)


@dataclass(frozen=True)
class Attempt:
    """One finished contact attempt, as reported by the dialer and the agent.

    For ``ANSWERED`` attempts the agent's disposition is mandatory: ``result_code`` (unless
    the agent marked the call as voicemail), plus what the code's flags demand.
    """

    at: datetime
    outcome: Outcome
    agent: str | None = None
    result_code: str | None = None
    call_note: str = ""
    """Typed during the call; carried into the final note (R-AD-3)."""
    detail_note: str = ""
    """Typed on the result code's detail screen (R-RC-5)."""
    voicemail_marked: bool = False
    """The agent's "answered by machine" mark (R-REG-4a)."""
    reschedule: CallbackRequest | None = None
    email_to: str | None = None
    assign_to: str | None = None
    recording: str | None = None
    registration: Mapping[str, tuple[str, ...]] | None = None

    def __post_init__(self) -> None:
        require_aware(self.at)


@dataclass(frozen=True)
class HistoryEntry:
    """One line of an address's contact history (R-AD-4)."""

    at: datetime
    agent: str | None
    outcome: Outcome
    result_code: str | None
    priority: ContactPriority
    note: str
    recording: str | None = None
    email_to: str | None = None
    email_status: EmailStatus | None = None
    voicemail_marked: bool = False
    callback_due: datetime | None = None
    callback_comment: str = ""


@dataclass(frozen=True)
class RetryPolicy:
    """Retry delays per outcome, a maximum and the live-agent guards (R-DL-4).

    ``answered`` is the delay after a live call whose result code asked for neither a
    callback nor closing (e.g. "contact person not in"). The two guards are regulatory
    floors, not preferences: an abandoned number is not redialled within 72 h and a number
    AMD judged "machine" not within 24 h, unless a live agent is guaranteed on the call.
    """

    max_attempts: int = 5
    busy: timedelta = timedelta(minutes=15)
    no_answer: timedelta = timedelta(hours=2)
    machine: timedelta = timedelta(hours=24)
    abandoned: timedelta = timedelta(hours=72)
    failed: timedelta = timedelta(hours=1)
    answered: timedelta = timedelta(hours=4)
    abandon_guard: timedelta = timedelta(hours=72)
    machine_guard: timedelta = timedelta(hours=24)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        for name in ("busy", "no_answer", "machine", "abandoned", "failed", "answered"):
            if getattr(self, name) < timedelta(0):
                raise ValueError(f"retry delay {name} must not be negative")

    def delay(self, outcome: Outcome) -> timedelta:
        """The wait after an attempt that ended in ``outcome``."""
        return {
            Outcome.ANSWERED: self.answered,
            Outcome.BUSY: self.busy,
            Outcome.NO_ANSWER: self.no_answer,
            Outcome.MACHINE: self.machine,
            Outcome.ABANDONED: self.abandoned,
            Outcome.FAILED: self.failed,
        }[outcome]


@dataclass(frozen=True)
class RegistrationCategory:
    """An admin-defined registration category with its topics (R-REG-1)."""

    name: str
    topics: tuple[str, ...]
    multi: bool = False
    """Checkbox (several topics) rather than radio (exactly one)."""

    def __post_init__(self) -> None:
        if not self.topics:
            raise ValueError(f"registration category {self.name!r} needs at least one topic")
        if len(set(self.topics)) != len(self.topics):
            raise ValueError(f"registration category {self.name!r} repeats a topic")


@dataclass(frozen=True)
class CampaignRules:
    """Everything the queue rules need to know about one campaign."""

    result_codes: tuple[ResultCode, ...]
    hours: CallingHours
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    mode: DialMode = DialMode.PROGRESSIVE
    reservation_window: timedelta = timedelta(minutes=20)
    link_release: timedelta | None = None
    """How long a linked address stays with its agent; ``None`` = until worked out."""
    tie_break: TieBreak = TieBreak.LEAST_RECENT
    forced_registration: bool = False
    registration: tuple[RegistrationCategory, ...] = ()
    outcome_codes: Mapping[Outcome, str] = field(default_factory=dict)
    """The no-contact result code each dialer outcome is recorded with (R-RC-1); an
    unmapped outcome gets the built-in ``dialer:<outcome>`` code with score 1."""

    def __post_init__(self) -> None:
        codes = [c.code for c in self.result_codes]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValueError(f"duplicate result codes: {', '.join(dupes)}")
        if self.reservation_window < timedelta(0):
            raise ValueError("reservation_window must not be negative")
        if self.link_release is not None and self.link_release <= timedelta(0):
            raise ValueError("link_release must be positive (or absent)")
        if self.forced_registration and not self.registration:
            raise ValueError("forced registration needs at least one registration category")
        by_code = {c.code: c for c in self.result_codes}
        for outcome, name in self.outcome_codes.items():
            if outcome is Outcome.ANSWERED:
                raise ValueError("an answered call gets the agent's code, not a mapped one")
            mapped = by_code.get(name)
            if mapped is None or mapped.category is not Category.NO_CONTACT:
                raise ValueError(
                    f"dialer outcome {outcome} maps to {name!r}, which is not a no-contact "
                    "result code of this campaign"
                )

    def code(self, name: str) -> ResultCode:
        """The result code called ``name``; ``KeyError`` naming the known ones."""
        for c in self.result_codes:
            if c.code == name:
                return c
        known = ", ".join(c.code for c in self.result_codes) or "none"
        raise KeyError(f"unknown result code {name!r} (known: {known})")


class AgentState(Enum):
    """An agent as the selection sees them at one instant."""

    AVAILABLE = "available"
    BUSY = "busy"
    """Logged in but on a call, in wrap-up or paused."""


@dataclass(frozen=True)
class Presence:
    """Who is logged in and who of them is available, at one instant."""

    agents: Mapping[str, AgentState] = field(default_factory=dict)

    @classmethod
    def of(cls, available: Iterable[str] = (), busy: Iterable[str] = ()) -> Presence:
        """Build from two lists; an agent in both counts as available."""
        agents = {a: AgentState.BUSY for a in busy}
        agents.update({a: AgentState.AVAILABLE for a in available})
        return cls(agents)

    def logged_in(self, agent: str) -> bool:
        return agent in self.agents

    def available(self, agent: str) -> bool:
        return self.agents.get(agent) is AgentState.AVAILABLE
