"""Lead import: a CSV file into a campaign, every row accounted for.

Each data row ends up either imported or rejected with its line number and the reason
(rows in = imported + rejected, always). Rejections: a number that is empty, unparsable or
invalid; an unknown time zone; a duplicate of an earlier row in the file; a number already in
the campaign; a number on the DNC list; a byte invalid in the file's encoding; a row with the
wrong number of columns. By default the import is all-or-nothing: one rejected row and
nothing is written. With ``partial=True`` the good rows go in (in one transaction).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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


@dataclass
class _Plan:
    leads: list[NewLead]
    errors: list[RowError]
    rows_in: int


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


def _plan(
    table: Table, config: CampaignConfig, columns: Columns, first_rank: int, progress: Progress
) -> _Plan:
    header = table.header
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
    custom = [
        (i, columns.rename.get(h, h))
        for i, h in enumerate(header)
        if i not in special and h not in columns.drop
    ]
    normalizer = NumberNormalizer(config.default_region, config.default_timezone)
    width = len(header)
    seen: dict[str, int] = {}
    plan = _Plan([], [], 0)
    for record in table.records:
        plan.rows_in += 1
        if plan.rows_in % 20000 == 0:
            progress(plan.rows_in, table.estimated_rows)
        problem = _record_problem(record, width, table.encoding)
        if problem:
            plan.errors.append(RowError(record.line, problem))
            continue
        row = record.fields
        try:
            region = row[region_col].strip().upper() if region_col is not None else None
            number, tz = normalizer.normalize(row[number_col], region or None)
            if tz_col is not None and row[tz_col].strip():
                tz = zone_key(row[tz_col])
        except NumberError as exc:
            plan.errors.append(RowError(record.line, str(exc)))
            continue
        first = seen.get(number)
        if first is not None:
            plan.errors.append(RowError(record.line, f"{number} duplicates line {first}"))
            continue
        seen[number] = record.line
        plan.leads.append(
            NewLead(
                number=number,
                tz=tz,
                fields={name: row[i] for i, name in custom},
                rank=first_rank + len(plan.leads),
                source_line=record.line,
            )
        )
    progress(plan.rows_in, plan.rows_in)
    return plan


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
    """Import `path` into `campaign` (see the module docstring for what is rejected)."""
    table = read_table(path, encoding, delimiter)
    rank = await store.next_rank(campaign.id)
    plan = _plan(table, config, columns, rank, progress)
    numbers = [lead.number for lead in plan.leads]
    refused = {n: "is on the do-not-call list" for n in await store.dnc_subset(numbers)}
    for n in await store.existing_numbers(campaign.id, numbers):
        refused.setdefault(n, f"is already in campaign {campaign.name!r}")
    if refused:
        plan.errors += [
            RowError(lead.source_line or 0, f"{lead.number} {refused[lead.number]}")
            for lead in plan.leads
            if lead.number in refused
        ]
        plan.leads = [lead for lead in plan.leads if lead.number not in refused]
    plan.errors.sort(key=lambda e: e.line)
    batch = None
    if plan.leads and (partial or not plan.errors):
        batch = await store.import_leads(campaign.id, plan.leads, path.name, len(plan.errors), now)
    return ImportReport(
        source=str(path),
        rows_in=plan.rows_in,
        importable=len(plan.leads),
        imported=batch.imported if batch else 0,
        errors=tuple(plan.errors),
        delimiter=table.delimiter,
        encoding=table.encoding,
        blank_lines=tuple(table.blank_lines),
        batch=batch,
    )
