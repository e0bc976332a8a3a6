"""Connect latency on the sandbox: live answer → customer bridged to an agent.

Runs `dialerd demo` (real Asterisk, real pjsua2 agents, real mosquitto) once per scenario
and prints one table. `progressive` never launches more calls than ready agents, so its
latency is the system's own hand-off (AGI decision + ConfBridge join); `predictive`
over-dials, so some live answers wait for an agent to free up — that wait is part of its
latency by definition.

    python bench/floor.py [--agents 10] [--leads 200] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from dialerd.demo.run import DEMO_CAMPAIGN, DemoOptions, run_demo


async def scenario(mode: str, agents: int, leads: int, seed: int) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix=f"dialerd-bench-{mode}-"))
    campaign = yaml.safe_load(DEMO_CAMPAIGN.read_text())
    campaign["mode"] = mode
    path = work / "demo.yaml"
    path.write_text(yaml.safe_dump(campaign))
    opts = DemoOptions(
        agents=agents,
        leads=leads,
        minutes=15,
        seed=seed,
        campaign_file=path,
        talk=(2.0, 6.0),
        ring=(2, 6),
        sandbox_name="bench",
        ami_port=35038,
        sip_port=35060,
        agi_port=34573,
        mqtt_port=31883,
        workdir=work / "run",
        live_view=False,
    )
    summary = await run_demo(opts, Console(quiet=True))
    return {"name": f"floor-{mode}", "mode": mode, **summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument("--leads", type=int, default=200)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [
        asyncio.run(scenario(mode, args.agents, args.leads, args.seed))
        for mode in ("progressive", "predictive")
    ]
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return
    table = Table(
        title=f"connect latency on the sandbox ({args.agents} pjsua2 agents, {args.leads} leads)"
    )
    for column in (
        "mode",
        "dialed",
        "live",
        "connected",
        "abandoned",
        "abandon rate",
        "p50 ms",
        "p99 ms",
        "occupancy",
        "lost",
        "double",
    ):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            str(r["mode"]),
            str(r["dialed"]),
            str(r["human_answered"]),
            str(r["connected"]),
            str(r["abandoned"]),
            f"{r['abandon_rate']:.1%}",
            str(r["connect_latency_p50_ms"]),
            str(r["connect_latency_p99_ms"]),
            f"{r['occupancy']:.2f}",
            str(r["leads_lost"]),
            str(r["double_dials"]),
        )
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
