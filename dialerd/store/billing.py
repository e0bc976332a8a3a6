"""Billing persistence (R-SUB): accounts, billing users, subscriptions, the ledger, notices.

Every money movement goes through `BillingStore.move`, which debits the source pot with a
conditional UPDATE (``... WHERE balance >= amount``) and appends one ledger row. Callers
wrap their steps in `transaction()` (``BEGIN IMMEDIATE``), so concurrent attempts from
several connections serialise on SQLite's write lock and can never overspend.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import aiosqlite

from dialerd.billing.rules import (
    AccountKind,
    BillingInputError,
    BillingRefused,
    Plan,
    Status,
    Subscription,
    UserType,
    format_money,
)


class Pot(enum.StrEnum):
    """Where money sits. Ledger rows move it from one pot to another."""

    EXTERNAL = "external"  # outside the system: top-ups come from here
    CREDIT = "credit"  # the account's general credit (R-SUB-1)
    SUB = "sub"  # one subscription's prepaid pot
    EARNED = "earned"  # consumed: attempts made, terms served


class InsufficientFunds(BillingRefused):
    """The source pot holds less than the amount to move."""


@dataclass(frozen=True)
class Account:
    account_id: str
    kind: AccountKind
    credit_cents: int


@dataclass(frozen=True)
class BillingUser:
    user_id: str
    account_id: str
    user_type: UserType
    email: str | None


@dataclass(frozen=True)
class NewSubscription:
    """A subscription about to be stored (it starts with an empty pot)."""

    user_id: str
    account_id: str
    plan: Plan
    user_type: UserType
    starts_on: date
    ends_on: date | None
    anchor_day: int
    attempt_price_cents: int = 0
    allocation_cents: int = 0
    term_cents: int = 0
    recording: bool = False
    recording_cents: int = 0
    auto_renew: bool = False
    renewed_from: int | None = None


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    at: str
    account_id: str
    user_id: str | None
    subscription_id: int | None
    kind: str
    from_pot: Pot
    to_pot: Pot
    amount_cents: int
    reason: str


@dataclass(frozen=True)
class Notice:
    id: int
    user_id: str
    email: str | None
    subject: str
    body: str
    attempts: int


@dataclass(frozen=True)
class Balances:
    """Cached and ledger-derived balances side by side, for verification."""

    cached_credit: dict[str, int]
    derived_credit: dict[str, int]
    cached_sub: dict[int, int]
    derived_sub: dict[int, int]
    external: int  # net money that came in from outside (top-ups)
    earned: int


_SUB_COLUMNS = (
    "id, user_id, account_id, plan, user_type, starts_on, ends_on, anchor_day,"
    " attempt_price_cents, allocation_cents, term_cents, recording, recording_cents,"
    " auto_renew, balance_cents, status, renewed_from, notice_sent_on"
)


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _subscription(row: aiosqlite.Row) -> Subscription:
    starts_on = date.fromisoformat(row["starts_on"])
    return Subscription(
        id=row["id"],
        user_id=row["user_id"],
        account_id=row["account_id"],
        plan=Plan(row["plan"]),
        user_type=UserType(row["user_type"]),
        starts_on=starts_on,
        ends_on=_day(row["ends_on"]),
        anchor_day=row["anchor_day"],
        attempt_price_cents=row["attempt_price_cents"],
        allocation_cents=row["allocation_cents"],
        term_cents=row["term_cents"],
        recording=bool(row["recording"]),
        recording_cents=row["recording_cents"],
        auto_renew=bool(row["auto_renew"]),
        balance_cents=row["balance_cents"],
        status=Status(row["status"]),
        renewed_from=row["renewed_from"],
        notice_sent_on=_day(row["notice_sent_on"]),
    )


class BillingStore:
    """Typed access to the billing tables over one aiosqlite connection."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        # One connection runs one transaction at a time; tasks sharing it take turns.
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """``BEGIN IMMEDIATE`` .. ``COMMIT``: take the write lock up front so a read
        followed by a write inside the block sees no other writer in between."""
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")

    # ------------------------------------------------------------------ accounts, users

    async def add_account(self, account_id: str, kind: AccountKind, at: datetime) -> None:
        try:
            await self._conn.execute(
                "INSERT INTO billing_accounts(account_id, kind, created_at) VALUES (?, ?, ?)",
                (account_id, str(kind), at.isoformat()),
            )
        except aiosqlite.IntegrityError:
            raise BillingInputError(f"account {account_id!r} already exists") from None

    async def get_account(self, account_id: str) -> Account | None:
        async with self._conn.execute(
            "SELECT account_id, kind, credit_cents FROM billing_accounts WHERE account_id = ?",
            (account_id,),
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        return Account(row["account_id"], AccountKind(row["kind"]), row["credit_cents"])

    async def put_user(self, user: BillingUser) -> None:
        """Create or update billing's record of a user (type, account, e-mail)."""
        try:
            await self._conn.execute(
                "INSERT INTO billing_users(user_id, account_id, user_type, email)"
                " VALUES (?, ?, ?, ?) ON CONFLICT(user_id) DO UPDATE SET"
                " account_id = excluded.account_id, user_type = excluded.user_type,"
                " email = excluded.email",
                (user.user_id, user.account_id, str(user.user_type), user.email),
            )
        except aiosqlite.IntegrityError:
            raise BillingInputError(f"no account {user.account_id!r}") from None

    async def get_user(self, user_id: str) -> BillingUser | None:
        async with self._conn.execute(
            "SELECT user_id, account_id, user_type, email FROM billing_users WHERE user_id = ?",
            (user_id,),
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        return BillingUser(
            row["user_id"], row["account_id"], UserType(row["user_type"]), row["email"]
        )

    # ------------------------------------------------------------------ subscriptions

    async def insert_subscription(self, new: NewSubscription, at: datetime) -> int:
        cur = await self._conn.execute(
            "INSERT INTO billing_subscriptions(user_id, account_id, plan, user_type,"
            " starts_on, ends_on, anchor_day, attempt_price_cents, allocation_cents,"
            " term_cents, recording, recording_cents, auto_renew, status, renewed_from,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?)",
            (
                new.user_id, new.account_id, str(new.plan), str(new.user_type),
                new.starts_on.isoformat(), new.ends_on.isoformat() if new.ends_on else None,
                new.anchor_day, new.attempt_price_cents, new.allocation_cents,
                new.term_cents, int(new.recording), new.recording_cents,
                int(new.auto_renew), new.renewed_from, at.isoformat(),
            ),
        )  # fmt: skip
        assert cur.lastrowid is not None
        return cur.lastrowid

    async def get_subscription(self, sub_id: int) -> Subscription | None:
        async with self._conn.execute(
            f"SELECT {_SUB_COLUMNS} FROM billing_subscriptions WHERE id = ?", (sub_id,)
        ) as cur:
            row = await cur.fetchone()
        return _subscription(row) if row else None

    async def subscriptions(
        self,
        *,
        user_id: str | None = None,
        account_id: str | None = None,
        active_only: bool = False,
    ) -> list[Subscription]:
        """Subscriptions filtered by user and/or account, oldest start first."""
        where, args = [], []
        if user_id is not None:
            where.append("user_id = ?")
            args.append(user_id)
        if account_id is not None:
            where.append("account_id = ?")
            args.append(account_id)
        if active_only:
            where.append("status = 'active'")
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        async with self._conn.execute(
            f"SELECT {_SUB_COLUMNS} FROM billing_subscriptions{clause} ORDER BY starts_on, id",
            args,
        ) as cur:
            return [_subscription(row) async for row in cur]

    async def period_subscriptions_ending_by(self, day: date) -> list[Subscription]:
        """Active period subscriptions whose end date is on or before `day`."""
        async with self._conn.execute(
            f"SELECT {_SUB_COLUMNS} FROM billing_subscriptions WHERE status = 'active'"
            " AND ends_on IS NOT NULL AND ends_on <= ? ORDER BY ends_on, id",
            (day.isoformat(),),
        ) as cur:
            return [_subscription(row) async for row in cur]

    async def set_status(self, sub_id: int, status: Status) -> None:
        await self._conn.execute(
            "UPDATE billing_subscriptions SET status = ? WHERE id = ?", (str(status), sub_id)
        )

    async def set_recording_off(self, sub_id: int) -> None:
        await self._conn.execute(
            "UPDATE billing_subscriptions SET recording = 0 WHERE id = ?", (sub_id,)
        )

    async def set_notice_sent(self, sub_id: int, day: date) -> None:
        await self._conn.execute(
            "UPDATE billing_subscriptions SET notice_sent_on = ? WHERE id = ?",
            (day.isoformat(), sub_id),
        )

    # ------------------------------------------------------------------ the ledger

    async def move(
        self,
        *,
        account_id: str,
        source: Pot,
        target: Pot,
        amount_cents: int,
        kind: str,
        reason: str,
        at: datetime,
        user_id: str | None = None,
        subscription_id: int | None = None,
    ) -> int:
        """Move money between pots and record it; raises InsufficientFunds, moves nothing,
        when the source pot is short. Returns the ledger entry id."""
        if amount_cents <= 0:
            raise BillingInputError(f"amount must be positive, got {amount_cents} cents")
        if (Pot.SUB in (source, target)) != (subscription_id is not None):
            raise BillingInputError("a 'sub' pot needs its subscription id, others none")
        if not reason.strip():
            raise BillingInputError("every ledger movement needs a reason")
        await self._debit(source, account_id, subscription_id, amount_cents)
        await self._credit(target, account_id, subscription_id, amount_cents)
        cur = await self._conn.execute(
            "INSERT INTO billing_ledger(at, account_id, user_id, subscription_id, kind,"
            " from_pot, to_pot, amount_cents, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                at.isoformat(), account_id, user_id, subscription_id, kind,
                str(source), str(target), amount_cents, reason,
            ),
        )  # fmt: skip
        assert cur.lastrowid is not None
        return cur.lastrowid

    async def _debit(self, pot: Pot, account_id: str, sub_id: int | None, amount: int) -> None:
        if pot is Pot.CREDIT:
            cur = await self._conn.execute(
                "UPDATE billing_accounts SET credit_cents = credit_cents - ?"
                " WHERE account_id = ? AND credit_cents >= ?",
                (amount, account_id, amount),
            )
            if cur.rowcount != 1:
                account = await self.get_account(account_id)
                if account is None:
                    raise BillingInputError(f"no account {account_id!r}")
                raise InsufficientFunds(
                    f"account {account_id!r} has {format_money(account.credit_cents)} credit,"
                    f" {format_money(amount)} needed"
                )
        elif pot is Pot.SUB:
            cur = await self._conn.execute(
                "UPDATE billing_subscriptions SET balance_cents = balance_cents - ?"
                " WHERE id = ? AND balance_cents >= ?",
                (amount, sub_id, amount),
            )
            if cur.rowcount != 1:
                raise InsufficientFunds(f"subscription #{sub_id} holds less than {amount} cents")

    async def _credit(self, pot: Pot, account_id: str, sub_id: int | None, amount: int) -> None:
        if pot is Pot.CREDIT:
            cur = await self._conn.execute(
                "UPDATE billing_accounts SET credit_cents = credit_cents + ? WHERE account_id = ?",
                (amount, account_id),
            )
            if cur.rowcount != 1:
                raise BillingInputError(f"no account {account_id!r}")
        elif pot is Pot.SUB:
            cur = await self._conn.execute(
                "UPDATE billing_subscriptions SET balance_cents = balance_cents + ? WHERE id = ?",
                (amount, sub_id),
            )
            if cur.rowcount != 1:
                raise BillingInputError(f"no subscription #{sub_id}")

    async def ledger(
        self,
        *,
        account_id: str | None = None,
        user_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[LedgerEntry]:
        """Entries in order, filtered by account, user and [since, until)."""
        where, args = [], []
        for column, op, value in (
            ("account_id", "=", account_id),
            ("user_id", "=", user_id),
            ("at", ">=", since.isoformat() if since else None),
            ("at", "<", until.isoformat() if until else None),
        ):
            if value is not None:
                where.append(f"{column} {op} ?")
                args.append(value)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        async with self._conn.execute(
            "SELECT id, at, account_id, user_id, subscription_id, kind, from_pot, to_pot,"
            f" amount_cents, reason FROM billing_ledger{clause} ORDER BY id",
            args,
        ) as cur:
            return [
                LedgerEntry(
                    r["id"], r["at"], r["account_id"], r["user_id"], r["subscription_id"],
                    r["kind"], Pot(r["from_pot"]), Pot(r["to_pot"]), r["amount_cents"],
                    r["reason"],
                )
                async for r in cur
            ]  # fmt: skip

    async def balances(self) -> Balances:
        """Every cached balance beside the one the ledger implies."""
        flows = (
            "SELECT {key}, SUM(CASE WHEN to_pot = '{pot}' THEN amount_cents ELSE 0 END)"
            " - SUM(CASE WHEN from_pot = '{pot}' THEN amount_cents ELSE 0 END)"
            " FROM billing_ledger WHERE '{pot}' IN (from_pot, to_pot) GROUP BY {key}"
        )
        derived_credit = await self._pairs(flows.format(key="account_id", pot="credit"))
        derived_sub = await self._pairs(flows.format(key="subscription_id", pot="sub"))
        totals = await self._pairs(
            "SELECT pot, SUM(delta) FROM ("
            " SELECT to_pot AS pot, amount_cents AS delta FROM billing_ledger"
            " UNION ALL SELECT from_pot, -amount_cents FROM billing_ledger) GROUP BY pot"
        )
        return Balances(
            cached_credit=await self._pairs(
                "SELECT account_id, credit_cents FROM billing_accounts"
            ),
            derived_credit=derived_credit,
            cached_sub=await self._pairs("SELECT id, balance_cents FROM billing_subscriptions"),
            derived_sub=derived_sub,
            external=-int(totals.get("external", 0)),
            earned=int(totals.get("earned", 0)),
        )

    async def _pairs(self, sql: str) -> dict[Any, int]:
        """Two-column rows as a dict; keys are account ids, subscription ids or pots."""
        async with self._conn.execute(sql) as cur:
            return {row[0]: int(row[1]) async for row in cur}

    # ------------------------------------------------------------------ notices

    async def add_notice(
        self, user_id: str, email: str | None, subject: str, body: str, at: datetime
    ) -> int:
        cur = await self._conn.execute(
            "INSERT INTO billing_notices(created_at, user_id, email, subject, body)"
            " VALUES (?, ?, ?, ?, ?)",
            (at.isoformat(), user_id, email, subject, body),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    async def pending_notices(self, limit: int = 100) -> list[Notice]:
        async with self._conn.execute(
            "SELECT id, user_id, email, subject, body, attempts FROM billing_notices"
            " WHERE sent_at IS NULL ORDER BY id LIMIT ?",
            (limit,),
        ) as cur:
            return [
                Notice(r["id"], r["user_id"], r["email"], r["subject"], r["body"], r["attempts"])
                async for r in cur
            ]

    async def mark_notice(
        self, notice_id: int, at: datetime, error: str | None, *, final: bool = False
    ) -> None:
        """Record a delivery try: done when `error` is None or the failure is `final`
        (no address to send to), else kept pending for the next flush."""
        done = error is None or final
        await self._conn.execute(
            "UPDATE billing_notices SET attempts = attempts + 1, last_error = ?,"
            " sent_at = ? WHERE id = ?",
            (error, at.isoformat() if done else None, notice_id),
        )
