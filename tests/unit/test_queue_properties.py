"""Property tests: whatever the lead, campaign, floor and clock, the hopper never offers a
lead outside its calling hours, above its max attempts, on the DNC list, inside the
72 h / 24 h guards without a live agent, or reserved for someone else (R-DL-4, R-CB-4)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialerd.queue import (
    Attempt,
    Callback,
    CallbackPhase,
    CallbackTarget,
    CallingHours,
    CampaignRules,
    DialMode,
    FunnelPhase,
    Lead,
    LeadState,
    Outcome,
    Presence,
    RetryPolicy,
    TieBreak,
    Window,
    apply_attempt,
    callback_status,
    explain,
    is_open,
    lead_state,
    next_opening,
    select,
)
from tests.unit.queue_builders import CODES, TOPICS

pytestmark = pytest.mark.unit

AGENTS = ("ann", "bob", "cem")
ZONES = (
    "Europe/Amsterdam",
    "Europe/Amsterdam,America/Chicago",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Lord_Howe",  # half-hour DST shift
    "Pacific/Chatham",
    "UTC",
    "Invalid/Zone",
)
START = datetime(2026, 3, 1, tzinfo=UTC)  # spans the spring DST changes
instants = st.integers(0, 60 * 24 * 60).map(lambda m: START + timedelta(minutes=m))
agent = st.sampled_from(AGENTS)
rarely = st.sampled_from([False, False, False, False, True])


@st.composite
def windows(draw: st.DrawFn) -> Window:
    start = draw(st.integers(0, 23 * 60))
    end = draw(st.integers(start + 1, 24 * 60 - 1))
    return Window(draw(st.integers(0, 6)), time(start // 60, start % 60), time(end // 60, end % 60))


calling_hours = st.builds(
    CallingHours,
    st.lists(windows(), max_size=12).map(tuple),
    st.frozensets(st.dates(date(2026, 3, 1), date(2026, 5, 1)), max_size=5),
)


@st.composite
def campaigns(draw: st.DrawFn) -> CampaignRules:
    return CampaignRules(
        result_codes=CODES,
        hours=draw(st.just(CallingHours.always()) | calling_hours),
        retry=RetryPolicy(
            max_attempts=draw(st.integers(1, 6)),
            busy=timedelta(minutes=draw(st.integers(0, 120))),
            no_answer=timedelta(minutes=draw(st.integers(0, 600))),
            machine=timedelta(minutes=draw(st.integers(0, 3000))),
            abandoned=timedelta(minutes=draw(st.integers(0, 3000))),
        ),
        mode=draw(st.sampled_from(DialMode)),
        reservation_window=timedelta(minutes=draw(st.integers(0, 60))),
        link_release=draw(st.none() | st.integers(1, 5000).map(lambda m: timedelta(minutes=m))),
        tie_break=draw(st.sampled_from(TieBreak)),
        registration=TOPICS,
    )


@st.composite
def leads(draw: st.DrawFn, lead_id: int, now: datetime) -> Lead:
    """A lead whose history lies around ``now`` (mostly before it), so the rules bite."""

    def near() -> datetime:
        return now + timedelta(minutes=draw(st.integers(-6 * 24 * 60, 12 * 60)))

    def maybe() -> datetime | None:
        return near() if draw(st.booleans()) else None

    attempts = draw(st.integers(0, 2) | st.integers(0, 7))
    linked = draw(st.sampled_from((*AGENTS, None)))
    cb = None
    if draw(st.booleans()):
        cb = Callback(near(), draw(st.sampled_from(CallbackTarget)), draw(agent), "c")
    return Lead(
        id=lead_id,
        phone=f"+3120555{lead_id:04d}",
        timezone=draw(st.sampled_from(ZONES)),
        rank=draw(st.integers(0, 5)),
        dnc=draw(rarely),
        closed=draw(rarely),
        attempts=attempts,
        score_total=2 + draw(st.integers(attempts, 6 * attempts)),
        last_attempt_at=maybe(),
        last_outcome=draw(st.none() | st.sampled_from(Outcome)),
        last_abandoned_at=maybe(),
        last_machine_at=maybe(),
        linked_agent=linked,
        linked_at=near() if linked else None,
        callback=cb,
    )


Scenario = tuple[list[Lead], CampaignRules, Presence, datetime, str | None]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    now = draw(instants)
    pool = [draw(leads(i, now)) for i in range(draw(st.integers(0, 12)))]
    available = draw(st.frozensets(agent))
    presence = Presence.of(available=available, busy=draw(st.frozensets(agent)) - available)
    return pool, draw(campaigns()), presence, now, draw(st.none() | agent)


def _inside_hours_oracle(hours: CallingHours, tz: str, now: datetime) -> bool:
    """Calling hours recomputed independently of dialerd.queue.hours."""
    for name in tz.split(","):
        try:
            local = now.astimezone(ZoneInfo(name))
        except ZoneInfoNotFoundError:
            return False
        if local.date() in hours.holidays:
            return False
        hhmm = (local.hour, local.minute, local.second, local.microsecond)
        if not any(
            w.weekday == local.weekday()
            and (w.start.hour, w.start.minute, w.start.second, w.start.microsecond)
            <= hhmm
            < (w.end.hour, w.end.minute, w.end.second, w.end.microsecond)
            for w in hours.windows
        ):
            return False
    return True


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_never_offered_outside_hours_above_max_attempts_or_on_dnc_r_dl_4(
    scenario: Scenario,
) -> None:
    """R-DL-4: the hard limits hold for every offer, in every situation."""
    pool, rules, presence, now, asker = scenario
    offers = select(pool, rules, presence, now, asker, limit=len(pool) + 1)
    guaranteed = rules.mode is DialMode.PREVIEW or asker is not None
    for offer in offers:
        ld = offer.lead
        assert _inside_hours_oracle(rules.hours, ld.timezone, now), ld.timezone
        assert ld.attempts < rules.retry.max_attempts
        assert not ld.dnc
        assert not ld.closed
        if not guaranteed:
            assert ld.last_abandoned_at is None or now >= ld.last_abandoned_at + timedelta(hours=72)
            assert ld.last_machine_at is None or now >= ld.last_machine_at + timedelta(hours=24)
        # the store's precomputed status is a superset prefilter of the exact rule
        assert lead_state(ld, rules, now) in (LeadState.READY, LeadState.CALLBACK)
        if ld.callback is not None:
            status = callback_status(ld.callback, rules, presence, now)
            assert status.phase is not CallbackPhase.PENDING
            assert status.reserved_for in (None, asker)  # R-CB-4: nobody else takes it


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_hopper_offers_exactly_what_explain_calls_dialable_r_dl_4(scenario: Scenario) -> None:
    """R-DL-4: ``dialerd leads why`` and the hopper can never disagree."""
    pool, rules, presence, now, asker = scenario
    offered = {o.lead.id for o in select(pool, rules, presence, now, asker, limit=len(pool) + 1)}
    dialable = {ld.id for ld in pool if explain(ld, rules, presence, now, asker).dialable}
    assert offered == dialable


@settings(max_examples=300, deadline=None)
@given(calling_hours, st.sampled_from(ZONES[:-1]), instants, st.integers(1, 600))
def test_next_opening_is_open_and_nothing_earlier_is_r_dl_4(
    hours: CallingHours, tz: str, now: datetime, probe: int
) -> None:
    """R-DL-4: the announced next window really is the first open instant."""
    opening = next_opening(hours, tz, now)
    if opening is None:
        assert not is_open(hours, tz, now)
        return
    assert opening >= now
    assert is_open(hours, tz, opening)
    earlier = now + (opening - now) * (probe / 601)
    if earlier < opening:
        assert not is_open(hours, tz, earlier)


attempts_strategy = st.builds(
    lambda minutes, outcome, code: Attempt(
        at=START + timedelta(minutes=minutes),
        outcome=outcome,
        agent="ann" if outcome is Outcome.ANSWERED else None,
        result_code=code if outcome is Outcome.ANSWERED else None,
        email_to="cp@example.org",
    ),
    st.integers(0, 10_000),
    st.sampled_from(Outcome),
    st.sampled_from([c.code for c in CODES if not c.force_phase]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(attempts_strategy, max_size=10))
def test_phase_never_moves_backwards_and_score_stays_in_range_r_ad_1_r_rc_3(
    history: list[Attempt],
) -> None:
    """R-AD-1 / R-RC-3: without a forcing code the funnel only moves forward (or exits for
    good), and the call score stays between the lowest and highest contact scores."""
    rules = CampaignRules(result_codes=CODES, hours=CallingHours.always())
    ld = Lead(id="P", phone="+31205550000", timezone="UTC")
    for attempt in sorted(history, key=lambda a: a.at):
        before = ld.phase
        ld = apply_attempt(ld, attempt, rules).lead
        if before.in_funnel and ld.phase.in_funnel:
            assert ld.phase.rank >= before.rank
        if not before.in_funnel:
            assert ld.phase is before
        assert ld.phase is not FunnelPhase.SUSPECT
        assert 1 <= ld.score_total / ld.attempts <= 8
