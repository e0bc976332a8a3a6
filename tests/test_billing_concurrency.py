"""R-SUB-3 under load: many attempts charged at once through many SQLite connections (and
processes) never spend more than was allocated and renewed."""

from __future__ import annotations

import asyncio
import multiprocessing
import tempfile
from datetime import datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from dialerd.billing.rules import AccountKind, Plan, UserType
from dialerd.billing.service import BillingService
from dialerd.store.billing import BillingStore
from dialerd.store.db import open_db

NOW = datetime(2026, 3, 1, 10, 0)
PRICE = 7  # the documents' 0.07


async def _prepare(path: Path, attempts: int, renewals: int, auto_renew: bool) -> None:
    """Account with credit for the allocation plus `renewals` renewals, one telemarketer."""
    conn = await open_db(path)
    try:
        service = BillingService(BillingStore(conn))
        await service.add_account("cc", AccountKind.CALL_CENTRE, NOW)
        await service.put_user("tm", "cc", UserType.TELEMARKETER, None)
        amount = attempts * PRICE
        await service.add_credit("cc", amount * (1 + renewals), "load test", NOW)
        await service.subscribe("tm", Plan.ATTEMPT, NOW, amount_cents=amount, auto_renew=auto_renew)
    finally:
        await conn.close()


async def _charge_in_parallel(path: Path, connections: int, tries: int) -> int:
    """`tries` attempts spread over `connections` connections, all in flight together."""
    conns = [await open_db(path) for _ in range(connections)]
    try:
        services = [BillingService(BillingStore(c)) for c in conns]
        results = await asyncio.gather(
            *(services[i % connections].charge_attempt("tm", NOW) for i in range(tries))
        )
        return sum(1 for r in results if r.charged)
    finally:
        for conn in conns:
            await conn.close()


async def _books(path: Path) -> tuple[int, int, int, list[str]]:
    """(attempt rows in the ledger, credit, subscription balance, verify problems)."""
    conn = await open_db(path)
    try:
        service = BillingService(BillingStore(conn))
        attempts = len([e for e in await service.store.ledger(user_id="tm") if e.kind == "attempt"])
        credit = (await service.account("cc")).credit_cents
        sub = (await service.subscriptions(user_id="tm"))[0]
        return attempts, credit, sub.balance_cents, await service.verify()
    finally:
        await conn.close()


@settings(max_examples=12, deadline=None)
@given(
    connections=st.integers(min_value=2, max_value=8),
    attempts=st.integers(min_value=1, max_value=25),
    renewals=st.integers(min_value=0, max_value=3),
    auto_renew=st.booleans(),
    extra=st.integers(min_value=0, max_value=40),
)
def test_r_sub_3_concurrent_attempts_never_overspend(
    connections: int,
    attempts: int,
    renewals: int,
    auto_renew: bool,
    extra: int,
) -> None:
    """Exactly as many attempts succeed as were bought: the allocation, plus each renewal
    the credit could pay for when auto-renew is on; everything else is refused."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "load.db"
        asyncio.run(_prepare(path, attempts, renewals, auto_renew))
        bought = attempts * (1 + (renewals if auto_renew else 0))
        tries = bought + extra
        charged = asyncio.run(_charge_in_parallel(path, connections, tries))
        ledger_attempts, credit, balance, problems = asyncio.run(_books(path))
    assert charged == bought
    assert ledger_attempts == bought
    assert balance == 0
    assert credit == (0 if auto_renew else renewals * attempts * PRICE)
    assert problems == []


def _process_worker(path: str, tries: int) -> int:
    return asyncio.run(_charge_in_parallel(Path(path), 2, tries))


def test_r_sub_3_attempts_from_several_processes_never_overspend(tmp_path: Path) -> None:
    """Separate processes (separate SQLite handles, no shared Python lock) race too."""
    path = tmp_path / "procs.db"
    asyncio.run(_prepare(path, attempts=60, renewals=1, auto_renew=True))
    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as pool:
        charged = sum(pool.starmap(_process_worker, [(str(path), 60)] * 3))
    ledger_attempts, credit, balance, problems = asyncio.run(_books(path))
    assert charged == 120
    assert ledger_attempts == 120
    assert (credit, balance) == (0, 0)
    assert problems == []
