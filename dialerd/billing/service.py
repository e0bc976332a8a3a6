"""Billing operations: the pure rules of `rules` applied to the store in transactions.

`BillingService` is what the CLI and the admin side use; `BillingGate` is the three-call
surface the floor daemon needs (login, charge an attempt, may record). Every method takes
the current time as an argument, so tests and back-office corrections control the clock.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from dialerd.billing.config import BillingConfig
from dialerd.billing.rules import (
    AccountKind,
    BillingInputError,
    BillingRefused,
    Decision,
    Plan,
    Status,
    Subscription,
    UserType,
    allocate_attempts,
    check_can_delete,
    check_can_subscribe,
    format_money,
    login_decision,
    overlaps,
    recording_decision,
    recording_price,
    recording_refund,
    renewal_notice_due,
    term_end,
    term_price,
)
from dialerd.mail import Mailer, MailError
from dialerd.store.billing import (
    Account,
    Balances,
    BillingStore,
    BillingUser,
    InsufficientFunds,
    LedgerEntry,
    NewSubscription,
    Pot,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttemptCharge:
    """The answer to "charge one attempt": whether the call may go out and what it cost."""

    charged: bool
    cost_cents: int
    message: str
    attempts_left: int | None = None  # None under a period subscription
    renewed: bool = False
    subscription_id: int | None = None


@dataclass
class TickReport:
    """What a daily run did."""

    ended: list[int] = field(default_factory=list)
    renewed: list[int] = field(default_factory=list)
    not_renewed: list[int] = field(default_factory=list)
    short_notices: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Statement:
    """A user's ledger entries over [since, until) with totals per kind."""

    user_id: str
    since: datetime
    until: datetime
    entries: list[LedgerEntry]
    totals: dict[str, int]
    attempts: int


def check_balances(balances: Balances, subs: list[Subscription]) -> list[str]:
    """The ledger invariants; an empty list means the books balance.

    Cached balances equal the ledger's sums, no pot is negative, ended or removed
    subscriptions hold nothing, per-attempt pots hold whole attempts, and every cent that
    came in is in a credit, a subscription or earned.
    """
    problems: list[str] = []
    for account, cached in sorted(balances.cached_credit.items(), key=str):
        derived = balances.derived_credit.get(account, 0)
        if cached != derived:
            problems.append(f"account {account}: credit {cached} but ledger says {derived}")
        if derived < 0:
            problems.append(f"account {account}: negative credit {derived}")
    by_id = {s.id: s for s in subs}
    for sub_id, cached in sorted(balances.cached_sub.items(), key=str):
        derived = balances.derived_sub.get(sub_id, 0)
        if cached != derived:
            problems.append(f"subscription #{sub_id}: balance {cached} but ledger says {derived}")
        sub = by_id.get(sub_id)
        if sub is None:
            continue
        if sub.status is not Status.ACTIVE and derived != 0:
            problems.append(f"subscription #{sub_id} is {sub.status} but holds {derived}")
        if (
            sub.plan is Plan.ATTEMPT
            and sub.attempt_price_cents
            and (derived % sub.attempt_price_cents)
        ):
            problems.append(f"subscription #{sub_id} holds a fraction of an attempt")
    unknown = set(balances.derived_credit) - set(balances.cached_credit)
    problems.extend(f"ledger names unknown account {a}" for a in sorted(unknown, key=str))
    inside = (
        sum(balances.derived_credit.values()) + sum(balances.derived_sub.values()) + balances.earned
    )
    if inside != balances.external:
        problems.append(f"{balances.external} cents came in but {inside} are accounted for")
    return problems


def _cost(new: NewSubscription) -> int:
    """What assigning `new` takes from the credit."""
    return new.allocation_cents + new.term_cents + new.recording_cents


