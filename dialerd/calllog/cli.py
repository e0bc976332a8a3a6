"""``dialerd calls list|summary|history``: the call log for people (R-LOG-1..3, -6).

Dates and times are read and shown in one time zone (``--tz``, default the machine's own):
``--period`` takes 2026, 2026-11, 2026-11-05 or 2026-11-01..2026-11-15; ``--date`` one
day; ``--from-time``/``--to-time`` a time-of-day window on any day. ``--csv`` writes the
selection as CSV (to a file, or ``-`` for stdout). Exit codes: 0 ok, 1 failure, 2 bad input.
"""

from __future__ import annotations

import csv
import datetime as dt
import zoneinfo
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

import click
from rich.console import Console
from rich.table import Table

from dialerd.billing.rules import BillingInputError, parse_period
from dialerd.config.cli import EXIT_BAD_INPUT, config_option, db_option, load_or_exit, run_or_exit
from dialerd.store.calllog import CallFilter, CallLogStore, CallRow, SortKey
from dialerd.store.models import CallStatus, Direction

__all__ = ["calllog_db", "calls", "csv_rows"]

CSV_COLUMNS = (
    "id", "date", "time", "direction", "status", "number", "caller_id", "extension", "agent",
    "duration_seconds", "client", "client_type", "too_long", "recording", "uniqueid",
)  # fmt: skip
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def calllog_db(config_dir: Path, db_path: Path | None, err: Console) -> Path:
    """The database to read: --db / $DIALERD_DB, else store.path of dialerd.yaml."""
    if db_path is not None:
        return db_path
    return load_or_exit(config_dir, err).store_path


def _zone(name: str | None, err: Console) -> dt.tzinfo:
    if not name:
        return dt.datetime.now().astimezone().tzinfo or dt.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        err.print(f"--tz {name!r} is not a time zone (e.g. Europe/Amsterdam)", style="red")
        raise SystemExit(EXIT_BAD_INPUT) from None


def _bounds(
    period: str | None, day: dt.date | None, tz: dt.tzinfo, err: Console
) -> tuple[float | None, float | None]:
    if period and day:
        err.print("give --period or --date, not both", style="red")
        raise SystemExit(EXIT_BAD_INPUT)
    if day is not None:
        first, last = day, day + dt.timedelta(days=1)
    elif period:
        try:
            first, last = parse_period(period)
        except BillingInputError as exc:
            err.print(str(exc), style="red")
            raise SystemExit(EXIT_BAD_INPUT) from None
    else:
        return None, None
    start = dt.datetime.combine(first, dt.time(), tz).timestamp()
    end = dt.datetime.combine(last, dt.time(), tz).timestamp()
    return start, end


def _local(ts: float | None, tz: dt.tzinfo) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(ts, tz) if ts is not None else None


def _in_window(row: CallRow, tz: dt.tzinfo, start: dt.time | None, end: dt.time | None) -> bool:
    when = dt.datetime.fromtimestamp(row.started_at, tz).time()
    if start is not None and when < start:
        return False
    return end is None or when < end


def _text(value: str | None) -> str:
    """Free text (caller ID, client name) for a CSV cell: a leading = + - @ would make a
    spreadsheet run it as a formula, so such cells get a leading apostrophe."""
    text = value or ""
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_rows(rows: Iterable[CallRow], tz: dt.tzinfo) -> Iterable[list[str]]:
    """The call log as CSV rows (header first)."""
    yield list(CSV_COLUMNS)
    for r in rows:
        start = dt.datetime.fromtimestamp(r.started_at, tz)
        yield [
            str(r.id), start.date().isoformat(), start.time().isoformat("seconds"),
            r.direction.value, r.status.value, r.number, _text(r.caller_id),
            r.extension or "", r.agent or "",
            "" if r.duration_seconds is None else f"{r.duration_seconds:.1f}",
            _text(r.client_name), r.client_type or "", "yes" if r.too_long else "no",
            r.recording_path or (r.recording_error or ""), r.uniqueid or "",
        ]  # fmt: skip


