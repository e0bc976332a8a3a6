"""VICIdial's adaptive predictive dial level, re-implemented from AST_VDadapt.pl.

Read from public copies of VICIdial's `bin/AST_VDadapt.pl` (calculate_dial_level and the
differential sampler) and `bin/AST_VDauto_dial.pl` (goal calls), then restated here for
the benchmark; no VICIdial code is copied.  What the real system does, and we mimic:

* Once a second it samples ready agents, waiting calls and agents; every 15 seconds it
  averages the last 15 samples: differential = ready - waiting (+ dl_diff_target).
* New level = level * (1 + differential / agents), with `adaptive_intensity` scaling
  the step (0 = neutral), capped at `adaptive_maximum_level` (3.0) and floored at 1.0.
* Drop guard: more than 20 calls in the last minute with over 50 % dropped halves the
  level.  More than 50 calls today with drops/answers above `adaptive_dropped_percentage`:
  ADAPT_HARD_LIMIT sets the level to 1.0; ADAPT_TAPERED multiplies it by
  (latest_server_time - HHMM now) / 1000 (capped at 1, i.e. no cut until ten "hundreds"
  before the late target), and to 1.0 once past it.
* The auto-dialer places round(level * agents) - calls already active, where agents are
  READY + INCALL (agents in disposition are paused) and active calls include those
  ringing, waiting and talking to agents (vicidial_auto_calls).

Simplification: drop statistics update on every outcome instead of once a minute.
"""

from __future__ import annotations

from collections import deque

from dialerd.pacing import AgentCycle, DialOutcome, Floor

METHODS = ("ADAPT_HARD_LIMIT", "ADAPT_TAPERED")


class VicidialAdaptive:
    """A `Pacer` that behaves like a VICIdial campaign with an ADAPT_* dial method."""

    mode = "vicidial"

    def __init__(
        self,
        method: str = "ADAPT_HARD_LIMIT",
        dropped_percentage: float = 3.0,
        maximum_level: float = 3.0,
        intensity: float = 0.0,
        dl_diff_target: float = 0.0,
        start_hhmm: int = 900,
        latest_server_time: int = 2100,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"method {method!r} is not one of {', '.join(METHODS)}")
        self.method = method
        self.dropped_percentage = dropped_percentage
        self.maximum_level = maximum_level
        self.intensity = intensity
        self.dl_diff_target = dl_diff_target
        self.start_hhmm = start_hhmm
        self.latest_server_time = latest_server_time
        self.level = 1.0
        self._samples: deque[tuple[int, int, int]] = deque(maxlen=15)
        self._next_sample = 0.0
        self._next_update = 15.0
        self._minute: deque[tuple[float, bool]] = deque()  # (at, dropped) per call
        self.calls_today = 0
        self.answers_today = 0
        self.drops_today = 0

    def record(self, event: DialOutcome | AgentCycle) -> None:
        if not isinstance(event, DialOutcome):
            return
        self.calls_today += 1
        self.answers_today += event.result == "human"
        self.drops_today += event.abandoned
        self._minute.append((event.at, event.abandoned))

    def _hhmm(self, now: float) -> int:
        minutes = self.start_hhmm // 100 * 60 + self.start_hhmm % 100 + int(now // 60)
        return minutes // 60 * 100 + minutes % 60

    def _update(self, now: float) -> None:
        ready = sum(s[0] for s in self._samples) / len(self._samples)
        waiting = sum(s[1] for s in self._samples) / len(self._samples)
        agents = sum(s[2] for s in self._samples) / len(self._samples)
        differential = ready - waiting + self.dl_diff_target
        mul = differential / agents if differential and agents else 0.0
        intensity = self.intensity / 100.0
        step = mul * abs(intensity - 1.0) if mul < 0 else mul * (intensity + 1.0)
        level = min(self.maximum_level, max(1.0, self.level * (1.0 + step)))
        while self._minute and self._minute[0][0] < now - 60.0:
            self._minute.popleft()
        minute_drops = sum(d for _, d in self._minute)
        if len(self._minute) > 20 and minute_drops * 100.0 / len(self._minute) > 50.0:
            level /= 2.0
        today_pct = 100.0 * self.drops_today / self.answers_today if self.answers_today else 0.0
        if self.calls_today > 50 and today_pct > self.dropped_percentage:
            if self.method == "ADAPT_HARD_LIMIT":
                level = 1.0
            else:
                hours_left = self.latest_server_time - self._hhmm(now)
                level = 1.0 if hours_left < 0 else level * min(1.0, hours_left / 1000.0)
        self.level = max(1.0, level)

    def plan(self, floor: Floor) -> int:
        now = floor.now
        active_agents = floor.agents_ready + len(floor.agents_talking)
        if now >= self._next_sample:
            self._samples.append((floor.agents_ready, floor.calls_waiting, active_agents))
            self._next_sample = now + 1.0
        if now >= self._next_update and self._samples:
            self._update(now)
            self._next_update = now + 15.0
        goal = round(self.level * active_agents)
        active_calls = floor.in_flight + len(floor.agents_talking)
        return max(0, goal - active_calls)
