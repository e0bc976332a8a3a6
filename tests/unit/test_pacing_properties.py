"""Invariants of `plan` over arbitrary floors (hypothesis), for every mode (R-DL-1, R-DL-2)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialerd.pacing import AgentCycle, DialOutcome, Floor, Pacer, create_pacer
from dialerd.pacing.simple import progressive_count

pytestmark = pytest.mark.unit

elapsed = st.floats(min_value=0.0, max_value=3000.0, allow_nan=False)
floors = st.builds(
    Floor,
    now=st.floats(min_value=0.0, max_value=1e6, allow_nan=False),
    agents_ready=st.integers(min_value=0, max_value=60),
    agents_talking=st.lists(elapsed, max_size=80).map(tuple),
    agents_wrapping=st.lists(st.floats(0.0, 120.0), max_size=20).map(tuple),
    calls_dialing=st.lists(st.floats(0.0, 90.0), max_size=250).map(tuple),
    calls_waiting=st.integers(min_value=0, max_value=10),
)


def warmed_predictive(max_ratio: float = 3.0) -> Pacer:
    """Deterministically fed with enough history to leave cold start."""
    pacer = create_pacer("predictive", {"max_ratio": max_ratio})
    for i in range(400):
        result = ("human", "no_answer", "machine", "no_answer", "busy")[i % 5]
        ring = 20.0 if result == "no_answer" else 3.0 + i % 11
        abandoned = result == "human" and i % 97 == 0
        pacer.record(DialOutcome(i * 0.7, ring, result, abandoned, 1.2 if i % 2 else 3.0))
    for i in range(120):
        pacer.record(AgentCycle(200.0 + i, talk_seconds=20.0 + (i * 37) % 400, wrap_seconds=8.0))
    return pacer


PACERS: dict[str, Pacer] = {
    "preview": create_pacer("preview"),
    "progressive": create_pacer("progressive"),
    "ratio": create_pacer("ratio", {"ratio": 2.5}),
    "predictive-cold": create_pacer("predictive"),
    "predictive": warmed_predictive(),
    "predictive-tight": warmed_predictive(max_ratio=1.2),
}
MAX_RATIO = {"predictive-tight": 1.2}


@settings(max_examples=150, deadline=None)
@given(floor=floors)
@pytest.mark.parametrize("name", list(PACERS))
def test_plan_is_a_count_within_the_in_flight_ceiling(name: str, floor: Floor) -> None:
    n = PACERS[name].plan(floor)
    assert isinstance(n, int)
    assert n >= 0
    ceiling = math.floor(MAX_RATIO.get(name, 3.0) * floor.agents + 1e-9)
    assert n == 0 or n + floor.in_flight <= ceiling


@settings(max_examples=150, deadline=None)
@given(floor=floors)
def test_preview_never_and_progressive_never_over_dials(floor: Floor) -> None:
    assert PACERS["preview"].plan(floor) == 0
    n = PACERS["progressive"].plan(floor)
    assert n == progressive_count(floor)
    assert n + floor.in_flight <= max(floor.agents_ready, floor.in_flight)


@settings(max_examples=150, deadline=None)
@given(floor=floors)
def test_predictive_is_at_least_progressive_and_cold_start_is_progressive(floor: Floor) -> None:
    assert PACERS["predictive-cold"].plan(floor) == progressive_count(floor)
    assert PACERS["predictive"].plan(floor) >= progressive_count(floor)


@settings(max_examples=100, deadline=None)
@given(floor=floors)
def test_predictive_plan_is_repeatable_and_monotone_in_ready_agents(floor: Floor) -> None:
    pacer = PACERS["predictive"]
    first = pacer.plan(floor)
    assert pacer.plan(floor) == first
    more = Floor(
        floor.now,
        floor.agents_ready + 1,
        floor.agents_talking,
        floor.agents_wrapping,
        floor.calls_dialing,
        floor.calls_waiting,
    )
    assert pacer.plan(more) >= first
