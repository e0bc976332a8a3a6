"""The lead flow: the one service that joins campaign YAML, the store and the queue rules.

The daemon asks it three things over a call's life — *what to dial* (`LeadFlow.next_leads`),
*what the dialer saw* (`LeadFlow.dialer_outcome`) and *what the agent decided*
(`LeadFlow.disposition`) — plus `LeadFlow.recover` after a crash and the read-only views
(`screen_pop`, `scheduled_calls`, `why`). Every decision is made by ``dialerd.queue``; this
module only maps between the three vocabularies, all in one place:

* ``CampaignConfig`` (pydantic, YAML) → ``queue.CampaignRules``: `rules_for`;
* store ``Lead`` + its open ``Callback`` (epoch floats) ↔ ``queue.Lead`` (UTC datetimes):
  `to_queue_lead`, `lead_update`, `to_datetime`, `to_epoch`;
* ``queue.Outcome.ANSWERED`` ↔ the store's and pacing contract's ``"human"``:
  `store_outcome`, `queue_outcome`.

Time is always passed in (epoch seconds); nothing here reads a clock. Crash safety: a lead
is ``dialing`` in the store (committed) before `next_leads` returns it, and each finished
attempt is one transaction with the callback and registration it implies (see
``dialerd.store.flow``). See docs/leadflow.md.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from dialerd import queue as q
from dialerd.config import models as cfg
from dialerd.store.api import Store
from dialerd.store.models import (
    AttemptRecord,
    Callback,
    CallbackStatus,
    Campaign,
    Lead,
    LeadStatus,
    LeadUpdate,
    NewCallback,
)

DispositionError = q.DispositionError
"""Raised by `LeadFlow.disposition` with every problem listed; nothing was written."""

RECOVERY_NOTE = "dialerd restarted while this number was being dialled; call outcome unknown"
"""The note of the attempt `LeadFlow.recover` records for a call lost in a crash."""

_HUMAN = "human"
"""The store's and the pacing contract's word for a call a person answered."""
_MAX_SCAN = 20_000
"""Most candidates `LeadFlow.next_leads` reads to find `n` the rules accept."""
_SLACK = 0.001
"""Seconds by which the store's link-release and redial-guard bounds lean towards letting a
lead through: the rules compare microsecond datetimes, the store epoch floats, and the
store's prefilter must never drop a lead the rules would accept (they re-check it)."""


class UnknownCampaign(LookupError):
    """A campaign that is not configured, or configured but never synced to the store."""


# --------------------------------------------------------------------------------------------
# mapping: time and outcomes


def to_datetime(t: float) -> datetime:
    """Epoch seconds (the store's time) as a tz-aware UTC datetime (the rules' time)."""
    return datetime.fromtimestamp(t, UTC)


def to_epoch(t: datetime) -> float:
    """A tz-aware datetime as epoch seconds."""
    return t.timestamp()


def _dt(t: float | None) -> datetime | None:
    return None if t is None else to_datetime(t)


def _epoch(t: datetime | None) -> float | None:
    return None if t is None else to_epoch(t)


def store_outcome(outcome: q.Outcome) -> str:
    """The store's spelling of an outcome (``answered`` is ``human`` there)."""
    return _HUMAN if outcome is q.Outcome.ANSWERED else outcome.value


def queue_outcome(value: str) -> q.Outcome:
    """The rules' outcome for the store's spelling."""
    return q.Outcome.ANSWERED if value == _HUMAN else q.Outcome(value)


_OUTCOMES = {store_outcome(o): o for o in q.Outcome}
"""`queue_outcome` as a table, for `to_queue_lead` (a dict lookup, not an enum call, per row)."""
_PHASES = {p.value: p for p in q.FunnelPhase}


# --------------------------------------------------------------------------------------------
# mapping: configuration → rules


