"""`LeadFlow.next_leads` against the rules applied to every lead: the store's prefilter
(zones, attempts, links, the pool's redial guards) and the narrow window it reads must give
exactly the offers ``queue.select`` gives over the whole campaign.

The campaign is built through the flow itself (claims, dialer outcomes, dispositions) at
past instants, so every stored summary is what the rules wrote. The redial-guarded leads
outnumber the store's window and sit ahead of the dialable ones in queue order, as they do
in a running campaign (one no-contact attempt scores 3.0, a fresh lead 2.0).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio

from dialerd import queue as q
from dialerd.config import load_config
from dialerd.config.models import CampaignConfig
from dialerd.leadflow import LeadFlow, Reschedule, _owners_first, to_datetime, to_queue_lead
from dialerd.store import SqliteStore
from dialerd.store.models import Agent, DncEntry, LeadStatus, NewLead

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 25, 16, 0, tzinfo=UTC).timestamp()  # Wed: NL 17:00, NY 11, LA 08
HOUR = 3600.0
AGENTS = ("a1", "a2", "a3", "a4")
PRESENCE = q.Presence.of(available=["a1", "a2"], busy=["a3"])  # a4 logged out
ZONES = ("Europe/Amsterdam", "America/New_York", "America/Los_Angeles")
REG = {"Reason for call": ("Information",)}


def campaign_config() -> CampaignConfig:
    """The demo campaign (predictive: the pool is guarded) with office hours."""
    demo = load_config(REPO / "conf").campaigns["demo"]
    hours = {d: ["09:00-21:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    return CampaignConfig.model_validate(
        {**demo.model_dump(mode="json"), "name": "c", "calling_hours": hours}
    )


@pytest_asyncio.fixture(loop_scope="session")
async def flow(tmp_path: Path) -> AsyncIterator[LeadFlow]:
    store = await SqliteStore.open(tmp_path / "sel.db")
    try:
        yield await _campaign(store)
    finally:
        await store.close()


async def _campaign(store: SqliteStore) -> LeadFlow:
    """600 leads in three zones, a few days into dialling (see the module docstring)."""
    config = campaign_config()
    campaign = await store.sync_campaign(config, NOW - 200 * HOUR)
    for agent in AGENTS:
        await store.upsert_agent(Agent(agent, agent))
    leads = [NewLead(f"+312011{i:05d}", ZONES[i % 3], {}, rank=i) for i in range(600)]
    await store.import_leads(campaign.id, leads, "t.csv", 0, NOW - 200 * HOUR)
    flow = LeadFlow(store, {"c": config})
    rng = random.Random(5)
    ids = list(range(1, 601))
    rng.shuffle(ids)
    await store.add_dnc([DncEntry(leads[i - 1].number, "t", "t", NOW) for i in ids[:15]])

    async def outcome(lead_ids: list[int], what: q.Outcome, hours: tuple[float, float]) -> None:
        for lead_id in await store.claim(lead_ids):
            at = NOW - rng.uniform(*hours) * HOUR
            await flow.dialer_outcome(lead_id, "c", what, at - 30, at)

    async def callback(lead_ids: list[int], ended: float, due: tuple[float, float]) -> None:
        for lead_id in await store.claim(lead_ids):
            mine = rng.random() < 0.7
            await flow.disposition(
                lead_id, "c", rng.choice(AGENTS), "callback", registration=REG,
                reschedule=Reschedule(
                    NOW + rng.uniform(*due) * HOUR,
                    q.CallbackTarget.MYSELF if mine else q.CallbackTarget.ANY, "ring back",
                ),
                started=ended - 60, ended=ended,
            )  # fmt: skip

    await outcome(ids[15:135], q.Outcome.ABANDONED, (1, 71.9))  # guarded (72 h)
    await outcome(ids[135:255], q.Outcome.MACHINE, (1, 23.9))  # guarded (24 h)
    await outcome(ids[255:275], q.Outcome.ABANDONED, (72.1, 90))  # free again
    await outcome(ids[275:335], q.Outcome.BUSY, (0, 2))  # due or waiting
    await callback(ids[335:355], NOW - 30 * HOUR, (-27, -27))  # linked, then not reached:
    await outcome(ids[335:355], q.Outcome.NO_ANSWER, (20, 26))  # ready, owned by one agent
    await callback(ids[355:385], NOW - 3 * HOUR, (-0.7, 0))  # due, some windows over
    await callback(ids[385:400], NOW - 3 * HOUR, (1, 40))  # later
    return flow


async def reference(
    flow: LeadFlow,
    n: int,
    agent: str | None,
    presence: q.Presence | None,
    exclude: frozenset[int] = frozenset(),
) -> list[int]:
    """The offers of ``queue.select`` over every lead of the campaign (no store filter)."""
    store = flow._store
    rules = flow.rules("c")
    at = to_datetime(NOW)
    candidates = []
    owners = []
    async for lead in store.iter_leads(1):
        assert lead.status is not LeadStatus.DIALING
        cb = await store.open_callback(lead.id)
        if cb is not None and cb.due_at <= NOW and cb.owner_agent is not None:
            owners.append(cb.owner_agent)
        if lead.id not in exclude:
            candidates.append(to_queue_lead(lead, cb))
    floor = presence or q.Presence.of(available=[agent] if agent else [], busy=owners)
    offers = q.select(candidates, rules, floor, at, agent, limit=n)
    if agent is None and presence is not None:
        offers = _owners_first(candidates, rules, presence, at, offers, n)
    return [int(o.lead.id) for o in offers]


@pytest.mark.parametrize(
    ("n", "agent", "presence"),
    [
        (5, None, PRESENCE),  # a pacing tick: the window is far smaller than the guarded block
        (60, None, PRESENCE),
        (400, None, PRESENCE),  # more than there is: every dialable lead, nothing else
        (40, None, None),
        (1, "a1", PRESENCE),  # an agent's own pick: reserved callback, link, guards lifted
        (30, "a2", PRESENCE),
    ],
)
async def test_next_leads_equals_the_rules_over_every_lead_r_dl_4_r_cb_2(
    flow: LeadFlow, n: int, agent: str | None, presence: q.Presence | None
) -> None:
    """R-DL-4 (hours, attempts, DNC, 72 h / 24 h guards), R-RC-6 (links), R-CB-2/3/5/6/8
    (callbacks first, reservations): the store's narrow window changes nothing."""
    expected = await reference(flow, n, agent, presence)
    claimed = await flow.next_leads("c", n, NOW, agent, presence=presence)
    assert [c.lead_id for c in claimed] == expected
    assert len(expected) == n or n == 400


