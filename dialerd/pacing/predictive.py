"""The predictive policy: launch while the marginal call's abandon risk is within budget.

At each `plan` the policy looks one *horizon* ahead (the median time a live answer takes
to leave the dialing phase).  Supply is the agents that will be free by then plus the
connect deadline: ready agents count 1, busy ones their residual-life probability.
Demand is the live answers that will need an agent by then: waiting calls count 1, each
dialing call its hazard-conditioned probability, each new launch the unconditional one.
Both are sums of Bernoullis, so a normal approximation (plus the uncertainty of the
estimated live rate) gives the chance that one more launch finds no agent.  Calls are
launched while that marginal risk is below `risk`, and `risk` itself is steered by a
slow feedback loop that spends what is left of the abandon budget over the regulators'
rolling windows (30 days FCC-style, 24 hours Ofcom-style).

Safety does not depend on the model being right: cold start and thin data dial
progressively, the model may only add calls on top of progressive, and the in-flight
ceiling (`max_ratio`) caps everything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

from dialerd.pacing.estimators import CycleModel, Ledger, OutcomeModel, Tables, variances
from dialerd.pacing.model import AgentCycle, DialOutcome, Floor
from dialerd.pacing.settings import Settings
from dialerd.pacing.simple import progressive_count, room

HORIZON_QUANTILE = 0.75
CALL_REBUILD_SECONDS = 15.0
AGENT_REBUILD_SECONDS = 60.0
INITIAL_RISK = 0.01
MIN_RISK, MAX_RISK = 1e-3, 0.3
FEEDBACK_SECONDS = 600.0  # time constant of the budget loop at the floor's live-answer pace
WINDOW_PRIOR_LIVE = 200.0  # pseudo-answers at the target rate while a window is nearly empty
_NORMAL = NormalDist()


class PredictivePacer:
    """Model-based predictive dialing; see the module docstring and docs/pacing.md."""

    mode = "predictive"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.outcomes = OutcomeModel(settings.adapt_seconds)
        self.cycles = CycleModel()
        self._ledgers = (Ledger(settings.fcc_window_seconds), Ledger(settings.ofcom_window_seconds))
        fp = settings.amd_false_positive_rate
        # Humans hung up on as machines never reach us as abandons; budget for them.
        self._hidden = fp / (1.0 - fp)
        self._log_risk = math.log(INITIAL_RISK)
        self._z = _NORMAL.inv_cdf(1.0 - INITIAL_RISK)
        self._live_gap = 0.0
        self._last_live: float | None = None
        self._tables: Tables | None = None
        self._calls_built = -math.inf
        self._agents_built = -math.inf
        self._new_outcomes = False
        self._new_cycles = False

    @property
    def risk(self) -> float:
        """The marginal abandon risk the feedback loop currently allows per launch."""
        return math.exp(self._log_risk)

    def record(self, event: DialOutcome | AgentCycle) -> None:
        if isinstance(event, DialOutcome):
            self.outcomes.record(event)
            self._new_outcomes = True
            if event.result == "human":
                self._account(event)
        else:
            self.cycles.record(event)
            self._new_cycles = True

    def _account(self, outcome: DialOutcome) -> None:
        """Book a live answer and nudge the allowed risk towards the remaining budget."""
        s = self.settings
        abandoned = float(outcome.abandoned) + self._hidden
        for ledger in self._ledgers:
            ledger.add(outcome.at, 1.0 + self._hidden, abandoned)
        target = s.target_abandon_rate
        spent = max(ledger.rate(target, WINDOW_PRIOR_LIVE) for ledger in self._ledgers)
        # Under budget so far: allow a little more now; over it: pay it back.
        wanted = min(max(2.0 * target - spent, 0.0), 0.98 * s.max_abandon_rate)
        if self._last_live is not None:
            gap = max(0.0, outcome.at - self._last_live)
            self._live_gap = gap if self._live_gap == 0.0 else 0.97 * self._live_gap + 0.03 * gap
        self._last_live = outcome.at
        per_period = FEEDBACK_SECONDS / self._live_gap if self._live_gap > 0.0 else 2000.0
        step = min(0.01, max(0.002, 1.0 / per_period))
        actual = abandoned / (1.0 + self._hidden)
        self._log_risk += step * (wanted - actual) / max(wanted, 0.002)
        self._log_risk = min(math.log(MAX_RISK), max(math.log(MIN_RISK), self._log_risk))
        self._z = _NORMAL.inv_cdf(1.0 - math.exp(self._log_risk))

    def _warm(self, floor: Floor) -> bool:
        """Enough data to predict?  The first cycles to finish are the short ones (length
        bias), so also wait until the floor has turned over about once."""
        s = self.settings
        return self.outcomes.live_answers >= s.min_live_answers and self.cycles.cycles >= max(
            s.min_agent_cycles, floor.agents
        )

    def _current_tables(self, floor: Floor) -> Tables:
        now = floor.now
        """Rebuild the lookup tables when new data arrived, at most every few seconds."""
        old = self._tables
        calls_due = old is None or (
            self._new_outcomes and now - self._calls_built >= CALL_REBUILD_SECONDS
        )
        agents_due = old is None or (
            self._new_cycles and now - self._agents_built >= AGENT_REBUILD_SECONDS
        )
        if old is not None and not calls_due and not agents_due:
            return old
        horizon = self.outcomes.live_quantile(HORIZON_QUANTILE)
        if calls_due or old is None:
            call_mean, new_call = self.outcomes.call_tables()
            call_var = variances(call_mean)
            self._calls_built, self._new_outcomes = now, False
        else:
            horizon, call_mean, call_var, new_call = (
                old.horizon,
                old.call_mean,
                old.call_var,
                old.new_call_mean,
            )
        if agents_due or old is None:
            talk, wrap = self.cycles.agent_tables(
                horizon + self.settings.connect_deadline, floor.agents_talking
            )
            talk_var, wrap_var = variances(talk), variances(wrap)
            self._agents_built, self._new_cycles = now, False
        else:
            talk, talk_var, wrap, wrap_var = (
                old.talk_mean,
                old.talk_var,
                old.wrap_mean,
                old.wrap_var,
            )
        self._tables = Tables(
            horizon, new_call, call_mean, call_var, talk, talk_var, wrap, wrap_var
        )
        return self._tables

    def plan(self, floor: Floor) -> int:
        limit = room(floor, self.settings.max_ratio)
        base = min(progressive_count(floor), limit)
        if limit <= base or not self._warm(floor):
            return base
        t = self._current_tables(floor)
        m0 = t.new_call_mean
        if m0 <= 0.0:
            return base
        demand, demand_var = _sums(t.call_mean, t.call_var, floor.calls_dialing)
        talk, talk_var = _sums(t.talk_mean, t.talk_var, floor.agents_talking)
        wrap, wrap_var = _sums(t.wrap_mean, t.wrap_var, floor.agents_wrapping)
        headroom = floor.agents_ready + talk + wrap - floor.calls_waiting - demand - 0.5
        variance = demand_var + talk_var + wrap_var
        rel = self.outcomes.live_rate_rel_var
        z = self._z
        v0 = m0 * (1.0 - m0)

        def fits(extra: int) -> bool:
            """Would the launch after `extra` others still find an agent often enough?"""
            expected = demand + extra * m0
            spread = variance + extra * v0 + rel * expected * expected
            return headroom - extra * m0 >= z * math.sqrt(spread)

        if not fits(0):
            return base
        low, high = 0, min(limit - 1, int(headroom / m0))
        while low < high:  # largest `extra` that still fits
            mid = (low + high + 1) // 2
            if fits(mid):
                low = mid
            else:
                high = mid - 1
        return max(base, min(limit, low + 1))


def _sums(mean: list[float], var: list[float], elapsed: Sequence[float]) -> tuple[float, float]:
    """Sum of table entries at each elapsed time: two C-level passes, no Python loop."""
    if not elapsed:
        return 0.0, 0.0
    index = list(map(int, elapsed))
    last = len(mean) - 1
    if max(index) > last or min(index) < 0:
        index = [min(max(i, 0), last) for i in index]
    return sum(map(mean.__getitem__, index)), sum(map(var.__getitem__, index))
