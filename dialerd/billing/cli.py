"""`dialerd billing ...`: accounts, credit, subscriptions and statements (R-SUB-1..5).

Every command takes ``--db PATH`` (default ``$DIALERD_DB`` or ``./dialerd.db``), ``--config``
(a YAML file with a ``billing:`` section; default the documents' prices) and ``--now``
(act as of that date/time; for back-office corrections and reproducible runs). Exit codes:
0 done, 1 refused by the rules or an operational failure, 2 bad input.
Queued e-mail notices are sent after a command when ``DIALERD_SMTP_HOST`` is set.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import date, datetime, time
from typing import ParamSpec

import click

from dialerd.billing.config import load_config
from dialerd.billing.rules import (
    AccountKind,
    BillingError,
    BillingInputError,
    Plan,
    Subscription,
    UserType,
    format_money,
    parse_money,
    parse_period,
)
from dialerd.billing.service import BillingService, local_time
from dialerd.mail import MailConfig, Mailer, MailError
from dialerd.store.billing import BillingStore
from dialerd.store.db import SchemaTooNew, open_db

P = ParamSpec("P")
Action = Callable[[BillingService, datetime], Awaitable[None]]


def _parse_now(text: str | None) -> datetime:
    if text is None:
        return datetime.now().replace(microsecond=0)
    try:
        return local_time(datetime.fromisoformat(text))
    except ValueError:
        raise click.BadParameter(f"not a date or date-time: {text!r}", param_hint="--now") from None


def _run(db: str, config_path: str | None, now_text: str | None, action: Action) -> None:
    """Open the store, run `action`, send queued notices; map failures to exit codes."""
    now = _parse_now(now_text)

    async def main() -> None:
        config = load_config(config_path)
        conn = await open_db(db)
        try:
            service = BillingService(BillingStore(conn), config)
            await action(service, now)
            mail = MailConfig.from_env()
            if mail is not None:
                sent, failed = await service.flush_notices(Mailer(mail), now)
                if sent:
                    click.echo(f"{sent} notice(s) e-mailed", err=True)
                if failed:
                    click.echo(f"warning: {failed} notice(s) not sent, kept queued", err=True)
        finally:
            await conn.close()

    try:
        asyncio.run(main())
    except BillingInputError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    except (BillingError, SchemaTooNew, MailError, sqlite3.Error, OSError) as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None


def _store_options(func: Callable[P, None]) -> Callable[P, None]:
    """The --db / --config / --now options every billing command shares."""
    func = click.option(
        "--now", "now_text", metavar="ISO", help="Act as of this date/time (default: now)."
    )(func)
    func = click.option(
        "--config", "config_path", type=click.Path(dir_okay=False), envvar="DIALERD_CONFIG",
        help="YAML file whose billing: section sets prices.",
    )(func)  # fmt: skip
    func = click.option(
        "--db", default="./dialerd.db", envvar="DIALERD_DB", show_default=True,
        metavar="PATH", help="SQLite database (env DIALERD_DB).",
    )(func)  # fmt: skip
    return func


def _money(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_money(value)
    except BillingInputError as exc:
        raise click.BadParameter(str(exc)) from None


def _day(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not a date (YYYY-MM-DD): {value!r}") from None


def _describe(sub: Subscription) -> str:
    if sub.plan is Plan.ATTEMPT:
        terms = f"{sub.attempts_left} attempts left ({format_money(sub.balance_cents)})"
        span = f"from {sub.starts_on}"
    else:
        terms = format_money(sub.term_cents + sub.recording_cents)
        span = f"{sub.starts_on} .. {sub.ends_on}"
    flags = [f for f, on in (("recording", sub.recording), ("auto-renew", sub.auto_renew)) if on]
    return f"#{sub.id}  {sub.user_id}  {sub.plan}  {span}  {terms}  {sub.status}" + (
        f"  [{', '.join(flags)}]" if flags else ""
    )


@click.group("billing")
def billing() -> None:
    """Accounts, credit and subscriptions: who may take calls and what attempts cost."""


@billing.group("account")
def account() -> None:
    """Accounts that hold credit."""


@account.command("add")
@click.argument("account_id")
@click.option(
    "--kind", type=click.Choice([k.value for k in AccountKind]), default="standard",
    show_default=True, help="call_centre accounts may buy per-attempt subscriptions.",
)  # fmt: skip
@_store_options
def account_add(
    account_id: str, kind: str, db: str, config_path: str | None, now_text: str | None
) -> None:
    """Create an account with no credit."""

    async def action(service: BillingService, now: datetime) -> None:
        await service.add_account(account_id, AccountKind(kind), now)
        click.echo(f"account {account_id} ({kind}) created")

    _run(db, config_path, now_text, action)


@billing.group("user")
def user() -> None:
    """Billing's record of a user: paying account, user type, e-mail for notices."""


