"""Reading the CSV files admins bring: any delimiter, a BOM, the odd wrong encoding.

Decoding never fails as a whole: bytes that are not valid in the file's encoding are kept as
surrogate escapes, and the row holding them is rejected with its line number (and a hint to
pass ``--encoding``), so one stray byte costs one row, not the file, and is never silently
mangled into a wrong name.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import _csv

DELIMITERS = ",;\t|"


class FileProblem(Exception):
    """The file as a whole is unusable (unreadable, empty, no header, unknown encoding)."""


@dataclass(frozen=True)
class Record:
    """One data row: the line it starts on, its fields, and what is wrong with it if the CSV
    layer already knows (a byte invalid in the encoding, a malformed quote)."""

    line: int
    fields: list[str]
    bad_byte: int | None = None
    csv_error: str | None = None


@dataclass(frozen=True)
class Table:
    """A parsed CSV: header, rows, and how it was read."""

    header: list[str]
    records: Iterator[Record]
    delimiter: str
    encoding: str
    estimated_rows: int
    blank_lines: list[int]


def read_table(path: Path, encoding: str = "utf-8", delimiter: str | None = None) -> Table:
    """Open a CSV with a header row; see the module docstring for bad bytes."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FileProblem(f"{path}: cannot read: {exc.strerror}") from None
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise FileProblem(f"unknown encoding {encoding!r}; expected e.g. utf-8, cp1252") from None
    if raw.startswith(codecs.BOM_UTF8) and encoding.replace("-", "").lower() in ("utf8", "utf8sig"):
        raw = raw[len(codecs.BOM_UTF8) :]
        encoding = "utf-8"
    text = raw.decode(encoding, errors="surrogateescape")
    if not text.strip():
        raise FileProblem(f"{path}: the file is empty; expected a header row and data rows")
    first_line = text.split("\n", 1)[0]
    delimiter = delimiter or sniff_delimiter(first_line)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise FileProblem(f"{path}:1: cannot read the header: {exc}") from None
    header = [h.strip() for h in header]
    blank: list[int] = []
    return Table(
        header=header,
        records=_records(reader, blank),
        delimiter=delimiter,
        encoding=encoding,
        estimated_rows=max(text.count("\n") - 1, 1),
        blank_lines=blank,
    )


def sniff_delimiter(header_line: str) -> str:
    """The candidate delimiter occurring most often in the header (',' on a tie)."""
    counts = {d: header_line.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _records(reader: _csv.Reader, blank: list[int]) -> Iterator[Record]:
    """Data rows with their *starting* line (a quoted field may span lines)."""
    previous_end = reader.line_num
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            line = previous_end + 1
            previous_end = reader.line_num
            yield Record(line, [], csv_error=str(exc))
            continue
        line = previous_end + 1
        previous_end = reader.line_num
        if not fields or all(not f.strip() for f in fields):
            blank.append(line)
            continue
        yield Record(line, fields, _bad_byte(fields))


def _bad_byte(fields: list[str]) -> int | None:
    for field in fields:
        for ch in field:
            if "\udc80" <= ch <= "\udcff":
                return ord(ch) - 0xDC00
    return None
