"""Table-driven tests of the pure billing rules (R-SUB-1..5) with the day passed in."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from dialerd.billing.config import BillingConfig, config_from_mapping, load_config
from dialerd.billing.rules import (
    AccountKind,
    BillingInputError,
    BillingRefused,
    Plan,
    Prices,
    Status,
    Subscription,
    UserType,
    add_months,
    allocate_attempts,
    check_can_delete,
    check_can_subscribe,
    format_money,
    login_decision,
    parse_money,
    parse_period,
    recording_decision,
    recording_refund,
    renewal_notice_due,
    term_end,
    term_price,
)

pytestmark = pytest.mark.unit

D = date.fromisoformat


# ---------------------------------------------------------------- money (R-SUB-1)


@pytest.mark.parametrize(
    ("text", "cents"),
    [("0.07", 7), ("10", 1000), ("10.00", 1000), ("55.5", 5550), (0.07, 7), (49.5, 4950),
     ("0", 0), (" 1.10 ", 110), (12, 1200)],
)  # fmt: skip
def test_r_sub_1_money_parses_to_exact_cents(text: object, cents: int) -> None:
    assert parse_money(text) == cents


@pytest.mark.parametrize("text", ["1.001", "-1", "abc", "", "nan", "inf", True, "1e-3"])
def test_r_sub_1_money_refuses_what_is_not_whole_cents(text: object) -> None:
    with pytest.raises(BillingInputError):
        parse_money(text)


@pytest.mark.parametrize(("cents", "text"), [(0, "0.00"), (7, "0.07"), (5500, "55.00"),
                                             (-994, "-9.94"), (123456, "1234.56")])  # fmt: skip
def test_money_formats_with_two_decimals(cents: int, text: str) -> None:
    assert format_money(cents) == text


# ---------------------------------------------------------------- prices (R-SUB-2)


@pytest.mark.parametrize(
    ("user_type", "per_attempt", "month", "quarter", "year"),
    [
        (UserType.TELEMARKETER, 7, 5500, 4950, 4400),
        (UserType.OUTSIDE_SALES, None, 2500, 2250, 2000),
        (UserType.INSIDE_SALES, None, 5500, 4950, 4400),
    ],
)
def test_r_sub_2_default_prices_are_the_documents_table(
    user_type: UserType, per_attempt: int | None, month: int, quarter: int, year: int
) -> None:
    assert BillingConfig().prices_for(user_type) == Prices(per_attempt, month, quarter, year)


@pytest.mark.parametrize(
    ("user_type", "plan", "cents"),
    [
        (UserType.TELEMARKETER, Plan.MONTH, 5500),
        (UserType.TELEMARKETER, Plan.QUARTER, 3 * 4950),
        (UserType.TELEMARKETER, Plan.YEAR, 12 * 4400),
        (UserType.OUTSIDE_SALES, Plan.MONTH, 2500),
        (UserType.OUTSIDE_SALES, Plan.QUARTER, 6750),
        (UserType.OUTSIDE_SALES, Plan.YEAR, 24000),
        (UserType.INSIDE_SALES, Plan.YEAR, 52800),
    ],
)
def test_r_sub_2_term_price_is_months_times_monthly_price(
    user_type: UserType, plan: Plan, cents: int
) -> None:
    assert term_price(BillingConfig().prices_for(user_type), plan) == cents


def test_r_sub_2_config_overrides_only_the_keys_given(tmp_path: Path) -> None:
    path = tmp_path / "dialerd.yaml"
    path.write_text(
        "billing:\n  prices:\n    telemarketer: {per_attempt: '0.05'}\n"
        "  recording_per_month: 5.00\n  renewal_notice_days: 5\n"
    )
    config = load_config(path)
    assert config.prices_for(UserType.TELEMARKETER) == Prices(5, 5500, 4950, 4400)
    assert config.recording_per_month == 500
    assert config.renewal_notice_days == 5
    assert config.prices_for(UserType.OUTSIDE_SALES).month == 2500


@pytest.mark.parametrize(
    ("yaml_text", "fragment"),
    [
        ("billing:\n  prices:\n    telemarketer: {month: '1.234'}\n", "fractions of a cent"),
        ("billing:\n  prices:\n    manager: {month: 1}\n", "manager"),
        ("billing:\n  colour: red\n", "colour"),
        ("billing:\n  prices: [1\n  x: 2\n", ":3: not valid YAML"),
        ("billing:\n  prices: 3\n", "must be a mapping"),
    ],
)
def test_bad_billing_config_names_the_key(tmp_path: Path, yaml_text: str, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(BillingInputError, match=r"bad\.yaml") as info:
        load_config(path)
    assert fragment in str(info.value)


def test_config_from_mapping_without_section_is_the_defaults() -> None:
    assert config_from_mapping(None) == BillingConfig()


# ---------------------------------------------------------------- dates (R-SUB-4)


@pytest.mark.parametrize(
    ("start", "plan", "end"),
    [
        ("2026-01-15", Plan.MONTH, "2026-02-15"),
        ("2026-01-31", Plan.MONTH, "2026-02-28"),  # month end clamps
        ("2028-01-31", Plan.MONTH, "2028-02-29"),  # leap year
        ("2100-01-31", Plan.MONTH, "2100-02-28"),  # century: not a leap year
        ("2000-01-31", Plan.MONTH, "2000-02-29"),  # 400-year rule: leap
        ("2026-03-31", Plan.MONTH, "2026-04-30"),
        ("2026-12-15", Plan.MONTH, "2027-01-15"),  # over the year end
        ("2026-11-30", Plan.QUARTER, "2027-02-28"),
        ("2027-11-30", Plan.QUARTER, "2028-02-29"),
        ("2026-01-01", Plan.QUARTER, "2026-04-01"),
        ("2028-02-29", Plan.YEAR, "2029-02-28"),  # leap day + a year
        ("2026-07-01", Plan.YEAR, "2027-07-01"),
    ],
)
def test_r_sub_4_end_date_is_derived_from_start(start: str, plan: Plan, end: str) -> None:
    assert term_end(D(start), plan) == D(end)


def test_r_sub_4_renewals_keep_the_first_start_day_no_drift() -> None:
    """Jan 31 -> Feb 28 -> Mar 31 -> Apr 30: the anchor day survives a short month."""
    ends, start = [], D("2026-01-31")
    for _ in range(4):
        start = term_end(start, Plan.MONTH, anchor_day=31)
        ends.append(start)
    assert ends == [D("2026-02-28"), D("2026-03-31"), D("2026-04-30"), D("2026-05-31")]


def test_add_months_backwards_and_zero() -> None:
    assert add_months(D("2026-03-31"), -1) == D("2026-02-28")
    assert add_months(D("2026-03-31"), 0) == D("2026-03-31")


def test_per_attempt_has_no_end() -> None:
    with pytest.raises(BillingInputError):
        term_end(D("2026-01-01"), Plan.ATTEMPT)


@pytest.mark.parametrize(
    ("cancel_on", "refund"),
    [
        ("2025-12-20", 3100),  # before the start: all of it
        ("2026-01-01", 3000),  # first day used: 30 of 31 days back
        ("2026-01-15", 1600),  # 15 days used
        ("2026-01-30", 100),
        ("2026-01-31", 0),  # last day
        ("2026-02-01", 0),  # after the end
    ],
)
def test_r_sub_4_recording_cancel_refunds_unused_days_pro_rata(cancel_on: str, refund: int) -> None:
    """31-day January term, recording 31.00: 1.00 per day, cancellation day counts used."""
    assert recording_refund(3100, D("2026-01-01"), D("2026-02-01"), D(cancel_on)) == refund


def test_r_sub_4_recording_refund_rounds_down_to_the_cent() -> None:
    # 10.00 over 28 days, 27 unused: 964.28... -> 964 cents.
    assert recording_refund(1000, D("2026-02-01"), D("2026-03-01"), D("2026-02-01")) == 964


@pytest.mark.parametrize(
    ("today", "due"),
    [("2026-02-24", False), ("2026-02-25", True), ("2026-02-27", True), ("2026-02-28", False)],
)
def test_r_sub_4_short_credit_notice_window_is_three_days_before_the_end(
    today: str, due: bool
) -> None:
    assert renewal_notice_due(D("2026-02-28"), D(today), 3) is due


# ---------------------------------------------------------------- per attempt (R-SUB-3)


def test_r_sub_3_documents_example_10_euros_is_200_attempts_only_at_5_cents() -> None:
    """The documents say 10.00 -> 200 attempts, which is 0.05 an attempt."""
    assert allocate_attempts(1000, 5).attempts == 200
    assert allocate_attempts(1000, 5).cents == 1000


def test_r_sub_3_at_the_documents_price_10_euros_buys_142_attempts_for_9_94() -> None:
    """Our rule with the documents' own 0.07: floor(1000/7) = 142; 0.06 stays credit."""
    allocation = allocate_attempts(1000, 7)
    assert (allocation.attempts, allocation.cents) == (142, 994)


