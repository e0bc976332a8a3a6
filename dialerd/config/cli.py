"""``dialerd check-config`` and ``dialerd campaign list/show``, plus the options every
store-using command shares (``--config``, ``--db``).

Exit codes: 0 ok, 1 operational failure, 2 bad input (a configuration error included).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from dialerd.config.loader import Config, ConfigError, load_config
from dialerd.config.models import WEEKDAYS, CampaignConfig
from dialerd.store import open_store
from dialerd.store.db import SchemaTooNew

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def default_config_dir() -> str:
    """$DIALERD_CONFIG, else ./conf when present, else /etc/dialerd."""
    env = os.environ.get("DIALERD_CONFIG")
    if env:
        return env
    return "conf" if Path("conf/dialerd.yaml").is_file() else "/etc/dialerd"


def config_option(func: F) -> F:
    """``--config DIR``: the configuration directory."""
    return click.option(
        "--config",
        "config_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=default_config_dir,
        show_default="$DIALERD_CONFIG, ./conf or /etc/dialerd",
        help="Configuration directory holding dialerd.yaml and campaigns/.",
    )(func)


def db_option(func: F) -> F:
    """``--db PATH``: the database (default: $DIALERD_DB, else store.path of dialerd.yaml)."""
    return click.option(
        "--db",
        "db_path",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="DIALERD_DB",
        default=None,
        help="SQLite database. Default: $DIALERD_DB, else store.path from dialerd.yaml.",
    )(func)


def load_or_exit(config_dir: Path, err: Console) -> Config:
    """The configuration, or every problem printed and exit 2."""
    try:
        return load_config(config_dir)
    except ConfigError as exc:
        for issue in exc.issues:
            err.print(str(issue), markup=False, highlight=False)
        err.print(f"{len(exc.issues)} problem(s) in {config_dir}", style="bold red")
        raise SystemExit(EXIT_BAD_INPUT) from None


def run_or_exit(coro: Coroutine[Any, Any, T], err: Console) -> T:
    """Run a command's async work; a database or file-system failure exits 1 with the reason
    (bad input is the command's own business: it exits 2 before or after)."""
    try:
        return asyncio.run(coro)
    except (sqlite3.Error, OSError, SchemaTooNew) as exc:
        err.print(f"failed: {exc}", markup=False, highlight=False)
        raise SystemExit(EXIT_FAILURE) from None


def resolve_db(db_path: Path | None, config: Config) -> Path:
    """--db wins (it also carries $DIALERD_DB), else the configured store path."""
    return db_path if db_path is not None else config.store_path


def campaign_or_exit(config: Config, name: str, err: Console) -> CampaignConfig:
    """The named campaign's configuration, or a message naming the known ones and exit 2."""
    campaign = config.campaigns.get(name)
    if campaign is None:
        known = ", ".join(sorted(config.campaigns)) or "none"
        err.print(f"no campaign {name!r} in {config.directory} (known: {known})", style="red")
        raise SystemExit(EXIT_BAD_INPUT)
    return campaign


@click.command("check-config")
@config_option
def check_config(config_dir: Path) -> None:
    """Validate dialerd.yaml, dialerd.d/ and campaigns/; every error names file:line: key."""
    err = Console(stderr=True)
    config = load_or_exit(config_dir, err)
    names = ", ".join(sorted(config.campaigns)) or "no campaigns"
    click.echo(f"{config_dir}: OK (daemon, {len(config.campaigns)} campaign(s): {names})")


@click.group("campaign")
def campaign() -> None:
    """Campaigns as configured (YAML) and as stored (lead counts)."""


@campaign.command("list")
@config_option
@db_option
def campaign_list(config_dir: Path, db_path: Path | None) -> None:
    """List configured campaigns with their mode and lead counts."""
    err = Console(stderr=True)
    config = load_or_exit(config_dir, err)
    counts = _counts_or_none(resolve_db(db_path, config), list(config.campaigns), err)
    table = Table("campaign", "enabled", "mode", "dial string", "leads", "ready")
    for name, c in sorted(config.campaigns.items()):
        by_status = counts.get(name, {})
        table.add_row(
            name,
            "yes" if c.enabled else "no",
            c.mode.value,
            c.dial_string,
            str(sum(by_status.values())),
            str(by_status.get("ready", 0)),
        )
    Console().print(table)


@campaign.command("show")
@config_option
@db_option
@click.argument("name")
def campaign_show(config_dir: Path, db_path: Path | None, name: str) -> None:
    """Show one campaign: dialing, hours, retries, result codes and its leads by status."""
    err = Console(stderr=True)
    config = load_or_exit(config_dir, err)
    c = campaign_or_exit(config, name, err)
    counts = _counts_or_none(resolve_db(db_path, config), [name], err).get(name, {})
    out = Console()
    out.print(f"[bold]{c.name}[/bold] {c.description}")
    out.print(f"mode {c.mode.value} {dict(c.pacing)}, AMD {'on' if c.amd else 'off'}")
    out.print(f"dial {c.dial_string}  caller ID {c.caller_id or '-'}", markup=False)
    out.print(f"numbers: region {c.default_region}, fallback zone {c.default_timezone or '-'}")
    hours = c.calling_hours
    for day in WEEKDAYS:
        windows = getattr(hours, day)
        spans = ", ".join(f"{w.start:%H:%M}-{w.end:%H:%M}" for w in windows) or "no calls"
        out.print(f"  {day} {spans}")
    if hours.holidays:
        out.print("  holidays " + ", ".join(d.isoformat() for d in hours.holidays))
    out.print(
        f"max attempts {c.max_attempts}; reservation window {c.reservation_window_minutes} min;"
        f" linked addresses released after {c.link_release_minutes or 'never'} min"
    )
    retry = Table("outcome", "result code", "retry after (min)")
    for outcome, rule in c.retry.items():
        retry.add_row(outcome.value, rule.result_code, str(rule.delay_minutes))
    out.print(retry)
    codes = Table("code", "label", "category", "priority", "callback min", "phase", "flags")
    for code in c.result_codes.values():
        flags = [k for k, v in code.flags.model_dump().items() if v]
        codes.add_row(
            code.code,
            code.label,
            code.category.value,
            f"{code.contact_priority.value} ({code.contact_priority.score})",
            str(code.callback_minutes or ""),
            code.funnel_phase.value if code.funnel_phase else "",
            ", ".join(flags),
        )
    out.print(codes)
    status = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no leads"
    out.print(f"leads: {status}")


def _counts_or_none(db: Path, names: list[str], err: Console) -> dict[str, dict[str, int]]:
    """Lead counts, or none when there is no database yet (a fresh install is no error)."""
    return run_or_exit(_counts(db, names), err) if db.exists() else {}


async def _counts(db: Path, names: list[str]) -> dict[str, dict[str, int]]:
    """Lead counts per status for the named campaigns."""
    store = await open_store(db)
    try:
        result: dict[str, dict[str, int]] = {}
        for name in names:
            row = await store.get_campaign(name)
            if row is not None:
                result[name] = await store.lead_counts(row.id)
        return result
    finally:
        await store.close()
