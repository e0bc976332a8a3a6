"""`dialerd run`: the one process that owns every socket of the floor.

Shape (a thin shell over the pure parts):

- the AMI client and its call tracker are the daemon's senses: `follow_calls` yields typed
  call events, folded here into agent states (`dialerd.floor.agents`) and each campaign's
  calls in flight (`dialerd.floor.calls`), which feed the pacer;
- one pacing loop per campaign asks its pacer how many calls to launch (every tick, and at
  once when an agent frees up), claims that many leads through `LeadFlow` (committed as
  'dialing' *before* the Originate is sent) and originates them;
- the FastAGI `/connect` route picks the agent for a live answer inside the connect
  deadline (callback owner first, linked agent next, then the longest idle) or lets the
  dialplan play the abandon message;
- MQTT carries agents' commands in and their state, screen-pops and wallboard stats out.

Crash and reconnect safety: an Originate is sent at most once. If its fate is unknown
(connection lost before the response) the tracker's reconciliation against
CoreShowChannels settles it; leads left 'dialing' by a crash are settled by
`LeadFlow.recover` once Asterisk has told us which calls are still up.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import secrets
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, ClassVar

from prometheus_client import start_http_server

from dialerd import metrics
from dialerd.agi import AGIRequest, AGIServer
from dialerd.ami import (
    Action,
    AMIClient,
    AMIError,
    CallAbandoned,
    CallAdopted,
    CallAmd,
    CallAnswered,
    CallBridged,
    CallEvent,
    CallFailed,
    CallHungUp,
    CallTracker,
    FailReason,
    NotConnected,
    OutcomeUnknown,
    follow_calls,
    hangup,
    originate,
)
from dialerd.billing.service import BillingGate, BillingService
from dialerd.bus.mqtt import Bus, CommandError, MqttSettings
from dialerd.config.loader import Config, load_config
from dialerd.config.models import CampaignConfig, DialMode
from dialerd.floor.agents import Agent, AgentState, AgentStateError, choose_agent
from dialerd.floor.calls import CampaignFloor, agent_cycle
from dialerd.inbound.wiring import build_inbound
from dialerd.leadflow import Claimed, DispositionError, LeadFlow, Reschedule
from dialerd.mail import MailConfig, Mailer
from dialerd.pacing import Pacer, create_pacer
from dialerd.queue import CallbackTarget, Outcome, Presence
from dialerd.sdnotify import notify, watchdog_interval
from dialerd.store.billing import BillingStore
from dialerd.store.calllog import CallLogStore
from dialerd.store.db import open_db
from dialerd.store.flow import LeadNotDialing

log = logging.getLogger("dialerd")
calls_log = logging.getLogger("dialerd.calls")

AGENT_CALL_PREFIX = "agent"
SHUTDOWN_STEP_SECONDS = 3.0
"""After the drain: how long hanging up the agents' legs, and delivering the last MQTT
messages, may each take before the stop goes on without them."""
_FAIL_OUTCOME = {
    FailReason.BUSY: Outcome.BUSY,
    FailReason.NO_ANSWER: Outcome.NO_ANSWER,
    FailReason.CONGESTION: Outcome.FAILED,
    FailReason.INVALID: Outcome.FAILED,
    FailReason.FAILED: Outcome.FAILED,
    # Ended while AMI was away: whether anyone answered is unknown, so the lead waits the
    # campaign's "failed" delay rather than being redialled at once.
    FailReason.UNKNOWN: Outcome.FAILED,
}


@dataclass
class LiveCall:
    """One customer call dialerd launched and has not finished accounting for."""

    call_id: str
    campaign: str
    lead: Claimed
    launched: float
    started_wall: float
    machine: bool = False
    agent: str | None = None
    abandoned: bool = False
    dispositioned: bool = False
    closing: bool = False
    """Its disposition (the agent's, or the wrap-up timeout's) is being written: the other
    one must not close it too."""


@dataclass
class CampaignRuntime:
    config: CampaignConfig
    pacer: Pacer
    floor: CampaignFloor
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    dialed: int = 0


class Daemon:
    """The floor: owns AMI, FastAGI, MQTT, the store and one pacing loop per campaign."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        tick: float = 1.0,
    ) -> None:
        self.config = config
        self.clock = clock
        self.wall = wall
        self.tick = tick
        d = config.daemon
        self.ami = AMIClient(
            d.ami.host,
            d.ami.port,
            d.ami.user,
            d.ami.secret.get_secret_value(),
            connect_timeout=d.ami.connect_timeout_seconds,
        )
        self.tracker = CallTracker()
        deadline = max(
            (c.pacing.get("connect_deadline", 2.0) for c in config.campaigns.values()), default=2.0
        )
        self.agi = AGIServer(host=d.agi.bind, port=d.agi.port, timeout=float(deadline) + 1.0)
        self.agi.route("/connect")(self._agi_connect)
        self.bus = Bus(
            MqttSettings.from_config(
                d.mqtt, config.directory, client_id=f"dialerd-{secrets.token_hex(3)}"
            ),
            on_command=self._command,
        )
        self.campaigns: dict[str, CampaignRuntime] = {}
        self.agents: dict[str, Agent] = {}
        self.agent_legs: dict[str, str] = {}  # call id of the nailed-up leg -> agent id
        self.calls: dict[str, LiveCall] = {}
        self._previews: dict[str, tuple[str, Claimed]] = {}  # agent -> previewed lead
        self._skipped: dict[str, set[int]] = {}  # agent -> leads skipped this session
        self._awaiting_disposition: dict[str, LiveCall] = {}  # agent id -> call in wrap-up
        self._adopted: dict[str, tuple[int, str]] = {}  # call id -> (lead, campaign)
        self._live_leads: set[int] = set()  # leads with a call up, ours or found at recovery
        self.double_dials = 0
        """Launches refused because the lead already had a call up. The store's 'dialing'
        claim makes this impossible; the counter proves it stays so (demo summary)."""
        self.agents_changed = asyncio.Condition()
        self.draining = False
        self.ready = asyncio.Event()
        self._recovered = False
        self._tasks: list[asyncio.Task[Any]] = []
        self._tasks_added = asyncio.Event()
        self.flow: LeadFlow
        self.store: CallLogStore
        self.billing: BillingGate

    # ------------------------------------------------------------------ lifecycle
    async def run(self, stop: asyncio.Event) -> None:
        d = self.config.daemon
        store = self.store = await CallLogStore.open(self.config.store_path)
        billing_conn = await open_db(self.config.store_path)
        now = self.wall()
        for campaign in self.config.campaigns.values():
            await store.sync_campaign(campaign, now)
        self.flow = LeadFlow(store, self.config.campaigns)
        self.billing = BillingGate(BillingService(BillingStore(billing_conn)))
        # Inbound calls (lookup, routing), the call log and recordings (R-LOG): their
        # FastAGI routes join /connect, and the log follows the same AMI stream.
        mail = MailConfig.from_env()
        calllog = await build_inbound(
            self.config.directory,
            store,
            self.ami,
            self.agi,
            bus=self.bus,
            mailer=Mailer(mail) if mail else None,
            gate=self.billing,
        )
        self._load_campaigns(self.config)
        # Everything alive now (modules, config, campaigns) lives as long as the daemon:
        # keep it out of the collector's generations, so a full collection is small and
        # lead selection's p99 at 1M leads drops (bench/store.py: 15.7 -> 10.1 ms).
        gc.freeze()
        if d.metrics.port:
            start_http_server(d.metrics.port, addr=d.metrics.bind)
        await self.agi.start()
        calls = follow_calls(self.ami, self.tracker)  # subscribes before the first connect
        logging_calls = asyncio.create_task(calllog.follow(self.ami), name="calllog")
        self.ami.start()
        self._tasks = [
            asyncio.create_task(self._consume_calls(calls), name="calls"),
            logging_calls,
            asyncio.create_task(self.bus.run(), name="mqtt"),
            asyncio.create_task(self._housekeeping(), name="housekeeping"),
            asyncio.create_task(self._recover(), name="recover"),
            *(
                asyncio.create_task(self._pace(name), name=f"pace-{name}")
                for name in self.campaigns
            ),
        ]
        try:
            await self._until(stop)
            await self._drain(d.drain_seconds)
            await self._sign_out_all()
            await self.bus.say_goodbye(SHUTDOWN_STEP_SECONDS)
        finally:
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self.agi.close()
            await self.ami.close()
            await store.close()
            await billing_conn.close()
            notify("STOPPING=1")

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """A core task started while running (a reload, a new campaign's pacing loop):
        `_until` watches it from now on, like the ones started with the daemon."""
        self._tasks.append(asyncio.create_task(coro, name=name))
        self._tasks_added.set()

    async def _until(self, stop: asyncio.Event) -> None:
        """Wait for `stop`, failing loudly if a core task dies (one spawned later too)."""
        waiter = asyncio.create_task(stop.wait())
        added = asyncio.create_task(self._tasks_added.wait())
        watched: set[asyncio.Task[Any]] = {waiter, added, *self._tasks}
        seen = set(self._tasks)
        try:
            while not stop.is_set():
                done, watched = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task in (waiter, added) or task.cancelled():
                        continue
                    if task.exception():
                        raise task.exception()  # type: ignore[misc]
                if added in done:
                    self._tasks_added.clear()
                    added = asyncio.create_task(self._tasks_added.wait())
                    watched.add(added)
                # New tasks join even if already over (a failure must still be seen); a
                # task that simply finished (recovery) is not a reason to stop.
                fresh = {t for t in self._tasks if t not in seen}
                seen |= fresh
                watched |= fresh
        finally:
            waiter.cancel()
            added.cancel()

    async def _drain(self, drain_seconds: float) -> None:
        """SIGTERM: no new originates; calls in progress finish and their agents'
        dispositions are recorded (bounded). What is left is settled by recovery."""
        self.draining = True
        notify("STOPPING=1", "STATUS=draining: no new calls")
        for agent_id in list(self._previews):  # never dialled: back to the queue as they were
            await self._give_back_preview(agent_id, "drain")
            await self._set_agent(self.agents[agent_id].release(self.clock()))
        log.info(
            "draining: %d calls in progress, %d awaiting a disposition",
            len(self.calls),
            len(self._awaiting_disposition),
        )
        deadline = self.clock() + drain_seconds
        # Two conditions on different sources; a bounded poll is the honest shape.
        while (self.calls or self._awaiting_disposition) and self.clock() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        if self.calls or self._awaiting_disposition:
            log.warning(
                "drain timeout: %d calls up, %d dispositions missing; left for recovery",
                len(self.calls),
                len(self._awaiting_disposition),
            )

    async def _sign_out_all(self) -> None:
        """End of a drain: every agent still logged in is logged out and their nailed-up
        leg hung up, so nobody sits in a silent conference while dialerd is down and no
        console keeps showing a retained "ready". Bounded: a PBX that does not answer
        cannot hold the stop (the next start ends any leg left as stale)."""
        now = self.clock()
        endpoints = []
        for agent in list(self.agents.values()):
            if agent.state is not AgentState.LOGGED_OUT:
                await self._set_agent(agent.leg_down(now))
                endpoints.append(agent.endpoint)
        if not endpoints:
            return
        log.info("signing out %d agents: dialerd is stopping", len(endpoints))
        with contextlib.suppress(AMIError, TimeoutError):
            async with asyncio.timeout(SHUTDOWN_STEP_SECONDS):
                for endpoint in endpoints:
                    await self.ami.send_action(hangup(f"/^{endpoint}-/"), check=False)

    def _load_campaigns(self, config: Config) -> None:
        for name, campaign in config.campaigns.items():
            if not campaign.enabled:
                self.campaigns.pop(name, None)
                continue
            settings = dict(campaign.pacing)
            runtime = self.campaigns.get(name)
            if (
                runtime is None
                or runtime.config.pacing != campaign.pacing
                or runtime.config.mode != campaign.mode
            ):
                floor = (
                    runtime.floor
                    if runtime
                    else CampaignFloor(
                        connect_deadline=float(settings.get("connect_deadline", 2.0))
                    )
                )
                runtime = CampaignRuntime(
                    campaign, create_pacer(campaign.mode.value, settings), floor
                )
            else:
                runtime = replace(runtime, config=campaign)
            self.campaigns[name] = runtime

    def reload(self) -> None:
        """SIGHUP: re-read campaigns; a broken file keeps the running configuration."""
        try:
            fresh = load_config(self.config.directory)
        except Exception as exc:  # reported; the floor keeps running
            log.error("reload refused, keeping the running configuration:\n%s", exc)
            return
        self._spawn(self._apply(fresh), "reload")

    async def _apply(self, fresh: Config) -> None:
        """The store learns new and changed campaigns (result codes, registration topics)
        first, as at start-up: a pacing loop reads its campaign from there."""
        now = self.wall()
        for campaign in fresh.campaigns.values():
            await self.store.sync_campaign(campaign, now)
        new_names = set(fresh.campaigns) - set(self.campaigns)
        self.config = fresh
        self.flow = LeadFlow(self.store, fresh.campaigns)
        self._load_campaigns(fresh)
        for name in new_names & set(self.campaigns):
            self._spawn(self._pace(name), f"pace-{name}")
        log.info("reloaded: campaigns %s", ", ".join(sorted(self.campaigns)))

    # ------------------------------------------------------------------ pacing
    async def _pace(self, name: str) -> None:
        """Launch what the pacer asks for, every tick and whenever the floor changes."""
        while True:
            runtime = self.campaigns.get(name)
            if runtime is None:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.tick):
                    await runtime.wake.wait()
            runtime.wake.clear()
            await self._expire_wrapups(runtime)
            if self.draining or not self.ami.connected or not self._recovered:
                continue
            if runtime.config.mode is DialMode.PREVIEW:
                await self._offer_previews(runtime)
                continue
            await self._deliver_reserved(runtime)
            now = self.clock()
            floor = runtime.floor.pacing_floor(now, self.agents.values(), name)
            wanted = runtime.pacer.plan(floor)
            metrics.PACING_DECISION.labels(name).set(wanted)
            if wanted <= 0:
                continue
            claimed = await self.flow.next_leads(
                name, wanted, self.wall(), presence=self._presence(name)
            )
            for lead in claimed:
                await self._launch(runtime, lead)

    def _presence(self, campaign: str) -> Presence:
        mine = [a for a in self.agents.values() if campaign in a.campaigns]
        return Presence.of(
            available=[a.agent_id for a in mine if a.state is AgentState.READY],
            busy=[a.agent_id for a in mine if a.state is not AgentState.READY],
        )

    async def _deliver_reserved(self, runtime: CampaignRuntime) -> None:
        """R-CB-3: a callback due for a ready owner goes to them at once. The owner is
        reserved before the call is placed, so no other customer can take them meanwhile;
        callbacks of busy owners wait inside their window (R-CB-4), which the pool
        selection honours through `presence`."""
        name = runtime.config.name
        for agent in list(self.agents.values()):
            if agent.state is not AgentState.READY or name not in agent.campaigns:
                continue
            scheduled = await self.flow.scheduled_calls(agent.agent_id, self.wall())
            if not any(c.state == "reserved" and c.campaign == name for c in scheduled):
                continue
            # Reserved callbacks for this agent come first in its selection (R-CB-2).
            claimed = await self.flow.next_leads(
                name, 1, self.wall(), agent=agent.agent_id, presence=self._presence(name)
            )
            for lead in claimed:
                await self._launch(
                    runtime, lead, reserve=agent if lead.reserved_for == agent.agent_id else None
                )

    async def _offer_previews(self, runtime: CampaignRuntime) -> None:
        """R-DL-1 preview: each ready agent is shown their next lead (held for them, the
        agent reserved) and dials it with the `dial` command when ready."""
        name = runtime.config.name
        for agent in list(self.agents.values()):
            if agent.state is not AgentState.READY or name not in agent.campaigns:
                continue
            claimed = await self.flow.next_leads(
                name,
                1,
                self.wall(),
                agent=agent.agent_id,
                presence=self._presence(name),
                exclude=self._skipped.get(agent.agent_id, ()),
            )
            if not claimed:
                continue
            lead = claimed[0]
            call_id = _call_id(lead)
            await self._set_agent(agent.reserve(self.clock(), call_id))
            self._previews[agent.agent_id] = (call_id, lead)
            self.bus.publish(
                self.bus.topic("agents", agent.agent_id, "screen"),
                await self._screen(call_id, lead, preview=True),
            )

    async def _launch(
        self,
        runtime: CampaignRuntime,
        lead: Claimed,
        reserve: Agent | None = None,
        call_id: str | None = None,
    ) -> None:
        campaign = runtime.config
        if lead.lead_id in self._live_leads:
            self.double_dials += 1
            log.error("lead %s already has a call up; not dialing it again", lead.lead_id)
            return
        self._live_leads.add(lead.lead_id)
        call_id = call_id or _call_id(lead)
        digits = lead.number.lstrip("+")
        channel = campaign.dial_string.format(number=lead.number, digits=digits)
        action = originate(
            call_id,
            channel,
            lead=str(lead.lead_id),
            attempt=call_id,
            campaign=campaign.name,
            amd=campaign.amd,
            caller_number=campaign.caller_id,
            ring_timeout=campaign.ring_timeout_seconds,
        )
        self.tracker.expect(
            call_id,
            lead=str(lead.lead_id),
            attempt=call_id,
            campaign=campaign.name,
            action_id=action.action_id,
        )
        now = self.clock()
        self.calls[call_id] = LiveCall(call_id, campaign.name, lead, now, self.wall())
        if reserve is not None:
            await self._set_agent(reserve.reserve(now, call_id))
        runtime.floor.launched(call_id, now)
        runtime.dialed += 1
        metrics.PACING_LAUNCHES.labels(campaign.name).inc()
        try:
            await self.ami.send_action(action, check=False)
        except NotConnected:
            # Never sent (the connection dropped between the tick and now). Recovery settles
            # the claimed lead like any other: one attempt, retried by the rules.
            self.calls.pop(call_id, None)
            self._live_leads.discard(lead.lead_id)
            runtime.floor.calls.pop(call_id, None)
            runtime.dialed -= 1
            await self.flow.recover(campaign.name, self.wall(), self._unsettled_leads())
        except OutcomeUnknown as exc:
            # Maybe sent. Never re-send: reconciliation after the reconnect settles it.
            log.warning("originate %s outcome unknown (%s); reconciling", call_id, exc)

    def _unsettled_leads(self) -> set[int]:
        """Leads that are `dialing` for a reason recovery must respect: a call still up,
        or an ended call waiting for its agent's disposition (settling those as "failed"
        would throw the agent's result code away)."""
        return self._live_leads | {c.lead.lead_id for c in self._awaiting_disposition.values()}

    # ------------------------------------------------------------------ call events
    async def _consume_calls(self, events: AsyncIterator[CallEvent]) -> None:
        async for event in events:
            try:
                await self._on_call_event(event)
            except Exception:  # one bad event must not stop the floor
                log.exception("handling %r failed", event)

    async def _recover(self) -> None:
        """First connect: settle leads a previous run left 'dialing' (crash, kill -9).

        Asterisk is asked directly which dialerd calls are up, so a lead whose call still
        runs is left alone (not redialled, not closed) and every other 'dialing' lead gets
        its attempt recorded and a retry time.
        """
        while True:
            await self.ami.wait_connected()
            try:
                _, channels = await self.ami.send_list(Action("CoreShowChannels"))
                break
            except AMIError as exc:
                log.warning("recovery snapshot failed (%s); retrying", exc)
                await asyncio.sleep(1.0)
        live: set[int] = set()
        for channel in channels:
            variables = channel.variables()
            lead = variables.get("DIALERD_LEAD", "")
            if lead.isdigit():
                live.add(int(lead))
            elif variables.get("DIALERD_AGENT") and channel.get("Channel"):
                # A nailed-up leg of a previous run: nobody here knows its agent is
                # logged in, so end it; the agent logs in again and is called afresh.
                log.info("ending stale agent leg %s", channel.get("Channel"))
                with contextlib.suppress(AMIError):
                    await self.ami.send_action(hangup(str(channel.get("Channel"))), check=False)
        self._live_leads |= live
        for name in self.campaigns:
            report = await self.flow.recover(name, self.wall(), live)
            log.info("recovery %s: %s", name, report)
        self._recovered = True
        metrics.AMI_CONNECTED.set(1)
        notify("READY=1", "STATUS=AMI connected; dialing")
        self.ready.set()

    async def _on_call_event(self, event: CallEvent) -> None:
        if event.call_id in self.agent_legs:
            await self._on_agent_leg(self.agent_legs[event.call_id], event)
            return
        call = self.calls.get(event.call_id)
        if call is None:
            await self._on_adopted(event)
            return
        runtime = self.campaigns.get(call.campaign)
        if runtime is None:
            return
        cf, now = runtime.floor, self.clock()
        if isinstance(event, CallAmd):
            if event.verdict == "MACHINE":
                call.machine = True
            else:
                cf.live_answer(call.call_id, now)
        elif isinstance(event, CallAnswered):
            cf.picked_up(call.call_id, now)
            if not runtime.config.amd:
                cf.live_answer(call.call_id, now)
        elif isinstance(event, CallBridged):
            await self._on_bridged(runtime, call, event.agent, now)
        elif isinstance(event, CallAbandoned):
            call.abandoned = True
            self._learn(runtime, cf.abandon(call.call_id, now))
        elif isinstance(event, CallHungUp | CallFailed):
            await self._on_call_end(runtime, call, event, now)

    async def _on_adopted(self, event: CallEvent) -> None:
        """A call a previous run launched, still up at (re)start: its lead stays 'dialing'
        until the call ends, then recovery records its attempt (outcome unknown)."""
        if (
            isinstance(event, CallAdopted)
            and event.lead
            and event.lead.isdigit()
            and event.campaign
        ):
            log.info("adopted call %s (lead %s) still up in Asterisk", event.call_id, event.lead)
            self._adopted[event.call_id] = (int(event.lead), event.campaign)
            self._live_leads.add(int(event.lead))
        elif isinstance(event, CallHungUp | CallFailed) and event.call_id in self._adopted:
            lead_id, campaign = self._adopted.pop(event.call_id)
            self._live_leads.discard(lead_id)
            if campaign in self.campaigns:
                await self.flow.recover(campaign, self.wall(), self._unsettled_leads())

    async def _on_bridged(
        self, runtime: CampaignRuntime, call: LiveCall, agent_id: str, now: float
    ) -> None:
        call.agent = agent_id
        outcome = runtime.floor.agent_connected(call.call_id, agent_id, now)
        self._learn(runtime, outcome)
        agent = self.agents.get(agent_id)
        if agent is not None and agent.state is AgentState.RESERVED:
            await self._set_agent(agent.customer_joined(now))
        elif agent is None or not agent.logged_in:
            log.warning("%s joined agent %s, who is gone; ending it", call.call_id, agent_id)
            await self._kick_customer(agent_id)
        latency = runtime.floor.connect_latencies[-1] if outcome else None
        if latency is not None:
            metrics.CONNECT_LATENCY.labels(call.campaign).observe(latency)
        try:
            charge = await self.billing.charge_attempt(agent_id, datetime.now(UTC))
        except Exception:  # billing trouble is reported, never drops the live call
            log.exception("charging the attempt of %s to %s failed", call.call_id, agent_id)
        else:
            if not charge.charged:
                log.warning("agent %s: %s", agent_id, charge.message)

    async def _on_call_end(
        self, runtime: CampaignRuntime, call: LiveCall, event: CallHungUp | CallFailed, now: float
    ) -> None:
        cf = runtime.floor
        if isinstance(event, CallFailed):
            outcome = _FAIL_OUTCOME[event.reason]
        elif call.machine:
            outcome = Outcome.MACHINE
        elif call.agent is None:
            outcome = Outcome.ABANDONED  # live, never reached an agent
        else:
            outcome = Outcome.ANSWERED
        self._learn(runtime, cf.ended(call.call_id, now, _pacer_result(outcome)))
        self.calls.pop(call.call_id, None)
        self._live_leads.discard(call.lead.lead_id)
        metrics.CALLS.labels(call.campaign, outcome.value).inc()
        metrics.ABANDON_RATE.labels(call.campaign).set(cf.abandon_rate)
        calls_log.info(
            "call=%s campaign=%s lead=%s outcome=%s agent=%s cause=%s ring=%.1fs",
            call.call_id,
            call.campaign,
            call.lead.lead_id,
            outcome.value,
            call.agent or "-",
            event.cause,
            (event.ring_seconds or 0.0),
        )
        self.bus.publish(
            self.bus.topic("calls", "events"),
            {
                "call": call.call_id,
                "campaign": call.campaign,
                "lead": call.lead.lead_id,
                "outcome": outcome.value,
                "agent": call.agent,
                "cause": event.cause,
            },
        )
        agent_gone = call.agent is not None and not (
            (a := self.agents.get(call.agent)) is not None and a.logged_in
        )
        if outcome is Outcome.ANSWERED and call.agent and not agent_gone:
            agent = self.agents.get(call.agent)
            if agent is not None and agent.state is AgentState.TALKING:
                await self._set_agent(agent.customer_left(now))
            if not call.dispositioned:
                self._awaiting_disposition[call.agent] = call
        elif outcome is Outcome.ANSWERED:
            # The agent's phone dropped mid-call: nobody can disposition it. The lead gets
            # one attempt with outcome unknown and a retry time, as after a crash.
            await self.flow.recover(call.campaign, self.wall(), self._unsettled_leads())
        else:
            # A reservation that never became a call frees the agent.
            for agent in list(self.agents.values()):
                if agent.state is AgentState.RESERVED and agent.attempt_id == call.call_id:
                    await self._set_agent(agent.release(now))
            try:
                await self.flow.dialer_outcome(
                    call.lead.lead_id,
                    call.campaign,
                    outcome,
                    call.started_wall,
                    self.wall(),
                    call.call_id,
                )
            except LeadNotDialing:
                # Settled already (a recovery raced the call's end): nothing to add.
                log.warning(
                    "outcome of %s for lead %s already recorded", call.call_id, call.lead.lead_id
                )
        self._publish_stats(runtime, call.campaign)

    def _learn(self, runtime: CampaignRuntime, outcome: Any) -> None:
        if outcome is not None:
            runtime.pacer.record(outcome)

    # ------------------------------------------------------------------ FastAGI
    async def _agi_connect(self, req: AGIRequest) -> None:
        """Pick an agent for a live answer within the connect deadline, or let the
        dialplan play the abandon message (no variable set)."""
        call = self.calls.get(req.args[0] if req.args else "")
        if call is None or self.draining:
            return
        runtime = self.campaigns[call.campaign]
        # The dialplan asks only after a live answer (AMD said human, or no AMD). The AMD
        # verdict's AMI event can trail this request, or even the bridge's ConfbridgeJoin;
        # without this the call stays "dialing" for the floor and, once bridged, ends up
        # counted as abandoned. The 2-second clock starts here at the latest.
        runtime.floor.live_answer(call.call_id, self.clock())
        held = next(
            (
                a
                for a in self.agents.values()
                if a.state is AgentState.RESERVED and a.attempt_id == call.call_id
            ),
            None,
        )
        if held is not None:  # a reserved callback: its owner has been waiting for it
            await req.set_variable("DIALERD_BRIDGE", f"dialerd-agent-{held.agent_id}")
            await self._screen_pop(held.agent_id, call)
            return
        deadline = self.clock() + runtime.floor.connect_deadline
        async with self.agents_changed:
            while True:
                ready = [
                    a
                    for a in self.agents.values()
                    if a.state is AgentState.READY and call.campaign in a.campaigns
                ]
                agent = choose_agent(
                    ready, reserved_for=call.lead.reserved_for, linked_to=call.lead.linked_agent
                )
                if agent is not None:
                    break
                remaining = deadline - self.clock()
                if remaining <= 0:
                    return
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await self.agents_changed.wait()
        await self._set_agent(agent.reserve(self.clock(), call.call_id))
        try:
            await req.set_variable("DIALERD_BRIDGE", f"dialerd-agent-{agent.agent_id}")
        except Exception:
            await self._set_agent(self.agents[agent.agent_id].release(self.clock()))
            raise
        await self._screen_pop(agent.agent_id, call)

    async def _screen_pop(self, agent_id: str, call: LiveCall) -> None:
        """R-CB-7: whoever gets the call sees the lead, its history and the comment."""
        self.bus.publish(
            self.bus.topic("agents", agent_id, "screen"),
            await self._screen(call.call_id, call.lead),
        )

    async def _screen(
        self, call_id: str, lead: Claimed, *, preview: bool = False
    ) -> dict[str, Any]:
        """The screen-pop of one call, as published and as the `screen` command answers."""
        screen = await self.flow.screen_pop(lead.lead_id)
        return {
            "attempt": call_id,
            **({"preview": True} if preview else {}),
            **screen,
            "callback_comment": lead.callback_comment,
        }

    # ------------------------------------------------------------------ agents
    async def _set_agent(self, agent: Agent) -> None:
        before = self.agents.get(agent.agent_id)
        self.agents[agent.agent_id] = agent
        if (
            before is not None
            and before.state is AgentState.WRAPUP
            and agent.state is not AgentState.WRAPUP
        ):
            cycle = agent_cycle(before, self.clock())
            for name in before.campaigns:
                if cycle is not None and name in self.campaigns:
                    self.campaigns[name].pacer.record(cycle)
        self.bus.publish(
            self.bus.topic("agents", agent.agent_id, "state"),
            {
                "state": agent.state.value,
                "since": self.wall() - (self.clock() - agent.since),
                "pause_reason": agent.pause_reason,
                "campaigns": list(agent.campaigns),
                "attempt": agent.attempt_id,
            },
            retain=True,
        )
        for state in AgentState:
            metrics.AGENTS.labels(state.value).set(
                sum(a.state is state for a in self.agents.values())
            )
        async with self.agents_changed:
            self.agents_changed.notify_all()
        for name in agent.campaigns:
            if name in self.campaigns:
                self.campaigns[name].wake.set()

    async def _on_agent_leg(self, agent_id: str, event: CallEvent) -> None:
        agent = self.agents.get(agent_id)
        if agent is None:
            return
        now = self.clock()
        if isinstance(event, CallBridged) and agent.state is AgentState.NAILING:
            unfinished = self._awaiting_disposition.get(agent_id)
            if unfinished is None:
                await self._set_agent(agent.leg_up(now))
                return
            # The phone dropped during this call's wrap-up: back to it, screen and all.
            await self._set_agent(agent.leg_up(now, unfinished_attempt=unfinished.call_id))
            await self._screen_pop(agent_id, unfinished)
            log.info("agent %s: back to the wrap-up of %s", agent_id, unfinished.call_id)
        elif isinstance(event, CallHungUp | CallFailed):
            self.agent_legs.pop(event.call_id, None)
            reason = getattr(event, "reason", None) or getattr(event, "cause_txt", "")
            log.info("agent %s: phone leg ended (%s) while %s", agent_id, reason, agent.state.value)
            if agent.attempt_id in self.calls:
                # Nobody is left to talk to the customer: end their leg too.
                await self._kick_customer(agent_id)
            await self._give_back_preview(agent_id, "phone_lost")
            self._skipped.pop(agent_id, None)
            await self._set_agent(self.agents[agent_id].leg_down(now))
            self.bus.publish(
                self.bus.topic("agents", agent_id, "reply"),
                {"id": None, "ok": False, "error": f"phone leg ended ({reason})"},
            )

    async def _kick_customer(self, agent_id: str) -> None:
        """End every non-agent leg in this agent's conference (the customer's)."""
        with contextlib.suppress(AMIError):
            await self.ami.send_action(
                Action(
                    "ConfbridgeKick",
                    (("Conference", f"dialerd-agent-{agent_id}"), ("Channel", "participants")),
                ),
                check=False,
            )

    async def _command(self, agent_id: str, verb: str, body: dict[str, Any]) -> dict[str, Any]:
        handler = self._COMMANDS.get(verb)
        if handler is None:
            raise CommandError(f"unknown command {verb!r}; one of {', '.join(self._COMMANDS)}")
        try:
            return await handler(self, agent_id, body)
        except AgentStateError as exc:
            raise CommandError(str(exc)) from None
        except DispositionError as exc:
            raise CommandError(str(exc)) from None

    async def _cmd_login(self, agent_id: str, body: dict[str, Any]) -> dict[str, Any]:
        campaigns = tuple(body.get("campaigns") or ())
        unknown = [c for c in campaigns if c not in self.campaigns]
        if unknown or not all(isinstance(c, str) for c in campaigns):
            raise CommandError(f"unknown campaign(s) {unknown}; one of {sorted(self.campaigns)}")
        if self.draining:
            raise CommandError("dialerd is stopping; log in again when it is back online")
        if await self.store.get_agent(agent_id) is None:
            raise CommandError(f"agent {agent_id!r} is not known to dialerd")
        decision = await self.billing.may_log_in(agent_id, datetime.now(UTC))
        if not decision.allowed:
            raise CommandError(decision.message)
        endpoint = str(body.get("endpoint") or f"PJSIP/{agent_id}")
        agent = self.agents.get(agent_id) or Agent(agent_id, endpoint)
        await self._set_agent(replace(agent.login(self.clock(), campaigns), endpoint=endpoint))
        call_id = f"{AGENT_CALL_PREFIX}{agent_id}r{secrets.token_hex(3)}"
        self.agent_legs[call_id] = agent_id
        action = originate(
            call_id,
            endpoint,
            context="dialerd-agent",
            exten=agent_id,
            ring_timeout=30,
            variables={"__DIALERD_AGENT": agent_id},
        )
        self.tracker.expect(call_id, action_id=action.action_id)
        try:
            await self.ami.send_action(action, check=False)
        except NotConnected as exc:
            self.agent_legs.pop(call_id, None)
            await self._set_agent(self.agents[agent_id].leg_down(self.clock()))
            raise CommandError(f"Asterisk is not reachable: {exc}") from None
        return {"state": AgentState.NAILING.value, "message": decision.message}

    async def _cmd_logout(self, agent_id: str, body: dict[str, Any]) -> dict[str, Any]:
        agent = self._agent(agent_id)
        if agent.state is AgentState.WRAPUP:
            raise CommandError("give the call its result code first, then log out")
        if await self._give_back_preview(agent_id, "logout") is not None:
            # Released and logged out in one step: a ready moment in between would be
            # offered the next preview.
            agent = self.agents[agent_id].release(self.clock())
        await self._set_agent(agent.logout(self.clock()))
        self._skipped.pop(agent_id, None)
        for call_id, owner in list(self.agent_legs.items()):
            if owner == agent_id:
                self.agent_legs.pop(call_id)
        with contextlib.suppress(AMIError):
            await self.ami.send_action(hangup(f"/^{agent.endpoint}-/"), check=False)
        return {"state": AgentState.LOGGED_OUT.value}

    async def _cmd_pause(self, agent_id: str, body: dict[str, Any]) -> dict[str, Any]:
        agent = self._agent(agent_id).pause(self.clock(), str(body.get("reason") or ""))
        await self._set_agent(agent)
        return {"state": agent.state.value}

    async def _cmd_resume(self, agent_id: str, body: dict[str, Any]) -> dict[str, Any]:
        agent = self._agent(agent_id).resume(self.clock())
        await self._set_agent(agent)
        return {"state": agent.state.value}

    async def _cmd_hangup(self, agent_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """End the customer's leg; the agent stays nailed up and goes to wrap-up at once,
        so a disposition sent right after is accepted whatever the event timing."""
        agent = self._agent(agent_id)
        call = self.calls.get(agent.attempt_id or "")
        if agent.state is not AgentState.TALKING or call is None:
            raise CommandError("no customer call to hang up")
        await self._kick_customer(agent_id)
        agent = agent.customer_left(self.clock())
        await self._set_agent(agent)
        self._awaiting_disposition[agent_id] = call
        return {"state": agent.state.value}

    async def _cmd_disposition(self, agent_id: str, body: dict[str, Any]) -> dict[str, Any]:
        agent = self._agent(agent_id)
        call = self._awaiting_disposition.get(agent_id)
        if agent.state is not AgentState.WRAPUP or call is None:
            raise CommandError("no call to close: dispositions are taken in wrap-up")
        if call.closing:
            raise CommandError("this call is being closed already (wrap-up timed out)")
        reschedule = _reschedule(body.get("reschedule"))
        call.closing = True
        try:
            await self.flow.disposition(
                call.lead.lead_id,
                call.campaign,
                agent_id,
                str(body.get("result_code") or ""),
                call_note=str(body.get("note") or ""),
                detail_note=str(body.get("detail_note") or ""),
                registration=body.get("registration"),
                reschedule=reschedule,
                voicemail=bool(body.get("voicemail")),
                email_to=body.get("email_to"),
                started=call.started_wall,
                ended=self.wall(),
                call_id=call.call_id,
            )
        finally:
            call.closing = False
        agent = await self._call_closed(agent_id, call, lambda a: a.dispositioned(self.clock()))
        return {"state": agent.state.value}

    async def _call_closed(
        self, agent_id: str, call: LiveCall, free: Callable[[Agent], Agent]
    ) -> Agent:
        """The call's disposition is recorded: it leaves wrap-up, and `free` moves the agent
        on (ready, or paused when a pause was asked for during the call)."""
        call.dispositioned = True
        self._awaiting_disposition.pop(agent_id, None)
        agent = free(self.agents[agent_id])
        await self._set_agent(agent)
        return agent

    async def _expire_wrapups(self, runtime: CampaignRuntime) -> None:
        """Close every wrap-up of this campaign that outlived `wrapup.timeout_seconds` with
        the campaign's timeout code, through the agent's own disposition path (attempt,
        retry time, history), so a seat left in wrap-up neither idles nor holds its lead."""
        wrapup = runtime.config.wrapup
        if wrapup is None or not wrapup.seconds or wrapup.result_code is None:
            return
        for agent_id, call in list(self._awaiting_disposition.items()):
            agent = self.agents.get(agent_id)
            now = self.clock()
            if (
                agent is None
                or call.campaign != runtime.config.name
                or call.closing
                or not agent.wrap_expired(now, wrapup.seconds)
            ):
                continue
            waited = now - agent.since
            call.closing = True
            try:
                await self.flow.disposition(
                    call.lead.lead_id,
                    call.campaign,
                    agent_id,
                    wrapup.result_code,
                    call_note=f"wrap-up timed out after {waited:.0f} s without a disposition",
                    started=call.started_wall,
                    ended=self.wall(),
                    call_id=call.call_id,
                )
            except (DispositionError, LeadNotDialing) as exc:
                # Settled some other way meanwhile (a recovery): the seat is freed all the same.
                log.warning(
                    "agent %s: wrap-up of %s timed out after %.0f s; nothing recorded (%s)",
                    agent_id,
                    call.call_id,
                    waited,
                    exc,
                )
            else:
                log.info(
                    "agent %s: wrap-up of %s timed out after %.0f s; recorded %s for lead %s",
                    agent_id,
                    call.call_id,
                    waited,
                    wrapup.result_code,
                    call.lead.lead_id,
                )
            finally:
                call.closing = False
            metrics.WRAPUP_TIMEOUTS.labels(call.campaign).inc()
            await self._call_closed(
                agent_id, call, lambda a: a.wrap_timeout(self.clock(), wrapup.seconds)
            )
            self.bus.publish(
                self.bus.topic("agents", agent_id, "reply"),
                {
                    "id": None,
                    "ok": True,
                    "closed": "wrap-up timed out",
                    "attempt": call.call_id,
                    "result_code": wrapup.result_code,
                },
            )

    async def _cmd_dial(self, agent_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Preview mode: dial the lead this agent has been shown."""
        preview = self._previews.pop(agent_id, None)
        if preview is None:
            raise CommandError("no previewed lead to dial")
        call_id, lead = preview
        runtime = self.campaigns.get(lead.campaign)
        if runtime is None:
            raise CommandError(f"campaign {lead.campaign!r} is not running")
        await self._launch(runtime, lead, call_id=call_id)
        return {"state": self._agent(agent_id).state.value, "attempt": call_id}

    async def _cmd_skip(self, agent_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Preview mode: give the shown lead back undialled (no attempt: it is as dialable
        as before, for the other agents at once) and see the next one. It is not shown to
        this agent again until they log in anew, or skipping would show it straight back."""
        self._agent(agent_id)
        lead = await self._give_back_preview(agent_id, "skip")
        if lead is None:
            raise CommandError("no previewed lead to skip")
        self._skipped.setdefault(agent_id, set()).add(lead.lead_id)
        agent = self.agents[agent_id].release(self.clock())
        await self._set_agent(agent)
        return {"state": agent.state.value, "skipped": lead.lead_id}

    async def _give_back_preview(self, agent_id: str, why: str) -> Claimed | None:
        """Return the agent's previewed, undialled lead to the queue; the lead, or None when
        the agent had none. The agent's own state is the caller's to move."""
        preview = self._previews.pop(agent_id, None)
        if preview is None:
            return None
        _, lead = preview
        if not await self.flow.release(lead):
            log.warning("previewed lead %s was no longer held; nothing to give back", lead.lead_id)
        metrics.PREVIEW_GIVEBACKS.labels(lead.campaign, why).inc()
        log.info("agent %s: previewed lead %s back to the queue (%s)", agent_id, lead.lead_id, why)
        return lead

    async def _cmd_scheduled(self, agent_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """R-CB-1: the agent's scheduled calls, ordered by time."""
        calls = await self.flow.scheduled_calls(agent_id, self.wall())
        return {
            "scheduled": [
                {
                    "lead": c.lead_id,
                    "campaign": c.campaign,
                    "number": c.number,
                    "name": c.name,
                    "due_at": c.due_at,
                    "reserved_until": c.reserved_until,
                    "comment": c.comment,
                    "state": c.state,
                }
                for c in calls
            ]
        }

    async def _cmd_screen(self, agent_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """The call on the agent's screen now, or null: a console started (or restarted)
        mid-call asks, so the agent sees the customer again without waiting for the next."""
        preview = self._previews.get(agent_id)
        if preview is not None:
            return {"screen": await self._screen(*preview, preview=True)}
        agent = self.agents.get(agent_id)
        call = self._awaiting_disposition.get(agent_id)
        if call is None and agent is not None and agent.attempt_id is not None:
            call = self.calls.get(agent.attempt_id)
        if call is None:
            return {"screen": None}
        return {"screen": await self._screen(call.call_id, call.lead)}

    def _agent(self, agent_id: str) -> Agent:
        agent = self.agents.get(agent_id)
        if agent is None:
            raise CommandError("not logged in")
        return agent

    _COMMANDS: ClassVar[
        dict[str, Callable[[Daemon, str, dict[str, Any]], Awaitable[dict[str, Any]]]]
    ] = {
        "login": _cmd_login,
        "logout": _cmd_logout,
        "pause": _cmd_pause,
        "resume": _cmd_resume,
        "hangup": _cmd_hangup,
        "disposition": _cmd_disposition,
        "dial": _cmd_dial,
        "skip": _cmd_skip,
        "scheduled": _cmd_scheduled,
        "screen": _cmd_screen,
    }

    # ------------------------------------------------------------------ housekeeping
    async def _housekeeping(self) -> None:
        """Watchdog pings and wallboard stats, once a second."""
        interval = watchdog_interval()
        last_ping = 0.0
        sessions = 1  # every AMI session after the first is a reconnect
        while True:
            await asyncio.sleep(1.0)
            if interval and self.clock() - last_ping >= interval:
                notify("WATCHDOG=1")
                last_ping = self.clock()
            metrics.AMI_CONNECTED.set(1 if self.ami.connected else 0)
            if self.ami.generation > sessions:
                metrics.AMI_RECONNECTS.inc(self.ami.generation - sessions)
                sessions = self.ami.generation
            metrics.MQTT_DROPPED.set(self.bus.dropped)
            for name, runtime in self.campaigns.items():
                self._publish_stats(runtime, name)

    def _publish_stats(self, runtime: CampaignRuntime, name: str) -> None:
        cf = runtime.floor
        states: dict[str, int] = {}
        for agent in self.agents.values():
            if name in agent.campaigns:
                states[agent.state.value] = states.get(agent.state.value, 0) + 1
        self.bus.publish(
            self.bus.topic("campaigns", name, "stats"),
            {
                "dialed": runtime.dialed,
                "human_answered": cf.human_answered,
                "connected": cf.connected,
                "abandoned": cf.abandoned,
                "abandon_rate": round(cf.abandon_rate, 4),
                "in_flight": len(cf.calls),
                "agents": states,
            },
            retain=True,
        )


def _call_id(lead: Claimed) -> str:
    """Unique across restarts, never a prefix of another (Asterisk rejects those)."""
    return f"c{lead.lead_id}n{lead.attempt}r{secrets.token_hex(3)}"


def _reschedule(raw: Any) -> Reschedule | None:
    """`{"when": ISO 8601 with offset, "to": "myself"|"any", "comment": "..."}` (R-REG-4b)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise CommandError("reschedule must be an object with when, to and comment")
    try:
        when = datetime.fromisoformat(str(raw.get("when")))
    except ValueError:
        raise CommandError("reschedule.when must be an ISO 8601 date-time") from None
    if when.tzinfo is None:
        raise CommandError("reschedule.when needs a UTC offset (e.g. 2026-11-24T10:00+01:00)")
    try:
        target = CallbackTarget(str(raw.get("to", "myself")))
    except ValueError:
        raise CommandError("reschedule.to must be 'myself' or 'any'") from None
    return Reschedule(when=when.timestamp(), target=target, comment=str(raw.get("comment", "")))


def _pacer_result(outcome: Outcome) -> str:
    return {
        Outcome.MACHINE: "machine",
        Outcome.BUSY: "busy",
        Outcome.NO_ANSWER: "no_answer",
        Outcome.FAILED: "failed",
    }.get(outcome, "human")


async def run_daemon(config: Config) -> None:
    """Run until SIGTERM/SIGINT (drain) with SIGHUP reloading campaigns."""
    daemon = Daemon(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, daemon.reload)
    await daemon.run(stop)
