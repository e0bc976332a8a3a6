"""`dialerd demo`: the README's first command."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click
from rich.console import Console

from dialerd.demo.run import DEMO_CAMPAIGN, DemoOptions


@click.command("demo")
@click.option("--agents", default=5, show_default=True, help="simulated agents (pjsua2 phones)")
@click.option("--leads", default=60, show_default=True, help="leads drawn from the world")
@click.option("--minutes", default=5.0, show_default=True, help="stop after this long")
@click.option("--seed", default=1, show_default=True, help="same seed, same customers")
@click.option(
    "--campaign",
    "campaign_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=DEMO_CAMPAIGN,
    show_default=True,
    help="campaign YAML (its dial_string may point at an --extra-conf world)",
)
@click.option(
    "--extra-conf",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    multiple=True,
    help="extra Asterisk config for the sandbox (X_*.conf)",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="keep config, database, logs here (default: a temporary directory)",
)
@click.option("--ami-port", default=5038, show_default=True)
@click.option("--sip-port", default=5060, show_default=True)
@click.option("--agi-port", default=4573, show_default=True)
@click.option("--mqtt-port", default=18830, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print the summary as one JSON object")
def demo(
    agents: int,
    leads: int,
    minutes: float,
    seed: int,
    campaign_file: Path,
    extra_conf: tuple[Path, ...],
    workdir: Path | None,
    ami_port: int,
    sip_port: int,
    agi_port: int,
    mqtt_port: int,
    as_json: bool,
) -> None:
    """A demo campaign on a local sandbox Asterisk with simulated agents and customers."""
    from dialerd.demo.run import run_demo
    from dialerd.demo.services import ServiceError

    console = Console(stderr=as_json)
    opts = DemoOptions(
        agents=agents,
        leads=leads,
        minutes=minutes,
        seed=seed,
        campaign_file=campaign_file,
        extra_conf=extra_conf,
        workdir=workdir,
        ami_port=ami_port,
        sip_port=sip_port,
        agi_port=agi_port,
        mqtt_port=mqtt_port,
        live_view=not as_json,
    )
    try:
        summary = asyncio.run(run_demo(opts, console))
    except ServiceError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(summary))
    else:
        console.print_json(json.dumps(summary))
