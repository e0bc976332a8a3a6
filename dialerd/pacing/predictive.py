"""The predictive policy: launch while the marginal call's abandon risk is within budget.

Demand is every live answer the floor can still expect: waiting calls count 1, each
dialing call the probability that a call which has been dialing that long ends as a live
answer (survival-conditioned: the hazard view), each new launch the current live rate.
Supply is the agents free within the *answer horizon* (the 75th percentile of how long
a live answer takes to leave the dialing phase) plus the connect deadline: ready agents
count 1, talking and wrapping ones their residual-life probability.  Both are sums of
Bernoullis, so a normal approximation (plus the uncertainty of the estimated live rate)
gives the chance that one more launch finds no agent.  Calls are launched while that
marginal risk is below `risk`, and `risk` itself is steered by a slow feedback loop that
spends what is left of the abandon budget over the regulators' rolling windows (30 days
FCC-style, 24 hours Ofcom-style).

Safety does not depend on the model being right: cold start dials progressively until
the list has shown its answer rate, then dials ahead for the *ready* agents only (busy
agents count as never free) until the floor has turned over once; the model may only add
calls on top of progressive (so a small or unpredictable floor falls back towards
progressive as the variance terms grow), and the in-flight ceiling (`max_ratio`) caps
everything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

from dialerd.pacing.estimators import CycleModel, Ledger, OutcomeModel, Tables, bernoullis
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

    def _calls_known(self) -> bool:
        """Enough live answers to estimate what a call in flight will turn into?"""
        return self.outcomes.live_answers >= self.settings.min_live_answers

    def _agents_known(self, floor: Floor) -> bool:
        """Enough cycles to predict when busy agents are free?  The first cycles to finish
        are the short ones (length bias), so also wait until the floor has turned over
        about once."""
        return self.cycles.cycles >= max(self.settings.min_agent_cycles, floor.agents)

    def _current_tables(self, floor: Floor) -> Tables:
        """Rebuild the lookup tables when new data arrived, at most every few seconds."""
        now, old = floor.now, self._tables
        if old is None or (self._new_outcomes and now - self._calls_built >= CALL_REBUILD_SECONDS):
            horizon = self.outcomes.live_quantile(HORIZON_QUANTILE)
            call_mean, new_call = self.outcomes.call_tables()
            calls = bernoullis(call_mean)
            self._calls_built, self._new_outcomes = now, False
        else:
            horizon, new_call, calls = old.horizon, old.new_call, old.calls
        if old is None or (self._new_cycles and now - self._agents_built >= AGENT_REBUILD_SECONDS):
            within = horizon + self.settings.connect_deadline
            talk_p, wrap_p = self.cycles.agent_tables(within, floor.agents_talking)
            talk, wrap = bernoullis(talk_p), bernoullis(wrap_p)
            self._agents_built, self._new_cycles = now, False
        else:
            talk, wrap = old.talk, old.wrap
        self._tables = Tables(horizon, new_call, calls, talk, wrap)
        return self._tables

    def plan(self, floor: Floor) -> int:
        limit = room(floor, self.settings.max_ratio)
        base = min(progressive_count(floor), limit)
        if limit <= base or not self._calls_known():
            return base
        t = self._current_tables(floor)
        m0 = t.new_call
        if m0 <= 0.0:
            return base
        calls = _lookup(t.calls, floor.calls_dialing)
        # Until the floor has turned over once, busy agents count as never free: a safe
        # under-estimate that still dials ~1/p calls per ready agent instead of one (at
        # 15 % live, a 100-agent floor on 4-minute calls gains 2.6 % of the ceiling).
        supply = (
            _lookup(t.talk, floor.agents_talking) + _lookup(t.wrap, floor.agents_wrapping)
            if self._agents_known(floor)
            else 0j
        )
        demand = calls.real
        headroom = floor.agents_ready + supply.real - floor.calls_waiting - demand - 0.5
        variance = calls.imag + supply.imag
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


def _lookup(table: list[complex], elapsed: Sequence[float]) -> complex:
    """Sum of table entries at each elapsed time: C-level passes, no Python loop."""
    if not elapsed:
        return 0j
    last = len(table) - 1
    try:
        index = list(map(int, elapsed))
    except (ValueError, OverflowError):  # NaN or infinity from a confused caller: the tail
        index = [int(e) if math.isfinite(e) else last for e in elapsed]
    if max(index) > last or min(index) < 0:
        index = [min(max(i, 0), last) for i in index]
    return sum(map(table.__getitem__, index), 0j)
