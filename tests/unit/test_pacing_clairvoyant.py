"""The bench's clairvoyant reference (bench/pacing.py): the witness behind every claim that a
missed target is physically reachable (R-DL-2), so it must stay a working, repeatable dialer."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from dialerd.pacing.sim import Scenario

pytestmark = pytest.mark.unit

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load_bench() -> ModuleType:
    """bench/pacing.py is a script that imports its `baselines` package from its own folder."""
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("pacing_bench", BENCH / "pacing.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def test_clairvoyant_keeps_agents_near_the_ceiling_within_the_cap_and_repeats() -> None:
    bench = load_bench()
    scenario = Scenario(5, 0.3, "short", duration=1800.0)
    first = bench.simulate_clairvoyant(scenario, 1)
    again = bench.simulate_clairvoyant(scenario, 1)
    assert (first.occupancy, first.abandoned, first.launched) == (
        again.occupancy,
        again.abandoned,
        again.launched,
    )
    assert first.occupancy > 0.9 * scenario.ceiling
    assert first.abandon_rate < 0.03


def test_knowing_the_fate_of_calls_in_flight_is_worth_more_than_knowing_the_agents() -> None:
    """The two partial oracles behind the docs' information argument: same rule, one
    told only when agents will be free, the other also which calls will be live."""
    bench = load_bench()
    simulate_oracle = bench.simulate_oracle
    scenario = Scenario(20, 0.3, "short", duration=1800.0)
    agents = simulate_oracle(scenario, 1, knows_fates=False)
    fates = simulate_oracle(scenario, 1, knows_fates=True)
    assert simulate_oracle(scenario, 1, knows_fates=False).talk_time == agents.talk_time
    assert fates.occupancy > 1.05 * agents.occupancy
    assert max(agents.abandon_rate, fates.abandon_rate) < 0.04
    assert bench.ORACLES == ("oracle (agents)", "oracle (in-flight)")
