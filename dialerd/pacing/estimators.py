"""Online estimators behind the predictive policy.

Everything here is O(1) per `record` and rebuilds lookup tables only occasionally, so that
`plan` can be a handful of C-level sums over the floor (see `Tables`).

* `OutcomeModel` learns what a call that has been dialing for `e` seconds will turn into:
  the live-answer fraction with a short, exponentially weighted memory (the list's answer
  rate drifts within minutes) and the shapes of the dialing-phase durations with a longer
  one (ring and screening times drift slowly).  Conditioning on survival gives the hazard
  view: a call that has rung 14 s without an answer is far less likely to become a live
  answer than a fresh one.
* `CycleModel` keeps recent talk and wrap-up samples and answers residual-life questions:
  an agent 200 s into a heavy-tailed call is not like one 5 s in.
* `Ledger` counts live answers and abandons over a rolling regulator window.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from dialerd.pacing.model import AgentCycle, DialOutcome

_LN2 = math.log(2.0)
_CALL_BINS = 120  # seconds of dialing phase the call tables cover (ring timeouts are shorter)
_AGENT_BINS = 1800  # beyond 30 min into a call the residual-life estimate stops changing
_WRAP_QUANTILES = 5


@dataclass(frozen=True, slots=True)
class Tables:
    """Per-second lookup tables indexed by `int(elapsed)`; the last entry covers the rest.

    `call_mean[e]`: probability that a call dialing for e s becomes a live answer.
    `talk_mean[e]` / `wrap_mean[e]`: probability that an agent talking / wrapping for e s
    is free within the answer horizon plus the connect deadline.  The `_var`
    twins hold p(1-p) so the variance of each Bernoulli sum is one more sum.
    """

    horizon: float
    new_call_mean: float
    call_mean: list[float]
    call_var: list[float]
    talk_mean: list[float]
    talk_var: list[float]
    wrap_mean: list[float]
    wrap_var: list[float]


class OutcomeModel:
    """Live-answer probability and dialing-phase durations, conditioned on ring time."""

    def __init__(self, adapt_seconds: float, shape_seconds: float = 1800.0) -> None:
        self.adapt_seconds = adapt_seconds
        self._shape_rate = _LN2 / shape_seconds
        # Fast memory: decayed counts of outcomes and live answers, and of squared weights
        # (for the effective sample size, hence the uncertainty of the live rate).
        self._w = 0.0
        self._w2 = 0.0
        self._live = 0.0
        self._last_at: float | None = None
        self._gap = 0.0  # EW mean time between outcomes, to stretch memory on thin lists
        # Slow memory: duration histograms weighted by exp(+t/tau) (no per-record decay).
        self._origin: float | None = None
        self._hist_live = [0.0] * _CALL_BINS
        self._hist_other = [0.0] * _CALL_BINS
        self.live_answers = 0

    def record(self, outcome: DialOutcome) -> None:
        live = outcome.result == "human"
        self.live_answers += live
        at = outcome.at
        if self._last_at is None:
            self._last_at = at
        gap = max(0.0, at - self._last_at)
        self._last_at = max(self._last_at, at)
        self._gap = gap if self._gap == 0.0 else 0.98 * self._gap + 0.02 * gap
        # Keep at least ~250 outcomes of memory so a small team's estimate is not noise.
        half_life = max(self.adapt_seconds, 250.0 * self._gap)
        decay = math.exp(-_LN2 * gap / half_life)
        self._w = self._w * decay + 1.0
        self._w2 = self._w2 * decay * decay + 1.0
        self._live = self._live * decay + live

        if self._origin is None:
            self._origin = at
        weight = math.exp(self._shape_rate * (at - self._origin))
        if weight > 1e100:
            self._rescale(at)
            weight = 1.0
        duration = outcome.ring_seconds + (
            outcome.amd_seconds if live or outcome.result == "machine" else 0.0
        )
        index = min(max(int(duration), 0), _CALL_BINS - 1)
        (self._hist_live if live else self._hist_other)[index] += weight

    def _rescale(self, at: float) -> None:
        assert self._origin is not None
        factor = math.exp(-self._shape_rate * (at - self._origin))
        self._hist_live = [v * factor for v in self._hist_live]
        self._hist_other = [v * factor for v in self._hist_other]
        self._origin = at

    @property
    def live_rate(self) -> float:
        """Current estimate of the fraction of launched calls that end as live answers."""
        return self._live / self._w if self._w else 0.0

    @property
    def live_rate_rel_var(self) -> float:
        """Relative variance of `live_rate` (Var(p)/p^2) from the effective sample size."""
        p = self.live_rate
        if p <= 0.0 or self._w <= 0.0:
            return 1.0
        n_eff = self._w * self._w / self._w2
        return (1.0 - p) / (p * n_eff)

    def live_quantile(self, q: float) -> float:
        """Quantile of the dialing-phase duration of live answers (seconds)."""
        total = sum(self._hist_live)
        if total <= 0.0:
            return 10.0
        goal = q * total
        acc = 0.0
        for i, v in enumerate(self._hist_live):
            if acc + v >= goal and v > 0.0:
                return i + (goal - acc) / v
            acc += v
        return float(_CALL_BINS)

    def call_tables(self) -> tuple[list[float], float]:
        """Per elapsed second: chance a call still dialing ends as a live answer, and a
        fresh call's.  Survival conditioning is what makes this a hazard estimate."""
        p = self.live_rate
        cdf_live = _cdf(self._hist_live)
        cdf_other = _cdf(self._hist_other)
        mean = [0.0] * _CALL_BINS
        for e in range(_CALL_BINS):
            live_left = p * (1.0 - _at(cdf_live, e + 0.5))
            survive = live_left + (1.0 - p) * (1.0 - _at(cdf_other, e + 0.5))
            if survive > 1e-6:
                mean[e] = live_left / survive
        return mean, p