@pytest.mark.parametrize(("amount", "price"), [(6, 7), (0, 7), (100, 0)])
def test_r_sub_3_amount_that_buys_no_attempt_is_refused(amount: int, price: int) -> None:
    with pytest.raises(BillingInputError):
        allocate_attempts(amount, price)


# ---------------------------------------------------------------- assigning, deleting


def sub(
    plan: Plan = Plan.MONTH,
    start: str = "2026-01-01",
    *,
    sub_id: int = 1,
    status: Status = Status.ACTIVE,
    balance: int = 0,
    recording: bool = False,
    price: int = 7,
) -> Subscription:
    end = None if plan is Plan.ATTEMPT else term_end(D(start), plan)
    return Subscription(
        id=sub_id, user_id="u", account_id="a", plan=plan, user_type=UserType.TELEMARKETER,
        starts_on=D(start), ends_on=end, anchor_day=D(start).day,
        attempt_price_cents=price if plan is Plan.ATTEMPT else 0, allocation_cents=994,
        term_cents=0, recording=recording, recording_cents=0, auto_renew=False,
        balance_cents=balance, status=status, renewed_from=None, notice_sent_on=None,
    )  # fmt: skip


TM = BillingConfig().prices_for(UserType.TELEMARKETER)
OUT = BillingConfig().prices_for(UserType.OUTSIDE_SALES)


