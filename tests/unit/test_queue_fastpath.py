"""The hopper's fast path (`offer_kind`) and the operator's `explain` can never drift apart:
for any lead, campaign, floor, clock and asking agent they give the same verdict, and the
kind of offer is the one explain's callback status implies (R-DL-4, R-CB-2..8, R-RC-6)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialerd.queue import (
    CallbackPhase,
    CallingHours,
    CampaignRules,
    Explanation,
    FunnelPhase,
    Lead,
    OfferKind,
    Presence,
    explain,
    offer_for,
    offer_kind,
)
from tests.unit.test_queue_properties import AGENTS, Scenario, scenarios

pytestmark = pytest.mark.unit


@st.composite
def any_phase_scenarios(draw: st.DrawFn) -> Scenario:
    """The property tests' scenarios, with leads in every funnel phase (exits included)."""
    pool, rules, presence, now, asker = draw(scenarios())
    pool = [replace(ld, phase=draw(st.sampled_from(FunnelPhase))) for ld in pool]
    return pool, rules, presence, now, asker


def _kind_from_explanation(lead: Lead, explanation: Explanation) -> OfferKind | None:
    """The offer kind as explain's own findings imply it (the oracle)."""
    if not explanation.dialable:
        return None
    if explanation.callback is not None:
        if explanation.callback.phase is CallbackPhase.RESERVED:
            return OfferKind.RESERVED_CALLBACK
        return OfferKind.CALLBACK
    return OfferKind.RETRY if lead.attempts else OfferKind.FRESH


def _agree(
    lead: Lead, rules: CampaignRules, presence: Presence, now: datetime, asker: str | None
) -> None:
    explanation = explain(lead, rules, presence, now, asker)
    kind = offer_kind(lead, rules, presence, now, asker)
    assert (kind is not None) == explanation.dialable, explanation.blocking
    assert kind == _kind_from_explanation(lead, explanation)
    offer = offer_for(lead, rules, presence, now, asker)
    assert (offer.kind if offer is not None else None) == kind


@settings(max_examples=300, deadline=None)
@given(any_phase_scenarios())
def test_fast_path_agrees_with_explain_for_every_agent_and_the_pool_r_dl_4_r_cb_4(
    scenario: Scenario,
) -> None:
    """R-DL-4, R-CB-4, R-RC-6: whatever the situation, the hopper's verdict and kind are
    explain's, asked for the pool and for each agent (reservations and links differ)."""
    pool, rules, presence, now, _ = scenario
    for lead in pool:
        for asker in (None, *AGENTS):
            _agree(lead, rules, presence, now, asker)


def test_naive_instant_is_rejected_like_explain() -> None:
    """Every rule works on absolute instants: a naive ``now`` is an error on both paths."""
    lead = Lead(id=1, phone="+31205550101", timezone="Europe/Amsterdam")
    rules = CampaignRules(result_codes=(), hours=CallingHours.always())
    with pytest.raises(ValueError, match="time-zone-aware"):
        offer_kind(lead, rules, Presence(), datetime(2026, 11, 23, 12))
    with pytest.raises(ValueError, match="time-zone-aware"):
        explain(lead, rules, Presence(), datetime(2026, 11, 23, 12))
