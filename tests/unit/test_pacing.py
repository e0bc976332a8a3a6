"""The pacing seam (docs/pacing.md, R-DL-1 modes, R-DL-2 abandon cap): behaviour, not speed."""

from __future__ import annotations

import math

import pytest

from dialerd.pacing import MODES, AgentCycle, DialOutcome, Floor, create_pacer, valid_settings
from dialerd.pacing.estimators import Ledger
from dialerd.pacing.predictive import PredictivePacer
from dialerd.pacing.sim import Scenario, simulate

pytestmark = pytest.mark.unit


def busy_floor(now: float = 1000.0) -> Floor:
    """Nobody ready, ten agents finishing their 10 s wrap-up, nothing dialing: a
    predictive dialer should already be launching, progressive must not."""
    return Floor(now=now, agents_ready=0, agents_wrapping=(9.5,) * 10)


def warmed(settings: dict[str, float] | None = None, every: int = 5) -> PredictivePacer:
    """A predictive pacer that has seen a steady list: one live answer in `every`
    outcomes (20 %), 90 s talk, 10 s wrap."""
    pacer = create_pacer("predictive", settings)
    assert isinstance(pacer, PredictivePacer)
    for i in range(500):
        result = "human" if i % every == 0 else ("no_answer" if i % 5 < 3 else "machine")
        ring = 20.0 if result == "no_answer" else 6.0 + i % 7
        pacer.record(DialOutcome(at=i * 0.5, ring_seconds=ring, result=result, amd_seconds=1.5))
    for i in range(100):
        pacer.record(AgentCycle(at=250.0 + i, talk_seconds=60.0 + i % 60, wrap_seconds=10.0))
    return pacer


# --- create_pacer: modes and settings -------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_r_dl_1_every_mode_is_created_with_defaults(mode: str) -> None:
    pacer = create_pacer(mode)
    assert pacer.mode == mode
    assert pacer.plan(Floor(now=0.0, agents_ready=0)) == 0


def test_unknown_mode_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown pacing mode 'turbo'") as info:
        create_pacer("turbo")
    for mode in MODES:
        assert mode in str(info.value)


def test_unknown_setting_names_the_valid_ones_for_that_mode() -> None:
    with pytest.raises(ValueError, match="unknown setting 'ratio' for pacing mode 'progressive'"):
        create_pacer("progressive", {"ratio": 2})
    with pytest.raises(ValueError, match="valid settings: max_abandon_rate, connect_deadline"):
        create_pacer("ratio", {"dial_level": 2})


@pytest.mark.parametrize(
    ("mode", "settings", "message"),
    [
        ("predictive", {"max_abandon_rate": 0}, r"'max_abandon_rate'=0 is outside \(0, 0.5\]"),
        ("predictive", {"max_abandon_rate": 0.9}, "max_abandon_rate"),
        ("ratio", {"ratio": "2"}, "'ratio' must be a number"),
        ("ratio", {"ratio": True}, "'ratio' must be a number"),
        ("ratio", {"ratio": math.nan}, "NaN"),
        ("ratio", {"ratio": 4.0}, "'ratio'=4 exceeds 'max_ratio'=3"),
        ("progressive", {"max_ratio": 0.5}, "max_ratio"),
        ("progressive", {"connect_deadline": -1}, "connect_deadline"),
        ("predictive", {"min_live_answers": 2.5}, "whole number"),
        ("predictive", {"target_abandon_rate": 0.04}, "exceeds 'max_abandon_rate'=0.03"),
    ],
)
def test_bad_setting_values_are_rejected_by_name(
    mode: str, settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        create_pacer(mode, settings)


def test_settings_must_be_a_mapping() -> None:
    with pytest.raises(ValueError, match="must be a mapping"):
        create_pacer("ratio", [("ratio", 2)])  # type: ignore[arg-type]


def test_value_types_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="is not one of human, machine"):
        DialOutcome(at=0.0, ring_seconds=1.0, result="voicemail")
    with pytest.raises(ValueError, match="only meaningful for result 'human'"):
        DialOutcome(at=0.0, ring_seconds=1.0, result="busy", abandoned=True)
    with pytest.raises(ValueError, match="must be >= 0"):
        Floor(now=0.0, agents_ready=-1)
    with pytest.raises(ValueError, match=r"DialOutcome.ring_seconds must be a finite number"):
        DialOutcome(at=0.0, ring_seconds=math.nan, result="busy")
    with pytest.raises(ValueError, match=r"AgentCycle.wrap_seconds must be a finite number"):
        AgentCycle(at=0.0, talk_seconds=10.0, wrap_seconds=-1.0)


