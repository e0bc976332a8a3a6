"""The live floor end to end: real Asterisk, real pjsua2 softphones, real mosquitto.

`dialerd demo` is the harness: it runs the daemon in-process, one `dialerd phone` process
per agent (registered to the sandbox, null audio device) and one MQTT "robot" per agent
that talks and dispositions as a person at the console would.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from dialerd.demo.run import DEMO_CAMPAIGN, DemoOptions, run_demo
from dialerd.demo.world import generate
from tests.conftest import Sandbox, demo_options

pytestmark = [pytest.mark.pbx, pytest.mark.sip, pytest.mark.mqtt]

# The demo brings its own broker: next to the session's, so parallel runs stay apart.
DEMO_MQTT_PORT = int(os.environ.get("DIALERD_TEST_MQTT_PORT", 21883)) + 1

EXPECTED_FIRST_OUTCOME = {
    "human": {"human", "abandoned"},
    "machine": {"machine", "human"},  # AMD may call a machine human (<= 10%, checked below)
    "busy": {"busy"},
    "no_answer": {"no_answer"},
    "congestion": {"failed"},
    "invalid": {"failed"},
}


def options(sandbox: Sandbox, workdir: Path, **kw: Any) -> DemoOptions:
    return demo_options(sandbox, workdir, **{"mqtt_port": DEMO_MQTT_PORT, **kw})


@pytest.mark.timeout(900)
async def test_campaign_with_ten_agents_and_300_leads(sandbox: Sandbox, tmp_path: Path) -> None:
    """R-DL-1/2/3, R-CB-2/3/7, R-REG-4: every lead ends in the state its callee's behaviour
    calls for, nothing is lost or dialled twice, callbacks come back to their owner."""
    opts = options(
        sandbox, tmp_path, agents=10, leads=300, minutes=12, seed=7, talk=(2.0, 5.0), ring=(2, 6)
    )
    summary = await run_demo(opts, Console(quiet=True))
    print(summary)
    assert summary["leads_lost"] == 0
    assert summary["double_dials"] == 0
    # Refused commands are fine (a login racing the phone's registration); a daemon
    # failure is not.
    assert not [e for e in summary["agent_errors"] if "internal error" in e]
    assert summary["human_answered"] >= 100
    assert summary["connected"] + summary["abandoned"] >= summary["human_answered"]

    db = sqlite3.connect(tmp_path / "conf" / "dialerd.db")
    behaviour = {c.number: c.behaviour for c in generate(300, 7, ring=opts.ring)}
    first = db.execute(
        "SELECT l.number, a.outcome FROM attempts a JOIN leads l ON l.id = a.lead_id"
        " WHERE a.id IN (SELECT MIN(id) FROM attempts GROUP BY lead_id)"
    ).fetchall()
    assert len(first) == 300, "every lead was dialled"
    wrong = [
        (n, behaviour[n], o) for n, o in first if o not in EXPECTED_FIRST_OUTCOME[behaviour[n]]
    ]
    assert wrong == []
    machines = [o for n, o in first if behaviour[n] == "machine"]
    assert machines.count("machine") >= 0.9 * len(machines), "AMD agreement >= 90%"
    statuses = dict(db.execute("SELECT status, COUNT(*) FROM leads GROUP BY status").fetchall())
    assert statuses.get("dialing", 0) == 0
    assert sum(statuses.values()) == 300

    # R-CB-2/3: each "call me back" came back to the agent who took it, inside the window.
    callbacks = db.execute(
        "SELECT c.lead_id, c.owner_agent, c.due_at, c.reserved_until FROM callbacks c"
        " WHERE c.owner_agent IS NOT NULL AND c.status = 'done'"
    ).fetchall()
    assert callbacks, "the robots reschedule some calls to themselves"
    for lead_id, owner, due_at, reserved_until in callbacks:
        agent, started = db.execute(
            "SELECT agent, started_at FROM attempts WHERE lead_id = ? AND started_at >= ?"
            " ORDER BY started_at LIMIT 1",
            (lead_id, due_at),
        ).fetchone()
        assert agent == owner
        assert started <= reserved_until


async def test_abandoned_callers_hear_the_message(sandbox: Sandbox, tmp_path: Path) -> None:
    """R-DL-5: over-dialing one agent (ratio 4) abandons live customers; each hears the
    safe-harbour recording, and the abandon counts against the rate (R-DL-2)."""
    campaign = yaml.safe_load(DEMO_CAMPAIGN.read_text())
    campaign.update(mode="ratio", pacing={"ratio": 4.0, "max_ratio": 4.0}, amd=False)
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(campaign))
    log = sandbox.spool_dir.parent / "log" / "full"
    before = log.read_text(errors="replace").count("dialerd/abandon")
    opts = options(
        sandbox,
        tmp_path / "work",
        agents=1,
        leads=12,
        minutes=2,
        seed=3,
        campaign_file=path,
        mix={"human": 1.0},
        talk=(6.0, 8.0),
        ring=(2, 3),
    )
    started = time.monotonic()
    summary = await run_demo(opts, Console(quiet=True))
    print(summary, time.monotonic() - started)
    played = log.read_text(errors="replace").count("dialerd/abandon") - before
    assert summary["abandoned"] >= 1
    assert summary["abandon_rate"] > 0
    assert played >= summary["abandoned"]
    assert summary["leads_lost"] == 0


async def test_preview_mode_agents_dial_what_they_were_shown(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """R-DL-1 preview: nothing is dialled until the agent says so; every live answer
    therefore has its agent waiting and nobody is abandoned."""
    campaign = yaml.safe_load(DEMO_CAMPAIGN.read_text())
    campaign.update(mode="preview", pacing={}, amd=False)
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(campaign))
    opts = options(
        sandbox,
        tmp_path / "work",
        agents=2,
        leads=6,
        minutes=2,
        seed=4,
        campaign_file=path,
        mix={"human": 0.7, "busy": 0.3},
        talk=(2.0, 3.0),
        ring=(2, 3),
    )
    summary = await run_demo(opts, Console(quiet=True))
    print(summary)
    assert summary["dialed"] >= 6
    assert summary["abandoned"] == 0
    assert summary["connected"] == summary["human_answered"] >= 1
    assert summary["leads_lost"] == 0