class BillingService:
    """Accounts, credit and subscriptions (R-SUB-1..5) over one `BillingStore`."""

    def __init__(self, store: BillingStore, config: BillingConfig | None = None) -> None:
        self.store = store
        self.config = config or BillingConfig()

    # ------------------------------------------------------------------ set-up

    async def add_account(self, account_id: str, kind: AccountKind, now: datetime) -> None:
        if not account_id.strip():
            raise BillingInputError("an account id must not be empty")
        async with self.store.transaction():
            await self.store.add_account(account_id, kind, now)

    async def put_user(
        self, user_id: str, account_id: str, user_type: UserType, email: str | None
    ) -> None:
        """Tell billing which account pays for a user, their type and e-mail address.

        A current subscription cannot be transferred (R-SUB-4), so moving a user who has
        one to another account or type is refused.
        """
        if not user_id.strip():
            raise BillingInputError("a user id must not be empty")
        async with self.store.transaction():
            old = await self.store.get_user(user_id)
            if old is not None and (old.account_id, old.user_type) != (account_id, user_type):
                held = await self.store.subscriptions(user_id=user_id, active_only=True)
                if held:
                    raise BillingRefused(
                        f"user {user_id!r} holds subscription #{held[0].id}; subscriptions "
                        "cannot be transferred (R-SUB-4): remove or let it end first"
                    )
            await self.store.put_user(BillingUser(user_id, account_id, user_type, email))

    async def add_credit(
        self, account_id: str, amount_cents: int, reason: str, now: datetime
    ) -> int:
        """R-SUB-1: money in; returns the new credit."""
        async with self.store.transaction():
            await self.store.move(
                account_id=account_id, source=Pot.EXTERNAL, target=Pot.CREDIT,
                amount_cents=amount_cents, kind="topup", reason=reason, at=now,
            )  # fmt: skip
            return (await self._account(account_id)).credit_cents

    async def account(self, account_id: str) -> Account:
        return await self._account(account_id)

    async def _account(self, account_id: str) -> Account:
        account = await self.store.get_account(account_id)
        if account is None:
            raise BillingInputError(f"no account {account_id!r}")
        return account

    async def _user(self, user_id: str) -> BillingUser:
        user = await self.store.get_user(user_id)
        if user is None:
            raise BillingInputError(f"no billing user {user_id!r}")
        return user

    # ------------------------------------------------------------------ subscriptions

    async def subscribe(
        self,
        user_id: str,
        plan: Plan,
        now: datetime,
        *,
        starts_on: date | None = None,
        amount_cents: int | None = None,
        recording: bool = False,
        auto_renew: bool = False,
    ) -> Subscription:
        """Assign a subscription, paid from the account's credit (R-SUB-1, -3, -4, -5).

        Per-attempt needs `amount_cents` (what to allocate); a period plan is paid for the
        whole term up front. The user gets an e-mail notice.
        """
        today = now.date()
        start = starts_on or today
        async with self.store.transaction():
            user = await self._user(user_id)
            account = await self._account(user.account_id)
            prices = self.config.prices_for(user.user_type)
            if plan is Plan.ATTEMPT:
                if amount_cents is None:
                    raise BillingInputError("a per-attempt subscription needs an amount")
                end = None
            else:
                if amount_cents is not None:
                    raise BillingInputError("an amount is only for per-attempt subscriptions")
                end = term_end(start, plan)
            check_can_subscribe(
                plan=plan, user_type=user.user_type, account_kind=account.kind,
                prices=prices, starts_on=start, ends_on=end, recording=recording,
                today=today,
                existing=await self.store.subscriptions(user_id=user_id, active_only=True),
            )  # fmt: skip
            if plan is Plan.ATTEMPT:
                assert amount_cents is not None
                assert prices.per_attempt is not None
                allocation = allocate_attempts(amount_cents, prices.per_attempt)
                new = NewSubscription(
                    user_id, user.account_id, plan, user.user_type, start, None, start.day,
                    attempt_price_cents=prices.per_attempt,
                    allocation_cents=allocation.cents, auto_renew=auto_renew,
                )  # fmt: skip
            else:
                new = NewSubscription(
                    user_id, user.account_id, plan, user.user_type, start, end, start.day,
                    term_cents=term_price(prices, plan), recording=recording,
                    recording_cents=(
                        recording_price(self.config.recording_per_month, plan)
                        if recording else 0
                    ),
                    auto_renew=auto_renew,
                )  # fmt: skip
            return await self._create(new, user, now, "assign")

    async def _create(
        self, new: NewSubscription, user: BillingUser, now: datetime, kind: str
    ) -> Subscription:
        """Store `new`, pay for it from credit and queue the notice (inside a transaction)."""
        sub_id = await self.store.insert_subscription(new, now)
        cost = _cost(new)
        if cost:
            await self.store.move(
                account_id=new.account_id, source=Pot.CREDIT, target=Pot.SUB,
                amount_cents=cost, kind=kind, at=now, user_id=new.user_id,
                subscription_id=sub_id,
                reason=f"{new.plan} subscription #{sub_id} for {new.user_id}",
            )  # fmt: skip
        sub = await self.store.get_subscription(sub_id)
        assert sub is not None
        await self._notice_assigned(sub, user, now, kind)
        return sub

    async def _notice_assigned(
        self, sub: Subscription, user: BillingUser, now: datetime, kind: str
    ) -> None:
        if sub.plan is Plan.ATTEMPT:
            what = (
                f"a per-attempt subscription: {sub.attempts_left} attempts at "
                f"{format_money(sub.attempt_price_cents)} EUR"
                + (", renewed automatically when used up" if sub.auto_renew else "")
            )
        else:
            what = (
                f"a {sub.plan} subscription from {sub.starts_on} until {sub.ends_on} for "
                f"{format_money(sub.term_cents + sub.recording_cents)} EUR"
                + (" with call recording" if sub.recording else "")
                + (", renewed automatically" if sub.auto_renew else "")
            )
        verb = "renewed" if kind == "renew" else "assigned"
        await self.store.add_notice(
            user.user_id,
            user.email,
            f"Your dialer subscription was {verb}",
            f"Hello {user.user_id},\n\nYou have been {verb} {what}.\n"
            f"Subscription number: {sub.id}.\n",
            now,
        )

    async def unsubscribe(self, sub_id: int, now: datetime) -> int:
        """Remove a per-attempt or future subscription; returns the refund in cents.

        R-SUB-3: removing a per-attempt subscription refunds the rest to the credit.
        R-SUB-4: a future period subscription may be deleted (fully refunded), a current
        one may not.
        """
        async with self.store.transaction():
            sub = await self._subscription(sub_id)
            check_can_delete(sub, now.date())
            refund = sub.balance_cents
            if refund:
                await self.store.move(
                    account_id=sub.account_id, source=Pot.SUB, target=Pot.CREDIT,
                    amount_cents=refund, kind="refund", at=now, user_id=sub.user_id,
                    subscription_id=sub.id, reason=f"subscription #{sub.id} removed",
                )  # fmt: skip
            await self.store.set_status(sub.id, Status.REMOVED)
            return refund

    async def cancel_recording(self, sub_id: int, now: datetime) -> int:
        """R-SUB-4: stop recording mid-term; the unused days are refunded pro rata."""
        async with self.store.transaction():
            sub = await self._subscription(sub_id)
            if sub.status is not Status.ACTIVE or not sub.recording:
                raise BillingRefused(f"subscription #{sub_id} has no recording to cancel")
            assert sub.ends_on is not None
            refund = recording_refund(sub.recording_cents, sub.starts_on, sub.ends_on, now.date())
            if refund:
                await self.store.move(
                    account_id=sub.account_id, source=Pot.SUB, target=Pot.CREDIT,
                    amount_cents=refund, kind="recording_refund", at=now,
                    user_id=sub.user_id, subscription_id=sub.id,
                    reason=f"recording of #{sub.id} cancelled on {now.date()}",
                )  # fmt: skip
            await self.store.set_recording_off(sub.id)
            return refund

    async def _subscription(self, sub_id: int) -> Subscription:
        sub = await self.store.get_subscription(sub_id)
        if sub is None:
            raise BillingInputError(f"no subscription #{sub_id}")
        return sub

    async def subscriptions(
        self, *, user_id: str | None = None, account_id: str | None = None
    ) -> list[Subscription]:
        return await self.store.subscriptions(user_id=user_id, account_id=account_id)

    # ------------------------------------------------------------------ the floor's gates

    async def charge_attempt(self, user_id: str, now: datetime) -> AttemptCharge:
        """Charge one contact attempt before it is dialled (R-SUB-3).

        Under a period subscription attempts cost nothing extra. Under a per-attempt one
        the price moves from the subscription to earned; when the remaining attempts reach
        0 an auto-renewing subscription is topped up from the credit with its original
        amount. Refused, with nothing charged, when no attempt is left and none can be
        bought.
        """
        today = now.date()
        async with self.store.transaction():
            subs = await self.store.subscriptions(user_id=user_id, active_only=True)
            current = next((s for s in subs if s.is_current(today)), None)
            if current is None or current.plan is not Plan.ATTEMPT:
                if current is None:
                    decision = login_decision(
                        await self.store.get_user(user_id) is not None, subs, today, False
                    )
                    return AttemptCharge(False, 0, decision.message)
                return AttemptCharge(
                    True, 0, "covered by the period subscription", None, False, current.id
                )
            renewed = False
            if current.balance_cents < current.attempt_price_cents:
                renewed = await self._renew_attempts(current, now)
            price = current.attempt_price_cents
            try:
                await self.store.move(
                    account_id=current.account_id, source=Pot.SUB, target=Pot.EARNED,
                    amount_cents=price, kind="attempt", at=now, user_id=user_id,
                    subscription_id=current.id, reason=f"contact attempt by {user_id}",
                )  # fmt: skip
            except InsufficientFunds:
                return AttemptCharge(
                    False, 0, "per-attempt credit used up and not renewable", 0, False,
                    current.id,
                )  # fmt: skip
            after = await self._subscription(current.id)
            if after.balance_cents < price:
                renewed = await self._renew_attempts(after, now) or renewed
                after = await self._subscription(current.id)
            return AttemptCharge(True, price, "charged", after.attempts_left, renewed, current.id)

    async def _renew_attempts(self, sub: Subscription, now: datetime) -> bool:
        """R-SUB-3 auto-renew: add the same amount again if the credit allows."""
        if not sub.auto_renew:
            return False
        try:
            await self.store.move(
                account_id=sub.account_id, source=Pot.CREDIT, target=Pot.SUB,
                amount_cents=sub.allocation_cents, kind="renew", at=now,
                user_id=sub.user_id, subscription_id=sub.id,
                reason=f"per-attempt subscription #{sub.id} used up, renewed",
            )  # fmt: skip
        except InsufficientFunds:
            return False
        return True

    async def may_take_calls(self, user_id: str, now: datetime) -> Decision:
        """R-SUB-5: may this user log in to take calls now? The message says why not."""
        today = now.date()
        subs = await self.store.subscriptions(user_id=user_id, active_only=True)
        if any(s.ends_on is not None and s.ends_on <= today for s in subs):
            await self.tick(now)  # a term ended today: renew it before answering
            subs = await self.store.subscriptions(user_id=user_id, active_only=True)
        user = await self.store.get_user(user_id)
        renewable = False
        current = next((s for s in subs if s.is_current(today)), None)
        if current is not None and current.plan is Plan.ATTEMPT and current.auto_renew:
            account = await self.store.get_account(current.account_id)
            renewable = account is not None and account.credit_cents >= current.allocation_cents
        return login_decision(user is not None, subs, today, renewable)

    async def may_record(self, user_id: str, now: datetime) -> Decision:
        """R-SUB-3/-4: may this user's call be recorded now?"""
        subs = await self.store.subscriptions(user_id=user_id, active_only=True)
        return recording_decision(subs, now.date())

    # ------------------------------------------------------------------ daily run

    async def tick(self, now: datetime) -> TickReport:
        """End terms that reached their end date, renew the auto-renewing ones and warn,
        three days before, whoever's credit is too short to renew (R-SUB-4).

        Idempotent, and safe to run late: a renewal still starts on the old end date and
        a missed warning is sent as soon as the run happens within the notice window.
        """
        today = now.date()
        report = TickReport()
        async with self.store.transaction():
            while due := await self.store.period_subscriptions_ending_by(today):
                for sub in due:
                    await self._end_term(sub, now, report)
            horizon = today + timedelta(days=self.config.renewal_notice_days)
            claimed: Counter[str] = Counter()
            for sub in await self.store.period_subscriptions_ending_by(horizon):
                await self._maybe_warn(sub, now, report, claimed)
        return report

    async def _end_term(self, sub: Subscription, now: datetime, report: TickReport) -> None:
        assert sub.ends_on is not None
        if sub.balance_cents:
            await self.store.move(
                account_id=sub.account_id, source=Pot.SUB, target=Pot.EARNED,
                amount_cents=sub.balance_cents, kind="term_served", at=now,
                user_id=sub.user_id, subscription_id=sub.id,
                reason=f"{sub.plan} term #{sub.id} ended {sub.ends_on}",
            )  # fmt: skip
        await self.store.set_status(sub.id, Status.ENDED)
        report.ended.append(sub.id)
        if not sub.auto_renew:
            return
        user = await self.store.get_user(sub.user_id)
        renewal = self._renewal(sub)
        account = await self._account(sub.account_id)
        # Without the credit the term simply ends (the user was warned, _maybe_warn).
        if user is None or await self._booked(renewal) or account.credit_cents < _cost(renewal):
            report.not_renewed.append(sub.id)
            return
        new = await self._create(renewal, user, now, "renew")
        report.renewed.append(new.id)

    def _renewal(self, sub: Subscription) -> NewSubscription:
        """The next term: same plan and options at today's prices, starting on the end
        date and keeping the first start's day of month (no Jan 31 -> Feb 28 -> Mar 28)."""
        assert sub.ends_on is not None
        prices = self.config.prices_for(sub.user_type)
        return NewSubscription(
            sub.user_id, sub.account_id, sub.plan, sub.user_type, sub.ends_on,
            term_end(sub.ends_on, sub.plan, sub.anchor_day), sub.anchor_day,
            term_cents=term_price(prices, sub.plan), recording=sub.recording,
            recording_cents=(
                recording_price(self.config.recording_per_month, sub.plan)
                if sub.recording else 0
            ),
            auto_renew=True, renewed_from=sub.id,
        )  # fmt: skip

    async def _booked(self, renewal: NewSubscription) -> bool:
        """Is another subscription already booked for the renewal's term? Then that one
        takes over (R-SUB-4 future subscriptions) and there is nothing to renew."""
        others = await self.store.subscriptions(user_id=renewal.user_id, active_only=True)
        return any(
            overlaps(renewal.starts_on, renewal.ends_on, o.starts_on, o.ends_on) for o in others
        )

    async def _maybe_warn(
        self, sub: Subscription, now: datetime, report: TickReport, claimed: Counter[str]
    ) -> None:
        """Warn once if the credit cannot pay this renewal after the renewals due before it
        on the same account (`claimed`, in end-date order) have taken theirs."""
        assert sub.ends_on is not None
        today = now.date()
        if not sub.auto_renew or not renewal_notice_due(
            sub.ends_on, today, self.config.renewal_notice_days
        ):
            return
        renewal = self._renewal(sub)
        if await self._booked(renewal):
            return
        needed = _cost(renewal)
        claimed[sub.account_id] += needed
        account = await self._account(sub.account_id)
        if sub.notice_sent_on is not None or account.credit_cents >= claimed[sub.account_id]:
            return
        before = claimed[sub.account_id] - needed
        earlier = f" after {format_money(before)} EUR for renewals due before it" if before else ""
        user = await self.store.get_user(sub.user_id)
        await self.store.add_notice(
            sub.user_id, user.email if user else None,
            "Not enough credit to renew your dialer subscription",
            f"Hello {sub.user_id},\n\nYour {sub.plan} subscription #{sub.id} ends on "
            f"{sub.ends_on}. Renewing it needs {format_money(needed)} EUR{earlier} but the "
            f"account {sub.account_id} has {format_money(account.credit_cents)} EUR credit.\n"
            "Ask your administrator to add credit, or the subscription will end.\n",
            now,
        )  # fmt: skip
        await self.store.set_notice_sent(sub.id, today)
        report.short_notices.append(sub.id)

    # ------------------------------------------------------------------ reports, checks

    async def statement(self, user_id: str, since: datetime, until: datetime) -> Statement:
        entries = await self.store.ledger(user_id=user_id, since=since, until=until)
        totals: Counter[str] = Counter()
        for entry in entries:
            totals[entry.kind] += entry.amount_cents
        attempts = sum(1 for e in entries if e.kind == "attempt")
        return Statement(user_id, since, until, entries, dict(totals), attempts)

    async def verify(self) -> list[str]:
        """Recompute every balance from the ledger and check the invariants."""
        async with self.store.transaction():
            balances = await self.store.balances()
            subs = await self.store.subscriptions()
        return check_balances(balances, subs)

    async def flush_notices(self, mailer: Mailer, now: datetime) -> tuple[int, int]:
        """Send queued notices; returns (sent, failed). Failures stay queued."""
        sent = failed = 0
        for notice in await self.store.pending_notices():
            if not notice.email:
                async with self.store.transaction():
                    await self.store.mark_notice(notice.id, now, "no e-mail address", final=True)
                log.warning(
                    "notice %s for %s dropped: no e-mail address", notice.id, notice.user_id
                )
                continue
            try:
                await mailer.send(notice.email, notice.subject, notice.body)
            except MailError as exc:
                failed += 1
                async with self.store.transaction():
                    await self.store.mark_notice(notice.id, now, str(exc))
                log.warning("notice %s not sent: %s", notice.id, exc)
                continue
            sent += 1
            async with self.store.transaction():
                await self.store.mark_notice(notice.id, now, None)
        return sent, failed


class BillingGate:
    """The floor daemon's whole view of billing: three questions, time passed in.

    ``may_log_in`` before a user takes calls, ``charge_attempt`` before each dial (do not
    dial when ``charged`` is False), ``may_record`` before starting a recording.
    """

    def __init__(self, service: BillingService) -> None:
        self._service = service

    async def may_log_in(self, user_id: str, now: datetime) -> Decision:
        return await self._service.may_take_calls(user_id, local_time(now))

    async def charge_attempt(self, user_id: str, now: datetime) -> AttemptCharge:
        return await self._service.charge_attempt(user_id, local_time(now))

    async def may_record(self, user_id: str, now: datetime) -> Decision:
        return await self._service.may_record(user_id, local_time(now))


def local_time(now: datetime) -> datetime:
    """Billing days are the floor's local days and the ledger stores naive local time, so
    an aware datetime (e.g. UTC from the event loop's clock) is converted, not mixed in."""
    return now.astimezone().replace(tzinfo=None) if now.tzinfo is not None else now
