"""The typed rows the store hands out and takes in: frozen dataclasses, no SQL.

Times are UTC seconds since the epoch (float), numbers are E.164, agents are their text user
id. Code outside ``dialerd.store`` speaks only these types (and ``dialerd.store.api.Store``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class LeadStatus(StrEnum):
    """Where a lead is in its life; see the schema comment on ``leads`` for each state."""

    WAITING = "waiting"
    READY = "ready"
    DIALING = "dialing"
    CALLBACK = "callback"
    DONE = "done"
    EXHAUSTED = "exhausted"
    DNC = "dnc"


class ClientType(StrEnum):
    """Client type shown in the call log (R-LOG-1)."""

    PROSPECT = "prospect"
    CUSTOMER = "customer"
    PROBLEM = "problem"
    VIP = "vip"


class CallbackStatus(StrEnum):
    """A callback is pending until offered to an agent, then done (or cancelled)."""

    PENDING = "pending"
    OFFERED = "offered"
    DONE = "done"
    CANCELLED = "cancelled"


class Direction(StrEnum):
    """Call direction in the call log."""

    IN = "in"
    OUT = "out"


class CallStatus(StrEnum):
    """Answered, missed, or unknown when the PBX did not say (R-LOG-1)."""

    ANSWERED = "answered"
    MISSED = "missed"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class CallEntry:
    """One finished call, everything the call log shows (R-LOG-1/3): what the call-log fold
    (`dialerd.calllog.fold`) concludes and what the store keeps, keyed by the linkedid
    (stored as ``uniqueid``; an outbound attempt's row logged at dial time is completed)."""

    linkedid: str
    direction: Direction
    status: CallStatus
    number: str
    started_at: float
    caller_id: str | None = None
    dialed: str | None = None
    extension: str | None = None
    agent: str | None = None
    contact_id: int | None = None
    client_type: ClientType | None = None
    lead_id: int | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    duration_seconds: float | None = None
    too_long: bool = False
    fallback: str | None = None


class JsonFields(Mapping[str, str]):
    """A lead's custom fields, decoded from their stored JSON only when first read.

    The dial selection hands out hundreds of leads at a time and most callers never look
    at the custom fields; decoding them lazily keeps "next 500 leads" cheap.
    """

    __slots__ = ("_data", "_raw")

    def __init__(self, raw: str) -> None:
        self._raw = raw
        self._data: dict[str, str] | None = None

    def _decoded(self) -> dict[str, str]:
        if self._data is None:
            self._data = json.loads(self._raw)
        return self._data

    def __getitem__(self, key: str) -> str:
        return self._decoded()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._decoded())

    def __len__(self) -> int:
        return len(self._decoded())

    def __repr__(self) -> str:
        return f"JsonFields({self._raw})"


@dataclass(frozen=True)
class Campaign:
    """A campaign row; its rules are the YAML (``dialerd.config.CampaignConfig``)."""

    id: int
    name: str
    config_json: str
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class NewLead:
    """A lead about to be inserted (already normalised and checked by the importer)."""

    number: str
    tz: str
    fields: Mapping[str, str] = field(default_factory=dict)
    rank: int = 0
    source_line: int | None = None


@dataclass(frozen=True)
class Lead:
    """One address (lead) with the summary of its history the queue rules need.

    Field order is the column order of ``dialerd.store.leads.LEAD_COLS`` (rows map
    positionally, a test keeps the two in step).
    """

    id: int
    campaign_id: int
    number: str
    tz: str
    fields: Mapping[str, str]
    status: LeadStatus
    phase: str
    rank: int
    attempts: int
    score_total: int
    call_score: float
    next_dial_at: float
    contact_id: int | None = None
    linked_agent: str | None = None
    linked_at: float | None = None
    last_result: str | None = None
    last_outcome: str | None = None
    last_attempt_at: float | None = None
    last_abandoned_at: float | None = None
    last_machine_at: float | None = None
    source_line: int | None = None
    created_at: float = 0.0


@dataclass(frozen=True)
class LeadUpdate:
    """The new summary of a lead after an attempt, as computed by the queue rules."""

    status: LeadStatus
    phase: str
    attempts: int
    score_total: int
    call_score: float
    next_dial_at: float
    last_result: str | None
    last_outcome: str | None
    last_attempt_at: float | None
    last_abandoned_at: float | None = None
    last_machine_at: float | None = None
    linked_agent: str | None = None
    linked_at: float | None = None


@dataclass(frozen=True)
class Callback:
    """A scheduled callback (R-CB). ``owner_agent`` None means any agent (R-CB-8)."""

    id: int
    lead_id: int
    campaign_id: int
    owner_agent: str | None
    due_at: float
    reserved_until: float | None
    comment: str
    status: CallbackStatus
    created_by: str | None
    created_at: float


@dataclass(frozen=True)
class NewCallback:
    """A callback to schedule; ``reserved_until`` = due + the campaign's window."""

    lead_id: int
    due_at: float
    comment: str
    owner_agent: str | None = None
    reserved_until: float | None = None
    created_by: str | None = None


@dataclass(frozen=True)
class DueCallback:
    """A due callback with its lead, as the dial selection returns it."""

    callback: Callback
    lead: Lead


@dataclass(frozen=True)
class Selection:
    """What may be dialed now for a campaign: due callbacks first, then ready leads."""

    callbacks: tuple[DueCallback, ...]
    leads: tuple[Lead, ...]


@dataclass(frozen=True)
class AttemptRecord:
    """One finished attempt (R-AD-4 contact history)."""

    lead_id: int
    started_at: float
    result_code: str
    score: int
    outcome: str | None = None
    ended_at: float | None = None
    agent: str | None = None
    call_id: int | None = None
    note: str = ""
    email_to: str | None = None
    email_status: str | None = None
    id: int | None = None


@dataclass(frozen=True)
class Contact:
    """A client (R-LOG-1/4) with the numbers it is known by (caller-ID lookup)."""

    id: int
    name: str
    client_type: ClientType
    note: str
    numbers: tuple[str, ...]


@dataclass(frozen=True)
class Agent:
    """An agent/user, keyed by the text user id, with their extensions (R-LOG-5)."""

    user_id: str
    name: str
    email: str | None = None
    role: str = "agent"
    active: bool = True
    extensions: tuple[Extension, ...] = ()


@dataclass(frozen=True)
class Extension:
    """An extension and how Asterisk reaches it (``PJSIP/1001``)."""

    extension: str
    endpoint: str
    agent: str | None = None


@dataclass(frozen=True)
class DncEntry:
    """A do-not-call number (R-DL-4)."""

    number: str
    reason: str = ""
    source: str = ""
    added_at: float = 0.0


@dataclass(frozen=True)
class RegistrationTopic:
    """A topic in a registration category, as stored (R-REG-1)."""

    id: int
    category_id: int
    category: str
    choice: str
    name: str


@dataclass(frozen=True)
class ImportBatch:
    """The audit row of one lead import: rows in = imported + rejected."""

    id: int
    campaign_id: int
    source: str
    rows_in: int
    imported: int
    rejected: int
    imported_at: float
