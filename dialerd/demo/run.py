"""`dialerd demo`: a whole floor on one machine, every part real.

A sandbox Asterisk (with the simulated world), a private mosquitto, the daemon itself,
N agents each running `dialerd phone` (a pjsua2 softphone registered to the sandbox, null
audio device) and an agent "robot" per agent on MQTT that talks for a sampled time and
dispositions the call as a person would at the console. M leads are drawn from the world
with a seed. The live view shows progress, dial level, abandon rate and agents by state;
the summary (`--json`) is what benchmarks and the recovery test read.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import yaml
from rich.console import Console
from rich.live import Live
from rich.table import Table

from dialerd.billing.rules import AccountKind, Plan, UserType
from dialerd.billing.service import BillingService
from dialerd.config.loader import load_config
from dialerd.daemon.app import Daemon
from dialerd.demo.services import REPO, Mosquitto, SandboxInfo, ServiceError, sandbox_up
from dialerd.demo.world import DEFAULT_MIX, generate
from dialerd.floor.agents import AgentState
from dialerd.leads.importer import import_csv
from dialerd.logsetup import setup_logging
from dialerd.store.billing import BillingStore
from dialerd.store.db import open_db
from dialerd.store.models import Agent as StoredAgent
from dialerd.store.models import Extension
from dialerd.store.sqlite import SqliteStore

DEMO_CAMPAIGN = REPO / "conf" / "campaigns" / "demo.yaml"


@dataclass(frozen=True)
class DemoOptions:
    agents: int = 5
    leads: int = 60
    minutes: float = 5.0
    seed: int = 1
    campaign_file: Path = DEMO_CAMPAIGN
    talk: tuple[float, float] = (4.0, 12.0)
    ring: tuple[int, int] = (2, 8)
    mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    sandbox_name: str = "demo"
    ami_port: int = 5038
    sip_port: int = 5060
    agi_port: int = 4573
    mqtt_port: int = 18830
    metrics_port: int = 0
    workdir: Path | None = None
    extra_conf: tuple[Path, ...] = ()
    live_view: bool = True


@dataclass
class AgentRobot:
    """An agent at the console, driven over MQTT exactly as the real console does."""

    agent_id: str
    rng: random.Random
    talk: tuple[float, float]
    handled: int = 0
    logins: int = 0
    busy_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


async def run_demo(opts: DemoOptions, console: Console) -> dict[str, Any]:
    work = opts.workdir or Path(tempfile.mkdtemp(prefix="dialerd-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    console.print(
        f"[bold]dialerd demo[/] in {work}: {opts.agents} agents, {opts.leads} leads, "
        f"seed {opts.seed}"
    )
    sandbox = await asyncio.to_thread(
        sandbox_up,
        opts.sandbox_name,
        opts.ami_port,
        opts.sip_port,
        opts.agi_port,
        list(opts.extra_conf),
    )
    console.print(f"sandbox {sandbox.name}: {sandbox.version}")
    broker = await asyncio.to_thread(Mosquitto, opts.mqtt_port)
    phones: list[subprocess.Popen[bytes]] = []
    try:
        config_dir = write_config(work, sandbox, opts)
        config = load_config(config_dir)
        setup_logging("INFO", "text", str(work / "dialerd.log"))
        campaign = next(iter(config.campaigns))
        await prepare_store(config_dir / "dialerd.db", config, campaign, opts)
        daemon = Daemon(config)
        stop = asyncio.Event()
        daemon_task = asyncio.create_task(daemon.run(stop), name="daemon")
        ready = asyncio.create_task(daemon.ready.wait())
        await asyncio.wait([ready, daemon_task], timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if daemon_task.done():
            daemon_task.result()  # the daemon's own error, not a confusing later one
        if not daemon.ready.is_set():
            raise ServiceError("dialerd did not become ready in 30 s (is AMI reachable?)")
        phones = start_phones(opts, sandbox, work)
        robots = [
            AgentRobot(str(1001 + i), random.Random(opts.seed * 1000 + i), opts.talk)
            for i in range(opts.agents)
        ]
        robot_tasks = [
            asyncio.create_task(run_robot(r, broker.host, broker.port, campaign)) for r in robots
        ]
        started = time.monotonic()
        await _watch(daemon, daemon_task, campaign, opts, console, started)
        elapsed = time.monotonic() - started
        # Drain as SIGTERM does: no new calls, the robots finish the ones in progress.
        stop.set()
        await daemon_task
        for task in robot_tasks:
            task.cancel()
        await asyncio.gather(*robot_tasks, return_exceptions=True)
        return await _summary(daemon, campaign, config_dir / "dialerd.db", robots, elapsed)
    finally:
        stop_phones(phones)
        broker.stop()
        if opts.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


def write_config(work: Path, sandbox: SandboxInfo, opts: DemoOptions) -> Path:
    config_dir = work / "conf"
    (config_dir / "campaigns").mkdir(parents=True, exist_ok=True)
    daemon = {
        "ami": {
            "host": sandbox.ami_host,
            "port": sandbox.ami_port,
            "user": sandbox.ami_user,
            "secret": sandbox.ami_secret,
        },
        "agi": {"bind": "127.0.0.1", "port": sandbox.agi_port},
        "mqtt": {"host": "127.0.0.1", "port": opts.mqtt_port, "prefix": "dialerd"},
        "store": {"path": "dialerd.db"},
        "metrics": {"bind": "127.0.0.1", "port": opts.metrics_port},
        "logging": {"level": "INFO", "format": "text", "file": str(work / "dialerd.log")},
    }
    (config_dir / "dialerd.yaml").write_text(yaml.safe_dump(daemon, sort_keys=False))
    # Recordings land in the sandbox's spool; dialerd reads them from the host side.
    inbound = {
        "recordings": {
            "directory": str(sandbox.spool_dir / "monitor"),
            "pbx_directory": f"/srv/dialerd/{sandbox.name}/spool/monitor",
        }
    }
    (config_dir / "inbound.yaml").write_text(yaml.safe_dump(inbound, sort_keys=False))
    shutil.copy(opts.campaign_file, config_dir / "campaigns" / opts.campaign_file.name)
    return config_dir


async def prepare_store(db: Path, config: Any, campaign: str, opts: DemoOptions) -> None:
    """Leads from the seeded world, and a paid-up subscription for every demo agent."""
    callees = generate(opts.leads, opts.seed, opts.mix, opts.ring)
    sheet = db.parent / "leads.csv"
    with sheet.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["phone", "name", "behaviour"])
        for n, callee in enumerate(callees):
            writer.writerow([callee.number, f"Customer {n + 1}", callee.behaviour])
    store = await SqliteStore.open(db)
    try:
        for i in range(opts.agents):
            user = str(1001 + i)
            await store.upsert_agent(
                StoredAgent(
                    user,
                    f"Demo agent {user}",
                    f"agent{user}@example.invalid",
                    extensions=(Extension(user, f"PJSIP/{user}", user),),
                )
            )
        stored = await store.sync_campaign(config.campaigns[campaign], time.time())
        report = await import_csv(store, stored, config.campaigns[campaign], sheet, now=time.time())
        if report.imported != opts.leads:
            raise RuntimeError(f"demo lead import: {report}")
    finally:
        await store.close()
    conn = await open_db(db)
    try:
        billing = BillingService(BillingStore(conn))
        now = datetime.now(UTC)
        await billing.add_account("demo", AccountKind.CALL_CENTRE, now)
        await billing.add_credit("demo", 1_000_000, "demo credit", now)
        for i in range(opts.agents):
            user = str(1001 + i)
            await billing.put_user(
                user, "demo", UserType.TELEMARKETER, f"agent{user}@example.invalid"
            )
            await billing.subscribe(user, Plan.MONTH, now, recording=True)
    finally:
        await conn.close()


def start_phones(
    opts: DemoOptions, sandbox: SandboxInfo, work: Path
) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(opts.agents):
        user = str(1001 + i)
        env = {**os.environ, "DIALERD_PHONE_PASSWORD": f"secret{user}"}
        log = (work / f"phone-{user}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dialerd",
                    "phone",
                    "--server",
                    f"127.0.0.1:{sandbox.sip_port}",
                    "--user",
                    user,
                    "--null-audio",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        )
    return procs


def stop_phones(phones: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM, then SIGKILL for any phone still up after 10 s: never leave one behind."""
    for proc in phones:
        proc.terminate()
    for proc in phones:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


