"""The store interface: what the rest of dialerd may ask of persistence.

Callers depend on this Protocol, never on SQLite: a PostgreSQL backend is one more class that
satisfies it. Every method speaks the frozen dataclasses of ``dialerd.store.models``; times
are UTC epoch seconds passed in by the caller: the store reads no clock for anything that
drives behaviour, so tests and the simulator control time (only audit columns such as an
agent's created_at take the database's clock).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from dialerd.config.models import CampaignConfig
from dialerd.store.flow import FlowStore
from dialerd.store.models import (
    Agent,
    AttemptRecord,
    Callback,
    CallbackStatus,
    Campaign,
    ClientType,
    Contact,
    DncEntry,
    ImportBatch,
    Lead,
    LeadUpdate,
    NewCallback,
    NewLead,
    RegistrationTopic,
    Selection,
)


class LeadImport(Protocol):
    """One lead import in progress (see `Store.lead_import`)."""

    async def screen(self, numbers: Sequence[str]) -> dict[str, str]:
        """Numbers the store refuses: "dnc" (on the DNC list) or "exists" (already in the
        campaign before this import)."""

    async def add(self, leads: Sequence[NewLead]) -> None:
        """Insert a chunk (may proceed in the background; errors surface by `finish`)."""

    async def finish(self, rejected: int) -> ImportBatch:
        """Record the batch (rows in = added + rejected) and commit on context exit."""


class Store(FlowStore, Protocol):
    """Persistence for campaigns, leads, callbacks, people, calls and the DNC list."""

    async def close(self) -> None:
        """Release the connection(s)."""

    # campaigns ------------------------------------------------------------------------------
    async def sync_campaign(self, config: CampaignConfig, now: float) -> Campaign:
        """Create or update a campaign from YAML, with its result codes and registration
        topics (codes dropped from YAML are deactivated, never deleted: history keeps them)."""

    async def get_campaign(self, name: str) -> Campaign | None:
        """The campaign called `name`, if it was ever synced."""

    async def list_campaigns(self) -> list[Campaign]:
        """All campaigns, by name."""

    async def lead_counts(self, campaign_id: int) -> dict[str, int]:
        """Number of leads per status (statuses without leads are absent)."""

    # leads ----------------------------------------------------------------------------------
    async def import_leads(
        self, campaign_id: int, leads: Sequence[NewLead], source: str, rejected: int, now: float
    ) -> ImportBatch:
        """Insert already-checked `leads` all-or-nothing and record the batch (rows in =
        len(leads) + rejected): `lead_import` in one call, for callers with a list at hand."""

    def lead_import(
        self, campaign_id: int, source: str, now: float
    ) -> AbstractAsyncContextManager[LeadImport]:
        """An all-or-nothing import: rows become visible only if `LeadImport.finish` is
        called before the context exits; any exception (or no finish) rolls back."""

    async def next_rank(self, campaign_id: int) -> int:
        """The rank after the campaign's last lead, so import order continues across files."""

    async def lead_field_names(self, campaign_id: int) -> list[str]:
        """The custom-field names used by the campaign's leads, in first-seen order."""

    async def get_lead(self, lead_id: int) -> Lead | None:
        """One lead by id."""

    def iter_leads(self, campaign_id: int) -> AsyncIterator[Lead]:
        """Every lead of a campaign in import order (for export)."""

    async def campaign_zones(self, campaign_id: int) -> list[str]:
        """The distinct time-zone keys of the campaign's leads."""

    async def wake_due(self, now: float) -> int:
        """Move waiting leads whose retry delay has passed to ready; returns how many."""

    async def select_dialable(
        self,
        campaign_id: int,
        now: float,
        open_zones: Collection[str],
        limit: int = 500,
        max_attempts: int | None = None,
        agent: str | None = None,
        link_release_before: float | None = None,
        *,
        abandoned_before: float | None = None,
        machine_before: float | None = None,
        callbacks: bool = True,
    ) -> Selection:
        """Every due callback (by due time, reserved ones too: reservations depend on
        presence) and ready leads in `open_zones` (by queue order), excluding DNC numbers,
        leads linked to another agent, and leads abandoned at or after `abandoned_before`
        or judged a machine at or after `machine_before` (the pool's redial guards); at
        most `limit` in all. ``callbacks=False``: ready leads only.

        A superset filter for ``dialerd.queue``'s rules, which make the final decision.
        """

    async def claim(self, lead_ids: Sequence[int]) -> list[int]:
        """Mark ready leads as dialing; returns the ids this caller won."""

    async def record_attempt(self, attempt: AttemptRecord, update: LeadUpdate) -> int:
        """Store an attempt and the lead's new summary in one transaction; the attempt id."""

    async def attempts_of(self, lead_id: int) -> list[AttemptRecord]:
        """A lead's contact history, oldest first (R-AD-4)."""

    # callbacks ------------------------------------------------------------------------------
    async def schedule_callback(self, callback: NewCallback, now: float) -> Callback:
        """Schedule a callback; the lead leaves the ready queue until it is due."""

    async def agent_callbacks(self, agent: str) -> list[Callback]:
        """An agent's pending callbacks by due time (R-CB-1)."""

    async def set_callback_status(self, callback_id: int, status: CallbackStatus) -> None:
        """Move a callback on (offered, done, cancelled)."""

    # DNC ------------------------------------------------------------------------------------
    async def add_dnc(self, entries: Iterable[DncEntry]) -> tuple[int, int]:
        """Add numbers to the DNC list; (new numbers, leads taken out of the queue)."""

    async def remove_dnc(self, numbers: Iterable[str]) -> int:
        """Remove numbers from the DNC list; how many were there."""

    async def dnc_subset(self, numbers: Iterable[str]) -> set[str]:
        """The subset of `numbers` on the DNC list."""

    def iter_dnc(self) -> AsyncIterator[DncEntry]:
        """The whole DNC list, by number."""

    # people ---------------------------------------------------------------------------------
    async def upsert_agent(self, agent: Agent) -> None:
        """Create or update an agent and replace their extensions."""

    async def get_agent(self, user_id: str) -> Agent | None:
        """One agent with their extensions."""

    async def agent_for_extension(self, extension: str) -> Agent | None:
        """Who owns an extension (R-LOG-5)."""

    async def add_contact(
        self, name: str, client_type: ClientType, numbers: Sequence[str], note: str = ""
    ) -> Contact:
        """Register a client with its numbers (R-LOG-4)."""

    async def lookup_number(self, number: str) -> Contact | None:
        """Caller-ID lookup: the client known by an E.164 number."""

    # registration ---------------------------------------------------------------------------
    async def registration_topics(self, campaign_id: int | None) -> list[RegistrationTopic]:
        """Active topics of a campaign's categories (None: the campaign-less ones)."""

    async def register(
        self,
        topic_ids: Sequence[int],
        at: float,
        call_id: int | None = None,
        attempt_id: int | None = None,
        agent: str | None = None,
    ) -> None:
        """Record the topics an agent registered for a call (R-REG-1/2)."""

    async def topic_counts(self, since: float, until: float) -> dict[int, int]:
        """Registrations per topic id over a period, all agents (R-REG-3)."""
