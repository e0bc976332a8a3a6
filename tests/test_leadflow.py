"""The lead flow end to end on a real SQLite file with a fixed clock.

Campaign ``sales`` (written as YAML and read by the real loader): Mon–Fri 09:00–21:00 in
the lead's zone, max 3 attempts, busy 10 min, no answer 60 min, machine 240 min, abandoned
5 min, failed 720 min; guards 72 h (abandon) / 24 h (machine); reservation window 20 min;
forced registration. The clock starts Monday 2026-11-23 12:00 UTC (13:00 in Amsterdam).
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from click.testing import CliRunner

from dialerd.cli import cli
from dialerd.config import load_config
from dialerd.leadflow import (
    RECOVERY_NOTE,
    Claimed,
    DispositionError,
    LeadFlow,
    Reschedule,
)
from dialerd.queue import AgentState, CallbackTarget, Outcome, Presence
from dialerd.store import SqliteStore
from dialerd.store.calllog import CallLogStore
from dialerd.store.flow import LeadNotDialing
from dialerd.store.models import (
    Agent,
    CallEntry,
    CallStatus,
    Direction,
    LeadStatus,
    NewLead,
)

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC).timestamp()
MIN = 60.0
HOUR = 3600.0

DAEMON_YAML = """\
ami: {user: dialerd, secret: x}
store: {path: dialerd.db}
"""

SALES_YAML = """\
name: sales
mode: progressive
dial_string: PJSIP/{number}@carrier
default_region: NL
default_timezone: Europe/Amsterdam
calling_hours:
  mon: ["09:00-21:00"]
  tue: ["09:00-21:00"]
  wed: ["09:00-21:00"]
  thu: ["09:00-21:00"]
  fri: ["09:00-21:00"]
max_attempts: 3
retry_after_contact_minutes: 240
reservation_window_minutes: 20
link_release_minutes: 10080
retry:
  busy:      {result_code: busy, delay_minutes: 10}
  no_answer: {result_code: no_answer, delay_minutes: 60}
  machine:   {result_code: voicemail, delay_minutes: 240}
  abandoned: {result_code: abandoned, delay_minutes: 5}
  failed:    {result_code: failed, delay_minutes: 720}
result_codes:
  busy:      {label: Busy, category: no-contact, contact_priority: very_low}
  no_answer: {label: No answer, category: no-contact, contact_priority: very_low}
  voicemail: {label: Voicemail, category: no-contact, contact_priority: very_low}
  abandoned: {label: Abandoned, category: no-contact, contact_priority: very_low}
  failed:    {label: Failed, category: no-contact, contact_priority: very_low}
  not_cp:    {label: Not the contact person, category: no-contact, contact_priority: medium}
  callback:
    label: Call back later
    category: callback
    contact_priority: high
    callback_minutes: 180
    flags: {detail_screen: true}
  appointment:
    label: Appointment
    category: positive
    contact_priority: very_high
    funnel_phase: lead
    flags: {detail_screen: true, require_email: true}
  not_interested: {label: Not interested, category: negative, contact_priority: high}
registration:
  forced: true
  categories:
    - {name: Reason, choice: single, topics: [Information, Complaint, Sale]}
    - {name: Products, choice: multi, topics: [Energy, Internet]}
"""

NUMBERS = ("+31201110001", "+31201110002", "+31201110003", "+31201110004")


def write_config(directory: Path) -> Path:
    (directory / "campaigns").mkdir(parents=True, exist_ok=True)
    (directory / "dialerd.yaml").write_text(DAEMON_YAML)
    (directory / "campaigns" / "sales.yaml").write_text(SALES_YAML)
    return directory


@dataclasses.dataclass
class Env:
    """A migrated database with campaign ``sales``, agents ann/bob/cid and some leads."""

    path: Path
    store: SqliteStore
    flow: LeadFlow
    campaign_id: int
    leads: list[int]

    async def reopen(self) -> None:
        """Close the store and build a new flow on the same file (a daemon restart)."""
        await self.store.close()
        self.store = await SqliteStore.open(self.path)
        self.flow = LeadFlow(self.store, load_config(self.path.parent).campaigns)

    async def status(self, lead_id: int) -> LeadStatus:
        lead = await self.store.get_lead(lead_id)
        assert lead is not None
        return lead.status

    async def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row the flow may write, for "nothing changed" assertions."""
        tables = ("leads", "attempts", "callbacks", "registrations")
        out = {}
        for table in tables:
            async with self.store._db.execute(f"SELECT * FROM {table} ORDER BY 1") as cur:
                out[table] = [tuple(r) for r in await cur.fetchall()]
        return out


