"""Lead import: a CSV file into a campaign, every row accounted for.

Each data row ends up either imported or rejected with its line number and the reason
(rows in = imported + rejected, always). Rejections: a number that is empty, unparsable or
invalid; an unknown time zone; a duplicate of an earlier row in the file; a number already in
the campaign; a number on the DNC list; a byte invalid in the file's encoding; a row with the
wrong number of columns. By default the import is all-or-nothing: one rejected row and
nothing is written. With ``partial=True`` the good rows go in (in one transaction).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from dialerd.config.models import CampaignConfig
from dialerd.leads.csvfile import Record, Table, read_table
from dialerd.leads.numbers import NumberError, NumberNormalizer, zone_key
from dialerd.store.api import Store
from dialerd.store.models import Campaign, ImportBatch, NewLead

NUMBER_COLUMNS = ("number", "phone", "phone_number", "telephone", "tel", "mobile", "msisdn",
                  "telefoon", "telefoonnummer", "nummer")  # fmt: skip
TZ_COLUMNS = ("tz", "timezone", "time_zone", "tijdzone")

Progress = Callable[[int, int], None]
"""Called with (rows read so far, estimated total) now and then."""


class ImportProblem(Exception):
    """The file cannot be imported at all (no number column, unreadable, ...)."""


@dataclass(frozen=True)
class Columns:
    """How the file's columns map onto a lead. None means: find it by its usual names.

    ``rename`` maps a CSV header to the custom-field name stored; ``drop`` lists headers to
    leave out. Every other column becomes a custom field under its header.
    """

    number: str | None = None
    tz: str | None = None
    region: str | None = None
    rename: Mapping[str, str] = field(default_factory=dict)
    drop: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RowError:
    """A rejected row: its line in the file and why."""

    line: int
    message: str


@dataclass(frozen=True)
class ImportReport:
    """The outcome of one import: rows_in = importable + rejected, always.

    ``imported`` is ``importable`` when the rows were written, else 0 (all-or-nothing import
    with rejected rows, or nothing importable); ``batch`` is None when nothing was written.
    """

    source: str
    rows_in: int
    importable: int
    imported: int
    errors: tuple[RowError, ...]
    delimiter: str
    encoding: str
    blank_lines: tuple[int, ...]
    batch: ImportBatch | None

    @property
    def rejected(self) -> int:
        """Rows at fault (in an all-or-nothing failure the good rows are not written either)."""
        return len(self.errors)


@dataclass(frozen=True)
class _Layout:
    """Where a lead's parts are in the file's rows."""

    width: int
    number: int
    tz: int | None
    region: int | None
    custom: tuple[tuple[int, str], ...]


_CHUNK = 20_000


def _pick(header: list[str], wanted: str | None, usual: tuple[str, ...], what: str) -> int | None:
    lowered = [h.lower() for h in header]
    if wanted is not None:
        if wanted.lower() not in lowered:
            raise ImportProblem(
                f"no column {wanted!r} for the {what}; the header has: {', '.join(header)}"
            )
        return lowered.index(wanted.lower())
    for name in usual:
        if name in lowered:
            return lowered.index(name)
    return None


def _layout(header: list[str], columns: Columns) -> _Layout:
    doubled = sorted({h for h in header if header.count(h) > 1})
    if doubled or "" in header:
        what = f"repeats {', '.join(doubled)}" if doubled else "has an empty column name"
        raise ImportProblem(f"line 1: the header {what}; expected unique column names")
    number_col = _pick(header, columns.number, NUMBER_COLUMNS, "phone number")
    if number_col is None:
        raise ImportProblem(
            "no phone-number column found (looked for "
            + ", ".join(NUMBER_COLUMNS)
            + f"); the header has: {', '.join(header)}; pass --number-column NAME"
        )
    tz_col = _pick(header, columns.tz, TZ_COLUMNS, "time zone")
    region_col = _pick(header, columns.region, (), "region") if columns.region else None
    special = {number_col, tz_col, region_col}
    custom = tuple(
        (i, columns.rename.get(h, h))
        for i, h in enumerate(header)
        if i not in special and h not in columns.drop
    )
    return _Layout(len(header), number_col, tz_col, region_col, custom)


def _normalize(
    records: list[Record],
    layout: _Layout,
    normalizer: NumberNormalizer,
    encoding: str,
    seen: dict[str, int],
    errors: list[RowError],
    first_rank: int,
) -> list[NewLead]:
    """The chunk's good rows as leads; the bad ones go to `errors` (the hot loop)."""
    leads: list[NewLead] = []
    for record in records:
        problem = _record_problem(record, layout.width, encoding)
        if problem:
            errors.append(RowError(record.line, problem))
            continue
        row = record.fields
        try:
            region = row[layout.region].strip().upper() if layout.region is not None else None
            number, tz = normalizer.normalize(row[layout.number], region or None)
            if layout.tz is not None and row[layout.tz].strip():
                tz = zone_key(row[layout.tz])
        except NumberError as exc:
            errors.append(RowError(record.line, str(exc)))
            continue
        first = seen.get(number)
        if first is not None:
            errors.append(RowError(record.line, f"{number} duplicates line {first}"))
            continue
        seen[number] = record.line
        leads.append(
            NewLead(
                number=number,
                tz=tz,
                fields={name: row[i] for i, name in layout.custom},
                rank=first_rank + len(leads),
                source_line=record.line,
            )
        )
    return leads


