"""Caller-ID lookup pieces (R-LOG-4): normalising hostile input, the CSV and LDAP-shaped
sources, and the fan-out's priority, timeout and fail-open rules."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from dialerd.inbound.lookup import (
    CallerLookup,
    CallerMatch,
    CsvSource,
    LdapSource,
    LookupSourceError,
    display_name,
    ldap_escape,
    normalise_caller,
)
from dialerd.store.models import ClientType


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("0201234567", "+31201234567"),
        ("+31 20 123 4567", "+31201234567"),
        ("0031201234567", "+31201234567"),
        ("(020) 123-4567", "+31201234567"),
        ("+4930123456", "+4930123456"),
        ("", None),
        (None, None),
        ("anonymous", None),
        ("<unknown>", None),
        ("12", None),
        ("1" * 30, None),
        ('0201234567\n"; DROP TABLE contacts;--', None),
        ("０２０１２３４５６７", None),  # full-width digits are not ASCII digits
        ("x" * 2048 + "0201234567", None),
    ],
)
def test_normalise_caller(raw: str | None, e164: str | None) -> None:
    assert normalise_caller(raw, "NL") == e164


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("Jan de Vries", "Jan de Vries"),
        ('Evil "quoted" name', 'Evil "quoted" name'),
        ("line\nbreak\r\x00nul", "line break nul"),
        ("  lots   of\tspace ", "lots of space"),
        ("Zoë Ştefan 中文", "Zoë Ştefan 中文"),
        ("", ""),
        (None, ""),
    ],
)
def test_display_name(raw: str | None, shown: str) -> None:
    assert display_name(raw) == shown


def test_display_name_caps_utf8_bytes_on_a_character_boundary() -> None:
    shown = display_name("中" * 2048)
    assert len(shown.encode()) <= 80 and shown == "中" * 26


async def test_csv_source_lookup(tmp_path: Path) -> None:
    path = tmp_path / "crm.csv"
    path.write_text("number,name,client_type\n020 123 4567,Jansen BV,vip\n+4930123456,Müller,\n")
    source = CsvSource.load(path, "NL")
    assert await source.lookup("+31201234567") == CallerMatch("Jansen BV", ClientType.VIP, "csv")
    match = await source.lookup("+4930123456")
    assert match is not None and match.client_type is ClientType.PROSPECT
    assert await source.lookup("+31000000000") is None


def test_csv_source_reports_every_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "crm.csv"
    path.write_text(
        "number,name,client_type\nnot a number,X,vip\n0201234567,Y,king\n0201234568,Z,\n"
    )
    with pytest.raises(LookupSourceError) as exc:
        CsvSource.load(path, "NL")
    lines = str(exc.value).splitlines()
    assert lines[0].startswith(f"{path}:2: 'not a number' is not a number")
    assert lines[1].startswith(f"{path}:3: client_type 'king'; expected one of")
    assert len(lines) == 2


def test_csv_source_needs_a_header(tmp_path: Path) -> None:
    path = tmp_path / "crm.csv"
    path.write_text("0201234567,Jansen\n")
    with pytest.raises(LookupSourceError, match=r":1: expected a header with number,name"):
        CsvSource.load(path, "NL")


class Directory:
    """An in-memory LDAP directory: evaluates the (|(attr=value)...) filters LdapSource
    builds, after undoing RFC 4515 escapes, so injection attempts can be checked."""

    def __init__(self, entries: list[dict[str, list[str]]]) -> None:
        self.entries = entries
        self.filters: list[str] = []

    async def search(
        self, base: str, filter: str, attributes: Sequence[str]
    ) -> list[dict[str, list[str]]]:
        self.filters.append(filter)
        terms = [t.split("=", 1) for t in filter[3:-2].split(")(")]
        wanted = [(a, bytes.fromhex(v.replace("\\", "")).decode() if "\\" in v else v)
                  for a, v in terms]  # fmt: skip
        return [e for e in self.entries if any(v in e.get(a, []) for a, v in wanted)]


async def test_ldap_source() -> None:
    directory = Directory([{"cn": ["Jansen BV"], "telephoneNumber": ["+31201234567"],
                            "clientType": ["VIP"]}])  # fmt: skip
    source = LdapSource(directory, "ou=clients,dc=example", type_attribute="clientType")
    match = await source.lookup("+31201234567")
    assert match == CallerMatch("Jansen BV", ClientType.VIP, "ldap")
    assert directory.filters == ["(|(telephoneNumber=+31201234567)(mobile=+31201234567))"]
    assert await source.lookup("+31000000000") is None


def test_ldap_escape_neutralises_filter_syntax() -> None:
    assert ldap_escape("*)(cn=*") == "\\2a\\29\\28cn=\\2a"
    assert ldap_escape("a\\b\0") == "a\\5cb\\00"


class Fixed:
    def __init__(self, name: str, match: CallerMatch | None, delay: float = 0.0,
                 fail: bool = False) -> None:  # fmt: skip
        self.name = name
        self.match = match
        self.delay = delay
        self.fail = fail
        self.asked = 0

    async def lookup(self, number: str) -> CallerMatch | None:
        self.asked += 1
        await asyncio.sleep(self.delay)
        if self.fail:
            raise ConnectionError("directory down")
        return self.match


def m(source: str) -> CallerMatch:
    return CallerMatch(source, ClientType.CUSTOMER, source)


async def test_first_source_with_a_match_wins_in_priority_order() -> None:
    slow_first = Fixed("store", m("store"), delay=0.05)
    fast_second = Fixed("csv", m("csv"))
    assert await CallerLookup([slow_first, fast_second]).find("+31") == m("store")


async def test_lower_source_counts_when_higher_ones_miss() -> None:
    lookup = CallerLookup([Fixed("store", None), Fixed("csv", None), Fixed("ldap", m("ldap"))])
    assert await lookup.find("+31") == m("ldap")


async def test_sources_are_asked_at_once_and_bounded_by_the_timeout() -> None:
    sources = [Fixed("store", None, delay=0.02), Fixed("ldap", m("ldap"), delay=5.0)]
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await CallerLookup(sources, timeout=0.1).find("+31") is None
    assert loop.time() - start < 1.0
    assert all(s.asked == 1 for s in sources)


async def test_failing_source_fails_open() -> None:
    lookup = CallerLookup([Fixed("store", None, fail=True), Fixed("csv", m("csv"))])
    assert await lookup.find("+31") == m("csv")
    assert await CallerLookup([Fixed("store", None, fail=True)]).find("+31") is None
