"""``dialerd leads import/export`` and ``dialerd dnc import/export``.

Exit codes: 0 ok, 1 operational failure, 2 bad input (rejected rows in an all-or-nothing
import, an unreadable file, an unknown campaign).
"""

from __future__ import annotations

import csv
import datetime as dt
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dialerd.config.cli import (
    EXIT_BAD_INPUT,
    campaign_or_exit,
    config_option,
    db_option,
    load_or_exit,
    resolve_db,
    run_or_exit,
)
from dialerd.leads.csvfile import FileProblem, read_table
from dialerd.leads.importer import Columns, ImportProblem, ImportReport, import_csv
from dialerd.leads.numbers import NumberError, NumberNormalizer
from dialerd.store import open_store
from dialerd.store.models import DncEntry

_MAX_SHOWN = 50  # row errors printed; --errors FILE gets them all
_Update = Callable[[int, int], None]
_Work = Callable[[TextIO], Coroutine[Any, Any, int]]


@click.group("leads")
def leads() -> None:
    """Import and export a campaign's leads (CSV)."""


@leads.command("import")
@config_option
@db_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--campaign", "-c", "campaign_name", required=True, help="Campaign to import into.")
@click.option("--number-column", help="Column with the phone number (default: phone, number...).")
@click.option("--tz-column", help="Column with an IANA time zone (default: tz, timezone...).")
@click.option("--region-column", help="Column with a per-row region code (e.g. NL, DE).")
@click.option(
    "--field",
    "renames",
    multiple=True,
    metavar="COLUMN=NAME",
    help="Store COLUMN as custom field NAME (repeatable).",
)
@click.option("--drop", multiple=True, metavar="COLUMN", help="Leave COLUMN out (repeatable).")
@click.option("--encoding", default="utf-8", show_default=True, help="File encoding.")
@click.option("--delimiter", help="Field delimiter (default: sniffed from , ; TAB |).")
@click.option("--partial", is_flag=True, help="Import the good rows even if some are rejected.")
@click.option(
    "--errors",
    "errors_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every rejected row (line, reason) to this CSV.",
)
def leads_import(
    config_dir: Path,
    db_path: Path | None,
    file: Path,
    campaign_name: str,
    number_column: str | None,
    tz_column: str | None,
    region_column: str | None,
    renames: tuple[str, ...],
    drop: tuple[str, ...],
    encoding: str,
    delimiter: str | None,
    partial: bool,
    errors_file: Path | None,
) -> None:
    """Import FILE (CSV with a header row) into a campaign.

    Numbers are normalised to E.164 for the campaign's default region; the time zone comes
    from a tz column or from the number. Rejected rows (bad number or zone, duplicates in the
    file or the campaign, DNC, bad encoding, wrong column count) are listed with their line.
    All-or-nothing unless --partial.
    """
    err = Console(stderr=True)
    config = load_or_exit(config_dir, err)
    campaign_config = campaign_or_exit(config, campaign_name, err)
    rename = {}
    for item in renames:
        source, sep, target = item.partition("=")
        if not sep or not source or not target:
            raise click.BadParameter(f"expected COLUMN=NAME, got {item!r}", param_hint="--field")
        rename[source] = target
    columns = Columns(number_column, tz_column, region_column, rename, frozenset(drop))

    async def work() -> ImportReport:
        store = await open_store(resolve_db(db_path, config))
        try:
            now = time.time()
            campaign = await store.sync_campaign(campaign_config, now)
            with _progress(err, f"importing {file.name}") as update:
                return await import_csv(
                    store, campaign, campaign_config, file, columns, partial, encoding,
                    delimiter, now, update,
                )  # fmt: skip
        finally:
            await store.close()

    try:
        report = run_or_exit(work(), err)
    except (FileProblem, ImportProblem) as exc:
        err.print(f"{file}: {exc}", markup=False, highlight=False)
        raise SystemExit(EXIT_BAD_INPUT) from None
    _print_report(report, file, partial, errors_file, err)
    if report.errors and not partial:
        raise SystemExit(EXIT_BAD_INPUT)


@contextmanager
def _progress(err: Console, label: str) -> Iterator[_Update]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as progress:
        task = progress.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=max(total, done))

        yield update


def _print_report(
    report: ImportReport, file: Path, partial: bool, errors_file: Path | None, err: Console
) -> None:
    for error in report.errors[:_MAX_SHOWN]:
        err.print(f"{file}:{error.line}: {error.message}", markup=False, highlight=False)
    if len(report.errors) > _MAX_SHOWN:
        more = len(report.errors) - _MAX_SHOWN
        hint = f" (all in {errors_file})" if errors_file else " (use --errors FILE for all)"
        err.print(f"... and {more} more rejected rows{hint}")
    if errors_file is not None:
        with errors_file.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["line", "reason"])
            writer.writerows((e.line, e.message) for e in report.errors)
    blanks = f", {len(report.blank_lines)} blank line(s) ignored" if report.blank_lines else ""
    summary = (
        f"{report.rows_in} rows read (delimiter {report.delimiter!r}, {report.encoding}){blanks}:"
        f" {report.imported} imported, {report.rejected} rejected"
    )
    if report.errors and not partial:
        summary += (
            f"; nothing written ({report.importable} good rows held back: fix the rows above"
            " or pass --partial)"
        )
    click.echo(summary)