async def make_env(tmp_path: Path, zones: tuple[str, ...] = ("Europe/Amsterdam",) * 4) -> Env:
    config = load_config(write_config(tmp_path))
    path = tmp_path / "dialerd.db"
    store = await SqliteStore.open(path)
    campaign = await store.sync_campaign(config.campaigns["sales"], T0 - HOUR)
    for user in ("ann", "bob", "cid"):
        await store.upsert_agent(Agent(user, user.title()))
    new = [NewLead(n, tz, {"name": f"Customer {i}"}, rank=i) for i, (n, tz) in
           enumerate(zip(NUMBERS, zones, strict=True))]  # fmt: skip
    await store.import_leads(campaign.id, new, "test.csv", 0, T0 - HOUR)
    ids = [lead.id async for lead in store.iter_leads(campaign.id)]
    return Env(path, store, LeadFlow(store, config.campaigns), campaign.id, ids)


@pytest_asyncio.fixture(loop_scope="session")
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    e = await make_env(tmp_path)
    yield e
    await e.store.close()


async def claim_one(env: Env, now: float, agent: str | None = None) -> Claimed:
    got = await env.flow.next_leads("sales", 1, now, agent)
    assert len(got) == 1, got
    return got[0]


REG = {"Reason": ["Sale"]}


async def reschedule_to(
    env: Env, owner: str, due: float, target: CallbackTarget = CallbackTarget.MYSELF
) -> int:
    """``owner`` takes the first lead and reschedules it (R-REG-4b); the lead id."""
    c = await claim_one(env, T0, owner)
    await env.flow.disposition(
        c.lead_id, "sales", owner, "callback",
        reschedule=Reschedule(due, target, "call after lunch, ask for Piet"),
        registration=REG, started=T0, ended=T0 + 2 * MIN,
    )  # fmt: skip
    return c.lead_id


async def park_other_leads(env: Env, keep: int) -> None:
    """Close every lead but ``keep`` so the queue holds only the callback under test."""
    for lead_id in env.leads:
        if lead_id == keep:
            continue
        await env.store.claim_for_dial([(lead_id, None)])
        await env.flow.disposition(
            lead_id, "sales", "cid", "not_interested",
            registration=REG, started=T0, ended=T0 + MIN,
        )  # fmt: skip


# -- claiming -----------------------------------------------------------------------------


async def test_next_leads_claims_before_originate_r_dl_1(env: Env) -> None:
    """Claimed leads are ``dialing`` (committed) when next_leads returns: a second caller
    (or a restarted daemon) cannot take them again."""
    got = await env.flow.next_leads("sales", 2, T0)
    assert [c.number for c in got] == list(NUMBERS[:2])
    assert all(c.attempt == 1 and c.campaign == "sales" for c in got)
    assert all(c.reserved_for is None and c.callback_comment == "" for c in got)
    for c in got:
        assert await env.status(c.lead_id) is LeadStatus.DIALING
    other = LeadFlow(env.store, {"sales": env.flow._configs["sales"]})
    rest = await other.next_leads("sales", 10, T0)
    assert {c.lead_id for c in rest}.isdisjoint(c.lead_id for c in got)
    assert len(rest) == 2


async def test_calling_hours_in_the_leads_own_zone_r_dl_4(tmp_path: Path) -> None:
    """12:00 UTC is 13:00 in Amsterdam (open) and 07:00 in New York (closed)."""
    e = await make_env(tmp_path, ("America/New_York", "Europe/Amsterdam") * 2)
    try:
        got = await e.flow.next_leads("sales", 10, T0)
        assert [c.number for c in got] == [NUMBERS[1], NUMBERS[3]]
        later = await e.flow.next_leads("sales", 10, T0 + 3 * HOUR)  # 10:00 in New York
        assert [c.number for c in later] == [NUMBERS[0], NUMBERS[2]]
    finally:
        await e.store.close()


# -- dialer outcomes and retries (R-DL-3, R-DL-4) -------------------------------------------