def _chunks(records: Iterator[Record]) -> Iterator[list[Record]]:
    chunk: list[Record] = []
    for record in records:
        chunk.append(record)
        if len(chunk) == _CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _record_problem(record: Record, width: int, encoding: str) -> str | None:
    if record.csv_error is not None:
        return f"malformed CSV: {record.csv_error}"
    if record.bad_byte is not None:
        return (
            f"byte 0x{record.bad_byte:02X} is not valid {encoding}; re-save the file as UTF-8 "
            "or pass --encoding (e.g. cp1252)"
        )
    if len(record.fields) != width:
        return f"expected {width} columns like the header, found {len(record.fields)}"
    return None


async def import_csv(
    store: Store,
    campaign: Campaign,
    config: CampaignConfig,
    path: Path,
    columns: Columns = Columns(),
    partial: bool = False,
    encoding: str = "utf-8",
    delimiter: str | None = None,
    now: float = 0.0,
    progress: Progress = lambda done, total: None,
) -> ImportReport:
    """Import `path` into `campaign` (see the module docstring for what is rejected).

    Rows stream through in chunks: while SQLite inserts one chunk, the next is normalised.
    Every row is checked even after the first rejection, so the report is complete; in
    all-or-nothing mode inserting simply stops at the first rejection and the transaction
    is rolled back.
    """
    table = read_table(path, encoding, delimiter)
    layout = _layout(table.header, columns)
    with _collector_paused():
        return await _import(store, campaign, config, path, table, layout, partial, now, progress)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the import.

    The import makes millions of short-lived, acyclic objects (rows, leads, dicts), which
    reference counting frees; with the collector on, every chunk pushes survivors into the
    old generation and full collections rescan them, costing about a fifth of the CPU.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


async def _import(
    store: Store,
    campaign: Campaign,
    config: CampaignConfig,
    path: Path,
    table: Table,
    layout: _Layout,
    partial: bool,
    now: float,
    progress: Progress,
) -> ImportReport:
    progress(0, table.estimated_rows)
    normalizer = NumberNormalizer(config.default_region, config.default_timezone)
    rank = await store.next_rank(campaign.id)
    seen: dict[str, int] = {}
    errors: list[RowError] = []
    rows_in = importable = 0
    batch = None
    async with store.lead_import(campaign.id, path.name, now) as session:
        for records in _chunks(table.records):
            leads = _normalize(
                records, layout, normalizer, table.encoding, seen, errors, rank + rows_in
            )
            rows_in += len(records)
            refused = await session.screen([lead.number for lead in leads]) if leads else {}
            if refused:
                errors += [
                    RowError(
                        lead.source_line or 0, f"{lead.number} {_REFUSED[refused[lead.number]]}"
                    )
                    for lead in leads
                    if lead.number in refused
                ]
                leads = [lead for lead in leads if lead.number not in refused]
            importable += len(leads)
            if leads and (partial or not errors):
                await session.add(leads)
            progress(rows_in, table.estimated_rows)
        if importable and (partial or not errors):
            batch = await session.finish(len(errors))
    errors.sort(key=lambda e: e.line)
    return ImportReport(
        source=str(path),
        rows_in=rows_in,
        importable=importable,
        imported=batch.imported if batch else 0,
        errors=tuple(errors),
        delimiter=table.delimiter,
        encoding=table.encoding,
        blank_lines=tuple(table.blank_lines),
        batch=batch,
    )


_REFUSED = {"dnc": "is on the do-not-call list", "exists": "is already in the campaign"}
