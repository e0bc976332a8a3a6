"""The billing rules of R-SUB-1..5 as pure functions: no I/O, time is always an argument.

Everything here works in integer cents. The store and the service only move money and
persist; every number they move is computed by a function in this module, so the rules can
be tested table-driven with any clock.
"""

from __future__ import annotations

import calendar
import enum
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation


class BillingError(Exception):
    """Base of billing failures; `str()` is a message fit for an administrator."""


class BillingInputError(BillingError):
    """The request itself is wrong (unknown user, malformed amount): a usage error."""


class BillingRefused(BillingError):
    """The request is well formed but the rules forbid it (credit short, current term)."""


class UserType(enum.StrEnum):
    """R-SUB-2: the three kinds of user the documents price."""

    TELEMARKETER = "telemarketer"
    OUTSIDE_SALES = "outside_sales"
    INSIDE_SALES = "inside_sales"


class AccountKind(enum.StrEnum):
    """R-SUB-3 restricts per-attempt subscriptions to call-centre accounts."""

    CALL_CENTRE = "call_centre"
    STANDARD = "standard"


class Plan(enum.StrEnum):
    """A subscription's charging model: per attempt, or a term of 1, 3 or 12 months."""

    ATTEMPT = "attempt"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"

    @property
    def months(self) -> int:
        """Length of the term in months (0 for per-attempt, which has no term)."""
        return _TERM_MONTHS[self]


_TERM_MONTHS = {Plan.ATTEMPT: 0, Plan.MONTH: 1, Plan.QUARTER: 3, Plan.YEAR: 12}


class Status(enum.StrEnum):
    """Stored lifecycle. Whether an active subscription is future, current or past is
    derived from its dates and the day asked about, never stored."""

    ACTIVE = "active"
    ENDED = "ended"
    REMOVED = "removed"


# ---------------------------------------------------------------------------- money