def can_subscribe(
    plan: Plan,
    start: str,
    *,
    user_type: UserType = UserType.TELEMARKETER,
    kind: AccountKind = AccountKind.CALL_CENTRE,
    recording: bool = False,
    today: str = "2026-01-01",
    existing: tuple[Subscription, ...] = (),
) -> None:
    prices = TM if user_type is UserType.TELEMARKETER else OUT
    end = None if plan is Plan.ATTEMPT else term_end(D(start), plan)
    check_can_subscribe(
        plan=plan, user_type=user_type, account_kind=kind, prices=prices,
        starts_on=D(start), ends_on=end, recording=recording, today=D(today),
        existing=list(existing),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"user_type": UserType.OUTSIDE_SALES}, BillingRefused, "telemarketers only"),
        ({"kind": AccountKind.STANDARD}, BillingRefused, "call-centre"),
        ({"recording": True}, BillingRefused, "cannot record"),
    ],
)
def test_r_sub_3_per_attempt_only_for_telemarketers_in_call_centres_never_recorded(
    kwargs: dict[str, object], error: type[Exception], fragment: str
) -> None:
    can_subscribe(Plan.ATTEMPT, "2026-01-01")  # the allowed case
    with pytest.raises(error, match=fragment):
        can_subscribe(Plan.ATTEMPT, "2026-01-01", **kwargs)  # type: ignore[arg-type]


def test_r_sub_4_period_subscriptions_for_every_type_and_account_kind() -> None:
    for user_type in UserType:
        for kind in AccountKind:
            can_subscribe(Plan.MONTH, "2026-01-01", user_type=user_type, kind=kind,
                          recording=True)  # fmt: skip


@pytest.mark.parametrize(
    ("existing", "plan", "start", "ok"),
    [
        ((sub(Plan.MONTH, "2026-01-01"),), Plan.MONTH, "2026-02-01", True),  # follows on
        ((sub(Plan.MONTH, "2026-01-01"),), Plan.MONTH, "2026-01-31", False),  # overlaps
        ((sub(Plan.MONTH, "2026-02-01"),), Plan.MONTH, "2026-01-01", True),  # just before
        ((sub(Plan.MONTH, "2026-02-01"),), Plan.QUARTER, "2026-01-01", False),
        ((sub(Plan.ATTEMPT, "2026-01-01"),), Plan.MONTH, "2026-06-01", False),  # open-ended
        ((sub(Plan.MONTH, "2026-03-01"),), Plan.ATTEMPT, "2026-01-01", False),
        ((sub(Plan.MONTH, "2026-01-01", status=Status.REMOVED),), Plan.MONTH, "2026-01-01",
         True),
        ((sub(Plan.ATTEMPT, "2026-01-01", status=Status.REMOVED),), Plan.ATTEMPT,
         "2026-01-01", True),
    ],
)  # fmt: skip
def test_r_sub_4_one_subscription_per_day_future_ones_may_follow(
    existing: tuple[Subscription, ...], plan: Plan, start: str, ok: bool
) -> None:
    if ok:
        can_subscribe(plan, start, existing=existing)
    else:
        with pytest.raises(BillingRefused, match="overlaps"):
            can_subscribe(plan, start, existing=existing)