def rules_for(config: cfg.CampaignConfig) -> q.CampaignRules:
    """The queue rules of a campaign, every field taken from its YAML."""
    codes = tuple(
        q.ResultCode(
            code=c.code,
            category=c.category,
            priority=q.ContactPriority[c.contact_priority.name],
            label=c.label,
            callback_minutes=c.callback_minutes,
            detail_screen=c.flags.detail_screen,
            allow_reassign=c.flags.allow_reassign,
            require_email=c.flags.require_email,
            funnel_phase=c.funnel_phase,
            force_phase=c.force_phase,
            retry_as=q.Outcome(c.retry_as.value) if c.retry_as else None,
        )
        for c in config.result_codes.values()
    )
    hours = config.calling_hours
    windows = tuple(
        q.Window(day, w.start, w.end)
        for day, name in enumerate(cfg.WEEKDAYS)
        for w in getattr(hours, name)
    )

    def delay(outcome: cfg.Outcome) -> timedelta:
        return timedelta(minutes=config.retry_rule(outcome).delay_minutes)

    retry = q.RetryPolicy(
        max_attempts=config.max_attempts,
        busy=delay(cfg.Outcome.BUSY),
        no_answer=delay(cfg.Outcome.NO_ANSWER),
        machine=delay(cfg.Outcome.MACHINE),
        abandoned=delay(cfg.Outcome.ABANDONED),
        failed=delay(cfg.Outcome.FAILED),
        answered=timedelta(minutes=config.retry_after_contact_minutes),
        abandon_guard=timedelta(minutes=config.abandoned_redial_guard_minutes),
        machine_guard=timedelta(minutes=config.machine_redial_guard_minutes),
    )
    release = config.link_release_minutes
    return q.CampaignRules(
        result_codes=codes,
        hours=q.CallingHours(windows, frozenset(hours.holidays)),
        retry=retry,
        mode=config.mode,
        reservation_window=timedelta(minutes=config.reservation_window_minutes),
        link_release=timedelta(minutes=release) if release is not None else None,
        tie_break=config.tie_break,
        forced_registration=config.registration.forced,
        registration=tuple(
            q.RegistrationCategory(c.name, c.topics, multi=c.choice is cfg.RegistrationChoice.MULTI)
            for c in config.registration.categories
        ),
        outcome_codes={q.Outcome(o.value): rule.result_code for o, rule in config.retry.items()},
    )


def _stored_codes(config: cfg.CampaignConfig) -> dict[str, str]:
    """Built-in queue codes → the campaign code the store records them with.

    ``attempts.result_code`` references the campaign's result codes, so the queue's
    built-ins (``agent:voicemail``, ``dialer:<outcome>``) are stored as the code the campaign
    records for the matching dialer outcome: an agent's voicemail mark as its ``machine``
    code (R-REG-4a), an unmapped outcome as its own (the YAML maps all five, R-RC-1).
    """
    mapped = {
        q.system_code(q.Outcome(o.value)): rule.result_code for o, rule in config.retry.items()
    }
    mapped[q.VOICEMAIL_CODE] = config.retry_rule(cfg.Outcome.MACHINE).result_code
    return mapped


# --------------------------------------------------------------------------------------------
# mapping: store rows ↔ queue lead


def to_queue_lead(lead: Lead, callback: Callback | None = None, dnc: bool = False) -> q.Lead:
    """The rules' view of a stored lead and its open (pending/offered) callback.

    ``dnc`` adds a DNC-list hit the lead's status does not show yet. A link whose agent was
    deleted (``linked_agent`` NULL, ``linked_at`` kept) counts as no link.
    """
    linked = lead.linked_agent is not None and lead.linked_at is not None
    phase = _PHASES.get(lead.phase) or q.FunnelPhase(lead.phase)  # the call names a bad value
    outcome = lead.last_outcome
    return q.Lead(
        id=lead.id,
        phone=lead.number,
        timezone=lead.tz,
        rank=lead.rank,
        dnc=dnc or lead.status is LeadStatus.DNC,
        phase=phase,
        closed=lead.status is LeadStatus.DONE,
        attempts=lead.attempts,
        score_total=lead.score_total,
        last_attempt_at=_dt(lead.last_attempt_at),
        last_outcome=(_OUTCOMES.get(outcome) or queue_outcome(outcome)) if outcome else None,
        last_abandoned_at=_dt(lead.last_abandoned_at),
        last_machine_at=_dt(lead.last_machine_at),
        linked_agent=lead.linked_agent if linked else None,
        linked_at=_dt(lead.linked_at) if linked else None,
        callback=_queue_callback(callback) if callback is not None else None,
    )


def _queue_callback(cb: Callback) -> q.Callback:
    if cb.owner_agent is not None:
        return q.Callback(
            to_datetime(cb.due_at), q.CallbackTarget.MYSELF, cb.owner_agent, cb.comment
        )
    return q.Callback(to_datetime(cb.due_at), q.CallbackTarget.ANY, cb.created_by, cb.comment)


