"""Lead import from CSV: every row accounted for, all-or-nothing by default (issue 4).

The fixture tests/fixtures/csv/bad_rows.csv has a BOM, ';' delimiters, CRLF line ends and,
by line: 2-3 good, 4 bad number, 5 bad time zone, 6 duplicate of 2, 7 a DNC number, 8 blank,
9 good, 10 a cp1252 byte, 11 too many columns, 12 good.
"""

from __future__ import annotations

import asyncio
import csv
import io
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialerd.cli import cli
from dialerd.config import load_config
from dialerd.leads.importer import Columns, import_csv
from dialerd.store import open_store

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "csv"
BAD_ROWS_REPORT = [
    "bad_rows.csv:4: '12345' is not a valid phone number (country NL)",
    "bad_rows.csv:5: unknown time zone 'America/New_Yrok'; expected an IANA name such as "
    "Europe/Amsterdam",
    "bad_rows.csv:6: +31201234567 duplicates line 2",
    "bad_rows.csv:7: +31687654321 is on the do-not-call list",
    "bad_rows.csv:10: byte 0xE9 is not valid utf-8; re-save the file as UTF-8 or pass "
    "--encoding (e.g. cp1252)",
    "bad_rows.csv:11: expected 4 columns like the header, found 5",
]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A private config dir (the shipped conf/) and database for the CLI."""
    shutil.copytree(REPO / "conf", tmp_path / "conf")
    return {"DIALERD_CONFIG": str(tmp_path / "conf"), "DIALERD_DB": str(tmp_path / "t.db")}


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def dump(db: str) -> dict[str, list[tuple[object, ...]]]:
    """Everything an import could touch, for before/after comparison."""
    with sqlite3.connect(db) as conn:
        return {
            table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall())
            for table in ("leads", "import_batches", "campaign_timezones", "dnc")
        }


def rejected_lines(result: Result) -> list[str]:
    """The per-row report lines, with the file's directory dropped."""
    lines = [line for line in result.stderr.splitlines() if ".csv:" in line]
    return [Path(line.split(":", 1)[0]).name + ":" + line.split(":", 1)[1] for line in lines]


def test_bad_rows_all_or_nothing_leaves_store_unchanged(env: dict[str, str]) -> None:
    assert run(env, "dnc", "import", str(FIXTURES / "dnc.csv")).exit_code == 0
    before = dump(env["DIALERD_DB"])
    result = run(env, "leads", "import", str(FIXTURES / "bad_rows.csv"), "--campaign", "demo")
    assert result.exit_code == 2, result.output
    assert rejected_lines(result) == BAD_ROWS_REPORT
    assert result.stdout.strip() == (
        "10 rows read (delimiter ';', utf-8), 1 blank line(s) ignored: 0 imported, 6 rejected; "
        "nothing written (4 good rows held back: fix the rows above or pass --partial)"
    )
    assert dump(env["DIALERD_DB"]) == before


def test_bad_rows_partial_imports_the_good_ones(env: dict[str, str]) -> None:
    assert run(env, "dnc", "import", str(FIXTURES / "dnc.csv")).exit_code == 0
    result = run(env, "leads", "import", str(FIXTURES / "bad_rows.csv"), "-c", "demo", "--partial")
    assert result.exit_code == 0, result.output
    assert rejected_lines(result) == BAD_ROWS_REPORT
    assert "10 rows read" in result.stdout
    assert "4 imported, 6 rejected" in result.stdout
    with sqlite3.connect(env["DIALERD_DB"]) as conn:
        leads = conn.execute(
            "SELECT number, tz, fields, source_line, status FROM leads ORDER BY rank"
        ).fetchall()
        batch = conn.execute("SELECT rows_in, imported, rejected FROM import_batches").fetchall()
    assert leads == [
        ("+31201234567", "Europe/Amsterdam", '{"naam":"Anna","plaats":"Amsterdam"}', 2, "ready"),
        ("+31612345678", "Europe/Amsterdam", '{"naam":"Bert","plaats":"Utrecht"}', 3, "ready"),
        ("+442079460018", "Europe/London", '{"naam":"Gert","plaats":"Londen"}', 9, "ready"),
        ("+31101234567", "Europe/Amsterdam", '{"naam":"Ida","plaats":"Rotterdam"}', 12, "ready"),
    ]
    assert batch == [(10, 4, 6)]
    again = run(env, "leads", "import", str(FIXTURES / "bad_rows.csv"), "-c", "demo", "--partial")
    assert "bad_rows.csv:2: +31201234567 is already in the campaign" in again.stderr
    assert "0 imported, 10 rejected" in again.stdout