async def test_excluded_leads_are_passed_over_like_the_rules_would(flow: LeadFlow) -> None:
    """A skipped preview (``exclude``) leaves the window one lead short: still exact."""
    skipped = frozenset((await reference(flow, 30, None, PRESENCE))[::3])
    expected = await reference(flow, 30, None, PRESENCE, skipped)
    claimed = await flow.next_leads("c", 30, NOW, presence=PRESENCE, exclude=skipped)
    assert [c.lead_id for c in claimed] == expected
    assert not skipped & set(expected)


async def test_pool_skips_guarded_leads_an_agent_may_take_r_dl_4(flow: LeadFlow) -> None:
    """The pool gets none of the guarded leads ahead in the queue; a named agent (a live
    agent guaranteed) gets them first."""
    store = flow._store
    pool = await flow.next_leads("c", 50, NOW, presence=PRESENCE)
    mine = await flow.next_leads("c", 50, NOW, "a2", presence=PRESENCE)
    guard = {"abandoned": 72 * HOUR, "machine": 24 * HOUR}

    async def guarded(lead_id: int) -> bool:
        lead = await store.get_lead(lead_id)
        assert lead is not None
        times = {"abandoned": lead.last_abandoned_at, "machine": lead.last_machine_at}
        return any(t is not None and t + guard[k] > NOW for k, t in times.items())

    assert not [c.lead_id for c in pool if await guarded(c.lead_id)]
    assert sum([await guarded(c.lead_id) for c in mine]) > 25