async def test_busy_waits_its_delay_then_retries_r_dl_4(env: Env) -> None:
    c = await claim_one(env, T0)
    await env.flow.dialer_outcome(c.lead_id, "sales", Outcome.BUSY, T0, T0 + 20)
    lead = await env.store.get_lead(c.lead_id)
    assert lead is not None
    assert (lead.status, lead.attempts, lead.last_result) == (LeadStatus.WAITING, 1, "busy")
    assert lead.next_dial_at == T0 + 20 + 10 * MIN
    [attempt] = await env.store.attempts_of(c.lead_id)
    assert (attempt.outcome, attempt.result_code, attempt.score) == ("busy", "busy", 1)
    await park_other_leads(env, c.lead_id)
    assert await env.flow.next_leads("sales", 5, T0 + 9 * MIN) == []
    again = await claim_one(env, T0 + 11 * MIN)
    assert (again.lead_id, again.attempt) == (c.lead_id, 2)


async def test_no_answer_until_max_attempts_exhausts_r_dl_4(env: Env) -> None:
    c = await claim_one(env, T0)
    await park_other_leads(env, c.lead_id)
    now = T0
    for attempt in (1, 2, 3):
        if attempt > 1:
            assert (await claim_one(env, now)).attempt == attempt
        await env.flow.dialer_outcome(c.lead_id, "sales", Outcome.NO_ANSWER, now, now + 30)
        now += 61 * MIN
    assert await env.status(c.lead_id) is LeadStatus.EXHAUSTED
    assert await env.flow.next_leads("sales", 5, now + 24 * HOUR) == []
    assert len(await env.store.attempts_of(c.lead_id)) == 3


async def test_machine_guard_blocks_pool_not_a_named_agent_r_dl_3(env: Env) -> None:
    """After AMD said machine: the 240 min retry delay passes, but the 24 h guard keeps
    the pool (predictive over-dialling) off the number; a call for a named agent, who is
    guaranteed live, may dial it."""
    c = await claim_one(env, T0)
    await park_other_leads(env, c.lead_id)
    await env.flow.dialer_outcome(c.lead_id, "sales", Outcome.MACHINE, T0, T0 + 10)
    lead = await env.store.get_lead(c.lead_id)
    assert lead is not None
    assert lead.last_machine_at == T0 + 10 and lead.last_result == "voicemail"
    assert await env.flow.next_leads("sales", 1, T0 + 5 * HOUR) == []
    got = await env.flow.next_leads("sales", 1, T0 + 5 * HOUR, agent="bob")
    assert [g.lead_id for g in got] == [c.lead_id]


async def test_abandon_guard_72h_for_the_pool_r_dl_4(env: Env) -> None:
    c = await claim_one(env, T0)
    await park_other_leads(env, c.lead_id)
    await env.flow.dialer_outcome(c.lead_id, "sales", Outcome.ABANDONED, T0, T0 + 5)
    # the 5 min retry delay is long over, the 72 h guard is not (Tuesday, Wednesday 13:00)
    for day in (1, 2):
        assert await env.flow.next_leads("sales", 1, T0 + day * 24 * HOUR) == []
    assert len(await env.flow.next_leads("sales", 1, T0 + 72 * HOUR + 10)) == 1


async def test_answered_outcome_goes_through_disposition(env: Env) -> None:
    c = await claim_one(env, T0)
    with pytest.raises(ValueError, match="disposition"):
        await env.flow.dialer_outcome(c.lead_id, "sales", Outcome.ANSWERED, T0, T0 + 1)
    assert await env.status(c.lead_id) is LeadStatus.DIALING


async def test_an_outcome_is_recorded_once(env: Env) -> None:
    c = await claim_one(env, T0)
    await env.flow.dialer_outcome(c.lead_id, "sales", Outcome.BUSY, T0, T0 + 5)
    with pytest.raises(LeadNotDialing):
        await env.flow.dialer_outcome(c.lead_id, "sales", Outcome.BUSY, T0, T0 + 5)
    assert len(await env.store.attempts_of(c.lead_id)) == 1


# -- dispositions ---------------------------------------------------------------------------


async def test_voicemail_mark_retries_as_not_answered_r_reg_4a(env: Env) -> None:
    """The agent marks an answered call as voicemail: recorded with the campaign's machine
    code, retried after the no-answer delay (60 min), and no 24 h machine guard."""
    c = await claim_one(env, T0, "ann")
    await env.flow.disposition(
        c.lead_id, "sales", "ann", None, voicemail=True, registration=REG,
        started=T0, ended=T0 + MIN,
    )  # fmt: skip
    lead = await env.store.get_lead(c.lead_id)
    assert lead is not None
    assert (lead.status, lead.last_result, lead.last_outcome) == (
        LeadStatus.WAITING, "voicemail", "no_answer",
    )  # fmt: skip
    assert lead.next_dial_at == T0 + MIN + 60 * MIN and lead.last_machine_at is None
    [a] = await env.store.attempts_of(c.lead_id)
    assert (a.outcome, a.agent, a.result_code) == ("human", "ann", "voicemail")


