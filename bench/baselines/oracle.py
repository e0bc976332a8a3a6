"""A partial oracle, to show how much of the gap to the ceiling is the model's fault.

It is the predictive policy with its estimates of the floor replaced by the simulator's
truth: it knows which calls in flight will reach the agent queue and exactly when every
busy agent's call ends.  Only wrap-up times (taken as their mean) and the fate of new
launches stay uncertain.  No real dialer can know this; it is a reference, not a
baseline to beat.  The same budget loop steers its margin to the same abandon target.
"""

from __future__ import annotations

import math

from dialerd.pacing import Floor
from dialerd.pacing.predictive import PredictivePacer
from dialerd.pacing.settings import parse_settings
from dialerd.pacing.sim import _READY, Result, Scenario, _Run
from dialerd.pacing.simple import progressive_count, room

# A floor of variance, per agent, so the budget loop's z range can reach the target:
# with exact knowledge the only Bernoulli noise left is the new launches'.
_BASE_VARIANCE_PER_AGENT = 0.1


class InFlightOracle(PredictivePacer):
    """Predictive decision rule on the true in-flight state of a simulation run."""

    mode = "oracle"

    def __init__(self, scenario: Scenario) -> None:
        super().__init__(parse_settings("predictive", None))
        self.scenario = scenario
        self.run: _Run | None = None

    def plan(self, floor: Floor) -> int:
        limit = room(floor, self.settings.max_ratio)
        base = min(progressive_count(floor), limit)
        run = self.run
        if run is None or limit <= base or not self._calls_known():
            return base
        tables = self._current_tables(floor)
        within = floor.now + tables.horizon + self.settings.connect_deadline
        demand = 0
        for call in run.dialing:
            c = run.calls[call][1]
            live = c.kind == "human" and not c.misclassified
            demand += live or (c.kind == "machine" and c.misclassified)
        supply = sum(1 for at, _, kind, _ in run.events if kind == _READY and at <= within)
        wrap = self.scenario.wrap_mean
        supply += sum(
            1 for a, start in run.talking.items() if start + run.agent_talk[a] + wrap <= within
        )
        m0 = tables.new_call
        headroom = floor.agents_ready + supply - floor.calls_waiting - demand - 0.5
        n = 0
        while n < limit and headroom - n * m0 >= self._z * math.sqrt(
            _BASE_VARIANCE_PER_AGENT * floor.agents + n * m0 * (1.0 - m0)
        ):
            n += 1
        return max(base, n)


def simulate_oracle(scenario: Scenario, seed: int) -> Result:
    """Run the oracle on `scenario`; returns the simulator's Result."""
    pacer = InFlightOracle(scenario)
    run = _Run(scenario, pacer, seed, "oracle (in-flight)")
    pacer.run = run
    return run.run()
