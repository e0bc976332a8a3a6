"""Agents' MQTT commands against the daemon's real store (SQLite), no PBX needed:
bad input gets a clear one-line error, the scheduled-calls list answers (R-CB-1), a
previewed lead can be skipped or logged out on without harm, and a wrap-up that outlives
the campaign's timeout is closed with its timeout code (issue 7 item 2)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from dialerd.ami.calls import CallBridged, CallHungUp
from dialerd.billing.service import BillingGate, BillingService
from dialerd.bus.mqtt import CommandError
from dialerd.config.loader import load_config
from dialerd.daemon.app import Daemon, LiveCall, _reschedule
from dialerd.demo.run import DEMO_CAMPAIGN, DemoOptions, prepare_store, write_config
from dialerd.demo.services import SandboxInfo
from dialerd.floor.agents import Agent, AgentState
from dialerd.leadflow import LeadFlow
from dialerd.store.billing import BillingStore
from dialerd.store.calllog import CallLogStore
from dialerd.store.db import open_db
from dialerd.store.models import NewCallback


@contextlib.asynccontextmanager
async def floor(
    tmp_path: Path, *, clock: Callable[[], float] = time.monotonic, **campaign: Any
) -> AsyncIterator[Daemon]:
    """A daemon on the demo campaign (with `campaign` keys changed) and a real store, with
    everything but the sockets: commands and the pacing steps are called directly."""
    box = SandboxInfo("none", "127.0.0.1", 1, "dialerd", "x", 2, 3, tmp_path, "n/a")
    campaign_file = DEMO_CAMPAIGN
    if campaign:
        campaign_file = tmp_path / "demo.yaml"
        text = yaml.safe_load(DEMO_CAMPAIGN.read_text())
        campaign_file.write_text(yaml.safe_dump({**text, **campaign}))
    opts = DemoOptions(agents=2, leads=3, workdir=tmp_path, campaign_file=campaign_file)
    config_dir = write_config(tmp_path / "work", box, opts)
    config = load_config(config_dir)
    await prepare_store(config.store_path, config, "demo", opts)
    d = Daemon(config, clock=clock)
    d.store = await CallLogStore.open(config.store_path)
    conn = await open_db(config.store_path)
    d.flow = LeadFlow(d.store, config.campaigns)
    d.billing = BillingGate(BillingService(BillingStore(conn)))
    d._load_campaigns(config)
    try:
        yield d
    finally:
        await d.store.close()
        await conn.close()


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    async with floor(tmp_path) as d:
        yield d


@pytest.mark.parametrize(
    ("verb", "body", "message"),
    [
        ("teleport", {}, "unknown command 'teleport'; one of login, logout"),
        ("pause", {"reason": "lunch"}, "not logged in"),
        ("disposition", {"result_code": "order"}, "not logged in"),
        ("login", {"campaigns": ["nope"]}, "unknown campaign(s) ['nope']; one of ['demo']"),
    ],
)
async def test_bad_commands_get_one_line_errors(
    daemon: Daemon,
    verb: str,
    body: dict,  # type: ignore[type-arg]
    message: str,
) -> None:
    with pytest.raises(CommandError) as err:
        await daemon._command("1001", verb, body)
    assert str(err.value).startswith(message)


async def test_unknown_agent_cannot_log_in(daemon: Daemon) -> None:
    with pytest.raises(CommandError, match="agent '4242' is not known to dialerd"):
        await daemon._command("4242", "login", {"campaigns": ["demo"]})


async def test_scheduled_calls_answer_even_when_empty(daemon: Daemon) -> None:
    """R-CB-1: the list is there for the console to show."""
    assert await daemon._command("1001", "scheduled", {}) == {"scheduled": []}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("tomorrow", "reschedule must be an object with when, to and comment"),
        ({"when": "soon"}, "reschedule.when must be an ISO 8601 date-time"),
        ({"when": "2030-01-01T10:00"}, "reschedule.when needs a UTC offset"),
        (
            {"when": "2030-01-01T10:00+01:00", "to": "boss"},
            "reschedule.to must be 'myself' or 'any'",
        ),
    ],
)
def test_reschedule_payloads_are_validated(raw: object, message: str) -> None:
    with pytest.raises(CommandError) as err:
        _reschedule(raw)
    assert str(err.value).startswith(message)


# --- preview: skip and log out while a lead is shown ------------------------------------------

NOT_FORCED: dict[str, Any] = {"registration": {"forced": False, "categories": []}}


def leads(d: Daemon) -> dict[int, tuple[str, int]]:
    """lead id -> (status, attempts), straight from the database file."""
    with contextlib.closing(sqlite3.connect(d.config.store_path)) as db:
        rows = db.execute("SELECT id, status, attempts FROM leads").fetchall()
        assert db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] == sum(r[2] for r in rows)
    return {r[0]: (r[1], r[2]) for r in rows}


async def ready(d: Daemon, agent_id: str = "1001") -> None:
    now = d.clock()
    await d._set_agent(Agent(agent_id, f"PJSIP/{agent_id}").login(now, ("demo",)).leg_up(now))


async def test_skip_gives_the_lead_back_undialled_and_shows_the_next(tmp_path: Path) -> None:
    """R-DL-1 preview: a skipped lead is not an attempt and stays dialable; the agent is
    shown another lead, not the same one straight back."""
    async with floor(tmp_path, mode="preview", pacing={}, **NOT_FORCED) as d:
        runtime = d.campaigns["demo"]
        await ready(d)
        await d._offer_previews(runtime)
        shown = d._previews["1001"][1].lead_id
        assert d.agents["1001"].state is AgentState.RESERVED
        assert leads(d)[shown] == ("dialing", 0)

        reply = await d._command("1001", "skip", {})
        assert reply == {"state": "ready", "skipped": shown}
        assert leads(d)[shown] == ("ready", 0)

        await d._offer_previews(runtime)
        assert d._previews["1001"][1].lead_id != shown
        await ready(d, "1002")
        with pytest.raises(CommandError, match="no previewed lead to skip"):
            await d._command("1002", "skip", {})


async def test_screen_command_gives_a_restarted_console_the_call_it_missed(
    tmp_path: Path,
) -> None:
    """R-CB-7: a console started mid-call asks for the screen-pop it never received: the
    previewed lead, then the call in wrap-up; nothing once the call is closed."""
    async with floor(tmp_path, mode="preview", pacing={}, **NOT_FORCED) as d:
        assert await d._command("1001", "screen", {}) == {"screen": None}
        await ready(d)
        await d._offer_previews(d.campaigns["demo"])
        call_id, lead = d._previews["1001"]
        screen = (await d._command("1001", "screen", {}))["screen"]
        assert (screen["attempt"], screen["preview"], screen["lead_id"]) == (
            call_id,
            True,
            lead.lead_id,
        )
        assert screen["number"] == lead.number and screen["result_codes"]

        await d._command("1001", "skip", {})
        assert await d._command("1001", "screen", {}) == {"screen": None}
        d._awaiting_disposition["1001"] = LiveCall("c1", "demo", lead, d.clock(), d.wall())
        screen = (await d._command("1001", "screen", {}))["screen"]
        assert (screen["attempt"], screen["lead_id"]) == ("c1", lead.lead_id)
        assert "preview" not in screen


async def test_logout_while_previewing_releases_the_lead(tmp_path: Path) -> None:
    """The reservation ends with the session; the lead is dialable at once, even by the
    same agent's next session (skips are forgotten at logout)."""
    async with floor(tmp_path, mode="preview", pacing={}, **NOT_FORCED) as d:
        runtime = d.campaigns["demo"]
        await ready(d)
        await d._offer_previews(runtime)
        skipped = d._previews["1001"][1].lead_id
        await d._command("1001", "skip", {})
        await d._offer_previews(runtime)
        shown = d._previews["1001"][1].lead_id

        assert await d._command("1001", "logout", {}) == {"state": "logged_out"}
        assert d.agents["1001"].state is AgentState.LOGGED_OUT
        assert "1001" not in d._previews
        assert all(v == ("ready", 0) for v in leads(d).values())

        await ready(d)
        await d._offer_previews(runtime)
        assert d._previews["1001"][1].lead_id in {skipped, shown}
        claimed = await d.flow.next_leads("demo", 3, d.wall())
        assert len(claimed) == 2, "the other two leads are dialable for the pool"