async def test_forced_registration_refusal_changes_nothing_r_reg_2(env: Env) -> None:
    """Every problem is listed at once and not a row changes (R-REG-2, R-REG-4b, R-RC-5)."""
    c = await claim_one(env, T0, "ann")
    before = await env.snapshot()
    with pytest.raises(DispositionError) as caught:
        await env.flow.disposition(
            c.lead_id, "sales", "ann", "appointment",
            reschedule=Reschedule(T0 + HOUR, CallbackTarget.ANY, "  "),
            started=T0, ended=T0 + MIN,
        )  # fmt: skip
    problems = caught.value.problems
    assert any("registration is required" in p for p in problems)
    assert any("requires an e-mail" in p for p in problems)
    assert any("needs a comment" in p for p in problems)
    assert await env.snapshot() == before
    with pytest.raises(DispositionError, match="unknown result code 'sold'"):
        await env.flow.disposition(
            c.lead_id, "sales", "ann", "sold", registration=REG, started=T0, ended=T0 + MIN
        )
    with pytest.raises(DispositionError, match="single-choice"):
        await env.flow.disposition(
            c.lead_id, "sales", "ann", "not_cp", registration={"Reason": ["Sale", "Complaint"]},
            started=T0, ended=T0 + MIN,
        )  # fmt: skip
    assert await env.snapshot() == before
    assert await env.status(c.lead_id) is LeadStatus.DIALING


async def test_disposition_links_moves_phase_registers_r_rc_6(env: Env) -> None:
    """A code reaching the contact person (high) links the address to the agent (R-RC-6),
    moves the funnel (R-AD-1), carries the call note into the attempt (R-AD-3), sends the
    e-mail (status processed, R-RC-5) and stores the registration (R-REG-1/3)."""
    c = await claim_one(env, T0, "ann")
    await env.flow.disposition(
        c.lead_id, "sales", "ann", "appointment", call_note="wants solar",
        detail_note="Tuesday 10:00 at home", email_to="piet@example.nl",
        registration={"Reason": ["Sale"], "Products": ["Energy", "Internet"]},
        started=T0, ended=T0 + 3 * MIN,
    )  # fmt: skip
    lead = await env.store.get_lead(c.lead_id)
    assert lead is not None
    assert (lead.status, lead.phase, lead.linked_agent) == (LeadStatus.DONE, "lead", "ann")
    assert lead.call_score == (2 + 6) / 1
    [a] = await env.store.attempts_of(c.lead_id)
    assert a.note == "wants solar\nTuesday 10:00 at home"
    assert (a.email_to, a.email_status, a.score) == ("piet@example.nl", "processed", 6)
    counts = await env.store.topic_counts(T0, T0 + HOUR)
    assert sorted(counts.values()) == [1, 1, 1]


async def test_a_linked_address_stays_with_its_agent_r_rc_6(env: Env) -> None:
    c = await claim_one(env, T0, "ann")
    await park_other_leads(env, c.lead_id)
    await env.flow.disposition(
        c.lead_id, "sales", "ann", "not_cp", registration=REG, started=T0, ended=T0 + MIN
    )
    # not_cp (medium) does not link; "callback" (high) by bob does
    later = T0 + 5 * HOUR
    got = await claim_one(env, later, "bob")
    await env.flow.disposition(
        got.lead_id, "sales", "bob", "callback", registration=REG, started=later,
        ended=later + MIN,
    )  # fmt: skip
    lead = await env.store.get_lead(c.lead_id)
    assert lead is not None and lead.linked_agent == "bob"
    assert lead.status is LeadStatus.CALLBACK
    assert lead.next_dial_at == later + MIN + 180 * MIN  # callback_minutes (R-RC-4)


# -- callbacks (R-CB) -----------------------------------------------------------------------


