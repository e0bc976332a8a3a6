"""Two partial oracles: how much occupancy each piece of hidden information is worth.

Both peek at the simulator and run one *time-resolved* decision rule; they differ only
in what they are told:

* `oracle (agents)` knows exactly when every busy agent will be free (the end of each
  call in progress and the wrap-up the simulator will draw next).  Which calls in flight
  will be live answers it estimates like the product does (the pacer's own survival
  model).  No dialer knows when agents will be free; this is the most a perfect agent
  model could ever add.
* `oracle (in-flight)` also knows the fate and the surfacing moment of every call
  already dialing.  Only the calls it launches now are a lottery.

Rule: for each of `_POINTS` quantiles d of a live answer's dialing phase, the slots left
at now + d are agents free by d + the patience left after screening, minus live answers
surfacing by d, minus the earlier new launches that will have surfaced (a binomial).
The n-th launch goes out while its mean chance (over d) of finding no slot stays under
the risk the pacer's own budget loop allows, so both aim at the same abandon target.
Neither is a baseline to beat: they bound what information, not policy, can buy.
"""

from __future__ import annotations

import bisect
import math
import random
from statistics import NormalDist

from dialerd.pacing import Floor
from dialerd.pacing.estimators import _at, _cdf
from dialerd.pacing.predictive import PredictivePacer
from dialerd.pacing.settings import parse_settings
from dialerd.pacing.sim import _READY, Result, Scenario, _Customer, _Run
from dialerd.pacing.simple import progressive_count, room

AGENTS_KNOWN = "oracle (agents)"
FATES_KNOWN = "oracle (in-flight)"
_POINTS = 8  # quantiles of the dialing phase the rule checks
_PATIENCE = 1.45  # connect deadline left after AMD's overrun (2 s minus 0.3-0.8 s)
_REBUILD_SECONDS = 15.0
_NORMAL = NormalDist()


def busy_agents_free_at(run: _Run) -> list[float]:
    """When each busy agent will be ready: talk end plus the wrap-up the simulator will
    draw (wrap-ups are drawn in order of talk ends from their own stream), or the ready
    event already scheduled for agents in wrap-up."""
    wraps = random.Random()
    wraps.setstate(run.wraps.getstate())
    wrap_mu = math.log(run.sc.wrap_mean) - 0.08
    free = [
        end + wraps.lognormvariate(wrap_mu, 0.4)
        for end in sorted(s + run.agent_talk[a] for a, s in run.talking.items())
    ]
    free += [at for at, _, kind, _ in run.events if kind == _READY]
    return free


def reaches_agent(c: _Customer, sc: Scenario) -> bool:
    """Humans AMD passes in time, and machines AMD mistakes for humans, get an agent."""
    if c.kind == "human":
        return not c.misclassified and c.amd < c.greeting + sc.connect_deadline
    return c.kind == "machine" and c.misclassified


class TimelineOracle(PredictivePacer):
    """The time-resolved rule on the simulator's truth (see the module docstring)."""

    def __init__(self, scenario: Scenario, knows_fates: bool) -> None:
        super().__init__(parse_settings("predictive", None))
        self.mode = FATES_KNOWN if knows_fates else AGENTS_KNOWN
        self.scenario = scenario
        self.knows_fates = knows_fates
        self.run: _Run | None = None
        self._built = -math.inf
        self._quantiles: list[float] = []
        self._cdf_live: list[float] = []
        self._cdf_other: list[float] = []

    def _rebuild(self, now: float) -> None:
        if now - self._built < _REBUILD_SECONDS:
            return
        model = self.outcomes
        self._built = now
        self._quantiles = [model.live_quantile((i + 0.5) / _POINTS) for i in range(_POINTS)]
        self._cdf_live = _cdf(model._hist_live)
        self._cdf_other = _cdf(model._hist_other)

    def plan(self, floor: Floor) -> int:
        limit = room(floor, self.settings.max_ratio)
        base = min(progressive_count(floor), limit)
        run = self.run
        if run is None or limit <= base or not self._calls_known():
            return base
        now, sc = floor.now, self.scenario
        self._rebuild(now)
        points = self._quantiles
        free = sorted(at - now for at in busy_agents_free_at(run))
        mean = [
            floor.agents_ready - floor.calls_waiting + bisect.bisect_right(free, d + _PATIENCE)
            for d in points
        ]
        var = [0.0] * _POINTS
        if self.knows_fates:
            need = sc.live_at(now) * (1 - sc.amd_false_positive)
            need += sc.machine_rate * sc.amd_false_negative
            surfacing = sorted(
                launched + c.ring + c.amd - now
                for launched, c in (run.calls[call] for call in run.dialing)
                if reaches_agent(c, sc)
            )
            for i, d in enumerate(points):
                mean[i] -= bisect.bisect_right(surfacing, d)
        else:
            need = p = self.outcomes.live_rate
            live, other = self._cdf_live, self._cdf_other
            for e in floor.calls_dialing:
                alive = p * (1 - _at(live, e)) + (1 - p) * (1 - _at(other, e))
                if alive <= 1e-6:
                    continue
                for i, d in enumerate(points):
                    q = p * (_at(live, e + d) - _at(live, e)) / alive
                    mean[i] -= q
                    var[i] += q * (1 - q)
        theta = self.risk

        def risk(n: int) -> float:
            """Chance the n-th new launch, if live, finds no slot (mean over d)."""
            total = 0.0
            for i in range(_POINTS):
                q = need * (i + 0.5) / _POINTS  # live and surfaced by the i-th quantile
                slots = mean[i] - (n - 1) * q
                spread = var[i] + (n - 1) * q * (1 - q) + 0.25
                total += _NORMAL.cdf((0.5 - slots) / math.sqrt(spread))
            return total / _POINTS

        n = 0
        while n < limit and risk(n + 1) <= theta:
            n += 1
        return max(base, n)


def simulate_oracle(scenario: Scenario, seed: int, knows_fates: bool) -> Result:
    """Run one of the two oracles on `scenario`; returns the simulator's Result."""
    pacer = TimelineOracle(scenario, knows_fates)
    run = _Run(scenario, pacer, seed, pacer.mode)
    pacer.run = run
    return run.run()
