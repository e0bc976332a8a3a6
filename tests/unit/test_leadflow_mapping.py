"""The lead flow's mappings: campaign YAML → queue rules, store rows ↔ queue leads.

Pure: no database. The campaign is the shipped ``conf/campaigns/demo.yaml`` read by the real
loader, so a new YAML key that ``rules_for`` forgets shows up as a failing field here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from dialerd.config import CampaignConfig, load_config
from dialerd.leadflow import (
    _stored_codes,
    lead_update,
    queue_outcome,
    rules_for,
    store_outcome,
    to_datetime,
    to_epoch,
    to_queue_lead,
)
from dialerd.queue import (
    VOICEMAIL_CODE,
    Attempt,
    CallbackTarget,
    Category,
    ContactPriority,
    DialMode,
    FunnelPhase,
    LeadState,
    Outcome,
    TieBreak,
    apply_attempt,
)
from dialerd.store.models import Callback, CallbackStatus, Lead, LeadStatus

CONF = Path(__file__).resolve().parents[2] / "conf"
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo() -> CampaignConfig:
    return load_config(CONF).campaigns["demo"]


def test_rules_for_maps_every_field(demo: CampaignConfig) -> None:
    rules = rules_for(demo)
    assert rules.mode is DialMode.PREDICTIVE
    assert rules.reservation_window == timedelta(minutes=20)
    assert rules.link_release == timedelta(minutes=10080)
    assert rules.tie_break is TieBreak.LEAST_RECENT
    r = rules.retry
    assert r.max_attempts == 5
    assert (r.busy, r.no_answer, r.machine, r.abandoned, r.failed) == tuple(
        timedelta(minutes=m) for m in (10, 60, 240, 5, 720)
    )
    assert r.answered == timedelta(minutes=240)
    assert (r.abandon_guard, r.machine_guard) == (timedelta(hours=72), timedelta(hours=24))
    assert rules.outcome_codes == {
        Outcome.BUSY: "busy",
        Outcome.NO_ANSWER: "no_answer",
        Outcome.MACHINE: "voicemail",
        Outcome.ABANDONED: "abandoned",
        Outcome.FAILED: "failed",
    }
    assert [c.code for c in rules.result_codes] == list(demo.result_codes)
    cb = rules.code("callback")
    assert (cb.category, cb.priority, cb.callback_minutes, cb.label) == (
        Category.CALLBACK, ContactPriority.HIGH, 180, "Call back later",
    )  # fmt: skip
    assert (cb.detail_screen, cb.allow_reassign, cb.require_email) == (True, True, False)
    assert cb.funnel_phase is FunnelPhase.QUALIFIED_PROSPECT
    assert rules.code("appointment").require_email
    assert rules.code("voicemail").retry_as is Outcome.MACHINE
    assert rules.code("not_interested").funnel_phase is FunnelPhase.NEGATIVE
    assert rules.forced_registration
    assert [(c.name, c.multi, c.topics) for c in rules.registration] == [
        ("Reason for call", False, ("Information", "Complaint", "Sale")),
        ("Products discussed", True, ("Energy", "Insurance", "Internet")),
    ]
    # "00:00-24:00" every day: 7 windows up to the end of the day
    assert len(rules.hours.windows) == 7
    assert {(w.start, w.end) for w in rules.hours.windows} == {(time(0), time.max)}


def test_rules_for_hours_holidays_and_optional_fields(demo: CampaignConfig) -> None:
    """Split windows, weekdays left out, holidays and an absent link release (R-DL-4)."""
    data = demo.model_dump(mode="json")
    data["calling_hours"] = {
        "mon": ["09:00-12:30", "13:30-21:00"],
        "sat": ["10:00-14:00"],
        "holidays": ["2026-12-25"],
    }
    data["link_release_minutes"] = None
    data["tie_break"] = "import-order"
    rules = rules_for(CampaignConfig.model_validate(data))
    assert [(w.weekday, w.start, w.end) for w in rules.hours.windows] == [
        (0, time(9), time(12, 30)),
        (0, time(13, 30), time(21)),
        (5, time(10), time(14)),
    ]
    assert rules.hours.holidays == frozenset({date(2026, 12, 25)})
    assert rules.link_release is None and rules.tie_break is TieBreak.IMPORT_ORDER


def test_time_and_outcome_mapping() -> None:
    assert to_datetime(to_epoch(T0)) == T0 and to_datetime(0.5).tzinfo is UTC
    assert store_outcome(Outcome.ANSWERED) == "human"
    for outcome in Outcome:
        assert queue_outcome(store_outcome(outcome)) is outcome


def _lead(**kw: object) -> Lead:
    base: dict[str, object] = dict(
        id=7, campaign_id=1, number="+31201234567", tz="Europe/Amsterdam", fields={},
        status=LeadStatus.DIALING, phase="prospect", rank=3, attempts=1, score_total=3,
        call_score=3.0, next_dial_at=0.0,
    )  # fmt: skip
    base.update(kw)
    return Lead(**base)  # type: ignore[arg-type]


def test_store_lead_to_queue_lead_and_back(demo: CampaignConfig) -> None:
    rules = rules_for(demo)
    t = to_epoch(T0)
    stored = _lead(
        last_attempt_at=t - 3600, last_outcome="human", last_machine_at=t - 7200,
        linked_agent="ann", linked_at=t - 3600,
    )  # fmt: skip
    cb = Callback(5, 7, 1, "ann", t + 600, t + 1800, "ring at 3", CallbackStatus.OFFERED, "ann", t)
    lead = to_queue_lead(stored, cb)
    assert (lead.id, lead.phone, lead.timezone, lead.rank, lead.attempts) == (
        7, "+31201234567", "Europe/Amsterdam", 3, 1,
    )  # fmt: skip
    assert lead.last_outcome is Outcome.ANSWERED and lead.phase is FunnelPhase.PROSPECT
    assert lead.last_machine_at == T0 - timedelta(hours=2)
    assert (lead.linked_agent, lead.linked_at) == ("ann", T0 - timedelta(hours=1))
    assert lead.callback is not None
    assert (lead.callback.target, lead.callback.agent, lead.callback.comment) == (
        CallbackTarget.MYSELF, "ann", "ring at 3",
    )  # fmt: skip
    assert not lead.closed and not lead.dnc
    assert to_queue_lead(_lead(status=LeadStatus.DONE)).closed
    assert to_queue_lead(_lead(status=LeadStatus.DNC)).dnc
    assert to_queue_lead(_lead(), dnc=True).dnc
    # a link whose agent was deleted (ON DELETE SET NULL) is no link
    assert to_queue_lead(_lead(linked_at=t)).linked_agent is None
    # an "any agent" callback
    anyone = Callback(6, 7, 1, None, t, None, "", CallbackStatus.PENDING, "bob", t)
    assert to_queue_lead(stored, anyone).callback.target is CallbackTarget.ANY  # type: ignore[union-attr]

    applied = apply_attempt(lead, Attempt(T0, Outcome.BUSY), rules)
    update = lead_update(applied.lead, rules, T0, "busy")
    assert update.status is LeadStatus.WAITING
    assert update.next_dial_at == t + 600  # busy: 10 min
    assert (update.attempts, update.score_total, update.call_score) == (2, 4, 2.0)
    assert (update.last_outcome, update.last_result, update.last_attempt_at) == ("busy", "busy", t)
    assert update.last_machine_at == t - 7200 and update.linked_agent == "ann"


def test_lead_update_states(demo: CampaignConfig) -> None:
    """Status follows queue.lead_state; next_dial_at the callback or the retry delay."""
    rules = rules_for(demo)
    t = to_epoch(T0)
    fresh = to_queue_lead(_lead(attempts=0, score_total=2, phase="suspect"))
    answered = Attempt(T0, Outcome.ANSWERED, agent="ann", result_code="callback",
                       registration={"Reason for call": ("Sale",)})  # fmt: skip
    cb = lead_update(apply_attempt(fresh, answered, rules).lead, rules, T0, "callback")
    assert (cb.status, cb.next_dial_at, cb.phase) == (
        LeadStatus.CALLBACK, t + 180 * 60, "qualified_prospect",
    )  # fmt: skip
    order = Attempt(T0, Outcome.ANSWERED, agent="ann", result_code="order",
                    registration={"Reason for call": ("Sale",)})  # fmt: skip
    done = lead_update(apply_attempt(fresh, order, rules).lead, rules, T0, "order")
    assert (done.status, done.phase) == (LeadStatus.DONE, "order")
    last = to_queue_lead(_lead(attempts=4, score_total=6))
    out = lead_update(apply_attempt(last, Attempt(T0, Outcome.FAILED), rules).lead, rules, T0, "x")
    assert out.status is LeadStatus.EXHAUSTED
    assert {s.value for s in LeadState} <= {s.value for s in LeadStatus}


def test_voicemail_builtin_code_is_stored_as_the_machine_code(demo: CampaignConfig) -> None:
    """attempts.result_code references the campaign's codes: the queue's built-in
    ``agent:voicemail`` is stored as the campaign's machine code (R-REG-4a)."""
    assert _stored_codes(demo)[VOICEMAIL_CODE] == "voicemail"
    assert _stored_codes(demo)["dialer:failed"] == "failed"