async def run_robot(robot: AgentRobot, broker_host: str, broker_port: int, campaign: str) -> None:
    """Work the floor as an agent at the console would, over MQTT only.

    Logs in whenever a dialerd announces itself online (its first start, or a restart
    after a crash) and again if the phone leg drops (the softphone was not registered
    yet, a network blip); then works every call that pops up.
    """
    prefix = f"dialerd/agents/{robot.agent_id}"
    login = json.dumps({"id": "login", "command": "login", "campaigns": [campaign]})
    async with aiomqtt.Client(
        broker_host, broker_port, identifier=f"robot-{robot.agent_id}"
    ) as client:
        await client.subscribe(f"{prefix}/#", qos=1)
        await client.subscribe("dialerd/status", qos=1)
        calls: set[asyncio.Task[None]] = set()
        relogin: asyncio.Task[None] | None = None

        async def login_soon(delay: float) -> None:
            await asyncio.sleep(delay)
            await client.publish(f"{prefix}/cmd", login, qos=1)

        async for message in client.messages:
            topic = str(message.topic)
            body = json.loads(message.payload)
            wants_login = (topic == "dialerd/status" and body.get("online")) or (
                topic == f"{prefix}/state"
                and body.get("state") == "logged_out"
                and robot.logins > 0
            )
            if wants_login and robot.logins < 30 and (relogin is None or relogin.done()):
                robot.logins += 1
                relogin = asyncio.create_task(login_soon(2.0))
            if topic == "dialerd/status" and not body.get("online") and relogin is not None:
                relogin.cancel()  # dialerd stopped (and signed us out): wait until it is back
            if topic.endswith("/reply") and not body.get("ok"):
                robot.errors.append(str(body.get("error")))
            if topic.endswith("/screen") and body.get("preview"):
                # Preview mode: read the lead, then dial it (R-DL-1).
                await client.publish(
                    f"{prefix}/cmd",
                    json.dumps({"id": f"dial-{body.get('attempt')}", "command": "dial"}),
                    qos=1,
                )
            elif topic.endswith("/screen"):
                task = asyncio.create_task(_work_call(robot, client, prefix, body))
                calls.add(task)
                task.add_done_callback(calls.discard)