async def test_callback_to_myself_round_trip_r_cb_1_2_3_7(env: Env) -> None:
    """Reschedule to myself → listed (R-CB-1) → due → reserved for the owner (R-CB-2), who
    gets it at once (R-CB-3) with the comment (R-CB-7); nobody else inside the window."""
    due = T0 + 2 * HOUR
    lead_id = await reschedule_to(env, "ann", due)
    await park_other_leads(env, lead_id)
    [row] = await env.flow.scheduled_calls("ann", T0 + 3 * MIN)
    assert (row.lead_id, row.due_at, row.state) == (lead_id, due, "upcoming")
    assert row.reserved_until == due + 20 * MIN and row.comment.startswith("call after lunch")
    assert await env.flow.scheduled_calls("bob", T0) == []
    assert await env.flow.next_leads("sales", 5, due - MIN, "ann") == []
    assert (await env.flow.scheduled_calls("ann", due + MIN))[0].state == "reserved"
    # inside the window: neither the pool nor bob (ann is logged in but busy: R-CB-4)
    assert await env.flow.next_leads("sales", 5, due + MIN) == []
    assert await env.flow.next_leads("sales", 5, due + MIN, "bob") == []
    c = await claim_one(env, due + 5 * MIN, "ann")
    assert (c.lead_id, c.reserved_for, c.attempt) == (lead_id, "ann", 2)
    assert c.callback_comment == "call after lunch, ask for Piet"
    assert c.callback_id is not None
    # the call consumes the callback: not listed any more, and a busy signal retries
    assert await env.flow.scheduled_calls("ann", due + 5 * MIN) == []
    await env.flow.dialer_outcome(lead_id, "sales", Outcome.BUSY, due + 5 * MIN, due + 6 * MIN)
    assert await env.status(lead_id) is LeadStatus.WAITING
    assert await env.flow.next_leads("sales", 5, due + 7 * MIN, "ann") == []


async def test_callback_window_expires_then_any_agent_r_cb_5(env: Env) -> None:
    due = T0 + 2 * HOUR
    lead_id = await reschedule_to(env, "ann", due)
    await park_other_leads(env, lead_id)
    assert await env.flow.next_leads("sales", 5, due + 19 * MIN, "bob") == []
    assert (await env.flow.scheduled_calls("ann", due + 21 * MIN))[0].state == "open"
    c = await claim_one(env, due + 21 * MIN, "bob")
    assert (c.lead_id, c.reserved_for) == (lead_id, None)
    assert c.callback_comment == "call after lunch, ask for Piet"  # R-CB-7


async def test_owner_logged_out_goes_to_next_agent_r_cb_6(env: Env) -> None:
    due = T0 + 2 * HOUR
    lead_id = await reschedule_to(env, "ann", due)
    await park_other_leads(env, lead_id)
    floor = Presence({"bob": AgentState.AVAILABLE})  # ann is not logged in
    got = await env.flow.next_leads("sales", 1, due + MIN, "bob", presence=floor)
    assert [(g.lead_id, g.reserved_for) for g in got] == [(lead_id, None)]


async def test_any_agent_callback_goes_to_the_pool_r_cb_8(env: Env) -> None:
    due = T0 + 2 * HOUR
    lead_id = await reschedule_to(env, "ann", due, CallbackTarget.ANY)
    assert await env.flow.scheduled_calls("ann", T0) == []  # only "myself" ones are listed
    got = await env.flow.next_leads("sales", 1, due)
    assert [(g.lead_id, g.reserved_for) for g in got] == [(lead_id, None)]
    assert got[0].callback_comment == "call after lunch, ask for Piet"


async def test_due_callbacks_come_before_fresh_leads_r_cb_2(env: Env) -> None:
    due = T0 + HOUR
    lead_id = await reschedule_to(env, "ann", due)
    got = await env.flow.next_leads("sales", 2, due, "ann")
    assert got[0].lead_id == lead_id and got[1].lead_id != lead_id


async def test_reschedule_on_the_last_attempt_is_refused(env: Env) -> None:
    """A callback that could never be dialled (attempts used up) is refused, not dropped."""
    c = await claim_one(env, T0, "ann")
    await park_other_leads(env, c.lead_id)
    now = T0
    for _ in range(2):
        await env.flow.dialer_outcome(c.lead_id, "sales", Outcome.BUSY, now, now + 5)
        now += 11 * MIN
        await claim_one(env, now, "ann")
    before = await env.snapshot()
    with pytest.raises(DispositionError, match="all 3 attempts are used"):
        await env.flow.disposition(
            c.lead_id, "sales", "ann", "not_cp", registration=REG, started=now,
            ended=now + MIN, reschedule=Reschedule(now + HOUR, comment="try again"),
        )  # fmt: skip
    with pytest.raises(DispositionError, match="the callback could never be dialled"):
        await env.flow.disposition(  # a callback code schedules one by itself (R-RC-4)
            c.lead_id, "sales", "ann", "callback", registration=REG, started=now, ended=now
        )
    assert await env.snapshot() == before
    await env.flow.disposition(
        c.lead_id, "sales", "ann", "not_cp", registration=REG, started=now, ended=now
    )
    assert await env.status(c.lead_id) is LeadStatus.EXHAUSTED