def lead_update(lead: q.Lead, rules: q.CampaignRules, at: datetime, result_code: str) -> LeadUpdate:
    """The store summary of ``lead`` after an attempt at ``at`` recorded with ``result_code``.

    ``status`` is `queue.lead_state` at ``at``; ``next_dial_at`` is the callback's due time,
    else the end of the retry delay (`queue.retry_due_at`), else ``at``. The 72 h / 24 h
    redial guards are not in it: they depend on who the call is for, decided at selection.
    """
    state = q.lead_state(lead, rules, at)
    if state is q.LeadState.CALLBACK:
        assert lead.callback is not None
        next_at = lead.callback.due_at
    else:
        next_at = q.retry_due_at(lead, rules) or at
    return LeadUpdate(
        status=LeadStatus(state.value),
        phase=lead.phase.value,
        attempts=lead.attempts,
        score_total=lead.score_total,
        call_score=q.call_score(lead),
        next_dial_at=to_epoch(next_at),
        last_result=result_code,
        last_outcome=store_outcome(lead.last_outcome) if lead.last_outcome else None,
        last_attempt_at=_epoch(lead.last_attempt_at),
        last_abandoned_at=_epoch(lead.last_abandoned_at),
        last_machine_at=_epoch(lead.last_machine_at),
        linked_agent=lead.linked_agent,
        linked_at=_epoch(lead.linked_at),
    )


# --------------------------------------------------------------------------------------------
# what the service hands out


@dataclass(frozen=True)
class Claimed:
    """A lead the daemon may originate now; already ``dialing`` (committed) in the store."""

    lead_id: int
    number: str
    """E.164."""
    campaign: str
    attempt: int
    """This call's attempt number (1 for a fresh lead)."""
    reserved_for: str | None
    """The owner of a callback still inside its reservation window (R-CB-2), else None."""
    linked_agent: str | None
    """The agent the address is linked to (R-RC-6), else None."""
    callback_comment: str
    """The rescheduling comment to show whoever gets the call (R-CB-7); "" if none."""
    callback_id: int | None = None
    """The callback this call serves, if any."""


@dataclass(frozen=True)
class Reschedule:
    """The agent's reschedule (R-REG-4b): when (epoch), for whom, and a mandatory comment."""

    when: float
    target: q.CallbackTarget = q.CallbackTarget.MYSELF
    comment: str = ""


@dataclass(frozen=True)
class RecoveryReport:
    """What `LeadFlow.recover` did with the leads a crash left ``dialing``."""

    campaign: str
    recovered: tuple[int, ...]
    """Leads given a failed attempt (outcome unknown) and rescheduled per the retry rules."""
    adopted: tuple[int, ...]
    """Leads whose call is still live: left ``dialing`` for the daemon to adopt."""
    callbacks_kept: tuple[int, ...]
    """Of ``recovered``, the leads whose callback was scheduled again, not dropped."""


@dataclass(frozen=True)
class ScheduledCall:
    """One row of an agent's "scheduled calls" list (R-CB-1)."""

    callback_id: int
    lead_id: int
    campaign: str
    number: str
    name: str
    """The lead's ``name`` column, if the list had one (empty otherwise)."""
    due_at: float
    reserved_until: float | None
    comment: str
    state: str
    """``upcoming`` (not due), ``reserved`` (due, held for this agent) or ``open`` (the
    window is over: any agent may take it, R-CB-5)."""


# --------------------------------------------------------------------------------------------
# the service


@dataclass(frozen=True)
class _Ctx:
    """One campaign as the flow needs it."""

    name: str
    id: int
    config: cfg.CampaignConfig
    rules: q.CampaignRules
    stored_codes: Mapping[str, str]


