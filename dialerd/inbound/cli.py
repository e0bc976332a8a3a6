"""``dialerd inbound check|plan``: validate inbound.yaml and show who rings for a number.

``plan`` answers the admin's question "if +31850000001 is called, who rings, for how long,
and what then?" from the same code the FastAGI handlers run. Exit codes: 0 ok, 2 bad input.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from dialerd.config.cli import EXIT_BAD_INPUT, config_option
from dialerd.config.inbound import InboundConfig, load_inbound
from dialerd.config.loader import ConfigError
from dialerd.inbound.routing import plan_route

__all__ = ["inbound"]


def _load(config_dir: Path, err: Console) -> InboundConfig:
    try:
        return load_inbound(config_dir)
    except ConfigError as exc:
        for issue in exc.issues:
            err.print(str(issue), markup=False, highlight=False)
        err.print(f"{len(exc.issues)} problem(s) in {config_dir}/inbound.yaml", style="bold red")
        raise SystemExit(EXIT_BAD_INPUT) from None


@click.group("inbound")
def inbound() -> None:
    """Inbound routing (inbound.yaml): check it, explain it."""


@inbound.command("check")
@config_option
def inbound_check(config_dir: Path) -> None:
    """Validate inbound.yaml; every error names file:line: key."""
    config = _load(config_dir, Console(stderr=True))
    click.echo(
        f"{config_dir}/inbound.yaml: OK ({len(config.employees)} employee(s),"
        f" {len(config.routes)} routed number(s)"
        f"{', a default route' if config.default_route else ''})"
    )


@inbound.command("plan")
@config_option
@click.argument("dialed")
@click.option("--linked-agent", help="Pretend the caller is this employee's client.")
def inbound_plan(config_dir: Path, dialed: str, linked_agent: str | None) -> None:
    """Who rings, in which order, when DIALED is called."""
    config = _load(config_dir, Console(stderr=True))
    plan = plan_route(config, config.scenario_for(dialed), linked_agent)
    if not plan.steps:
        click.echo(f"{dialed}: no route; the call goes straight to the fallback")
    for i, step in enumerate(plan.steps, 1):
        click.echo(f"{i}. ring {', '.join(step.extensions)} ({step.dial}) for {step.timeout} s")
    target = f" {plan.fallback_target}" if plan.fallback_target else ""
    click.echo(f"then: {plan.fallback.value}{target}")