async def test_skipping_a_callback_keeps_it_scheduled_for_its_owner(tmp_path: Path) -> None:
    """R-CB-2: a reserved callback the owner skips is pending again, still theirs."""
    async with floor(tmp_path, mode="preview", pacing={}, **NOT_FORCED) as d:
        now = d.wall()
        due = NewCallback(3, now - 60, "after lunch", "1001", now + 1200, "1001")
        await d.store.schedule_callback(due, now - 120)
        await ready(d)
        await d._offer_previews(d.campaigns["demo"])
        assert d._previews["1001"][1].lead_id == 3
        await d._command("1001", "skip", {})
        assert leads(d)[3] == ("callback", 0)
        [pending] = await d.store.agent_callbacks("1001")
        assert (pending.lead_id, pending.status.value) == (3, "pending")
        [row] = (await d._command("1001", "scheduled", {}))["scheduled"]
        assert (row["lead"], row["comment"], row["state"]) == (3, "after lunch", "reserved")
        assert row["name"], "the list's name column rides along for the console"


# --- wrap-up timeout ----------------------------------------------------------------------


def timeouts() -> float:
    return REGISTRY.get_sample_value("dialerd_wrapup_timeouts_total", {"campaign": "demo"}) or 0.0


async def test_wrapup_timeout_records_the_code_and_frees_the_agent(tmp_path: Path) -> None:
    """Issue 7: wrap-up ends with a disposition or a timeout; the timeout's code goes the
    disposition's way (attempt, agent, note, retry time) and the agent is ready again."""
    t = [100.0]
    wrapup: dict[str, Any] = {"wrapup": {"timeout_seconds": 2, "result_code": "not_cp"}}
    async with floor(tmp_path, clock=lambda: t[0], mode="progressive", **NOT_FORCED, **wrapup) as d:
        runtime = d.campaigns["demo"]
        before = timeouts()
        [lead] = await d.flow.next_leads("demo", 1, d.wall())
        call = LiveCall("c1test", "demo", lead, t[0], d.wall())
        await ready(d)
        agent = d.agents["1001"].reserve(t[0], call.call_id).customer_joined(t[0])
        await d._set_agent(agent.customer_left(t[0] + 5))
        d._awaiting_disposition["1001"] = call

        t[0] += 6.9  # 1.9 s into wrap-up: not due
        await d._expire_wrapups(runtime)
        assert d.agents["1001"].state is AgentState.WRAPUP
        t[0] += 0.1
        await d._expire_wrapups(runtime)
        assert d.agents["1001"].state is AgentState.READY
        assert "1001" not in d._awaiting_disposition
        assert timeouts() == before + 1

        with contextlib.closing(sqlite3.connect(d.config.store_path)) as db:
            row = db.execute(
                "SELECT a.result_code, a.agent, a.outcome, a.note, l.status, l.attempts"
                " FROM attempts a JOIN leads l ON l.id = a.lead_id WHERE a.lead_id = ?",
                (lead.lead_id,),
            ).fetchone()
        assert row == (
            "not_cp",
            "1001",
            "human",
            "wrap-up timed out after 2 s without a disposition",
            "waiting",
            1,
        )
        with pytest.raises(CommandError, match="no call to close"):
            await d._command("1001", "disposition", {"result_code": "order"})