class LeadFlow:
    """Campaign YAML + store + queue rules behind the daemon's few questions.

    One instance per daemon (or CLI command); it caches the rules per campaign and the
    campaigns' store ids, nothing about leads: the store is the only state, so a new
    instance on the same database after a crash sees exactly what was committed.
    """

    def __init__(self, store: Store, campaigns: Mapping[str, cfg.CampaignConfig]) -> None:
        self._store = store
        self._configs = dict(campaigns)
        self._rules = {name: rules_for(c) for name, c in self._configs.items()}
        self._ctx: dict[str, _Ctx] = {}
        self._names: dict[int, str] = {}

    def rules(self, campaign: str) -> q.CampaignRules:
        """The queue rules of a configured campaign."""
        if campaign not in self._rules:
            known = ", ".join(sorted(self._rules)) or "none"
            raise UnknownCampaign(f"no campaign {campaign!r} configured (known: {known})")
        return self._rules[campaign]

    async def _campaign(self, name: str) -> _Ctx:
        ctx = self._ctx.get(name)
        if ctx is not None:
            return ctx
        rules = self.rules(name)
        row = await self._store.get_campaign(name)
        if row is None:
            raise UnknownCampaign(
                f"campaign {name!r} is configured but not in the store yet (import its leads)"
            )
        config = self._configs[name]
        ctx = _Ctx(name, row.id, config, rules, _stored_codes(config))
        self._ctx[name] = ctx
        self._names[row.id] = name
        return ctx

    async def _campaign_name(self, campaign_id: int) -> str:
        if campaign_id not in self._names:
            rows: list[Campaign] = await self._store.list_campaigns()
            self._names.update({c.id: c.name for c in rows})
        name = self._names.get(campaign_id)
        if name is None:  # a foreign key makes this impossible; say so if it happens
            raise UnknownCampaign(f"campaign id {campaign_id} not found in the store")
        return name

    async def _campaign_of(self, lead: Lead) -> _Ctx:
        return await self._campaign(await self._campaign_name(lead.campaign_id))

    # what to dial ---------------------------------------------------------------------------
    async def next_leads(
        self,
        campaign: str,
        n: int,
        now: float,
        agent: str | None = None,
        *,
        presence: q.Presence | None = None,
        exclude: Collection[int] = (),
    ) -> list[Claimed]:
        """Claim up to ``n`` leads to dial now, best first, for ``agent`` or the pool (None).

        Due callbacks come first (R-CB-2/3/5/8), then ready leads whose time zone is inside
        calling hours now (R-DL-4), ordered and filtered by ``queue.select`` (guards,
        links, tie-break). ``presence`` is who is logged in and available; without it a
        callback owner counts as logged in, so a reservation holds for its whole window
        (R-CB-4). Pass it to hand a logged-out owner's callback on at once (R-CB-6) and, for
        pool dialling (``agent=None``), to get due callbacks of *available* owners first,
        one per owner, with ``reserved_for`` naming the agent the call must go to (R-CB-3).
        The leads are ``dialing`` in the store when this returns (crash-safety point).
        A campaign with ``enabled: false`` dials nothing. Leads in ``exclude`` are passed
        over (a preview the agent skipped is not shown to them again at once).
        """
        ctx = await self._campaign(campaign)
        if n <= 0 or not ctx.config.enabled:
            return []
        rules = ctx.rules
        at = to_datetime(now)
        # Due callbacks are served before any ready lead (class 0/1 before 2 in
        # ``queue.select``), so they are settled first and only the rest is asked of the
        # leads: the same offers as selecting from both at once, with fewer rows read.
        limit = max(4 * n, 50)
        while True:
            due = await self._store.due_callbacks(ctx.id, now, limit)
            callbacks = {d.lead.id: d.callback for d in due}
            floor = presence or _assumed_floor(agent, callbacks.values())
            candidates = [
                to_queue_lead(d.lead, d.callback) for d in due if d.lead.id not in exclude
            ]
            offers = q.select(candidates, rules, floor, at, agent, limit=n)
            if agent is None and presence is not None:
                offers = _owners_first(candidates, rules, presence, at, offers, n)
            if len(offers) >= n or len(due) < limit or limit >= _MAX_SCAN:
                break
            limit = min(4 * limit, _MAX_SCAN)
        if len(offers) < n:
            offers += await self._lead_offers(ctx, n - len(offers), n, now, agent, floor, exclude)
        claims: list[tuple[int, int | None]] = []
        for offer in offers:
            lead_id = int(offer.lead.id)
            cb = callbacks.get(lead_id)
            claims.append((lead_id, cb.id if cb is not None else None))
        won = set(await self._store.claim_for_dial(claims))
        claimed = []
        for offer in offers:
            lead_id = int(offer.lead.id)
            if lead_id not in won:
                continue
            cb = callbacks.get(lead_id)
            reserved = offer.kind is q.OfferKind.RESERVED_CALLBACK and cb is not None
            claimed.append(
                Claimed(
                    lead_id=lead_id,
                    number=offer.lead.phone,
                    campaign=campaign,
                    attempt=offer.lead.attempts + 1,
                    reserved_for=cb.owner_agent if reserved and cb is not None else None,
                    linked_agent=q.linked_owner(offer.lead, rules, at),
                    callback_comment=offer.comment,
                    callback_id=cb.id if cb is not None else None,
                )
            )
        return claimed

    async def _lead_offers(
        self,
        ctx: _Ctx,
        need: int,
        n: int,
        now: float,
        agent: str | None,
        floor: q.Presence,
        exclude: Collection[int],
    ) -> list[q.Offer]:
        """The best `need` ready leads not in `exclude` the rules accept now (after the
        callbacks of `n`).

        The store leaves out what it can tell from the row — closed zones, used-up
        attempts, other agents' links and, for the pool, the 72 h / 24 h redial guards —
        so the rules accept nearly every row and, for the least-recent tie-break (the
        store's own order), `need` rows suffice. Other tie-breaks reorder what the store
        returns, so they read a wider window. The window grows while the rules turn rows
        down, up to `_MAX_SCAN`.
        """
        rules = ctx.rules
        at = to_datetime(now)
        known = await self._store.campaign_zones(ctx.id)
        zones = [z for z in known if q.calling_allowed(rules.hours, z, at)]
        release = rules.link_release
        release_before = now - release.total_seconds() + _SLACK if release is not None else None
        guards: dict[str, float] = {}
        if not q.live_agent_guaranteed(rules, agent):
            guards = {
                "abandoned_before": now - rules.retry.abandon_guard.total_seconds() + _SLACK,
                "machine_before": now - rules.retry.machine_guard.total_seconds() + _SLACK,
            }
        exact = rules.tie_break is q.TieBreak.LEAST_RECENT
        limit = max(need + len(exclude) if exact else 4 * n, 50)
        while True:
            selection = await self._store.select_dialable(
                ctx.id, now, zones, limit, rules.retry.max_attempts, agent, release_before,
                callbacks=False, **guards,
            )  # fmt: skip
            leads = [to_queue_lead(lead) for lead in selection.leads if lead.id not in exclude]
            offers = q.select(leads, rules, floor, at, agent, limit=need)
            if len(offers) >= need or len(selection.leads) < limit or limit >= _MAX_SCAN:
                return offers
            limit = min(4 * limit, _MAX_SCAN)

    async def release(self, claimed: Claimed) -> bool:
        """Give back a claimed lead that was never dialled (a preview the agent skipped or
        logged out on): no attempt is recorded and the lead is as dialable as before.
        False when it was not ``dialing`` any more (nothing changed)."""
        return await self._store.unclaim(claimed.lead_id, claimed.callback_id)

    # what the dialer saw --------------------------------------------------------------------
    async def dialer_outcome(
        self,
        lead_id: int,
        campaign: str,
        outcome: q.Outcome | cfg.Outcome,
        started: float,
        ended: float,
        call_id: str | None = None,
    ) -> int:
        """Record a call no agent dispositions (busy, no_answer, machine, abandoned, failed).

        The campaign's mapped no-contact code is recorded (R-RC-1); status and next dial
        time follow the retry policy and guards (R-DL-3/4). Returns the attempt id. Raises
        ``ValueError`` for ``answered`` (the agent closes those with `disposition`) and
        ``dialerd.store.flow.LeadNotDialing`` if the outcome was already recorded.
        """
        result = q.Outcome(outcome.value)
        if result is q.Outcome.ANSWERED:
            raise ValueError("an answered call is closed by the agent's disposition()")
        ctx = await self._campaign(campaign)
        lead, cb = await self._dialing(lead_id, ctx)
        applied = q.apply_attempt(
            to_queue_lead(lead, cb), q.Attempt(to_datetime(ended), result), ctx.rules
        )
        return await self._record(ctx, lead, cb, applied, result, started, ended, call_id)

    # what the agent decided -----------------------------------------------------------------
    async def disposition(
        self,
        lead_id: int,
        campaign: str,
        agent: str,
        result_code: str | None,
        *,
        call_note: str = "",
        detail_note: str = "",
        registration: Mapping[str, Sequence[str]] | None = None,
        reschedule: Reschedule | None = None,
        voicemail: bool = False,
        email_to: str | None = None,
        assign_to: str | None = None,
        started: float,
        ended: float,
        call_id: str | None = None,
    ) -> int:
        """Close an answered call with the agent's disposition; the attempt id.

        Validates everything first and raises `DispositionError` listing every problem
        (unknown code, forced registration missing R-REG-2, reschedule without comment
        R-REG-4b, e-mail required R-RC-5, ...) with nothing written. Otherwise one
        transaction records the attempt with the note carried over (R-AD-3), moves the
        funnel phase (R-AD-1), links the address (R-RC-6), schedules the callback (R-CB,
        R-RC-4) and stores the registration (R-REG-1). ``voicemail=True`` (and no code) is
        the agent's "answered by a machine" mark (R-REG-4a).
        """
        ctx = await self._campaign(campaign)
        problems: list[str] = []
        lead = await self._store.get_lead(lead_id)
        if lead is None:
            raise DispositionError([f"no lead {lead_id}"])
        if lead.campaign_id != ctx.id:
            problems.append(f"lead {lead_id} is not in campaign {campaign!r}")
        if lead.status not in (LeadStatus.DIALING, LeadStatus.DNC):
            problems.append(f"lead {lead_id} is not on a call (status {lead.status})")
        for who, name in (("agent", agent), ("assign_to", assign_to)):
            if name is not None and await self._store.get_agent(name) is None:
                problems.append(f"unknown {who} {name!r}")
        request = None
        if reschedule is not None:
            if not reschedule.comment.strip():
                problems.append("rescheduling needs a comment (R-REG-4b)")
            elif reschedule.when < ended:
                problems.append("the rescheduled time is in the past")
            else:
                request = q.CallbackRequest(
                    to_datetime(reschedule.when), reschedule.target, reschedule.comment
                )
        chosen = {
            k: (v,) if isinstance(v, str) else tuple(v) for k, v in (registration or {}).items()
        }
        attempt = q.Attempt(
            at=to_datetime(ended),
            outcome=q.Outcome.ANSWERED,
            agent=agent,
            result_code=result_code or None,
            call_note=call_note,
            detail_note=detail_note,
            voicemail_marked=voicemail,
            reschedule=request,
            email_to=email_to,
            assign_to=assign_to,
            registration=chosen,
        )
        problems += q.disposition_problems(attempt, ctx.rules)
        topics = await self._topic_ids(ctx, chosen, problems)
        if problems:
            raise DispositionError(problems)
        cb = await self._store.open_callback(lead_id)
        applied = q.apply_attempt(to_queue_lead(lead, cb), attempt, ctx.rules)
        exhausted = q.lead_state(applied.lead, ctx.rules, attempt.at) is q.LeadState.EXHAUSTED
        if applied.lead.callback is not None and exhausted:
            raise DispositionError(
                [
                    f"all {ctx.rules.retry.max_attempts} attempts are used: the callback "
                    "could never be dialled (pick another code, or raise max_attempts)"
                ]
            )
        return await self._record(
            ctx, lead, cb, applied, q.Outcome.ANSWERED, started, ended, call_id, agent, topics
        )

    async def _topic_ids(
        self, ctx: _Ctx, chosen: Mapping[str, tuple[str, ...]], problems: list[str]
    ) -> list[int]:
        """The stored topic ids of a registration (problems appended for unknown ones)."""
        if not any(chosen.values()):
            return []
        stored = {(t.category, t.name): t.id for t in await self._store.registration_topics(ctx.id)}
        ids = []
        for category, topics in chosen.items():
            for topic in topics:
                topic_id = stored.get((category, topic))
                if topic_id is None:
                    problems.append(
                        f"registration topic {category!r}/{topic!r} is not in the store: "
                        "sync the campaign"
                    )
                else:
                    ids.append(topic_id)
        return ids

    async def _dialing(self, lead_id: int, ctx: _Ctx) -> tuple[Lead, Callback | None]:
        lead = await self._store.get_lead(lead_id)
        if lead is None or lead.campaign_id != ctx.id:
            raise LookupError(f"no lead {lead_id} in campaign {ctx.name!r}")
        return lead, await self._store.open_callback(lead_id)

    async def _record(
        self,
        ctx: _Ctx,
        lead: Lead,
        consumed: Callback | None,
        applied: q.Applied,
        seen: q.Outcome,
        started: float,
        ended: float,
        call_id: str | None,
        agent: str | None = None,
        topic_ids: Sequence[int] = (),
        note: str | None = None,
    ) -> int:
        """Write one applied attempt: attempt row, lead summary, callbacks, registration.

        The attempt row keeps what the dialer saw (``seen``: ``human`` for an answered
        call); the lead's ``last_outcome`` is the rules' effective outcome (a voicemail mark
        retries as no_answer), because the retry delay is computed from it.
        """
        entry = applied.entry
        new = applied.lead
        assert entry.result_code is not None
        code = ctx.stored_codes.get(entry.result_code, entry.result_code)
        update = lead_update(new, ctx.rules, entry.at, code)
        callback = None
        if update.status is LeadStatus.CALLBACK:
            assert new.callback is not None
            mine = new.callback.target is q.CallbackTarget.MYSELF
            due = to_epoch(new.callback.due_at)
            window = ctx.rules.reservation_window.total_seconds()
            callback = NewCallback(
                lead_id=lead.id,
                due_at=due,
                comment=new.callback.comment,
                owner_agent=new.callback.agent if mine else None,
                reserved_until=due + window if mine else None,
                created_by=new.callback.agent,
            )
        record = AttemptRecord(
            lead_id=lead.id,
            started_at=started,
            ended_at=ended,
            result_code=code,
            score=entry.priority.score,
            outcome=store_outcome(seen),
            agent=agent,
            call_id=await self._store.call_log_id(call_id) if call_id else None,
            note=entry.note if note is None else note,
            email_to=entry.email_to,
            email_status=entry.email_status.value if entry.email_status else None,
        )
        return await self._store.record_flow(
            record,
            update,
            consumed_callback=consumed.id if consumed is not None else None,
            callback=callback,
            topic_ids=topic_ids,
            now=ended,
        )

    # after a crash --------------------------------------------------------------------------
    async def recover(
        self, campaign: str, now: float, live_attempt_lead_ids: Collection[int]
    ) -> RecoveryReport:
        """Settle the leads a crash left ``dialing``.

        A lead whose call is not live in Asterisk any more gets one attempt with outcome
        ``failed`` (the campaign's failed code, note `RECOVERY_NOTE`: the real outcome is
        unknown) and is rescheduled by the retry rules — so it is neither lost nor redialled
        at once (unless the campaign's failed delay is 0). A callback it was serving is
        scheduled again for when the retry delay ends, same owner and comment. Leads in
        ``live_attempt_lead_ids`` are left ``dialing`` for the daemon to adopt.
        """
        ctx = await self._campaign(campaign)
        recovered: list[int] = []
        adopted: list[int] = []
        kept: list[int] = []
        live = set(live_attempt_lead_ids)
        for lead in await self._store.dialing_leads(ctx.id):
            if lead.id in live:
                adopted.append(lead.id)
                continue
            cb = await self._store.open_callback(lead.id)
            applied = q.apply_attempt(
                to_queue_lead(lead, cb), q.Attempt(to_datetime(now), q.Outcome.FAILED), ctx.rules
            )
            if cb is not None:
                due = q.retry_due_at(applied.lead, ctx.rules) or to_datetime(now)
                again = replace(_queue_callback(cb), due_at=due)
                applied = replace(applied, lead=replace(applied.lead, callback=again))
                if q.lead_state(applied.lead, ctx.rules, to_datetime(now)) is q.LeadState.CALLBACK:
                    kept.append(lead.id)
            await self._record(
                ctx, lead, cb, applied, q.Outcome.FAILED, now, now, None, note=RECOVERY_NOTE
            )
            recovered.append(lead.id)
        return RecoveryReport(campaign, tuple(recovered), tuple(adopted), tuple(kept))

    # views ----------------------------------------------------------------------------------
    async def screen_pop(self, lead_id: int) -> dict[str, Any]:
        """Everything the agent's screen shows for a lead (R-AD-1..4, R-RC-1..5, R-REG-1).

        Plain data (JSON-ready): lead fields, number, contact history with recordings and
        e-mail status, call score, engagement score, funnel phase, the open callback and its
        comment (R-CB-7), the campaign's result codes and registration categories.
        """
        lead = await self._store.get_lead(lead_id)
        if lead is None:
            raise LookupError(f"no lead {lead_id}")
        ctx = await self._campaign_of(lead)
        attempts = await self._store.attempts_of(lead_id)
        recordings = await self._store.recordings_by_call(
            [a.call_id for a in attempts if a.call_id is not None]
        )
        cb = await self._store.open_callback(lead_id)
        labels = {c.code: c.label for c in ctx.rules.result_codes}
        history = [
            {
                "at": a.started_at,
                "ended_at": a.ended_at,
                "agent": a.agent,
                "result_code": a.result_code,
                "label": labels.get(a.result_code, a.result_code),
                "outcome": a.outcome,
                "score": a.score,
                "note": a.note,
                "recordings": recordings.get(a.call_id, []) if a.call_id is not None else [],
                "email_to": a.email_to,
                "email_status": a.email_status,
            }
            for a in attempts
        ]
        return {
            "lead_id": lead.id,
            "campaign": ctx.name,
            "number": lead.number,
            "tz": lead.tz,
            "fields": dict(lead.fields),
            "status": lead.status.value,
            "phase": lead.phase,
            "attempts": lead.attempts,
            "call_score": lead.call_score,
            "engagement_score": q.engagement_score(
                q.FunnelPhase(lead.phase), [_history_entry(a) for a in attempts]
            ),
            "linked_agent": lead.linked_agent,
            "callback": None
            if cb is None
            else {
                "id": cb.id,
                "due_at": cb.due_at,
                "owner_agent": cb.owner_agent,
                "reserved_until": cb.reserved_until,
                "comment": cb.comment,
            },
            "history": history,
            "result_codes": [
                {
                    "code": c.code,
                    "label": c.label,
                    "category": c.category.value,
                    "contact_priority": c.priority.name.lower(),
                    "score": c.priority.score,
                    "callback_minutes": c.callback_minutes,
                    "detail_screen": c.detail_screen,
                    "allow_reassign": c.allow_reassign,
                    "require_email": c.require_email,
                }
                for c in ctx.rules.result_codes
            ],
            "registration": {
                "forced": ctx.rules.forced_registration,
                "categories": [
                    {"name": c.name, "multi": c.multi, "topics": list(c.topics)}
                    for c in ctx.rules.registration
                ],
            },
        }

    async def scheduled_calls(self, agent: str, now: float) -> list[ScheduledCall]:
        """The agent's own pending callbacks, all campaigns, earliest first (R-CB-1)."""
        rows = []
        for cb in await self._store.agent_callbacks(agent):
            lead = await self._store.get_lead(cb.lead_id)
            if lead is None:
                continue
            name = await self._campaign_name(lead.campaign_id)
            if now < cb.due_at:
                state = "upcoming"
            elif cb.reserved_until is not None and now < cb.reserved_until:
                state = "reserved"
            else:
                state = "open"
            rows.append(
                ScheduledCall(
                    cb.id,
                    lead.id,
                    name,
                    lead.number,
                    lead.fields.get("name", ""),
                    cb.due_at,
                    cb.reserved_until,
                    cb.comment,
                    state,
                )
            )
        return rows

    async def why(self, lead_id: int, now: float, agent: str | None = None) -> str:
        """Why the lead is or is not dialable at ``now`` (``dialerd leads why``).

        ``queue.explain`` with the campaign's rules — the very rule the hopper applies — plus
        what the rules cannot know here: the store status and that the floor is unknown.
        """
        lead = await self._store.get_lead(lead_id)
        if lead is None:
            raise LookupError(f"no lead {lead_id}")
        ctx = await self._campaign_of(lead)
        cb = await self._store.open_callback(lead_id)
        listed = bool(await self._store.dnc_subset([lead.number]))
        qlead = to_queue_lead(lead, cb, dnc=listed)
        floor = _assumed_floor(agent, [cb] if cb is not None else [])
        text = q.render(q.explain(qlead, ctx.rules, floor, to_datetime(now), agent))
        status = lead.status.value
        if lead.status is LeadStatus.WAITING and lead.next_dial_at <= now:
            status += " (retry delay over: the next selection wakes it)"
        notes = [f"campaign {ctx.name}, number {lead.number}, store status {status}"]
        if not ctx.config.enabled:
            notes.append("the campaign is disabled (enabled: false): nothing of it is dialled")
        if lead.status is LeadStatus.DIALING:
            notes.append("a call is in progress (status dialing): not offered until it ends")
        if cb is not None and cb.status is CallbackStatus.OFFERED:
            notes.append("its callback is being delivered now")
        notes.append(
            "floor unknown here: a callback owner is assumed logged in (if logged out, any "
            "agent gets the callback at once, R-CB-6); free agents and calls in flight "
            "are not known"
        )
        return "\n".join([text, *(f"  note: {n}" for n in notes)])


