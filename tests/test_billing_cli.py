"""`dialerd billing ...` end to end on a real database file: output and exit codes
(0 done, 1 refused or failed, 2 bad input)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dialerd.cli import cli

Invoke = Callable[..., Result]


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    monkeypatch.setenv("DIALERD_DB", str(tmp_path / "cli.db"))
    monkeypatch.delenv("DIALERD_SMTP_HOST", raising=False)
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(cli, ["billing", *args], catch_exceptions=False)

    return invoke


def test_billing_is_registered_in_the_dialerd_cli() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert "billing" in result.output


def test_r_sub_cli_walkthrough_with_exit_codes(run: Invoke) -> None:
    ok = [
        ("account", "add", "acme", "--kind", "call_centre", "--now", "2026-01-31"),
        ("user", "set", "tm1", "--account", "acme", "--type", "telemarketer"),
        ("credit", "add", "acme", "100.00", "--now", "2026-01-31"),
        ("subscribe", "tm1", "--plan", "attempt", "--amount", "10.00", "--now", "2026-01-31"),
    ]
    outputs = []
    for args in ok:
        result = run(*args)
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert "142 attempts left (9.94)" in outputs[-1]

    check = run("check", "tm1", "--now", "2026-02-01T10:00")
    assert check.exit_code == 0
    assert "login: yes" in check.output
    assert "record: no - per-attempt subscriptions are never recorded" in check.output

    refused = run("subscribe", "tm1", "--plan", "month", "--now", "2026-01-31")
    assert refused.exit_code == 1
    assert "overlaps subscription #1" in refused.output

    removed = run("unsubscribe", "1", "--now", "2026-02-02")
    assert removed.exit_code == 0
    assert "9.94 refunded" in removed.output

    show = run("credit", "show", "acme")
    assert "credit 100.00" in show.output

    statement = run("statement", "tm1", "--period", "2026-01-01..2026-02-28")
    assert statement.exit_code == 0
    assert "total assign                 9.94" in statement.output
    assert "total refund                 9.94" in statement.output

    assert run("verify").output.strip() == "ledger balances"
    assert run("list", "--user", "tm1").exit_code == 0


@pytest.mark.parametrize(
    "args",
    [
        ("credit", "add", "acme", "1.001"),
        ("credit", "add", "acme", "0"),
        ("credit", "add", "nobody", "5.00"),
        ("subscribe", "ghost", "--plan", "month"),
        ("subscribe", "tm1", "--plan", "fortnight"),
        ("subscribe", "tm1", "--plan", "month", "--start", "31/01/2026"),
        ("statement", "tm1", "--period", "last week"),
        ("unsubscribe", "99"),
        ("credit", "show", "acme", "--now", "yesterday"),
    ],
)
def test_bad_input_exits_2_with_a_message(run: Invoke, args: tuple[str, ...]) -> None:
    assert run("account", "add", "acme").exit_code == 0
    assert run("user", "set", "tm1", "--account", "acme", "--type", "telemarketer").exit_code == 0
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert "rror" in result.output


def test_refusals_exit_1(run: Invoke) -> None:
    run("account", "add", "shop")
    run("user", "set", "o", "--account", "shop", "--type", "outside_sales")
    short = run("subscribe", "o", "--plan", "year", "--now", "2026-01-01")
    assert short.exit_code == 1
    assert "0.00 credit, 240.00 needed" in short.output
    no_calls = run("check", "o", "--now", "2026-01-01")
    assert no_calls.exit_code == 1
    assert "no subscription" in no_calls.output
