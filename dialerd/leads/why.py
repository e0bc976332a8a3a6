"""``dialerd leads why LEAD``: why a lead is or is not dialable now.

The question admins of every dialer ask. The answer is ``queue.explain`` with the lead's
campaign rules — the same function the hopper uses — so it cannot disagree with what the
daemon dials. Exit codes: 0 answered, 1 operational failure, 2 unknown lead or campaign.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import click
from rich.console import Console

from dialerd.config.cli import (
    EXIT_BAD_INPUT,
    config_option,
    db_option,
    load_or_exit,
    resolve_db,
    run_or_exit,
)
from dialerd.leadflow import LeadFlow
from dialerd.store import open_store


def _epoch(text: str | None) -> float:
    """``--at`` as epoch seconds: ISO 8601, UTC when no offset is given; default now."""
    if text is None:
        return time.time()
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"expected an ISO time such as 2026-11-23T14:00 or ...T14:00+01:00, got {text!r}",
            param_hint="--at",
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


@click.command("why")
@config_option
@db_option
@click.argument("lead_id", type=int)
@click.option("--agent", help="Ask for this agent (reserved callbacks, links, guards).")
@click.option("--at", "at_text", help="Ask about this instant (ISO 8601; default now, UTC).")
def why(config_dir: Path, db_path: Path | None, lead_id: int, agent: str | None,
        at_text: str | None) -> None:  # fmt: skip
    """Explain why lead LEAD_ID is or is not dialable now: every check, passed and failed."""
    err = Console(stderr=True)
    config = load_or_exit(config_dir, err)
    now = _epoch(at_text)

    async def work() -> str:
        store = await open_store(resolve_db(db_path, config))
        try:
            return await LeadFlow(store, config.campaigns).why(lead_id, now, agent)
        finally:
            await store.close()

    try:
        text = run_or_exit(work(), err)
    except LookupError as exc:
        err.print(str(exc.args[0]), style="red", markup=False, highlight=False)
        raise SystemExit(EXIT_BAD_INPUT) from None
    click.echo(text)
