"""Billing rules end to end against a real SQLite file, with a controlled clock (R-SUB)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import aiosqlite
import pytest
import pytest_asyncio

from dialerd.billing.config import BillingConfig, config_from_mapping
from dialerd.billing.rules import (
    AccountKind,
    BillingInputError,
    BillingRefused,
    Plan,
    Status,
    UserType,
)
from dialerd.billing.service import BillingGate, BillingService
from dialerd.store.billing import BillingStore
from dialerd.store.db import open_db

pytestmark = pytest.mark.asyncio(loop_scope="session")


def at(text: str) -> datetime:
    """A moment; a bare date means 09:00 that day."""
    return datetime.fromisoformat(text if "T" in text else f"{text}T09:00")


class Books:
    """A database with account `cc` (call centre) and `std`, and three users."""

    def __init__(self, conn: aiosqlite.Connection, service: BillingService) -> None:
        self.conn = conn
        self.service = service
        self.gate = BillingGate(service)

    async def credit(self, account: str = "cc") -> int:
        return (await self.service.account(account)).credit_cents

    async def ledger_rows(self) -> int:
        async with self.conn.execute("SELECT COUNT(*) FROM billing_ledger") as cur:
            row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    async def notices(self) -> list[tuple[str, str | None, str]]:
        async with self.conn.execute(
            "SELECT user_id, email, subject FROM billing_notices ORDER BY id"
        ) as cur:
            return [(r[0], r[1], r[2]) async for r in cur]

    async def assert_balanced(self) -> None:
        assert await self.service.verify() == []


async def make_books(path: Path, config: BillingConfig | None = None) -> Books:
    conn = await open_db(path)
    service = BillingService(BillingStore(conn), config)
    start = at("2026-01-01T08:00")
    await service.add_account("cc", AccountKind.CALL_CENTRE, start)
    await service.add_account("std", AccountKind.STANDARD, start)
    await service.put_user("tm", "cc", UserType.TELEMARKETER, "tm@example.org")
    await service.put_user("out", "std", UserType.OUTSIDE_SALES, "out@example.org")
    await service.put_user("tm_std", "std", UserType.TELEMARKETER, None)
    return Books(conn, service)


@pytest_asyncio.fixture(loop_scope="session")
async def books(tmp_path: Path) -> AsyncIterator[Books]:
    made = await make_books(tmp_path / "billing.db")
    yield made
    await made.assert_balanced()
    await made.conn.close()


# ------------------------------------------------------------------ R-SUB-1 credit


async def test_r_sub_1_assigning_needs_credit_and_a_refusal_changes_nothing(
    books: Books,
) -> None:
    await books.service.add_credit("cc", 5000, "first payment", at("2026-01-01"))
    rows = await books.ledger_rows()
    with pytest.raises(BillingRefused, match=r"50\.00 credit, 55\.00 needed"):
        await books.service.subscribe("tm", Plan.MONTH, at("2026-01-01"))
    assert await books.service.subscriptions(user_id="tm") == []
    assert await books.ledger_rows() == rows
    assert await books.credit() == 5000


async def test_r_sub_1_unknown_account_or_user_is_an_input_error(books: Books) -> None:
    with pytest.raises(BillingInputError, match="no account"):
        await books.service.add_credit("nope", 100, "x", at("2026-01-01"))
    with pytest.raises(BillingInputError, match="no billing user"):
        await books.service.subscribe("ghost", Plan.MONTH, at("2026-01-01"))
    with pytest.raises(BillingInputError, match="no account"):
        await books.service.put_user("x", "nope", UserType.INSIDE_SALES, None)


async def test_r_sub_1_ledger_is_append_only(books: Books) -> None:
    await books.service.add_credit("cc", 100, "x", at("2026-01-01"))
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        await books.conn.execute("UPDATE billing_ledger SET amount_cents = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        await books.conn.execute("DELETE FROM billing_ledger")


async def test_verify_notices_a_tampered_balance(books: Books) -> None:
    await books.service.add_credit("cc", 1000, "x", at("2026-01-01"))
    tamper = "UPDATE billing_accounts SET credit_cents = ? WHERE account_id = 'cc'"
    await books.conn.execute(tamper, (900,))
    problems = await books.service.verify()
    assert any("credit 900 but ledger says 1000" in p for p in problems)
    await books.conn.execute(tamper, (1000,))


# ------------------------------------------------------------------ R-SUB-3 per attempt


async def test_r_sub_3_per_attempt_allocation_deducts_each_attempt_then_stops(
    books: Books,
) -> None:
    await books.service.add_credit("cc", 1000, "top-up", at("2026-01-01"))
    sub = await books.service.subscribe("tm", Plan.ATTEMPT, at("2026-01-01"), amount_cents=1000)
    assert (sub.attempts_left, sub.balance_cents) == (142, 994)
    assert await books.credit() == 6  # the 0.06 that buys no attempt is never taken
    for n in range(142):
        charge = await books.gate.charge_attempt("tm", at("2026-01-02"))
        assert (charge.charged, charge.cost_cents, charge.attempts_left) == (True, 7, 141 - n)
    refused = await books.gate.charge_attempt("tm", at("2026-01-02"))
    assert not refused.charged
    assert refused.cost_cents == 0
    login = await books.gate.may_log_in("tm", at("2026-01-02"))
    assert not login.allowed
    assert "used up" in login.message
    statement = await books.service.statement("tm", at("2026-01-01T00:00"), at("2026-02-01"))
    assert statement.attempts == 142
    assert statement.totals["attempt"] == 994


async def test_r_sub_3_documents_example_200_attempts_at_a_configured_5_cents(
    tmp_path: Path,
) -> None:
    """10.00 -> 200 attempts, as the documents say, once the price is 0.05."""
    config = config_from_mapping({"prices": {"telemarketer": {"per_attempt": "0.05"}}})
    made = await make_books(tmp_path / "b.db", config)
    try:
        await made.service.add_credit("cc", 1000, "x", at("2026-01-01"))
        sub = await made.service.subscribe("tm", Plan.ATTEMPT, at("2026-01-01"),
                                           amount_cents=1000)  # fmt: skip
        assert sub.attempts_left == 200
        assert await made.credit() == 0
        await made.assert_balanced()
    finally:
        await made.conn.close()


async def test_r_sub_3_auto_renew_adds_the_same_amount_when_attempts_reach_zero(
    books: Books,
) -> None:
    await books.service.add_credit("cc", 2 * 70 + 30, "x", at("2026-01-01"))  # 1.70
    sub = await books.service.subscribe(
        "tm", Plan.ATTEMPT, at("2026-01-01"), amount_cents=70, auto_renew=True
    )
    assert sub.attempts_left == 10
    for _ in range(9):
        assert (await books.gate.charge_attempt("tm", at("2026-01-02"))).renewed is False
    tenth = await books.gate.charge_attempt("tm", at("2026-01-02"))
    assert (tenth.charged, tenth.renewed, tenth.attempts_left) == (True, True, 10)
    assert await books.credit() == 30  # renewed with the same 0.70, at the moment of 0
    for _ in range(10):
        assert (await books.gate.charge_attempt("tm", at("2026-01-03"))).charged
    # 0 attempts left, 0.30 credit: cannot renew, so no call and no login.
    assert not (await books.gate.charge_attempt("tm", at("2026-01-03"))).charged
    assert not (await books.gate.may_log_in("tm", at("2026-01-03"))).allowed
    await books.service.add_credit("cc", 100, "more", at("2026-01-04"))
    assert (await books.gate.may_log_in("tm", at("2026-01-04"))).allowed
    late = await books.gate.charge_attempt("tm", at("2026-01-04"))
    assert (late.charged, late.renewed, late.attempts_left) == (True, True, 9)


async def test_r_sub_3_removal_refunds_the_rest(books: Books) -> None:
    await books.service.add_credit("cc", 1000, "x", at("2026-01-01"))
    sub = await books.service.subscribe("tm", Plan.ATTEMPT, at("2026-01-01"), amount_cents=700)
    for _ in range(3):
        await books.gate.charge_attempt("tm", at("2026-01-02"))
    refund = await books.service.unsubscribe(sub.id, at("2026-01-05"))
    assert refund == 700 - 21
    assert await books.credit() == 1000 - 21
    removed = await books.service.subscriptions(user_id="tm")
    assert removed[0].status is Status.REMOVED
    assert not (await books.gate.may_log_in("tm", at("2026-01-05"))).allowed


async def test_r_sub_3_per_attempt_never_records_and_needs_a_call_centre(books: Books) -> None:
    await books.service.add_credit("cc", 1000, "x", at("2026-01-01"))
    await books.service.add_credit("std", 1000, "x", at("2026-01-01"))
    with pytest.raises(BillingRefused, match="cannot record"):
        await books.service.subscribe(
            "tm", Plan.ATTEMPT, at("2026-01-01"), amount_cents=700, recording=True
        )
    with pytest.raises(BillingRefused, match="call-centre"):
        await books.service.subscribe("tm_std", Plan.ATTEMPT, at("2026-01-01"), amount_cents=700)
    with pytest.raises(BillingRefused, match="telemarketers only"):
        await books.service.subscribe("out", Plan.ATTEMPT, at("2026-01-01"), amount_cents=700)
    await books.service.subscribe("tm", Plan.ATTEMPT, at("2026-01-01"), amount_cents=700)
    record = await books.gate.may_record("tm", at("2026-01-02"))
    assert not record.allowed


# ------------------------------------------------------------------ R-SUB-4 period


@pytest.mark.parametrize(
    ("plan", "start", "end", "cost"),
    [
        (Plan.MONTH, "2026-01-31", "2026-02-28", 5500),
        (Plan.QUARTER, "2026-01-31", "2026-04-30", 14850),
        (Plan.YEAR, "2026-01-31", "2027-01-31", 52800),
    ],
)
async def test_r_sub_4_period_terms_are_paid_up_front_with_derived_end(
    books: Books, plan: Plan, start: str, end: str, cost: int
) -> None:
    await books.service.add_credit("cc", 100000, "x", at("2026-01-31"))
    sub = await books.service.subscribe("tm", plan, at(start))
    assert sub.ends_on == date.fromisoformat(end)
    assert sub.balance_cents == cost
    assert await books.credit() == 100000 - cost


async def test_r_sub_4_auto_renew_on_the_exact_end_day_keeps_the_anchor(books: Books) -> None:
    await books.service.add_credit("std", 10000, "x", at("2026-01-31"))
    first = await books.service.subscribe("out", Plan.MONTH, at("2026-01-31"), auto_renew=True)
    assert first.ends_on == date(2026, 2, 28)
    before = await books.service.tick(at("2026-02-27T23:59"))
    assert before.ended == []
    assert (await books.gate.may_log_in("out", at("2026-02-27T23:59"))).allowed
    on_the_day = await books.service.tick(at("2026-02-28T00:00"))
    assert on_the_day.ended == [first.id]
    assert len(on_the_day.renewed) == 1
    subs = await books.service.subscriptions(user_id="out")
    renewed = subs[-1]
    assert (renewed.starts_on, renewed.ends_on) == (date(2026, 2, 28), date(2026, 3, 31))
    assert renewed.renewed_from == first.id
    assert await books.credit("std") == 10000 - 2 * 2500
    assert (await books.gate.may_log_in("out", at("2026-02-28T08:00"))).allowed
    again = await books.service.tick(at("2026-02-28T12:00"))  # idempotent
    assert (again.ended, again.renewed) == ([], [])
    assert [n[2] for n in await books.notices()].count("Your dialer subscription was renewed") == 1


async def test_r_sub_4_login_on_the_end_day_renews_without_waiting_for_the_daily_run(
    books: Books,
) -> None:
    await books.service.add_credit("std", 10000, "x", at("2026-03-01"))
    await books.service.subscribe("out", Plan.MONTH, at("2026-03-01"), auto_renew=True)
    login = await books.gate.may_log_in("out", at("2026-04-01T07:00"))
    assert login.allowed
    assert "until 2026-05-01" in login.message


async def test_r_sub_4_catch_up_renews_every_missed_term_from_its_own_end(books: Books) -> None:
    await books.service.add_credit("std", 10000, "x", at("2026-01-15"))
    await books.service.subscribe("out", Plan.MONTH, at("2026-01-15"), auto_renew=True)
    report = await books.service.tick(at("2026-04-20"))  # the daemon was down for months
    assert len(report.renewed) == 3
    current = [s for s in await books.service.subscriptions(user_id="out")
               if s.status is Status.ACTIVE]  # fmt: skip
    assert [(s.starts_on, s.ends_on) for s in current] == [(date(2026, 4, 15), date(2026, 5, 15))]
    assert await books.credit("std") == 10000 - 4 * 2500


async def test_r_sub_4_short_credit_ends_the_term_after_a_notice_three_days_before(
    books: Books,
) -> None:
    await books.service.add_credit("std", 2500 + 1000, "x", at("2026-01-31"))
    sub = await books.service.subscribe("out", Plan.MONTH, at("2026-01-31"), auto_renew=True)
    assert (await books.service.tick(at("2026-02-24"))).short_notices == []
    assert (await books.service.tick(at("2026-02-25"))).short_notices == [sub.id]
    assert (await books.service.tick(at("2026-02-26"))).short_notices == []  # only once
    subjects = [n[2] for n in await books.notices()]
    assert subjects == [
        "Your dialer subscription was assigned",
        "Not enough credit to renew your dialer subscription",
    ]
    end = await books.service.tick(at("2026-02-28"))
    assert (end.ended, end.not_renewed, end.renewed) == ([sub.id], [sub.id], [])
    login = await books.gate.may_log_in("out", at("2026-02-28"))
    assert not login.allowed
    assert "no subscription" in login.message
    assert await books.credit("std") == 1000


async def test_r_sub_4_no_notice_when_credit_suffices_or_no_auto_renew(books: Books) -> None:
    await books.service.add_credit("std", 2500 * 2, "x", at("2026-01-31"))
    await books.service.subscribe("out", Plan.MONTH, at("2026-01-31"), auto_renew=True)
    assert (await books.service.tick(at("2026-02-25"))).short_notices == []
    await books.service.add_credit("cc", 5500, "x", at("2026-01-31"))
    await books.service.subscribe("tm", Plan.MONTH, at("2026-01-31"), auto_renew=False)
    assert (await books.service.tick(at("2026-02-25"))).short_notices == []


async def test_r_sub_4_warning_counts_renewals_due_earlier_on_the_same_account(
    books: Books,
) -> None:
    """30.00 left pays one 25.00 renewal, not two: only the later one is warned."""
    await books.service.put_user("out2", "std", UserType.OUTSIDE_SALES, "o2@example.org")
    await books.service.add_credit("std", 2 * 2500 + 3000, "x", at("2026-01-31"))
    first = await books.service.subscribe("out", Plan.MONTH, at("2026-01-31"), auto_renew=True)
    second = await books.service.subscribe("out2", Plan.MONTH, at("2026-01-31"), auto_renew=True)
    report = await books.service.tick(at("2026-02-25"))
    assert report.short_notices == [second.id]
    async with books.conn.execute(
        "SELECT body FROM billing_notices WHERE user_id = 'out2' ORDER BY id DESC LIMIT 1"
    ) as cur:
        row = await cur.fetchone()
    assert row is not None
    assert "needs 25.00 EUR after 25.00 EUR for renewals due before it" in row[0]
    end = await books.service.tick(at("2026-02-28"))
    assert (len(end.renewed), end.not_renewed) == (1, [second.id])
    assert first.id in end.ended


async def test_r_sub_4_no_warning_when_a_booked_term_takes_over(books: Books) -> None:
    await books.service.add_credit("std", 2500 + 2500, "x", at("2026-01-31"))
    await books.service.subscribe("out", Plan.MONTH, at("2026-01-31"), auto_renew=True)
    await books.service.subscribe("out", Plan.MONTH, at("2026-01-31"), starts_on=date(2026, 2, 28))
    assert await books.credit("std") == 0
    assert (await books.service.tick(at("2026-02-25"))).short_notices == []


async def test_r_sub_4_future_subscription_becomes_current_on_its_start_and_can_be_deleted(
    books: Books,
) -> None:
    await books.service.add_credit("std", 10000, "x", at("2026-01-10"))
    current = await books.service.subscribe("out", Plan.MONTH, at("2026-01-10"))
    future = await books.service.subscribe(
        "out", Plan.QUARTER, at("2026-01-10"), starts_on=date(2026, 2, 10)
    )
    assert await books.credit("std") == 10000 - 2500 - 6750
    with pytest.raises(BillingRefused, match="current"):
        await books.service.unsubscribe(current.id, at("2026-01-20"))
    assert await books.service.unsubscribe(future.id, at("2026-01-20")) == 6750
    again = await books.service.subscribe(
        "out", Plan.MONTH, at("2026-01-20"), starts_on=date(2026, 2, 10)
    )
    last_day = await books.gate.may_log_in("out", at("2026-02-09T23:00"))
    assert last_day.subscription_id == current.id
    await books.service.tick(at("2026-02-10"))
    on_start = await books.gate.may_log_in("out", at("2026-02-10"))
    assert (on_start.allowed, on_start.subscription_id) == (True, again.id)
    with pytest.raises(BillingRefused, match="current"):
        await books.service.unsubscribe(again.id, at("2026-02-10"))


async def test_r_sub_4_login_before_a_future_start_is_refused_with_the_date(books: Books) -> None:
    await books.service.add_credit("std", 10000, "x", at("2026-01-10"))
    await books.service.subscribe("out", Plan.MONTH, at("2026-01-10"), starts_on=date(2026, 2, 1))
    login = await books.gate.may_log_in("out", at("2026-01-31"))
    assert not login.allowed
    assert "starts on 2026-02-01" in login.message


async def test_r_sub_4_a_booked_future_term_takes_over_from_auto_renew(books: Books) -> None:
    await books.service.add_credit("std", 100000, "x", at("2026-01-01"))
    first = await books.service.subscribe("out", Plan.MONTH, at("2026-01-01"), auto_renew=True)
    booked = await books.service.subscribe(
        "out", Plan.YEAR, at("2026-01-01"), starts_on=date(2026, 2, 1)
    )
    report = await books.service.tick(at("2026-02-01"))
    assert (report.not_renewed, report.renewed) == ([first.id], [])
    login = await books.gate.may_log_in("out", at("2026-02-01"))
    assert login.subscription_id == booked.id


async def test_r_sub_4_recording_cancelled_mid_term_refunds_pro_rata(tmp_path: Path) -> None:
    config = config_from_mapping({"recording_per_month": "31.00"})
    made = await make_books(tmp_path / "r.db", config)
    try:
        await made.service.add_credit("cc", 10000, "x", at("2026-01-01"))
        sub = await made.service.subscribe("tm", Plan.MONTH, at("2026-01-01"), recording=True)
        assert sub.balance_cents == 5500 + 3100
        assert (await made.gate.may_record("tm", at("2026-01-10"))).allowed
        refund = await made.service.cancel_recording(sub.id, at("2026-01-15"))
        assert refund == 1600  # 16 of 31 days unused, 1.00 a day
        assert await made.credit() == 10000 - 8600 + 1600
        record = await made.gate.may_record("tm", at("2026-01-16"))
        assert not record.allowed
        with pytest.raises(BillingRefused, match="no recording"):
            await made.service.cancel_recording(sub.id, at("2026-01-16"))
        await made.service.tick(at("2026-02-01"))
        await made.assert_balanced()
    finally:
        await made.conn.close()


async def test_r_sub_4_a_subscription_cannot_be_transferred(books: Books) -> None:
    await books.service.add_credit("std", 10000, "x", at("2026-01-01"))
    await books.service.subscribe("out", Plan.MONTH, at("2026-01-01"))
    with pytest.raises(BillingRefused, match="cannot be transferred"):
        await books.service.put_user("out", "cc", UserType.OUTSIDE_SALES, None)
    await books.service.put_user("out", "std", UserType.OUTSIDE_SALES, "new@example.org")


async def test_r_sub_4_attempts_are_free_under_a_period_subscription(books: Books) -> None:
    await books.service.add_credit("cc", 5500, "x", at("2026-01-01"))
    await books.service.subscribe("tm", Plan.MONTH, at("2026-01-01"))
    charge = await books.gate.charge_attempt("tm", at("2026-01-02"))
    assert (charge.charged, charge.cost_cents, charge.attempts_left) == (True, 0, None)


# ------------------------------------------------------------------ R-SUB-5


async def test_r_sub_5_assignment_queues_an_email_notice(books: Books) -> None:
    await books.service.add_credit("cc", 5500, "x", at("2026-01-01"))
    await books.service.subscribe("tm", Plan.MONTH, at("2026-01-01"))
    assert await books.notices() == [
        ("tm", "tm@example.org", "Your dialer subscription was assigned")
    ]


async def test_r_sub_5_user_without_subscription_gets_a_clear_message(books: Books) -> None:
    for user in ("tm", "nobody"):
        login = await books.gate.may_log_in(user, at("2026-01-01"))
        assert not login.allowed
        assert "no subscription" in login.message
        assert not (await books.gate.charge_attempt(user, at("2026-01-01"))).charged


async def test_gate_converts_aware_times_to_local_days(books: Books) -> None:
    """The floor may pass an aware datetime; billing works in naive local time."""
    await books.service.add_credit("cc", 1000, "x", at("2026-01-01"))
    await books.service.subscribe("tm", Plan.ATTEMPT, at("2026-01-01"), amount_cents=70)
    aware = datetime(2026, 1, 2, 12, tzinfo=UTC)
    assert (await books.gate.charge_attempt("tm", aware)).charged
    [entry] = [e for e in await books.service.store.ledger(user_id="tm") if e.kind == "attempt"]
    assert entry.at == aware.astimezone().replace(tzinfo=None).isoformat()
