"""Caller-ID lookup (R-LOG-4): who is calling, from pluggable sources, fast and fail-open.

Sources answer "who owns this E.164 number?". `CallerLookup` asks them all at once (the
wazo-dird fan-out) and takes the match of the highest-priority source that has one, as
soon as every source above it has answered "no"; whatever has not answered within the
timeout is ignored. A source that raises counts as "no match" and is logged: a broken
directory never stops a call from ringing.

Shipped sources: the store (always first), a CSV file, and an LDAP-shaped source over any
client satisfying the `LdapDirectory` protocol (the number is escaped per RFC 4515, so
a hostile caller ID cannot widen the search filter).

Hostile caller-ID strings (quotes, newlines, 2 KB of junk, any UTF-8) are reduced by
`normalise_caller` to an E.164 number or nothing, and by `display_name` to printable text
of bounded length; only those reach SQL (as parameters) or the channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import phonenumbers

from dialerd.store.models import ClientType, Contact

log = logging.getLogger(__name__)

__all__ = [
    "CallerLookup",
    "CallerMatch",
    "CsvSource",
    "LdapDirectory",
    "LdapSource",
    "LookupSource",
    "LookupSourceError",
    "StoreSource",
    "display_name",
    "normalise_caller",
]

# Longer than any real number with prefixes; anything beyond is junk we never parse.
_MAX_NUMBER_INPUT = 40
NAME_LIMIT = 80
_SEPARATORS = str.maketrans("", "", " -().\t/")


class LookupSourceError(ValueError):
    """A source could not be loaded; the message lists every bad line."""


@dataclass(frozen=True, slots=True)
class CallerMatch:
    """Who a number belongs to, and which source said so."""

    name: str
    client_type: ClientType
    source: str
    contact_id: int | None = None
    linked_agent: str | None = None


class LookupSource(Protocol):
    """One place that may know a number. `lookup` gets an E.164 number."""

    name: str

    async def lookup(self, number: str) -> CallerMatch | None: ...


def normalise_caller(raw: str | None, region: str) -> str | None:
    """The caller's number in E.164, or None when it is not a possible phone number
    (anonymous, withheld, junk). Only ASCII digits with a leading '+' or '00' and the
    usual separators are accepted; anything else means "not a number", not "the digits
    we could find in it"."""
    if not raw:
        return None
    text = raw.strip()
    if len(text) > _MAX_NUMBER_INPUT:
        return None
    compact = text.translate(_SEPARATORS)
    plus = compact.startswith("+")
    digits = compact[1:] if plus else compact
    if not digits.isascii() or not digits.isdigit() or len(digits) > 17:
        return None
    if digits.startswith("00"):
        plus, digits = True, digits[2:]
    try:
        number = phonenumbers.parse(("+" if plus else "") + digits, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def display_name(raw: str | None, limit: int = NAME_LIMIT) -> str:
    """Caller-supplied text made inert for the channel and the log: printable characters
    only (no CR/LF/NUL or other controls), whitespace collapsed, at most `limit` UTF-8
    bytes, cut on a character boundary."""
    if not raw:
        return ""
    text = " ".join("".join(c if c.isprintable() else " " for c in raw[: limit * 4]).split())
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore").rstrip()


class CallerFinder(Protocol):
    async def lookup_caller(self, number: str) -> tuple[Contact, str | None] | None: ...


class StoreSource:
    """The clients in dialerd's own store, with their linked agent (one query)."""

    name = "store"

    def __init__(self, store: CallerFinder) -> None:
        self._store = store

    async def lookup(self, number: str) -> CallerMatch | None:
        found = await self._store.lookup_caller(number)
        if found is None:
            return None
        contact, agent = found
        return CallerMatch(contact.name, contact.client_type, self.name, contact.id, agent)


class CsvSource:
    """A CSV export of another system: columns ``number,name[,client_type]`` with a header
    row. Loaded once into memory; every bad line is reported with its number."""

    def __init__(self, entries: Mapping[str, CallerMatch], name: str = "csv") -> None:
        self.name = name
        self._entries = dict(entries)

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def load(cls, path: str | Path, region: str, name: str = "csv") -> CsvSource:
        path = Path(path)
        problems: list[str] = []
        entries: dict[str, CallerMatch] = {}
        try:
            with path.open(newline="", encoding="utf-8-sig") as fh:
                reader = csv.DictReader(fh)
                fields = [f.strip().lower() for f in reader.fieldnames or []]
                if "number" not in fields or "name" not in fields:
                    raise LookupSourceError(
                        f"{path}:1: expected a header with number,name[,client_type];"
                        f" got {','.join(fields) or 'nothing'}"
                    )
                reader.fieldnames = fields
                for row in reader:
                    line = reader.line_num
                    number = normalise_caller(row.get("number"), region)
                    if number is None:
                        problems.append(f"{path}:{line}: {row.get('number')!r} is not a number")
                        continue
                    kind = (row.get("client_type") or "prospect").strip().lower()
                    try:
                        client_type = ClientType(kind)
                    except ValueError:
                        allowed = ", ".join(t.value for t in ClientType)
                        problems.append(
                            f"{path}:{line}: client_type {kind!r}; expected one of {allowed}"
                        )
                        continue
                    entries[number] = CallerMatch(display_name(row.get("name")), client_type, name)
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise LookupSourceError(f"{path}: cannot read: {exc}") from None
        if problems:
            raise LookupSourceError("\n".join(problems))
        return cls(entries, name)

    async def lookup(self, number: str) -> CallerMatch | None:
        return self._entries.get(number)


class LdapDirectory(Protocol):
    """The shape of an LDAP client (ldap3, bonsai...) the `LdapSource` needs: one search
    returning entries as attribute -> values."""

    async def search(
        self, base: str, filter: str, attributes: Sequence[str]
    ) -> list[dict[str, list[str]]]: ...


def ldap_escape(value: str) -> str:
    """RFC 4515 escaping of a filter value: ``*()\\`` and NUL cannot change the filter."""
    return "".join(f"\\{ord(c):02x}" if c in "*()\\\0" else c for c in value)


class LdapSource:
    """Numbers in an LDAP directory (``telephoneNumber``/``mobile`` in E.164)."""

    def __init__(
        self,
        directory: LdapDirectory,
        base: str,
        number_attributes: Sequence[str] = ("telephoneNumber", "mobile"),
        name_attribute: str = "cn",
        type_attribute: str | None = None,
        name: str = "ldap",
    ) -> None:
        self.name = name
        self._directory = directory
        self._base = base
        self._number_attributes = tuple(number_attributes)
        self._name_attribute = name_attribute
        self._type_attribute = type_attribute

    def search_filter(self, number: str) -> str:
        value = ldap_escape(number)
        terms = "".join(f"({attr}={value})" for attr in self._number_attributes)
        return f"(|{terms})"

    async def lookup(self, number: str) -> CallerMatch | None:
        attributes = [
            self._name_attribute,
            *([self._type_attribute] if self._type_attribute else []),
        ]
        entries = await self._directory.search(self._base, self.search_filter(number), attributes)
        if not entries:
            return None
        entry = entries[0]
        name = (entry.get(self._name_attribute) or [""])[0]
        client_type = ClientType.CUSTOMER
        if self._type_attribute:
            raw = (entry.get(self._type_attribute) or [""])[0].lower()
            with contextlib.suppress(ValueError):
                client_type = ClientType(raw)
        return CallerMatch(display_name(name), client_type, self.name)


class CallerLookup:
    """Fan-out over sources in priority order; first match wins, bounded by `timeout`."""

    def __init__(self, sources: Sequence[LookupSource], timeout: float = 0.3) -> None:
        self.sources = tuple(sources)
        self.timeout = timeout

    async def find(self, number: str) -> CallerMatch | None:
        """The highest-priority match within the timeout, or None (fail open)."""
        if not self.sources:
            return None
        if len(self.sources) == 1:  # the common case: no task overhead
            return await self._ask(self.sources[0], number)
        tasks = [asyncio.create_task(self._ask(source, number)) for source in self.sources]
        try:
            for task in tasks:  # priority order: a lower source only counts if all above missed
                match = await task
                if match is not None:
                    return match
            return None
        finally:
            for task in tasks:
                task.cancel()

    async def _ask(self, source: LookupSource, number: str) -> CallerMatch | None:
        try:
            async with asyncio.timeout(self.timeout):
                return await source.lookup(number)
        except TimeoutError:
            log.warning("caller lookup: source %s did not answer within %.0f ms",
                        source.name, self.timeout * 1000)  # fmt: skip
        except Exception:
            log.exception("caller lookup: source %s failed; treated as no match", source.name)
        return None