def _owners_first(
    candidates: Sequence[q.Lead],
    rules: q.CampaignRules,
    presence: q.Presence,
    at: datetime,
    offers: list[q.Offer],
    n: int,
) -> list[q.Offer]:
    """Pool offers with the reserved callbacks of available owners in front (R-CB-3).

    The pool (``agent=None``) may not take a reserved callback, but the daemon dialling for
    the pool can route a call to the owner when the owner is free: each available owner's
    earliest due reservation is offered as if selected for that agent (a live agent waits
    for it), at most one per owner, since one agent takes one call.
    """
    reserved: dict[str, q.Offer] = {}
    due_first = sorted(
        (c for c in candidates if c.callback is not None),
        key=lambda c: (c.callback.due_at if c.callback else at, str(c.id)),
    )
    for lead in due_first:
        assert lead.callback is not None
        owner = lead.callback.agent
        if owner is None or owner in reserved or not presence.available(owner):
            continue
        offer = q.offer_for(lead, rules, presence, at, owner)
        if offer is not None and offer.kind is q.OfferKind.RESERVED_CALLBACK:
            reserved[owner] = offer
    return [*reserved.values(), *offers][:n]


def _assumed_floor(agent: str | None, callbacks: Collection[Callback]) -> q.Presence:
    """The floor when the caller did not say: the asking agent is available and every
    callback owner is logged in (a reservation holds for its whole window)."""
    owners = {cb.owner_agent for cb in callbacks if cb.owner_agent is not None}
    return q.Presence.of(available=[agent] if agent else [], busy=owners - {agent})


def _history_entry(a: AttemptRecord) -> q.HistoryEntry:
    """The rules' history entry of a stored attempt (for the engagement score)."""
    return q.HistoryEntry(
        at=to_datetime(a.started_at),
        agent=a.agent,
        outcome=queue_outcome(a.outcome) if a.outcome else q.Outcome.FAILED,
        result_code=a.result_code,
        priority=q.ContactPriority(a.score),
        note=a.note,
        email_to=a.email_to,
        email_status=q.EmailStatus(a.email_status) if a.email_status else None,
    )