# --- the simple modes ---------------------------------------------------------------------


def test_preview_never_dials() -> None:
    pacer = create_pacer("preview")
    assert pacer.plan(Floor(now=5.0, agents_ready=30)) == 0


def test_progressive_dials_one_call_per_uncovered_ready_agent() -> None:
    pacer = create_pacer("progressive")
    floor = Floor(now=1.0, agents_ready=5, calls_dialing=(3.0, 1.0), calls_waiting=1)
    assert pacer.plan(floor) == 2
    assert pacer.plan(busy_floor()) == 0


def test_ratio_dials_ratio_per_ready_agent_minus_calls_in_flight() -> None:
    pacer = create_pacer("ratio", {"ratio": 2.5})
    assert pacer.plan(Floor(now=1.0, agents_ready=4, calls_dialing=(1.0,) * 3)) == 7


def test_max_ratio_caps_calls_in_flight() -> None:
    floor = Floor(now=1000.0, agents_ready=0, agents_wrapping=(9.5,) * 10, calls_dialing=(1.0,) * 8)
    assert warmed().plan(floor) > 2
    assert warmed({"max_ratio": 1.0}).plan(floor) == 2


def test_predictive_ceiling_leaves_room_for_low_answer_lists() -> None:
    """At 8 % live, ten agents about to be free need more than 3 calls in flight each;
    the fixed modes keep the stricter default ceiling of 3."""
    assert create_pacer("ratio").settings.max_ratio == 3.0
    assert valid_settings("predictive").count("max_ratio") == 1
    floor = Floor(now=1000.0, agents_ready=0, agents_wrapping=(9.5,) * 10)
    assert warmed(every=12).plan(floor) > 30
    assert warmed({"max_ratio": 3.0}, every=12).plan(floor) == 30


# --- predictive ------------------------------------------------------------------------------


def test_predictive_cold_start_behaves_progressively() -> None:
    pacer = create_pacer("predictive")
    assert pacer.plan(busy_floor()) == 0
    assert pacer.plan(Floor(now=0.0, agents_ready=3)) == 3
    for i in range(5):  # too little data: still progressive
        pacer.record(DialOutcome(at=float(i), ring_seconds=5.0, result="human"))
    assert pacer.plan(busy_floor()) == 0


def test_predictive_dials_ahead_for_ready_agents_before_it_knows_the_agents() -> None:
    """Once the list has shown its answer rate, ready agents get ~1/p calls each, but
    busy agents count as never free until the floor has turned over once."""
    pacer = create_pacer("predictive")
    for i in range(200):  # one live answer in five, no agent cycle yet
        result = "human" if i % 5 == 0 else "no_answer"
        pacer.record(DialOutcome(at=i * 0.5, ring_seconds=6.0, result=result, amd_seconds=1.5))
    assert pacer.plan(Floor(now=100.0, agents_ready=10)) > 10
    assert pacer.plan(busy_floor(100.0)) == 0
    assert warmed().plan(busy_floor()) > 0


def test_predictive_dials_ahead_of_agents_about_to_be_free() -> None:
    pacer = warmed()
    assert pacer.plan(busy_floor()) > 0
    # The same agents 5 s into their calls are not about to be free.
    assert pacer.plan(Floor(now=1000.0, agents_ready=0, agents_talking=(5.0,) * 10)) == 0


def test_predictive_never_dials_fewer_than_progressive() -> None:
    pacer = warmed()
    floor = Floor(now=1000.0, agents_ready=4, calls_dialing=(19.0,) * 2)
    assert pacer.plan(floor) >= 2