def parse_money(value: object) -> int:
    """Euros as written by a person or YAML ("10", "0.07", 55.5) -> cents.

    Goes through Decimal of the *text* so 0.07 is 7 cents, not 7.000000000000001; refuses
    negative amounts and fractions of a cent rather than rounding someone's money.
    """
    if isinstance(value, bool):
        raise BillingInputError(f"not an amount: {value!r}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise BillingInputError(f"not an amount: {value!r} (write euros like 10.00)") from None
    if not amount.is_finite():
        raise BillingInputError(f"not an amount: {value!r}")
    if amount < 0:
        raise BillingInputError(f"amount must not be negative: {value!r}")
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise BillingInputError(f"amount has fractions of a cent: {value!r}")
    return int(cents)


def format_money(cents: int) -> str:
    """Cents -> "1234.56" (sign kept), the one way amounts are shown."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole}.{part:02d}"


# ---------------------------------------------------------------------------- prices


@dataclass(frozen=True)
class Prices:
    """Prices of one user type in cents. `quarter` and `year` are *monthly* prices on that
    term (R-SUB-2: the documents' middle columns read as price per month)."""

    per_attempt: int | None
    month: int
    quarter: int
    year: int

    def monthly(self, plan: Plan) -> int:
        """Price per month on a period plan."""
        if plan is Plan.MONTH:
            return self.month
        if plan is Plan.QUARTER:
            return self.quarter
        if plan is Plan.YEAR:
            return self.year
        raise BillingInputError("a per-attempt plan has no monthly price")


def term_price(prices: Prices, plan: Plan) -> int:
    """What a whole term costs up front: months x monthly price (quarter 3 x 49.50)."""
    return plan.months * prices.monthly(plan)


def recording_price(per_month: int, plan: Plan) -> int:
    """The optional recording for a whole term, priced per month like the plan."""
    return plan.months * per_month


# ---------------------------------------------------------------------------- dates


def add_months(day: date, months: int, anchor_day: int | None = None) -> date:
    """`day` moved by whole months, clamped to the month's last day.

    `anchor_day` is the day of month the subscription was first started on: Jan 31 + 1
    month is Feb 28 (29 in a leap year), and renewing from there lands on Mar 31 again
    instead of drifting to Mar 28.
    """
    anchor = anchor_day if anchor_day is not None else day.day
    years, month0 = divmod(day.month - 1 + months, 12)
    year = day.year + years
    month = month0 + 1
    return date(year, month, min(anchor, calendar.monthrange(year, month)[1]))


def term_end(start: date, plan: Plan, anchor_day: int | None = None) -> date:
    """The end date of a period term: the first day it no longer covers (exclusive).

    The renewal starts on exactly that day, so consecutive terms neither overlap nor leave
    a gap. A month from Jan 15 covers Jan 15 .. Feb 14 and ends on Feb 15.
    """
    if plan is Plan.ATTEMPT:
        raise BillingInputError("a per-attempt subscription has no end date")
    return add_months(start, plan.months, anchor_day)


def recording_refund(recording_cents: int, start: date, end: date, cancel_on: date) -> int:
    """R-SUB-4 pro-rata refund when recording is cancelled mid-term.

    Rule (ours; the documents only say "the rest refunded"): the term's days are
    [start, end); the cancellation day counts as used; the unused days' share of the
    recording price is refunded, rounded down to the cent. Cancelling before the start
    refunds all of it; on or after the end nothing.
    """
    term_days = (end - start).days
    if term_days <= 0:
        raise BillingInputError(f"empty term {start} .. {end}")
    used = min(term_days, max(0, (cancel_on - start).days + 1))
    return recording_cents * (term_days - used) // term_days


def renewal_notice_due(end: date, today: date, notice_days: int) -> bool:
    """R-SUB-4: is `today` within the `notice_days` before the end date?

    From end - notice_days up to the day before the end, so a daemon that missed the exact
    day still warns late rather than never.
    """
    return end - timedelta(days=notice_days) <= today < end


# ---------------------------------------------------------------------------- per attempt


@dataclass(frozen=True)
class Allocation:
    """What allocating an amount to a per-attempt subscription really takes."""

    attempts: int
    cents: int  # attempts x price: the part of the requested amount actually taken


def allocate_attempts(amount_cents: int, price_cents: int) -> Allocation:
    """R-SUB-3: an allocated amount buys whole attempts; the remainder stays as credit.

    The documents' example (10.00 -> 200 attempts) contradicts their own price of 0.07
    (10.00 / 0.07 = 142.86); 200 attempts for 10.00 is a price of 0.05. We keep the price
    table authoritative: attempts = floor(amount / price), so 10.00 at 0.07 buys 142
    attempts for 9.94 and 0.06 is never taken from the credit. At a configured price of
    0.05 the same rule gives the documents' 200.
    """
    if price_cents <= 0:
        raise BillingInputError("the per-attempt price must be positive")
    attempts = amount_cents // price_cents
    if attempts == 0:
        raise BillingInputError(
            f"{format_money(amount_cents)} buys no attempt at {format_money(price_cents)}"
        )
    return Allocation(attempts=attempts, cents=attempts * price_cents)


# ---------------------------------------------------------------------------- subscriptions


@dataclass(frozen=True)
class Subscription:
    """One subscription as stored. Money fields are cents."""

    id: int
    user_id: str
    account_id: str
    plan: Plan
    user_type: UserType
    starts_on: date
    ends_on: date | None
    anchor_day: int
    attempt_price_cents: int
    allocation_cents: int
    term_cents: int
    recording: bool
    recording_cents: int
    auto_renew: bool
    balance_cents: int
    status: Status
    renewed_from: int | None
    notice_sent_on: date | None

    def is_current(self, today: date) -> bool:
        """Covers `today`: active, started, and (for a term) not yet at its end date."""
        if self.status is not Status.ACTIVE or self.starts_on > today:
            return False
        return self.ends_on is None or today < self.ends_on

    def is_future(self, today: date) -> bool:
        """Active and starting after `today` (R-SUB-4: may still be deleted)."""
        return self.status is Status.ACTIVE and self.starts_on > today

    @property
    def attempts_left(self) -> int:
        """Remaining attempts of a per-attempt subscription."""
        if self.plan is not Plan.ATTEMPT or self.attempt_price_cents == 0:
            return 0
        return self.balance_cents // self.attempt_price_cents


def overlaps(a_start: date, a_end: date | None, b_start: date, b_end: date | None) -> bool:
    """Do two half-open date ranges intersect (None = open-ended)?"""
    a_before_b_ends = b_end is None or a_start < b_end
    b_before_a_ends = a_end is None or b_start < a_end
    return a_before_b_ends and b_before_a_ends


def check_can_subscribe(
    *,
    plan: Plan,
    user_type: UserType,
    account_kind: AccountKind,
    prices: Prices,
    starts_on: date,
    ends_on: date | None,
    recording: bool,
    today: date,
    existing: list[Subscription],
) -> None:
    """Raise unless a new subscription with these terms may be assigned (R-SUB-3, -4).

    A user holds at most one subscription on any day: terms may follow each other but not
    overlap, and an open-ended per-attempt subscription blocks every later one until it is
    removed.
    """
    if plan is Plan.ATTEMPT:
        if user_type is not UserType.TELEMARKETER or prices.per_attempt is None:
            raise BillingRefused("per-attempt subscriptions are for telemarketers only (R-SUB-3)")
        if account_kind is not AccountKind.CALL_CENTRE:
            raise BillingRefused("per-attempt subscriptions need a call-centre account (R-SUB-3)")
        if recording:
            raise BillingRefused("per-attempt subscriptions cannot record calls (R-SUB-3)")
    if starts_on < today:
        raise BillingInputError(f"start date {starts_on} is in the past (today is {today})")
    for sub in existing:
        if sub.status is not Status.ACTIVE:
            continue
        if overlaps(starts_on, ends_on, sub.starts_on, sub.ends_on):
            until = f"until {sub.ends_on}" if sub.ends_on else "until removed"
            raise BillingRefused(
                f"overlaps subscription #{sub.id} ({sub.plan} from {sub.starts_on} {until})"
            )


def check_can_delete(sub: Subscription, today: date) -> None:
    """R-SUB-4: a current period subscription can be neither deleted nor transferred.

    Future period subscriptions may be deleted; per-attempt ones may be removed any time
    (R-SUB-3, the rest is refunded).
    """
    if sub.status is not Status.ACTIVE:
        raise BillingRefused(f"subscription #{sub.id} is already {sub.status}")
    if sub.plan is not Plan.ATTEMPT and not sub.is_future(today):
        raise BillingRefused(
            f"subscription #{sub.id} is current (until {sub.ends_on}) and cannot be deleted"
            " (R-SUB-4)"
        )


# ---------------------------------------------------------------------------- gates


@dataclass(frozen=True)
class Decision:
    """A yes/no with the message a person is shown (R-SUB-5: a clear message at login)."""

    allowed: bool
    message: str
    subscription_id: int | None = None


def login_decision(
    user_known: bool, subs: list[Subscription], today: date, renewable: bool
) -> Decision:
    """R-SUB-5: may this user log in to take calls on `today`?

    `renewable` says whether an exhausted per-attempt subscription would be renewed by
    its next attempt (auto-renew on and enough credit); such a user may log in.
    """
    if not user_known:
        return Decision(
            False,
            "You have no subscription, so you cannot take calls. "
            "Ask your administrator to assign one.",
        )
    current = next((s for s in subs if s.is_current(today)), None)
    if current is None:
        upcoming = sorted(s.starts_on for s in subs if s.is_future(today))
        if upcoming:
            return Decision(
                False,
                f"Your subscription starts on {upcoming[0]}; you cannot take calls before then.",
            )
        return Decision(
            False,
            "You have no subscription, so you cannot take calls. "
            "Ask your administrator to assign one.",
        )
    if current.plan is Plan.ATTEMPT:
        if current.attempts_left > 0:
            return Decision(
                True,
                f"Per-attempt subscription: {current.attempts_left} attempts left.",
                current.id,
            )
        if renewable:
            return Decision(
                True, "Per-attempt subscription: renews on the next attempt.", current.id
            )
        return Decision(
            False,
            "Your per-attempt credit is used up and the account's credit "
            "cannot renew it. Ask your administrator to add credit.",
            current.id,
        )
    return Decision(
        True, f"{current.plan.capitalize()} subscription until {current.ends_on}.", current.id
    )


def recording_decision(subs: list[Subscription], today: date) -> Decision:
    """R-SUB-3/-4: a call may be recorded only under a current period subscription that
    has the recording option (never under per-attempt)."""
    current = next((s for s in subs if s.is_current(today)), None)
    if current is None:
        return Decision(False, "no current subscription")
    if current.plan is Plan.ATTEMPT:
        return Decision(False, "per-attempt subscriptions are never recorded", current.id)
    if not current.recording:
        return Decision(False, "recording is not part of this subscription", current.id)
    return Decision(True, "recording included", current.id)


def parse_period(text: str) -> tuple[date, date]:
    """A statement period -> [since, until) days.

    "2026" (a year), "2026-11" (a month), "2026-11-05" (a day) or "FROM..TO" with both
    days included ("2026-11-01..2026-11-15").
    """
    text = text.strip()
    try:
        if ".." in text:
            first, _, last = text.partition("..")
            since, until = date.fromisoformat(first.strip()), date.fromisoformat(last.strip())
            if until < since:
                raise BillingInputError(f"period {text!r} ends before it starts")
            return since, until + timedelta(days=1)
        parts = text.split("-")
        if len(parts) == 1:
            since = date(int(parts[0]), 1, 1)
            return since, add_months(since, 12)
        if len(parts) == 2:
            since = date(int(parts[0]), int(parts[1]), 1)
            return since, add_months(since, 1)
        day = date.fromisoformat(text)
        return day, day + timedelta(days=1)
    except ValueError:
        raise BillingInputError(
            f"not a period: {text!r} (use 2026, 2026-11, 2026-11-05 or 2026-11-01..2026-11-15)"
        ) from None