class CycleModel:
    """Recent talk and wrap-up durations, for residual-life estimates of busy agents."""

    def __init__(self, window: int = 400) -> None:
        self._talk: deque[float] = deque(maxlen=window)
        self._wrap: deque[float] = deque(maxlen=window)
        self.cycles = 0

    def record(self, cycle: AgentCycle) -> None:
        self._talk.append(max(0.0, cycle.talk_seconds))
        self._wrap.append(max(0.0, cycle.wrap_seconds))
        self.cycles += 1

    def agent_tables(
        self, within: float, talking: Sequence[float]
    ) -> tuple[list[float], list[float]]:
        """P(free within `within` s) for agents talking / wrapping for e s, per e.

        The calls still in progress (`talking`, elapsed seconds) enter the talk-time
        estimate as right-censored observations (Kaplan-Meier): without them the first
        cycles to finish, the short ones, would make every agent look about to be free.
        """
        if not self._talk:
            return [0.0], [0.0]
        wrap = sorted(self._wrap)
        k = _WRAP_QUANTILES
        wrap_q = [wrap[min(len(wrap) - 1, int((i + 0.5) * len(wrap) / k))] for i in range(k)]
        talk_km = _kaplan_meier(sorted(self._talk), sorted(talking))
        wrap_km = _kaplan_meier(wrap, [])
        return _residual_table(talk_km, wrap_q, within), _residual_table(wrap_km, [0.0], within)


_Survival = tuple[list[float], list[float]]  # event times, survival just after each


def _kaplan_meier(events: list[float], censored: list[float]) -> _Survival:
    """Kaplan-Meier survival from sorted event and censoring times."""
    times: list[float] = []
    surv: list[float] = []
    at_risk = len(events) + len(censored)
    s = 1.0
    i = j = 0
    while i < len(events):
        t = events[i]
        while j < len(censored) and censored[j] < t:
            j += 1
            at_risk -= 1
        d = 0
        while i < len(events) and events[i] == t:
            d += 1
            i += 1
        s *= 1.0 - d / at_risk
        at_risk -= d
        times.append(t)
        surv.append(s)
    return times, surv


def _survival_at(km: _Survival, y: float) -> float:
    index = bisect.bisect_right(km[0], y)
    return 1.0 if index == 0 else km[1][index - 1]


def _residual_table(km: _Survival, extra: Sequence[float], within: float) -> list[float]:
    """P(X + extra <= e + within | X > e) per integer e, from a survival curve of X.

    Where under 2 % of the curve is left the table stays flat: we do not extrapolate
    residual life beyond what has been seen.
    """
    times, surv = km
    last = next((t for t, v in zip(times, surv, strict=True) if v < 0.02), times[-1])
    length = max(2, min(_AGENT_BINS, int(last) + 2))
    table = [0.0] * length
    for e in range(length):
        start = min(e + 0.5, last - 1e-9)
        alive = _survival_at(km, start)
        if alive <= 0.0:
            table[e] = 1.0
            continue
        done = 0.0
        for w in extra:
            limit = start + within - w
            if limit > start:
                done += alive - _survival_at(km, limit)
        table[e] = done / (alive * len(extra))
    return table


def variances(means: list[float]) -> list[float]:
    """p(1-p) per entry: the variance of the Bernoulli each table entry describes."""
    return [m * (1.0 - m) for m in means]


def _cdf(hist: list[float]) -> list[float]:
    total = sum(hist)
    out = [0.0] * (len(hist) + 1)
    acc = 0.0
    for i, v in enumerate(hist):
        acc += v
        out[i + 1] = acc / total if total > 0.0 else 0.0
    return out


def _at(cdf: list[float], x: float) -> float:
    """Piecewise-linear read of a per-second CDF at x seconds."""
    if x <= 0.0:
        return 0.0
    i = int(x)
    if i >= len(cdf) - 1:
        return cdf[-1]
    return cdf[i] + (cdf[i + 1] - cdf[i]) * (x - i)


class Ledger:
    """Live answers and abandons over a rolling window, bucketed so memory stays bounded."""

    def __init__(self, window: float, buckets: int = 720) -> None:
        self.window = window
        self._bucket = window / buckets
        self._rows: deque[list[float]] = deque()
        self.live = 0.0
        self.abandoned = 0.0

    def add(self, at: float, live: float, abandoned: float) -> None:
        if self._rows and at < self._rows[-1][0] + self._bucket:
            row = self._rows[-1]
            row[1] += live
            row[2] += abandoned
        else:
            self._rows.append([at, live, abandoned])
        self.live += live
        self.abandoned += abandoned
        self._expire(at)

    def _expire(self, now: float) -> None:
        while self._rows and self._rows[0][0] <= now - self.window:
            _, live, abandoned = self._rows.popleft()
            self.live -= live
            self.abandoned -= abandoned

    def rate(self, prior_rate: float, prior_live: float) -> float:
        """Abandon rate in the window, shrunk towards `prior_rate` while data is thin."""
        return (self.abandoned + prior_rate * prior_live) / (self.live + prior_live)