@user.command("set")
@click.argument("user_id")
@click.option("--account", "account_id", required=True, help="Account that pays.")
@click.option("--type", "user_type", required=True, type=click.Choice([t.value for t in UserType]))
@click.option("--email", default=None, help="Where subscription notices go.")
@_store_options
def user_set(
    user_id: str,
    account_id: str,
    user_type: str,
    email: str | None,
    db: str,
    config_path: str | None,
    now_text: str | None,
) -> None:
    """Create or update a billing user."""

    async def action(service: BillingService, _now: datetime) -> None:
        await service.put_user(user_id, account_id, UserType(user_type), email)
        click.echo(f"user {user_id}: {user_type} on account {account_id}")

    _run(db, config_path, now_text, action)


@billing.group("credit")
def credit() -> None:
    """An account's general credit (R-SUB-1)."""


@credit.command("add")
@click.argument("account_id")
@click.argument("amount", callback=_money, metavar="EUROS")
@click.option("--reason", default="credit added", show_default=True)
@_store_options
def credit_add(
    account_id: str,
    amount: int,
    reason: str,
    db: str,
    config_path: str | None,
    now_text: str | None,
) -> None:
    """Add AMOUNT euros (e.g. 100.00) to ACCOUNT's credit."""
    if amount <= 0:
        raise click.BadParameter("must be more than 0.00", param_hint="EUROS")

    async def action(service: BillingService, now: datetime) -> None:
        total = await service.add_credit(account_id, amount, reason, now)
        click.echo(f"{account_id}: +{format_money(amount)}, credit {format_money(total)}")

    _run(db, config_path, now_text, action)


@credit.command("show")
@click.argument("account_id")
@_store_options
def credit_show(account_id: str, db: str, config_path: str | None, now_text: str | None) -> None:
    """Show ACCOUNT's credit and its subscriptions."""

    async def action(service: BillingService, _now: datetime) -> None:
        found = await service.account(account_id)
        click.echo(f"{account_id} ({found.kind}): credit {format_money(found.credit_cents)}")
        for sub in await service.subscriptions(account_id=account_id):
            click.echo("  " + _describe(sub))

    _run(db, config_path, now_text, action)


@billing.command("subscribe")
@click.argument("user_id")
@click.option("--plan", required=True, type=click.Choice([p.value for p in Plan]))
@click.option("--amount", callback=_money, metavar="EUROS", help="Per-attempt: amount to allocate.")
@click.option("--start", callback=_day, metavar="YYYY-MM-DD", help="Start date (default today).")
@click.option("--recording", is_flag=True, help="Record calls (period plans only).")
@click.option("--auto-renew", is_flag=True, help="Renew at the end / when used up.")
@_store_options
def subscribe(
    user_id: str,
    plan: str,
    amount: int | None,
    start: date | None,
    recording: bool,
    auto_renew: bool,
    db: str,
    config_path: str | None,
    now_text: str | None,
) -> None:
    """Assign USER a subscription, paid from the account's credit."""

    async def action(service: BillingService, now: datetime) -> None:
        sub = await service.subscribe(
            user_id, Plan(plan), now, starts_on=start, amount_cents=amount,
            recording=recording, auto_renew=auto_renew,
        )  # fmt: skip
        click.echo(_describe(sub))

    _run(db, config_path, now_text, action)