# -- crash recovery -------------------------------------------------------------------------


async def test_recover_dialing_leads_after_a_crash(env: Env) -> None:
    """Claim everything (one is a callback), "crash", restart on the same file: each lead
    whose call is gone gets exactly one attempt (failed, outcome unknown) and a future next
    dial time; the live one is left for the daemon; nothing is lost."""
    due = T0 + HOUR
    cb_lead = await reschedule_to(env, "ann", due)
    claimed = await env.flow.next_leads("sales", 10, due + MIN, "ann")
    assert len(claimed) == 4 and claimed[0].lead_id == cb_lead
    live = claimed[-1].lead_id
    await env.reopen()  # the crash: a new LeadFlow and connection on the same database
    now = due + 10 * MIN
    report = await env.flow.recover("sales", now, {live})
    assert report.adopted == (live,)
    assert sorted(report.recovered) == sorted(c.lead_id for c in claimed[:-1])
    assert report.callbacks_kept == (cb_lead,)
    for lead_id in report.recovered:
        attempts = await env.store.attempts_of(lead_id)
        crash = [a for a in attempts if a.note == RECOVERY_NOTE]
        assert len(crash) == 1 and crash[0].outcome == "failed"
        assert crash[0].result_code == "failed"
        lead = await env.store.get_lead(lead_id)
        assert lead is not None and lead.next_dial_at == now + 720 * MIN
    assert await env.status(cb_lead) is LeadStatus.CALLBACK
    [kept] = await env.flow.scheduled_calls("ann", now)
    assert kept.due_at == now + 720 * MIN and kept.comment == "call after lunch, ask for Piet"
    assert await env.status(live) is LeadStatus.DIALING
    counts = await env.store.lead_counts(env.campaign_id)
    assert sum(counts.values()) == len(env.leads)
    assert counts == {"waiting": 2, "callback": 1, "dialing": 1}
    assert await env.flow.next_leads("sales", 10, now + MIN, "ann") == []  # never at once
    # a second recovery is a no-op for the settled ones
    again = await env.flow.recover("sales", now + MIN, {live})
    assert (again.recovered, again.adopted) == ((), (live,))


# -- the agent's screen ---------------------------------------------------------------------


async def test_screen_pop_shows_history_scores_codes_r_ad_4(env: Env) -> None:
    c = await claim_one(env, T0, "ann")
    log = await CallLogStore.open(env.path)  # the call log and recorder's side of the file
    try:
        call = await log.save_call(
            CallEntry("1700000000.42", Direction.OUT, CallStatus.ANSWERED, c.number, T0,
                      agent="ann")
        )  # fmt: skip
        await log.add_recording_file(call, "/rec/1700000000.42.wav", T0, 60.0, 960_000, "", "ann")
    finally:
        await log.close()
    await env.flow.disposition(
        c.lead_id, "sales", "ann", "callback", call_note="interested, busy now",
        registration=REG, started=T0, ended=T0 + MIN, call_id="1700000000.42",
    )  # fmt: skip
    pop = await env.flow.screen_pop(c.lead_id)
    assert (pop["number"], pop["campaign"], pop["fields"]) == (
        c.number, "sales", {"name": "Customer 0"},
    )  # fmt: skip
    assert (pop["status"], pop["phase"], pop["linked_agent"]) == (
        "callback", "qualified_prospect", "ann",
    )  # fmt: skip
    assert pop["call_score"] == 6.0  # (2 + 4) / 1 (R-RC-3)
    assert pop["engagement_score"] == 10 * 2 + 5 * 4  # R-AD-2
    [h] = pop["history"]
    assert (h["agent"], h["result_code"], h["label"], h["note"]) == (
        "ann", "callback", "Call back later", "interested, busy now",
    )  # fmt: skip
    assert h["recordings"] == ["/rec/1700000000.42.wav"] and h["email_status"] is None
    assert pop["callback"]["comment"] == "interested, busy now"  # R-CB-7
    assert pop["callback"]["owner_agent"] == "ann"  # high priority: reserved for ann
    codes = {rc["code"]: rc for rc in pop["result_codes"]}
    assert codes["appointment"]["require_email"] and codes["callback"]["callback_minutes"] == 180
    assert codes["callback"]["category"] == "callback"
    assert pop["registration"]["forced"] is True
    assert [cat["name"] for cat in pop["registration"]["categories"]] == ["Reason", "Products"]


