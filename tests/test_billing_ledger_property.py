"""R-SUB-1: the ledger balances after any sequence of operations, and a refused operation
changes nothing (hypothesis over random sequences, real SQLite)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from hypothesis import event, given, settings
from hypothesis import strategies as st

from dialerd.billing.config import config_from_mapping
from dialerd.billing.rules import AccountKind, BillingError, Plan, UserType
from dialerd.billing.service import BillingService
from dialerd.store.billing import BillingStore
from dialerd.store.db import open_db

USERS = {
    "tm": ("cc", UserType.TELEMARKETER),
    "tm2": ("cc", UserType.TELEMARKETER),
    "out": ("std", UserType.OUTSIDE_SALES),
    "in": ("std", UserType.INSIDE_SALES),
}


@dataclass(frozen=True)
class Op:
    name: str
    days: int  # the clock moves forward this many days before the operation
    user: str
    amount: int  # credit top-up; modulo 64 (a few attempts) for a per-attempt allocation
    plan: Plan
    start_in: int
    flag: bool
    pick: int


# Weighted by repetition: attempts are what the floor does most.
OPERATIONS = [
    "credit",
    "subscribe",
    "subscribe",
    "attempt",
    "attempt",
    "attempt",
    "unsubscribe",
    "cancel_recording",
    "tick",
]

ops = st.builds(
    Op,
    name=st.sampled_from(OPERATIONS),
    days=st.sampled_from([0, 0, 1, 2, 3, 25, 27, 28]) | st.integers(0, 40),
    user=st.sampled_from(["tm", "tm", "tm", "tm2", "out", "in"]),
    amount=st.integers(1, 20000),
    plan=st.sampled_from(list(Plan)),
    start_in=st.sampled_from([0, 0, 1, 31]),
    flag=st.booleans(),
    pick=st.integers(0, 50),
)


async def _snapshot(service: BillingService) -> tuple[object, ...]:
    balances = await service.store.balances()
    return (
        len(await service.store.ledger()),
        balances.cached_credit,
        balances.cached_sub,
        [(s.id, s.status, s.recording) for s in await service.store.subscriptions()],
    )


async def _apply(service: BillingService, op: Op, now: datetime) -> int:
    """Run one operation; returns the money it brought in from outside."""
    if op.name == "credit":
        await service.add_credit(USERS[op.user][0], op.amount, "property test", now)
        return op.amount
    if op.name == "subscribe":
        await service.subscribe(
            op.user, op.plan, now, starts_on=now.date() + timedelta(days=op.start_in),
            amount_cents=op.amount % 64 + 1 if op.plan is Plan.ATTEMPT else None,
            recording=op.flag and op.plan is not Plan.ATTEMPT, auto_renew=op.flag,
        )  # fmt: skip
    elif op.name == "attempt":
        if (await service.charge_attempt(op.user, now)).renewed:
            event("attempt renewed a per-attempt subscription")
    elif op.name == "tick":
        report = await service.tick(now)
        for what, ids in (("renewed", report.renewed), ("warned", report.short_notices),
                          ("ended unrenewed", report.not_renewed)):  # fmt: skip
            if ids:
                event(f"tick {what} a term")
    else:
        subs = await service.store.subscriptions()
        if subs:
            target = subs[op.pick % len(subs)].id
            if op.name == "unsubscribe":
                await service.unsubscribe(target, now)
            else:
                await service.cancel_recording(target, now)
    return 0


async def _run(sequence: list[Op], opening: int, preset: bool) -> None:
    conn = await open_db(":memory:")
    try:
        config = config_from_mapping({"recording_per_month": "31.00"})
        service = BillingService(BillingStore(conn), config)
        now = datetime(2028, 1, 31, 9, 0)  # a month end in a leap year
        await service.add_account("cc", AccountKind.CALL_CENTRE, now)
        await service.add_account("std", AccountKind.STANDARD, now)
        for user, (account, user_type) in USERS.items():
            await service.put_user(user, account, user_type, f"{user}@example.org")
        for account in ("cc", "std") if opening else ():
            await service.add_credit(account, opening, "opening credit", now)
        brought_in = 2 * opening
        if preset and opening >= 6_000:
            # Auto-renewing subscriptions from the start, so renewals and warnings happen.
            await service.subscribe("tm", Plan.ATTEMPT, now, amount_cents=21, auto_renew=True)
            await service.subscribe("out", Plan.MONTH, now, recording=True, auto_renew=True)
        for op in sequence:
            now += timedelta(days=op.days)
            before = await _snapshot(service)
            try:
                brought_in += await _apply(service, op, now)
                detail = f" {op.plan} renew={op.flag}" if op.name == "subscribe" else ""
                event(f"{op.name} done{detail}")
            except BillingError as exc:
                event(f"{op.name} refused: {str(exc)[:40]}")
                assert await _snapshot(service) == before, f"refused {op} changed the books"
            assert await service.verify() == [], op
            balances = await service.store.balances()
            assert balances.external == brought_in
            for sub in await service.store.subscriptions(active_only=True):
                assert sub.balance_cents >= 0
    finally:
        await conn.close()


@settings(max_examples=150, deadline=None)
@given(
    st.lists(ops, min_size=5, max_size=40),
    st.sampled_from([0, 6_000, 60_000, 200_000]) | st.integers(1, 200_000),
    st.booleans(),
)
def test_r_sub_1_ledger_always_balances(sequence: list[Op], opening: int, preset: bool) -> None:
    asyncio.run(_run(sequence, opening, preset))