def _write_csv(rows: list[CallRow], tz: dt.tzinfo, out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows(csv_rows(rows, tz))


def _table(rows: list[CallRow], tz: dt.tzinfo) -> Table:
    table = Table("date", "time", "dir", "status", "number", "caller ID", "ext", "agent",
                  "duration", "client", "type", "long", "rec")  # fmt: skip
    for r in rows:
        start = dt.datetime.fromtimestamp(r.started_at, tz)
        duration = "" if r.duration_seconds is None else f"{r.duration_seconds:.0f}s"
        table.add_row(
            start.date().isoformat(), start.strftime("%H:%M:%S"), r.direction.value,
            r.status.value, r.number, r.caller_id or "", r.extension or "", r.agent or "",
            duration, r.client_name or "", r.client_type or "", "!" if r.too_long else "",
            str(r.recording_id or ("x" if r.recording_error else "")),
        )  # fmt: skip
    return table


async def _query(db: Path, f: CallFilter) -> list[CallRow]:
    store = await CallLogStore.open(db)
    try:
        return await store.query_calls(f)
    finally:
        await store.close()


@click.group("calls")
def calls() -> None:
    """The call log: inbound and outbound calls (R-LOG)."""


@calls.command("list")
@config_option
@db_option
@click.option("--period", help="2026, 2026-11, 2026-11-05 or 2026-11-01..2026-11-15.")
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), help="One day.")
@click.option(
    "--from-time", type=click.DateTime(["%H:%M", "%H:%M:%S"]), help="Start of day window."
)
@click.option("--to-time", type=click.DateTime(["%H:%M", "%H:%M:%S"]), help="End of day window.")
@click.option("--direction", type=click.Choice([d.value for d in Direction]))
@click.option("--status", type=click.Choice([s.value for s in CallStatus]))
@click.option("--extension", help="One employee's extension.")
@click.option("--client", help="Client name (substring) or exact number.")
@click.option("--client-id", type=int, help="One client's history (R-LOG-6).")
@click.option("--too-long/--not-too-long", default=None, help="Only (or no) too-long calls.")
@click.option("--sort", type=click.Choice([k.value for k in SortKey]), default="started")
@click.option("--asc", is_flag=True, help="Ascending (default: descending).")
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=10_000)
@click.option("--csv", "csv_out", type=click.File("w"), help="Write CSV to FILE ('-' = stdout).")
@click.option("--tz", "tz_name", help="Time zone for dates and times (default: the machine's).")
def calls_list(
    config_dir: Path, db_path: Path | None, period: str | None, day: dt.datetime | None,
    from_time: dt.datetime | None, to_time: dt.datetime | None, direction: str | None,
    status: str | None, extension: str | None, client: str | None, client_id: int | None,
    too_long: bool | None, sort: str, asc: bool, limit: int, csv_out: TextIO | None,
    tz_name: str | None,
) -> None:  # fmt: skip
    """List calls, filtered and sorted; --csv exports the same selection."""
    err = Console(stderr=True)
    tz = _zone(tz_name, err)
    since, until = _bounds(period, day.date() if day else None, tz, err)
    db = calllog_db(config_dir, db_path, err)
    f = CallFilter(
        since=since, until=until,
        direction=Direction(direction) if direction else None,
        status=CallStatus(status) if status else None,
        extension=extension, contact_id=client_id, client=client, too_long=too_long,
        sort=SortKey(sort), descending=not asc, limit=limit,
    )  # fmt: skip
    rows = run_or_exit(_query(db, f), err)
    start = from_time.time() if from_time else None
    end = to_time.time() if to_time else None
    rows = [r for r in rows if _in_window(r, tz, start, end)]
    if csv_out is not None:
        _write_csv(rows, tz, csv_out)
        return
    Console().print(_table(rows, tz))
    err.print(f"{len(rows)} call(s)")


@calls.command("history")
@config_option
@db_option
@click.argument("client")
@click.option("--tz", "tz_name", help="Time zone for dates and times.")
def calls_history(config_dir: Path, db_path: Path | None, client: str, tz_name: str | None) -> None:
    """One client's calls, newest first: CLIENT is a contact id or a number in E.164."""
    err = Console(stderr=True)
    tz = _zone(tz_name, err)
    db = calllog_db(config_dir, db_path, err)
    f = CallFilter(contact_id=int(client)) if client.isdigit() else CallFilter(client=client)
    rows = run_or_exit(_query(db, f), err)
    Console().print(_table(rows, tz))


@calls.command("summary")
@config_option
@db_option
@click.option("--day", type=click.DateTime(["%Y-%m-%d"]), required=True, help="The day.")
@click.option("--tz", "tz_name", help="Time zone of the day (default: the machine's).")
def calls_summary(
    config_dir: Path, db_path: Path | None, day: dt.datetime, tz_name: str | None
) -> None:
    """Per extension: calls, in/out, answered/missed/unknown, talk time, too long."""
    err = Console(stderr=True)
    tz = _zone(tz_name, err)
    since, until = _bounds(None, day.date(), tz, err)
    assert since is not None and until is not None
    db = calllog_db(config_dir, db_path, err)

    async def work() -> list[list[str]]:
        store = await CallLogStore.open(db)
        try:
            return [
                [s.extension, str(s.calls), str(s.inbound), str(s.outbound), str(s.answered),
                 str(s.missed), str(s.unknown), f"{s.talk_seconds:.0f}", str(s.too_long)]
                for s in await store.extension_summary(since, until)
            ]  # fmt: skip
        finally:
            await store.close()

    table = Table("extension", "calls", "in", "out", "answered", "missed", "unknown",
                  "talk s", "too long", title=f"calls on {day.date()}")  # fmt: skip
    for row in run_or_exit(work(), err):
        table.add_row(*row)
    Console().print(table)