async def test_unknown_agent_is_a_disposition_problem(env: Env) -> None:
    c = await claim_one(env, T0)
    with pytest.raises(DispositionError, match="unknown agent 'zed'"):
        await env.flow.disposition(
            c.lead_id, "sales", "zed", "not_cp", registration=REG, started=T0, ended=T0 + 1
        )


# -- dialerd leads why ----------------------------------------------------------------------


def run_why(env: Env, *args: str) -> Any:
    runner = CliRunner()
    return runner.invoke(
        cli,
        ["leads", "why", "--config", str(env.path.parent), "--db", str(env.path), *args],
    )


def test_leads_why_explains_every_check(tmp_path: Path) -> None:
    """`dialerd leads why` (the admins' question) prints the verdict and every reason."""

    async def prepare() -> tuple[Env, int]:
        env = await make_env(tmp_path)
        c = await claim_one(env, T0)
        await env.flow.dialer_outcome(c.lead_id, "sales", Outcome.ABANDONED, T0, T0 + 5)
        await env.store.close()  # the CLI opens the file itself
        return env, c.lead_id

    env, lead_id = asyncio.run(prepare())
    late = run_why(env, str(lead_id), "--at", "2026-11-23T22:30")
    assert late.exit_code == 0, late.output
    text = late.output
    assert f"lead {lead_id} at 2026-11-23 22:30 UTC for any agent: NOT dialable" in text
    assert "outside calling hours" in text and "next window opens" in text
    assert "abandoned at 2026-11-23 12:00 UTC: no redial within 72 h" in text
    assert "store status waiting (retry delay over: the next selection wakes it)" in text
    assert "floor unknown" in text
    agent = run_why(env, str(lead_id), "--at", "2026-11-24T10:00", "--agent", "bob")
    assert "for agent bob: DIALABLE" in agent.output
    assert "allowed: a live agent is guaranteed" in agent.output
    fresh = run_why(env, str(env.leads[1]), "--at", "2026-11-23T12:00")
    assert ": DIALABLE" in fresh.output and "fresh lead" in fresh.output
    missing = run_why(env, "9999")
    assert missing.exit_code == 2 and "no lead 9999" in missing.output
    bad = run_why(env, "1", "--at", "yesterday")
    assert bad.exit_code == 2 and "--at" in bad.output


async def test_why_while_dialing_says_so(env: Env) -> None:
    c = await claim_one(env, T0)
    text = await env.flow.why(c.lead_id, T0)
    assert "store status dialing" in text and "a call is in progress" in text


async def test_a_disabled_campaign_dials_nothing(env: Env) -> None:
    config = env.flow._configs["sales"].model_copy(update={"enabled": False})
    flow = LeadFlow(env.store, {"sales": config})
    assert await flow.next_leads("sales", 5, T0) == []
    assert "the campaign is disabled" in await flow.why(env.leads[0], T0)


async def test_unknown_campaign_names_the_known_ones(env: Env) -> None:
    with pytest.raises(LookupError, match=r"no campaign 'nope' configured \(known: sales\)"):
        await env.flow.next_leads("nope", 1, T0)


async def test_store_keeps_integrity(env: Env) -> None:
    """The attempt rows reference stored result codes: the built-in queue codes are mapped
    (a foreign-key failure would raise here)."""
    c = await claim_one(env, T0, "ann")
    await env.flow.disposition(
        c.lead_id, "sales", "ann", None, voicemail=True, registration=REG, started=T0, ended=T0
    )
    async with env.store._db.execute("PRAGMA foreign_key_check") as cur:
        assert await cur.fetchall() == []
    with pytest.raises(sqlite3.IntegrityError):
        await env.store._db.execute(
            "INSERT INTO attempts(lead_id, campaign_id, started_at, result_code, score)"
            " VALUES (?, ?, 0, 'agent:voicemail', 1)",
            (c.lead_id, env.campaign_id),
        )