async def _work_call(
    robot: AgentRobot, client: aiomqtt.Client, prefix: str, screen: dict[str, Any]
) -> None:
    talk = robot.rng.uniform(*robot.talk)
    await asyncio.sleep(talk)
    await client.publish(f"{prefix}/cmd", json.dumps({"id": "hangup", "command": "hangup"}), qos=1)
    await asyncio.sleep(robot.rng.uniform(0.5, 1.5))  # typing the wrap-up
    roll = robot.rng.random()
    body: dict[str, Any] = {
        "id": f"dispo-{screen.get('attempt')}",
        "command": "disposition",
        "note": "demo call",
        "registration": {"Reason for call": ["Sale"]},
    }
    if roll < 0.4:
        body["result_code"] = "not_interested"
    elif roll < 0.6:
        body["result_code"] = "appointment"
        body["email_to"] = "customer@example.invalid"
        body["detail_note"] = "Tuesday 10:00"
    elif roll < 0.75:
        body["result_code"] = "order"
    elif roll < 0.9:
        body["result_code"] = "callback"
        body["detail_note"] = "asked to be called back"
        due = datetime.now(UTC) + timedelta(seconds=45)
        body["reschedule"] = {
            "when": due.isoformat(),
            "to": "myself",
            "comment": "wants to talk about the offer after lunch",
        }
    else:
        body["result_code"] = "not_cp"
    await client.publish(f"{prefix}/cmd", json.dumps(body), qos=1)
    robot.handled += 1
    robot.busy_seconds += talk


