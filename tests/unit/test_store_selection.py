"""The store's side of the dial selection: the pool's redial-guard bounds, ready-only
selection, and claims made in one statement per 500 leads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from dialerd.store import SqliteStore
from dialerd.store.models import (
    AttemptRecord,
    CallbackStatus,
    LeadStatus,
    LeadUpdate,
    NewCallback,
    NewLead,
)
from tests.unit.test_leadflow_selection import campaign_config

NOW = 1_800_000_000.0
HOUR = 3600.0
ZONE = ["Europe/Amsterdam"]


@pytest_asyncio.fixture(loop_scope="session")
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = await SqliteStore.open(tmp_path / "s.db")
    campaign = await s.sync_campaign(campaign_config(), NOW)
    leads = [NewLead(f"+3120111000{i}", ZONE[0], {}, rank=i) for i in range(6)]
    await s.import_leads(campaign.id, leads, "t.csv", 0, NOW)
    try:
        yield s
    finally:
        await s.close()


async def _dialled(store: SqliteStore, lead_id: int, outcome: str, at: float) -> None:
    """One ready (delay over) no-contact attempt at `at`, with its guard time."""
    code = "voicemail" if outcome == "machine" else outcome
    await store.record_attempt(
        AttemptRecord(lead_id, at, code, 1, outcome),
        LeadUpdate(
            LeadStatus.READY, "prospect", 1, 3, 3.0, at, code, outcome, at,
            last_abandoned_at=at if outcome == "abandoned" else None,
            last_machine_at=at if outcome == "machine" else None,
        ),
    )  # fmt: skip


async def test_guard_bounds_leave_out_leads_at_or_after_them_r_dl_4(store: SqliteStore) -> None:
    """A lead abandoned at or after `abandoned_before` (or judged a machine at or after
    `machine_before`) is left out; one before the bound, and every lead without bounds,
    is returned."""
    await _dialled(store, 1, "abandoned", NOW - 10 * HOUR)
    await _dialled(store, 2, "abandoned", NOW - 80 * HOUR)
    await _dialled(store, 3, "machine", NOW - 10 * HOUR)
    await _dialled(store, 4, "machine", NOW - 30 * HOUR)
    bounds = {"abandoned_before": NOW - 10 * HOUR, "machine_before": NOW - 24 * HOUR}

    guarded = await store.select_dialable(1, NOW, ZONE, 10, callbacks=False, **bounds)
    everyone = await store.select_dialable(1, NOW, ZONE, 10, callbacks=False)

    assert [lead.id for lead in guarded.leads] == [2, 4, 5, 6]  # score 3.0, oldest first
    assert [lead.id for lead in everyone.leads] == [2, 4, 1, 3, 5, 6]
    assert (await store.select_dialable(1, NOW, ZONE, 10, callbacks=False)).callbacks == ()


async def test_ready_only_selection_leaves_due_callbacks_out(store: SqliteStore) -> None:
    await store.schedule_callback(NewCallback(1, NOW - 60, "due"), NOW - HOUR)
    both = await store.select_dialable(1, NOW, ZONE, 3)
    ready = await store.select_dialable(1, NOW, ZONE, 3, callbacks=False)
    assert [d.lead.id for d in both.callbacks] == [1]
    assert len(both.leads) == 2  # the limit counts the callback
    assert ready.callbacks == ()
    assert [lead.id for lead in ready.leads] == [2, 3, 4]
    assert (await store.select_dialable(1, NOW, [], 3, callbacks=False)).leads == ()


async def test_claim_for_dial_is_one_statement_with_the_same_answers(store: SqliteStore) -> None:
    """The ids won in the order asked, each once; callbacks offered only for leads won."""
    cb = await store.schedule_callback(NewCallback(2, NOW - 60, "due"), NOW - HOUR)
    assert await store.claim([3]) == [3]
    won = await store.claim_for_dial([(4, None), (3, None), (2, cb.id), (4, None), (1, None)])
    assert won == [4, 2, 1]
    offered = await store.open_callback(2)
    assert offered is not None and offered.status is CallbackStatus.OFFERED
    assert await store.claim_for_dial([(2, cb.id)]) == []
    statuses = [lead.status for i in (1, 2, 3, 4, 5) if (lead := await store.get_lead(i))]
    assert statuses == [LeadStatus.DIALING] * 4 + [LeadStatus.READY]