@billing.command("unsubscribe")
@click.argument("sub_id", type=int)
@click.option("--recording", is_flag=True, help="Only cancel recording (pro-rata refund).")
@_store_options
def unsubscribe(
    sub_id: int, recording: bool, db: str, config_path: str | None, now_text: str | None
) -> None:
    """Remove a per-attempt or future subscription (refunding the rest), or with
    --recording cancel its recording."""

    async def action(service: BillingService, now: datetime) -> None:
        if recording:
            refund = await service.cancel_recording(sub_id, now)
            click.echo(f"#{sub_id}: recording cancelled, {format_money(refund)} refunded")
        else:
            refund = await service.unsubscribe(sub_id, now)
            click.echo(f"#{sub_id}: removed, {format_money(refund)} refunded")

    _run(db, config_path, now_text, action)


@billing.command("list")
@click.option("--user", "user_id", default=None)
@click.option("--account", "account_id", default=None)
@_store_options
def list_subscriptions(
    user_id: str | None,
    account_id: str | None,
    db: str,
    config_path: str | None,
    now_text: str | None,
) -> None:
    """List subscriptions, optionally of one user or account."""

    async def action(service: BillingService, _now: datetime) -> None:
        subs = await service.subscriptions(user_id=user_id, account_id=account_id)
        for sub in subs:
            click.echo(_describe(sub))
        if not subs:
            click.echo("no subscriptions")

    _run(db, config_path, now_text, action)


@billing.command("statement")
@click.argument("user_id")
@click.option("--period", required=True, help="2026, 2026-11, 2026-11-05 or FROM..TO.")
@_store_options
def statement(
    user_id: str, period: str, db: str, config_path: str | None, now_text: str | None
) -> None:
    """Every ledger movement of USER in a period, with totals."""
    try:
        since, until = parse_period(period)
    except BillingInputError as exc:
        raise click.BadParameter(str(exc), param_hint="--period") from None

    async def action(service: BillingService, _now: datetime) -> None:
        stmt = await service.statement(
            user_id, datetime.combine(since, time()), datetime.combine(until, time())
        )
        click.echo(f"statement for {user_id}, {since} .. {until} (exclusive)")
        for e in stmt.entries:
            sub = f"#{e.subscription_id}" if e.subscription_id else ""
            click.echo(
                f"{e.at}  {e.kind:<16} {format_money(e.amount_cents):>10}  "
                f"{e.from_pot}->{e.to_pot} {sub}  {e.reason}"
            )
        for kind, cents in sorted(stmt.totals.items()):
            click.echo(f"total {kind:<16} {format_money(cents):>10}")
        click.echo(f"attempts charged: {stmt.attempts}")

    _run(db, config_path, now_text, action)


@billing.command("check")
@click.argument("user_id")
@_store_options
def check(user_id: str, db: str, config_path: str | None, now_text: str | None) -> None:
    """What the floor would hear: may USER log in, may their calls be recorded.
    Exits 1 when USER may not take calls."""
    allowed: list[bool] = []

    async def action(service: BillingService, now: datetime) -> None:
        login = await service.may_take_calls(user_id, now)
        record = await service.may_record(user_id, now)
        click.echo(f"login: {'yes' if login.allowed else 'no'} - {login.message}")
        click.echo(f"record: {'yes' if record.allowed else 'no'} - {record.message}")
        allowed.append(login.allowed)

    _run(db, config_path, now_text, action)
    if not all(allowed):
        raise SystemExit(1)


@billing.command("tick")
@_store_options
def tick(db: str, config_path: str | None, now_text: str | None) -> None:
    """Daily run: end terms, auto-renew, warn of short credit (R-SUB-4). Run from cron."""

    async def action(service: BillingService, now: datetime) -> None:
        report = await service.tick(now)
        click.echo(
            f"ended {len(report.ended)}, renewed {len(report.renewed)}, not renewed "
            f"{len(report.not_renewed)}, credit warnings {len(report.short_notices)}"
        )

    _run(db, config_path, now_text, action)


@billing.command("verify")
@_store_options
def verify(db: str, config_path: str | None, now_text: str | None) -> None:
    """Recompute every balance from the ledger; exit 1 if anything is off."""
    problems: list[str] = []

    async def action(service: BillingService, _now: datetime) -> None:
        problems.extend(await service.verify())

    _run(db, config_path, now_text, action)
    for problem in problems:
        click.echo(f"problem: {problem}", err=True)
    if problems:
        raise SystemExit(1)
    click.echo("ledger balances")