def _finished(daemon: Daemon, campaign: str, counts: dict[str, int]) -> bool:
    runtime = daemon.campaigns.get(campaign)
    if runtime is None:
        return True
    active = counts.get("ready", 0) + counts.get("dialing", 0) + counts.get("callback", 0)
    busy = any(
        a.state in (AgentState.TALKING, AgentState.WRAPUP, AgentState.RESERVED)
        for a in daemon.agents.values()
    )
    return active == 0 and not runtime.floor.calls and not busy


async def _watch(
    daemon: Daemon,
    daemon_task: asyncio.Task[None],
    campaign: str,
    opts: DemoOptions,
    console: Console,
    started: float,
) -> None:
    deadline = started + opts.minutes * 60
    stored = await daemon.store.get_campaign(campaign)
    assert stored is not None
    with Live(console=console, refresh_per_second=2, transient=False) as live:
        while time.monotonic() < deadline:
            if daemon_task.done():
                daemon_task.result()
                raise ServiceError("dialerd stopped unexpectedly")
            counts = await daemon.store.lead_counts(stored.id)
            if opts.live_view:
                live.update(_view(daemon, campaign, counts, time.monotonic() - started))
            if _finished(daemon, campaign, counts) and time.monotonic() - started > 10:
                break
            await asyncio.sleep(0.5)


def _view(daemon: Daemon, campaign: str, counts: dict[str, int], elapsed: float) -> Table:
    runtime = daemon.campaigns[campaign]
    cf = runtime.floor
    table = Table(title=f"dialerd demo: campaign {campaign} ({elapsed:.0f}s)")
    table.add_column("leads by status")
    table.add_column("calls")
    table.add_column("agents")
    lead_lines = "\n".join(f"{k}: {v}" for k, v in sorted(counts.items()))
    call_lines = (
        f"dialed: {runtime.dialed}\nin flight: {len(cf.calls)}\n"
        f"live answers: {cf.human_answered}\nconnected: {cf.connected}\n"
        f"abandoned: {cf.abandoned} ({cf.abandon_rate:.1%})\n"
        f"dial level: {len(cf.calls) / max(1, _ready(daemon)):.2f}"
    )
    states: dict[str, int] = {}
    for agent in daemon.agents.values():
        states[agent.state.value] = states.get(agent.state.value, 0) + 1
    agent_lines = "\n".join(f"{k}: {v}" for k, v in sorted(states.items()))
    table.add_row(lead_lines, call_lines, agent_lines)
    return table


def _ready(daemon: Daemon) -> int:
    return sum(a.state is AgentState.READY for a in daemon.agents.values())


async def _summary(
    daemon: Daemon, campaign: str, db: Path, robots: list[AgentRobot], elapsed: float
) -> dict[str, Any]:
    runtime = daemon.campaigns[campaign]
    cf = runtime.floor
    store = await SqliteStore.open(db)
    try:
        stored = await store.get_campaign(campaign)
        assert stored is not None
        counts = await store.lead_counts(stored.id)
    finally:
        await store.close()
    latencies = sorted(cf.connect_latencies)
    talk = sum(r.busy_seconds for r in robots)
    logged_in = elapsed * len(robots)
    return {
        "dialed": runtime.dialed,
        "human_answered": cf.human_answered,
        "connected": cf.connected,
        "abandoned": cf.abandoned,
        "abandon_rate": round(cf.abandon_rate, 4),
        "occupancy": round(talk / logged_in, 4) if logged_in else 0.0,
        "connect_latency_p50_ms": _ms(latencies, 0.50),
        "connect_latency_p99_ms": _ms(latencies, 0.99),
        "leads_lost": counts.get("dialing", 0),
        "double_dials": daemon.double_dials,
        "leads": counts,
        "agent_errors": sorted({e for r in robots for e in r.errors}),
        "elapsed_s": round(elapsed, 1),
    }


def _ms(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0] * 1000, 1)
    return round(
        statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1] * 1000, 1
    )