async def test_no_timeout_without_the_setting(tmp_path: Path) -> None:
    """The shipped demo campaign forces registration (R-REG-2): wrap-up waits for the agent."""
    t = [100.0]
    async with floor(tmp_path, clock=lambda: t[0]) as d:
        assert d.campaigns["demo"].config.wrapup is None
        [lead] = await d.flow.next_leads("demo", 1, d.wall())
        await ready(d)
        agent = d.agents["1001"].reserve(t[0], "c1").customer_joined(t[0]).customer_left(t[0])
        await d._set_agent(agent)
        d._awaiting_disposition["1001"] = LiveCall("c1", "demo", lead, t[0], d.wall())
        t[0] += 3600
        await d._expire_wrapups(d.campaigns["demo"])
        assert d.agents["1001"].state is AgentState.WRAPUP


# --- a wrap-up outlives logout attempts and lost phones -----------------------------------


async def test_wrapup_blocks_logout_and_a_lost_phone_comes_back_to_it(tmp_path: Path) -> None:
    """Issue 7, R-REG-2: a call in wrap-up keeps its claim on the agent. Logging out is
    refused with a reason; a phone lost meanwhile logs the agent out, and the next login
    lands in that same wrap-up (screen shown again) instead of leaving the lead `dialing`.
    Recovery run meanwhile (another agent's phone dropping mid-call) leaves it alone."""
    async with floor(tmp_path, mode="progressive", **NOT_FORCED) as d:
        [lead] = await d.flow.next_leads("demo", 1, d.wall())
        call = LiveCall("c1wrap", "demo", lead, d.clock(), d.wall())
        await ready(d)
        now = d.clock()
        await d._set_agent(d.agents["1001"].reserve(now, call.call_id).customer_joined(now))
        await d._set_agent(d.agents["1001"].customer_left(now))
        d._awaiting_disposition["1001"] = call
        with pytest.raises(CommandError, match="give the call its result code first"):
            await d._command("1001", "logout", {})

        d.agent_legs["leg-1"] = "1001"
        lost = CallHungUp(
            "leg-1", None, 16, "Normal Clearing", ring_seconds=None, talk_seconds=None,
            total_seconds=None, amd=None, agent="1001", abandoned=False,
        )  # fmt: skip
        await d._on_agent_leg("1001", lost)
        assert d.agents["1001"].state is AgentState.LOGGED_OUT
        await d.flow.recover("demo", d.wall(), d._unsettled_leads())
        assert leads(d)[lead.lead_id][0] == "dialing", "the agent's result code is still due"

        await d._set_agent(d.agents["1001"].login(d.clock(), ("demo",)))
        await d._on_agent_leg("1001", CallBridged("leg-2", None, "1001"))
        agent = d.agents["1001"]
        assert (agent.state, agent.attempt_id) == (AgentState.WRAPUP, "c1wrap")
        reply = await d._command("1001", "disposition", {"result_code": "not_cp"})
        assert reply["state"] == "ready"
        assert leads(d)[lead.lead_id] == ("waiting", 1)


async def test_a_task_started_after_start_up_is_watched_too(tmp_path: Path) -> None:
    """A pacing loop started by a reload that dies stops the daemon loudly (systemd
    restarts it), like one started with the daemon; before, nobody noticed."""
    async with floor(tmp_path) as d:
        stop = asyncio.Event()
        until = asyncio.create_task(d._until(stop))
        await asyncio.sleep(0.05)

        async def pacing_loop_that_dies() -> None:
            raise RuntimeError("pacing loop died")

        d._spawn(pacing_loop_that_dies(), "pace-new")
        with pytest.raises(RuntimeError, match="pacing loop died"):
            await asyncio.wait_for(until, 5)