def test_wrong_encoding_then_right_encoding(env: dict[str, str]) -> None:
    path = str(FIXTURES / "cp1252.csv")
    wrong = run(env, "leads", "import", path, "-c", "demo")
    assert wrong.exit_code == 2
    assert len(rejected_lines(wrong)) == 2
    right = run(env, "leads", "import", path, "-c", "demo", "--encoding", "cp1252")
    assert right.exit_code == 0, right.output
    with sqlite3.connect(env["DIALERD_DB"]) as conn:
        names = [r[0] for r in conn.execute("SELECT fields ->> 'name' FROM leads ORDER BY id")]
    assert names == ["José", "Renée"]


def test_tab_delimited_and_column_options(env: dict[str, str]) -> None:
    result = run(
        env, "leads", "import", str(FIXTURES / "tabs.tsv"), "-c", "demo",
        "--field", "customer=client", "--tz-column", "nope",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "no column 'nope' for the time zone; the header has: mobile, customer" in result.stderr
    result = run(
        env,
        "leads",
        "import",
        str(FIXTURES / "tabs.tsv"),
        "-c",
        "demo",
        "--field",
        "customer=client",
    )
    assert result.exit_code == 0, result.output
    assert "(delimiter '\\t', utf-8)" in result.stdout
    exported = run(env, "leads", "export", "-c", "demo")
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [(r["number"], r["tz"], r["client"], r["status"]) for r in rows] == [
        ("+31612340021", "Europe/Amsterdam", "X", "ready"),
        ("+31612340022", "Europe/Amsterdam", "Y", "ready"),
    ]


def test_export_is_reimportable(env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, "leads", "import", str(FIXTURES / "good.csv"), "-c", "demo").exit_code == 0
    out = tmp_path / "out.csv"
    assert run(env, "leads", "export", "-c", "demo", "-o", str(out)).exit_code == 0
    assert "Rotterdam, Zuid" in out.read_text()
    again = run(env, "leads", "import", str(out), "-c", "demo")
    assert again.exit_code == 2
    assert "3 rows read" in again.stdout
    assert all("is already in the campaign" in line for line in rejected_lines(again))


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (b"", (), "the file is empty; expected a header row and data rows"),
        (b"name,city\nx,y\n", (), "no phone-number column found (looked for number, phone,"),
        (
            b"phone,phone\n1,2\n",
            (),
            "line 1: the header repeats phone; expected unique column names",
        ),
        (b"phone\n+31201230001\n", ("--encoding", "klingon"), "unknown encoding 'klingon'"),
    ],
)
def test_unusable_files_exit_2(
    env: dict[str, str], tmp_path: Path, content: bytes, args: tuple[str, ...], message: str
) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(content)
    result = run(env, "leads", "import", str(path), "-c", "demo", *args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_unknown_campaign_exit_2(env: dict[str, str]) -> None:
    result = run(env, "leads", "import", str(FIXTURES / "good.csv"), "-c", "nope")
    assert result.exit_code == 2
    assert "no campaign 'nope'" in result.stderr
    assert "(known: demo)" in result.stderr


def test_dnc_import_export_and_effect_on_leads(env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, "leads", "import", str(FIXTURES / "good.csv"), "-c", "demo").exit_code == 0
    dnc = tmp_path / "dnc.csv"
    dnc.write_text("number\n+31201230001\nnot a number\n")
    refused = run(env, "dnc", "import", str(dnc))
    assert refused.exit_code == 2
    assert "dnc.csv:3: 'not a number' is not a phone number" in refused.stderr
    ok = run(env, "dnc", "import", str(dnc), "--partial", "--reason", "asked")
    assert ok.exit_code == 0
    assert (
        "1 numbers added (0 already listed), 1 rejected; 1 leads taken out of the queue"
        in ok.stdout
    )
    listed = list(csv.DictReader(io.StringIO(run(env, "dnc", "export").stdout)))
    assert [(r["number"], r["reason"], r["source"]) for r in listed] == [
        ("+31201230001", "asked", "dnc.csv")
    ]
    shown = run(env, "campaign", "show", "demo")
    assert "leads: dnc 1, ready 2" in shown.stdout


def test_campaign_list(env: dict[str, str]) -> None:
    result = run(env, "campaign", "list")
    assert result.exit_code == 0
    assert "demo" in result.stdout
    assert "predictive" in result.stdout


# --- no row is ever silently dropped ---------------------------------------------------------

ROW_KINDS = st.sampled_from(["good", "bad_number", "bad_tz", "dup", "columns", "blank", "byte"])


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(kinds=st.lists(ROW_KINDS, min_size=1, max_size=30), partial=st.booleans())
def test_every_row_is_imported_or_reported(tmp_path: Path, kinds: list[str], partial: bool) -> None:
    """rows in = importable + rejected; each data line is either stored or reported once."""
    lines = [b"phone,tz,n"]
    for i, kind in enumerate(kinds):
        number = f"+312012{i:05d}".encode()
        lines.append(
            {
                "good": number + b",,x",
                "bad_number": b"12,,x",
                "bad_tz": number + b",Mars/Base,x",
                "dup": b"+31201200000,,x",
                "columns": number + b",,x,y",
                "blank": b"",
                "byte": number + b",,\xff",
            }[kind]
        )
    path = tmp_path / f"p{abs(hash((tuple(kinds), partial)))}.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    config = load_config(REPO / "conf").campaigns["demo"]

    async def go() -> tuple[object, set[int]]:
        store = await open_store(":memory:")
        try:
            campaign = await store.sync_campaign(config, 0.0)
            report = await import_csv(store, campaign, config, path, Columns(), partial)
            stored = {lead.source_line async for lead in store.iter_leads(campaign.id)}
            return report, {s for s in stored if s is not None}
        finally:
            await store.close()

    report, stored = asyncio.run(go())
    data_lines = {i + 2 for i, kind in enumerate(kinds) if kind != "blank"}
    reported = [e.line for e in report.errors]  # type: ignore[attr-defined]
    assert len(reported) == len(set(reported))
    assert report.rows_in == len(data_lines) == report.importable + report.rejected  # type: ignore[attr-defined]
    assert set(reported) <= data_lines
    if partial or not reported:
        assert stored == data_lines - set(reported)
        assert report.imported == len(stored)  # type: ignore[attr-defined]
    else:
        assert stored == set()
        assert report.imported == 0  # type: ignore[attr-defined]
    assert set(report.blank_lines) == {i + 2 for i, k in enumerate(kinds) if k == "blank"}  # type: ignore[attr-defined]


def test_line_numbers_survive_quoted_newlines(env: dict[str, str], tmp_path: Path) -> None:
    """A quoted field spanning lines must not shift the line numbers of later rows."""
    path = tmp_path / "multi.csv"
    path.write_text('phone,note\n+31201230001,"two\nlines"\nbogus,x\n+31201230002,ok\n')
    result = run(env, "leads", "import", str(path), "-c", "demo")
    assert rejected_lines(result) == ["multi.csv:4: 'bogus' is not a phone number: the string "
                                      "supplied did not seem to be a phone number"]  # fmt: skip
    assert "3 rows read" in result.stdout


def test_database_failure_exits_1(env: dict[str, str], tmp_path: Path) -> None:
    env = {**env, "DIALERD_DB": str(tmp_path / "no" / "such" / "dir" / "x.db")}
    result = run(env, "leads", "import", str(FIXTURES / "good.csv"), "-c", "demo")
    assert result.exit_code == 1
    assert "failed: cannot create database" in result.stderr


def test_long_reports_are_cut_on_screen_and_complete_in_the_errors_file(
    env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "many.csv"
    path.write_text("phone\n" + "".join(f"bad{i}\n" for i in range(60)) + "+31201230001\n")
    errors = tmp_path / "rejected.csv"
    result = run(env, "leads", "import", str(path), "-c", "demo", "--errors", str(errors))
    assert result.exit_code == 2
    assert len(rejected_lines(result)) == 50
    assert f"... and 10 more rejected rows (all in {errors})" in result.stderr
    rows = list(csv.DictReader(io.StringIO(errors.read_text())))
    assert len(rows) == 60
    assert rows[0] == {
        "line": "2",
        "reason": "'bad0' is not a phone number: the string supplied did not seem to be a phone "
        "number",
    }