def test_start_date_in_the_past_is_refused() -> None:
    with pytest.raises(BillingInputError, match="past"):
        can_subscribe(Plan.MONTH, "2025-12-31", today="2026-01-01")


@pytest.mark.parametrize(
    ("subscription", "today", "ok"),
    [
        (sub(Plan.MONTH, "2026-02-01"), "2026-01-31", True),  # future: deletable
        (sub(Plan.MONTH, "2026-02-01"), "2026-02-01", False),  # current on its start day
        (sub(Plan.MONTH, "2026-01-01"), "2026-01-31", False),  # current: never
        (sub(Plan.ATTEMPT, "2026-01-01"), "2026-06-01", True),  # per-attempt: any time
        (sub(Plan.MONTH, "2026-02-01", status=Status.REMOVED), "2026-01-01", False),
    ],
)
def test_r_sub_4_current_period_subscription_cannot_be_deleted(
    subscription: Subscription, today: str, ok: bool
) -> None:
    if ok:
        check_can_delete(subscription, D(today))
    else:
        with pytest.raises(BillingRefused):
            check_can_delete(subscription, D(today))


# ---------------------------------------------------------------- gates (R-SUB-5)


@pytest.mark.parametrize(
    ("known", "subs", "today", "renewable", "allowed", "fragment"),
    [
        (False, [], "2026-01-10", False, False, "no subscription"),
        (True, [], "2026-01-10", False, False, "no subscription"),
        (True, [sub(Plan.MONTH, "2026-02-01")], "2026-01-31", False, False,
         "starts on 2026-02-01"),
        (True, [sub(Plan.MONTH, "2026-02-01")], "2026-02-01", False, True, "until 2026-03-01"),
        (True, [sub(Plan.MONTH, "2026-01-01")], "2026-02-01", False, False, "no subscription"),
        (True, [sub(Plan.MONTH, "2026-01-01", status=Status.ENDED)], "2026-01-05", False,
         False, "no subscription"),
        (True, [sub(Plan.ATTEMPT, balance=14)], "2026-01-05", False, True, "2 attempts left"),
        (True, [sub(Plan.ATTEMPT, balance=6)], "2026-01-05", False, False, "used up"),
        (True, [sub(Plan.ATTEMPT, balance=0)], "2026-01-05", True, True, "renews"),
    ],
)  # fmt: skip
def test_r_sub_5_login_gate_says_why_not(
    known: bool,
    subs: list[Subscription],
    today: str,
    renewable: bool,
    allowed: bool,
    fragment: str,
) -> None:
    decision = login_decision(known, subs, D(today), renewable)
    assert decision.allowed is allowed
    assert fragment in decision.message


@pytest.mark.parametrize(
    ("subs", "allowed", "fragment"),
    [
        ([], False, "no current"),
        ([sub(Plan.ATTEMPT, balance=70)], False, "never recorded"),
        ([sub(Plan.MONTH)], False, "not part"),
        ([sub(Plan.MONTH, recording=True)], True, "included"),
        ([sub(Plan.MONTH, "2026-02-01", recording=True)], False, "no current"),
    ],
)
def test_r_sub_3_4_recording_gate(subs: list[Subscription], allowed: bool, fragment: str) -> None:
    decision = recording_decision(subs, D("2026-01-10"))
    assert decision.allowed is allowed
    assert fragment in decision.message


# ---------------------------------------------------------------- statement periods


@pytest.mark.parametrize(
    ("text", "since", "until"),
    [
        ("2026", "2026-01-01", "2027-01-01"),
        ("2026-02", "2026-02-01", "2026-03-01"),
        ("2026-12", "2026-12-01", "2027-01-01"),
        ("2026-02-28", "2026-02-28", "2026-03-01"),
        ("2026-01-05..2026-01-07", "2026-01-05", "2026-01-08"),
    ],
)
def test_statement_period(text: str, since: str, until: str) -> None:
    assert parse_period(text) == (D(since), D(until))


@pytest.mark.parametrize("text", ["2026-13", "yesterday", "2026-01-07..2026-01-05", ""])
def test_statement_period_refuses_nonsense(text: str) -> None:
    with pytest.raises(BillingInputError):
        parse_period(text)
