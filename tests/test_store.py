"""The SQLite store behind the Store interface: schema, the dial selection, callbacks, DNC,
people, call log and registration (issue 4; R-CB, R-DL-4, R-LOG, R-REG)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dialerd.config import CallingHours, CampaignConfig, load_config
from dialerd.leads.numbers import open_zones
from dialerd.store import SqliteStore, Store, open_store
from dialerd.store import leads as leads_sql
from dialerd.store.db import SchemaTooNew, migrations, open_db
from dialerd.store.models import (
    Agent,
    AttemptRecord,
    CallbackStatus,
    ClientType,
    DncEntry,
    Extension,
    Lead,
    LeadStatus,
    LeadUpdate,
    NewCallback,
    NewLead,
)

REPO = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 11, 25, 16, 0, tzinfo=dt.UTC).timestamp()  # Wed 17:00 Amsterdam


@pytest.fixture
def demo() -> CampaignConfig:
    return load_config(REPO / "conf").campaigns["demo"]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await open_store(tmp_path / "t.db")
    yield s
    await s.close()


async def add_leads(store: Store, campaign_id: int, leads: list[NewLead]) -> None:
    async with store.lead_import(campaign_id, "test", NOW) as session:
        await session.add(leads)
        await session.finish(0)


def lead(number: str, tz: str = "Europe/Amsterdam", rank: int = 0) -> NewLead:
    return NewLead(number, tz, {"name": number[-4:]}, rank, rank + 2)


async def test_migrations_are_applied_once_and_enforce_foreign_keys(tmp_path: Path) -> None:
    db = await open_db(tmp_path / "m.db")
    await db.close()
    db = await open_db(tmp_path / "m.db")
    async with db.execute("SELECT version FROM schema_migrations") as cur:
        assert [r[0] for r in await cur.fetchall()] == [v for v, _, _ in migrations()]
    async with db.execute("PRAGMA journal_mode") as cur:
        assert (await cur.fetchone())[0] == "wal"
    with pytest.raises(sqlite3.IntegrityError):
        await db.execute(
            "INSERT INTO leads(campaign_id, number, tz, created_at) VALUES (99, 'x', 'UTC', 0)"
        )
    await db.close()


async def test_newer_schema_refuses_to_open(tmp_path: Path) -> None:
    db = await open_db(tmp_path / "m.db")
    await db.execute("INSERT INTO schema_migrations(version, name) VALUES (9999, 'future')")
    await db.close()
    with pytest.raises(SchemaTooNew, match="schema version 9999 is newer"):
        await open_db(tmp_path / "m.db")


async def test_sync_campaign_keeps_removed_codes_for_history(
    store: Store, demo: CampaignConfig
) -> None:
    """R-RC-1: a code dropped from YAML is deactivated, so old attempts keep their meaning."""
    first = await store.sync_campaign(demo, NOW)
    codes = {k: v for k, v in demo.result_codes.items() if k != "order"}
    again = await store.sync_campaign(demo.model_copy(update={"result_codes": codes}), NOW + 1)
    assert again.id == first.id
    assert again.updated_at == NOW + 1
    db = store._db  # type: ignore[attr-defined]
    async with db.execute(
        "SELECT code, active, score FROM result_codes WHERE code IN ('order', 'callback')"
    ) as cur:
        assert sorted(tuple(r) for r in await cur.fetchall()) == [
            ("callback", 1, 4),
            ("order", 0, 6),
        ]
    topics = await store.registration_topics(first.id)
    assert [(t.category, t.choice, t.name) for t in topics][:2] == [
        ("Reason for call", "single", "Information"),
        ("Reason for call", "single", "Complaint"),
    ]


async def test_selection_order_zones_dnc_and_attempts(store: Store, demo: CampaignConfig) -> None:
    """R-DL-4: only open zones, no DNC, attempts below max; queue order by call score, then
    never-dialled first, then import rank."""
    campaign = await store.sync_campaign(demo, NOW)
    await add_leads(
        store,
        campaign.id,
        [
            lead("+31201230001", rank=0),
            lead("+31201230002", rank=1),
            lead("+31201230003", rank=2),
            lead("+12127365000", "America/New_York", rank=3),
            lead("+14155550100", "America/Los_Angeles", rank=4),
        ],
    )
    assert await store.campaign_zones(campaign.id) == [
        "America/Los_Angeles",
        "America/New_York",
        "Europe/Amsterdam",
    ]
    hours = CallingHours.model_validate({"wed": ["09:00-21:00"]})
    zones = open_zones(
        hours, await store.campaign_zones(campaign.id), dt.datetime.fromtimestamp(NOW, dt.UTC)
    )
    assert zones == ["America/New_York", "Europe/Amsterdam"]  # LA is at 08:00
    # lead 2 dialled once with a better score, lead 3 on the DNC list
    await store.record_attempt(
        AttemptRecord(2, NOW - 3600, "not_cp", 3, "human"),
        LeadUpdate(
            LeadStatus.READY, "prospect", 1, 5, 5.0, NOW - 60, "not_cp", "human", NOW - 3600
        ),
    )
    await store.add_dnc([DncEntry("+31201230003", "asked", "test", NOW)])
    selection = await store.select_dialable(campaign.id, NOW, zones, 10, demo.max_attempts)
    assert [lead.number for lead in selection.leads] == [
        "+31201230002",
        "+31201230001",
        "+12127365000",
    ]
    capped = await store.select_dialable(campaign.id, NOW, zones, 10, max_attempts=1)
    assert "+31201230002" not in [lead.number for lead in capped.leads]
    assert [
        lead.number for lead in (await store.select_dialable(campaign.id, NOW, zones, 1)).leads
    ] == ["+31201230002"]


async def test_waiting_leads_wake_when_their_delay_passes(
    store: Store, demo: CampaignConfig
) -> None:
    campaign = await store.sync_campaign(demo, NOW)
    await add_leads(store, campaign.id, [lead("+31201230001")])
    await store.record_attempt(
        AttemptRecord(1, NOW, "busy", 1, "busy"),
        LeadUpdate(LeadStatus.WAITING, "prospect", 1, 3, 3.0, NOW + 600, "busy", "busy", NOW),
    )
    zones = ["Europe/Amsterdam"]
    assert (await store.select_dialable(campaign.id, NOW + 599, zones)).leads == ()
    woken = (await store.select_dialable(campaign.id, NOW + 600, zones)).leads
    assert [(w.number, w.status, w.attempts) for w in woken] == [
        ("+31201230001", LeadStatus.READY, 1)
    ]
    history = await store.attempts_of(1)
    assert [(a.result_code, a.score, a.outcome) for a in history] == [("busy", 1, "busy")]


async def test_due_callbacks_come_first_reserved_ones_included(
    store: Store, demo: CampaignConfig
) -> None:
    """R-CB-2/6/7/8: every due callback is offered, in due order, with its comment; whether
    a reservation holds depends on presence, which the queue rules decide."""
    campaign = await store.sync_campaign(demo, NOW)
    await add_leads(store, campaign.id, [lead(f"+3120123000{i}", rank=i) for i in range(1, 5)])
    await store.upsert_agent(Agent("alice", "Alice"))
    mine = await store.schedule_callback(
        NewCallback(1, NOW - 60, "call after lunch", "alice", NOW + 1140, "alice"), NOW - 7200
    )
    anyone = await store.schedule_callback(NewCallback(2, NOW - 30, "any agent"), NOW - 7200)
    await store.schedule_callback(NewCallback(3, NOW + 3600, "later"), NOW - 7200)
    zones = ["Europe/Amsterdam"]

    pool = await store.select_dialable(campaign.id, NOW, zones, 10)
    assert [d.callback.id for d in pool.callbacks] == [mine.id, anyone.id]
    assert [(d.callback.owner_agent, d.callback.reserved_until) for d in pool.callbacks] == [
        ("alice", NOW + 1140),
        (None, None),
    ]
    assert [d.lead.number for d in pool.callbacks] == ["+31201230001", "+31201230002"]
    assert [d.callback.comment for d in pool.callbacks] == ["call after lunch", "any agent"]
    assert [lead.number for lead in pool.leads] == ["+31201230004"]  # 1-3 wait for callbacks
    assert [c.id for c in await store.agent_callbacks("alice")] == [mine.id]
    await store.set_callback_status(mine.id, CallbackStatus.DONE)
    assert await store.agent_callbacks("alice") == []
    await store.add_dnc([DncEntry("+31201230002")])
    assert (await store.select_dialable(campaign.id, NOW, zones, 10)).callbacks == ()


async def test_claim_is_won_once(store: Store, demo: CampaignConfig) -> None:
    campaign = await store.sync_campaign(demo, NOW)
    await add_leads(store, campaign.id, [lead("+31201230001"), lead("+31201230002", rank=1)])
    assert await store.claim([1, 2]) == [1, 2]
    assert await store.claim([1, 2]) == []
    assert (await store.lead_counts(campaign.id)) == {"dialing": 2}


async def test_dnc_takes_leads_out_and_lists(store: Store, demo: CampaignConfig) -> None:
    campaign = await store.sync_campaign(demo, NOW)
    await add_leads(store, campaign.id, [lead("+31201230001"), lead("+31201230002", rank=1)])
    added, blocked = await store.add_dnc(
        [DncEntry("+31201230001", "asked"), DncEntry("+31699999999", "complaint")]
    )
    assert (added, blocked) == (2, 1)
    assert await store.add_dnc([DncEntry("+31201230001")]) == (0, 0)
    assert await store.dnc_subset(["+31201230001", "+31201230002"]) == {"+31201230001"}
    assert [e.number async for e in store.iter_dnc()] == ["+31201230001", "+31699999999"]
    assert await store.remove_dnc(["+31699999999", "+31000000000"]) == 1
    assert await store.lead_counts(campaign.id) == {"dnc": 1, "ready": 1}


async def test_agents_extensions_and_caller_id_lookup(store: Store) -> None:
    """R-LOG-4/5: extension -> agent, number -> client with its client type."""
    await store.upsert_agent(
        Agent("bob", "Bob", "bob@example.org", extensions=(Extension("1001", "PJSIP/1001"),))
    )
    agent = await store.agent_for_extension("1001")
    assert agent is not None
    assert (agent.user_id, agent.extensions) == ("bob", (Extension("1001", "PJSIP/1001", "bob"),))
    await store.upsert_agent(Agent("bob", "Robert", extensions=(Extension("1002", "PJSIP/1002"),)))
    assert await store.agent_for_extension("1001") is None
    assert (await store.get_agent("bob")).name == "Robert"  # type: ignore[union-attr]
    contact = await store.add_contact("Acme BV", ClientType.VIP, ["+31201234567", "+31612345678"])
    found = await store.lookup_number("+31612345678")
    assert found == contact
    assert await store.lookup_number("+31000000000") is None


async def test_registration_counts(store: Store, demo: CampaignConfig) -> None:
    """R-REG-3: counts per topic over a period, all agents."""
    campaign = await store.sync_campaign(demo, NOW)
    topics = {t.name: t.id for t in await store.registration_topics(campaign.id)}
    await store.register([topics["Sale"], topics["Energy"]], NOW)
    await store.register([topics["Sale"]], NOW + 10)
    await store.register([topics["Complaint"]], NOW + 10_000)
    assert await store.topic_counts(NOW, NOW + 100) == {topics["Sale"]: 2, topics["Energy"]: 1}


async def test_failed_import_leaves_nothing(store: Store, demo: CampaignConfig) -> None:
    """An exception inside an import rolls the whole batch back."""
    campaign = await store.sync_campaign(demo, NOW)

    async def interrupted() -> None:
        async with store.lead_import(campaign.id, "x", NOW) as session:
            await session.add([lead("+31201230001")])
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await interrupted()
    async with store.lead_import(campaign.id, "y", NOW) as session:
        await session.add([lead("+31201230002")])  # no finish: not committed
    assert await store.lead_counts(campaign.id) == {}
    assert isinstance(store, SqliteStore)


async def test_selection_beyond_one_compound_select(
    store: Store, demo: CampaignConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More open zones than one SELECT may hold: the parts are merged in queue order."""
    campaign = await store.sync_campaign(demo, NOW)
    zones = ["America/New_York", "Europe/Amsterdam", "Europe/London"]
    await add_leads(
        store,
        campaign.id,
        [lead(f"+3120123000{i}", zones[i % 3], rank=i) for i in range(1, 8)],
    )
    whole = await store.select_dialable(campaign.id, NOW, zones, 5)
    monkeypatch.setattr(leads_sql, "_MAX_ARMS", 1)
    split = await store.select_dialable(campaign.id, NOW, zones, 5)
    assert [x.rank for x in split.leads] == [x.rank for x in whole.leads] == [1, 2, 3, 4, 5]
    none_open = await store.select_dialable(campaign.id, NOW, [], 5)
    assert none_open.leads == ()