async def test_guarded_leads_never_crowd_out_dialable_ones_r_dl_4(env: Env) -> None:
    """Abandoned leads score 3 (Open 2 + 1 over one attempt), above fresh leads (2), so the
    store's queue order puts them first although the 72 h guard keeps the pool off them;
    next_leads reads on until it finds leads the rules accept."""
    many = [NewLead(f"+3120222{i:04d}", "Europe/Amsterdam", rank=100 + i) for i in range(120)]
    await env.store.import_leads(env.campaign_id, many, "more.csv", 0, T0)
    first = await env.flow.next_leads("sales", 124, T0)
    assert len(first) == 124
    for c in first:
        await env.flow.dialer_outcome(c.lead_id, "sales", Outcome.ABANDONED, T0, T0 + 5)
    fresh = [NewLead(f"+3120333{i:04d}", "Europe/Amsterdam", rank=500 + i) for i in range(2)]
    await env.store.import_leads(env.campaign_id, fresh, "fresh.csv", 0, T0 + HOUR)
    got = await env.flow.next_leads("sales", 2, T0 + HOUR)
    assert [c.number for c in got] == ["+31203330000", "+31203330001"]
    assert all(c.attempt == 1 for c in got)


async def test_a_second_disposition_is_refused(env: Env) -> None:
    c = await claim_one(env, T0, "ann")
    await env.flow.disposition(
        c.lead_id, "sales", "ann", "not_cp", registration=REG, started=T0, ended=T0 + 1
    )
    with pytest.raises(DispositionError, match="is not on a call"):
        await env.flow.disposition(
            c.lead_id, "sales", "ann", "not_cp", registration=REG, started=T0, ended=T0 + 1
        )
    assert len(await env.store.attempts_of(c.lead_id)) == 1


async def test_link_release_frees_the_address_r_rc_6(env: Env) -> None:
    """Linked to ann (a week's release in YAML): bob gets it only after the release."""
    c = await claim_one(env, T0, "ann")
    await park_other_leads(env, c.lead_id)
    await env.flow.disposition(
        c.lead_id, "sales", "ann", "callback", registration=REG, started=T0, ended=T0,
        reschedule=Reschedule(T0 + 10 * MIN, CallbackTarget.ANY, "any of you"),
    )  # fmt: skip
    got = await claim_one(env, T0 + 10 * MIN, "bob")  # the any-agent callback (R-CB-8)
    await env.flow.dialer_outcome(got.lead_id, "sales", Outcome.NO_ANSWER, T0, T0 + 11 * MIN)
    tuesday = T0 + 24 * HOUR
    assert await env.flow.next_leads("sales", 1, tuesday, "bob") == []
    assert await env.flow.next_leads("sales", 1, tuesday) == []
    text = await env.flow.why(c.lead_id, tuesday, "ann")
    assert "for agent ann: DIALABLE" in text and "linked to ann (this agent)" in text
    week = T0 + 7 * 24 * HOUR + HOUR
    assert (await claim_one(env, week, "bob")).linked_agent is None


async def test_pool_offers_an_available_owner_their_callback_r_cb_3(env: Env) -> None:
    """Pool dialling with the floor given: ann is free at the due time, so her reserved
    callback comes first with reserved_for=ann (the daemon routes it to her), once."""
    due = T0 + 2 * HOUR
    lead_id = await reschedule_to(env, "ann", due)
    free = Presence.of(available=["ann", "bob"])
    got = await env.flow.next_leads("sales", 2, due + MIN, presence=free)
    assert len(got) == 2 and (got[0].lead_id, got[0].reserved_for) == (lead_id, "ann")
    assert got[1].reserved_for is None and got[1].lead_id != lead_id


async def test_pool_waits_for_a_busy_owner_r_cb_4(env: Env) -> None:
    due = T0 + 2 * HOUR
    lead_id = await reschedule_to(env, "ann", due)
    busy = Presence.of(available=["bob"], busy=["ann"])
    got = await env.flow.next_leads("sales", 10, due + MIN, presence=busy)
    assert lead_id not in [g.lead_id for g in got]


async def test_daemon_spellings_are_accepted(env: Env) -> None:
    """An empty result code with the voicemail mark, and a single-choice topic sent as a
    plain string, mean what the agent meant (R-REG-4a, R-REG-1)."""
    c = await claim_one(env, T0, "ann")
    await env.flow.disposition(
        c.lead_id, "sales", "ann", "", voicemail=True, registration={"Reason": "Sale"},
        started=T0, ended=T0 + MIN,
    )  # fmt: skip
    assert await env.store.topic_counts(T0, T0 + HOUR) != {}
    [a] = await env.store.attempts_of(c.lead_id)
    assert a.result_code == "voicemail"