def test_predictive_counts_ringing_calls_by_how_long_they_rang() -> None:
    """A call that has rung 19 s is nearly dead; eight fresh calls are demand."""
    pacer = warmed()
    wrapping = (9.5,) * 4
    stale = Floor(now=1000.0, agents_ready=2, agents_wrapping=wrapping, calls_dialing=(19.5,) * 8)
    fresh = Floor(now=1000.0, agents_ready=2, agents_wrapping=wrapping, calls_dialing=(0.5,) * 8)
    assert pacer.plan(stale) > pacer.plan(fresh)


def test_predictive_survives_non_finite_elapsed_times() -> None:
    """A confused caller must not stop the pacing loop: NaN/inf read as 'very long'."""
    floor = Floor(
        now=1000.0,
        agents_ready=1,
        agents_talking=(math.nan, math.inf),
        agents_wrapping=(9.5,),
        calls_dialing=(math.inf, -math.inf, math.nan, 3.0),
    )
    n = warmed().plan(floor)
    assert 0 <= n <= 3 * floor.agents - floor.in_flight


def test_predictive_is_deterministic() -> None:
    floors = [busy_floor(1000.0 + i) for i in range(3)] + [Floor(now=1010.0, agents_ready=4)]
    assert [warmed().plan(f) for f in floors] == [warmed().plan(f) for f in floors]


def test_feedback_lowers_risk_after_abandons_and_raises_it_after_clean_answers() -> None:
    pacer = warmed()
    start = pacer.risk
    for i in range(20):
        pacer.record(DialOutcome(at=300.0 + i, ring_seconds=5.0, result="human", abandoned=True))
    lowered = pacer.risk
    assert lowered < start
    for i in range(3000):
        pacer.record(DialOutcome(at=400.0 + i, ring_seconds=5.0, result="human"))
    assert pacer.risk > lowered


def test_ledger_forgets_outside_its_window() -> None:
    ledger = Ledger(window=100.0, buckets=10)
    ledger.add(0.0, 10.0, 5.0)
    ledger.add(150.0, 10.0, 0.0)
    assert (ledger.live, ledger.abandoned) == (10.0, 0.0)
    assert ledger.rate(prior_rate=0.03, prior_live=10.0) == pytest.approx(0.015)


# --- the simulator -------------------------------------------------------------------------


def test_simulation_is_deterministic_for_a_seed() -> None:
    scenario = Scenario(agents=5, live_rate=0.3, duration=900.0)
    a = simulate(scenario, create_pacer("predictive"), seed=3)
    b = simulate(scenario, create_pacer("predictive"), seed=3)
    assert (a.live, a.abandoned, a.talk_time, a.waits) == (
        b.live,
        b.abandoned,
        b.talk_time,
        b.waits,
    )


def test_r_dl_2_progressive_only_abandons_through_amd() -> None:
    """Progressive never has more calls than ready agents: with a perfect, fast AMD it
    cannot abandon; with the default AMD its abandons are the AMD's."""
    perfect = Scenario(
        agents=5, live_rate=0.5, duration=1800.0, amd_false_positive=0.0, amd_slow_human=0.0
    )
    assert simulate(perfect, create_pacer("progressive"), seed=1).abandoned == 0
    assert simulate(perfect, create_pacer("preview"), seed=1).launched == 0


def test_r_dl_2_predictive_keeps_agents_busier_than_progressive_within_the_cap() -> None:
    scenario = Scenario(agents=20, live_rate=0.3, duration=3600.0)
    progressive = simulate(scenario, create_pacer("progressive"), seed=2)
    predictive = simulate(scenario, create_pacer("predictive"), seed=2)
    assert predictive.occupancy > 1.1 * progressive.occupancy
    assert predictive.abandon_rate < 0.04


def test_scenario_rejects_impossible_floors() -> None:
    with pytest.raises(ValueError, match="at least 15 s"):
        Scenario(agents=5, live_rate=0.3, ring_timeout=10.0)
    with pytest.raises(ValueError, match="exceed 1"):
        Scenario(agents=5, live_rate=0.9)
    with pytest.raises(ValueError, match="talk 'endless'"):
        Scenario(agents=5, live_rate=0.3, talk="endless")