async def test_selection_wakes_due_leads_even_with_callbacks_pending(
    store: Store, demo: CampaignConfig
) -> None:
    campaign = await store.sync_campaign(demo, NOW)
    await add_leads(store, campaign.id, [lead("+31201230001"), lead("+31201230002", rank=1)])
    await store.schedule_callback(NewCallback(1, NOW - 10, "due"), NOW - 100)
    await store.record_attempt(
        AttemptRecord(2, NOW - 100, "busy", 1, "busy"),
        LeadUpdate(LeadStatus.WAITING, "prospect", 1, 3, 3.0, NOW - 1, "busy", "busy", NOW - 100),
    )
    selection = await store.select_dialable(campaign.id, NOW, ["Europe/Amsterdam"], 5)
    assert [d.lead.id for d in selection.callbacks] == [1]
    assert [x.id for x in selection.leads] == [2]


def test_lead_fields_follow_the_selected_columns() -> None:
    """Rows map to Lead positionally (the hot path), so the orders must agree."""
    columns = [c.strip() for c in leads_sql.LEAD_COLS.split(",")]
    assert columns == [f.name for f in dataclasses.fields(Lead)]


async def test_dnc_during_a_call_survives_the_attempt(store: Store, demo: CampaignConfig) -> None:
    """R-DL-4: the rules computed 'ready' from the lead before the call; DNC still wins."""
    campaign = await store.sync_campaign(demo, NOW)
    await add_leads(store, campaign.id, [lead("+31201230001")])
    assert await store.claim([1]) == [1]
    await store.add_dnc([DncEntry("+31201230001", "asked during the call")])
    await store.record_attempt(
        AttemptRecord(1, NOW, "not_cp", 3, "human"),
        LeadUpdate(LeadStatus.READY, "prospect", 1, 5, 5.0, NOW, "not_cp", "human", NOW),
    )
    await store.schedule_callback(NewCallback(1, NOW + 60, "call back"), NOW)
    stored = await store.get_lead(1)
    assert stored is not None
    assert (stored.status, stored.attempts) == (LeadStatus.DNC, 1)