@leads.command("export")
@config_option
@db_option
@click.option("--campaign", "-c", "campaign_name", required=True, help="Campaign to export.")
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="File (default stdout)."
)
def leads_export(
    config_dir: Path, db_path: Path | None, campaign_name: str, output: Path | None
) -> None:
    """Write a campaign's leads as CSV (re-importable: number and tz columns first)."""
    err = Console(stderr=True)
    config = load_or_exit(config_dir, err)

    async def work(out: TextIO) -> int:
        store = await open_store(resolve_db(db_path, config))
        try:
            campaign = await store.get_campaign(campaign_name)
            if campaign is None:
                err.print(f"campaign {campaign_name!r} has no leads in the store", style="red")
                return EXIT_BAD_INPUT
            names = await store.lead_field_names(campaign.id)
            writer = csv.writer(out)
            writer.writerow(
                ["number", "tz", "status", "phase", "attempts", "last_result", "last_attempt_at",
                 *names]
            )  # fmt: skip
            async for lead in store.iter_leads(campaign.id):
                writer.writerow(
                    [lead.number, lead.tz, lead.status.value, lead.phase, lead.attempts,
                     lead.last_result or "", _iso(lead.last_attempt_at),
                     *(lead.fields.get(n, "") for n in names)]
                )  # fmt: skip
            return 0
        finally:
            await store.close()

    code = _with_output(output, work, err)
    if code:
        raise SystemExit(code)


def _iso(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds") if ts else ""


def _with_output(output: Path | None, work: _Work, err: Console) -> int:
    if output is None:
        return run_or_exit(work(sys.stdout), err)
    with output.open("w", encoding="utf-8", newline="") as out:
        return run_or_exit(work(out), err)


@click.group("dnc")
def dnc() -> None:
    """The do-not-call list (global across campaigns)."""


@dnc.command("import")
@config_option
@db_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--region", default="NL", show_default=True, help="Region for national numbers.")
@click.option("--number-column", help="Column with the number (default: first column).")
@click.option("--reason", default="", help="Reason stored with every number.")
@click.option("--encoding", default="utf-8", show_default=True, help="File encoding.")
@click.option("--partial", is_flag=True, help="Add the good numbers even if some are rejected.")
def dnc_import(
    config_dir: Path,
    db_path: Path | None,
    file: Path,
    region: str,
    number_column: str | None,
    reason: str,
    encoding: str,
    partial: bool,
) -> None:
    """Add the numbers in FILE (CSV with a header) to the DNC list.

    Leads with those numbers leave every campaign's queue. All-or-nothing unless --partial:
    a number we cannot read is a number we would still call.
    """
    err = Console(stderr=True)
    config = load_or_exit(config_dir, err)
    try:
        table = read_table(file, encoding)
    except FileProblem as exc:
        err.print(str(exc), markup=False)
        raise SystemExit(EXIT_BAD_INPUT) from None
    column = 0
    if number_column is not None:
        lowered = [h.lower() for h in table.header]
        if number_column.lower() not in lowered:
            err.print(f"{file}: no column {number_column!r}; the header has: {table.header}")
            raise SystemExit(EXIT_BAD_INPUT)
        column = lowered.index(number_column.lower())
    normalizer = NumberNormalizer(region, "UTC")
    now = time.time()
    entries: list[DncEntry] = []
    rejected = 0
    rows = 0
    for record in table.records:
        rows += 1
        try:
            if record.bad_byte is not None or record.csv_error or len(record.fields) <= column:
                raise NumberError("unreadable row (encoding, quoting or too few columns)")
            number, _ = normalizer.normalize(record.fields[column])
        except NumberError as exc:
            rejected += 1
            err.print(f"{file}:{record.line}: {exc}", markup=False, highlight=False)
            continue
        entries.append(DncEntry(number, reason, file.name, now))
    if rejected and not partial:
        click.echo(f"{rows} rows read: {rejected} rejected; nothing added (fix them or --partial)")
        raise SystemExit(EXIT_BAD_INPUT)

    async def work() -> tuple[int, int]:
        store = await open_store(resolve_db(db_path, config))
        try:
            return await store.add_dnc(entries)
        finally:
            await store.close()

    added, blocked = run_or_exit(work(), err)
    click.echo(
        f"{rows} rows read: {added} numbers added ({len(entries) - added} already listed),"
        f" {rejected} rejected; {blocked} leads taken out of the queue"
    )


@dnc.command("export")
@config_option
@db_option
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="File (default stdout)."
)
def dnc_export(config_dir: Path, db_path: Path | None, output: Path | None) -> None:
    """Write the DNC list as CSV (number, reason, source, added_at)."""
    err = Console(stderr=True)
    config = load_or_exit(config_dir, err)

    async def work(out: TextIO) -> int:
        store = await open_store(resolve_db(db_path, config))
        try:
            writer = csv.writer(out)
            writer.writerow(["number", "reason", "source", "added_at"])
            async for entry in store.iter_dnc():
                writer.writerow([entry.number, entry.reason, entry.source, _iso(entry.added_at)])
            return 0
        finally:
            await store.close()

    _with_output(output, work, err)
