"""Discrete-event simulation of one campaign floor, driving any pacer through the seam.

Why it lives in the product: the policy that dials on the floor is exactly the one this
simulation measures (same `Floor`, `DialOutcome`, `AgentCycle`), so `dialerd` can replay
"what would this campaign's settings do" without a PBX.

Model (one scenario, all times in seconds):

* The customers form one stream (`random.Random`) drawn in launch order, every attribute
  drawn for every customer whatever the outcome, so every policy meets the same people in
  the same order.  Wrap-up times come from a second stream, agents from nowhere random.
* A launched call's fate is fixed at launch: live (probability `live_rate`, optionally
  drifting sinusoidally), answering machine, busy, failed, or no answer after
  `ring_timeout` (>= 15 s of ringing before giving up).
* Live answers pick up after a lognormal ring; the caller's greeting (0.8-1.6 s) is where
  the connect deadline starts (FCC: "two seconds after the completed greeting").  AMD
  decides a little after the greeting: the overrun (0.3-0.8 s) eats into the 2 s, and for
  `amd_slow_human` of humans it overruns the whole deadline: those are abandons.
* AMD errors: a human classified as machine (`amd_false_positive`) is hung up on; the
  dialer sees "machine" but the regulator counts an abandoned live call.  A machine
  classified as human (`amd_false_negative`) goes to an agent (or is abandoned) like a
  live call and costs the agent a few seconds, but it is not a live answer: it is in
  neither the numerator nor the denominator of the true abandon rate.
* A live answer is connected to the longest-idle ready agent, else waits in FIFO order;
  still waiting at the deadline it hears the safe-harbour message: abandoned.
* `plan` is called every `tick` seconds with a fresh `Floor`; all numbers are measured
  over the whole run, cold start included.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from dialerd.pacing.model import AgentCycle, DialOutcome, Floor, Pacer

TALK_SHAPES = {  # name: (mean seconds, lognormal sigma)
    "short": (30.0, 0.6),
    "medium": (90.0, 0.6),
    "long": (240.0, 0.5),
    "heavy": (90.0, 1.3),
}


@dataclass(frozen=True, slots=True)
class Scenario:
    """One floor to simulate; defaults are a typical B2C outbound list."""

    agents: int
    live_rate: float
    talk: str = "medium"
    drift: bool = False
    duration: float = 3600.0
    machine_rate: float = 0.20
    busy_rate: float = 0.05
    failed_rate: float = 0.03
    ring_timeout: float = 20.0
    connect_deadline: float = 2.0
    amd_false_positive: float = 0.005
    amd_false_negative: float = 0.10
    amd_slow_human: float = 0.003
    wrap_mean: float = 10.0
    drift_amplitude: float = 0.4
    drift_period: float = 2400.0
    tick: float = 1.0

    def __post_init__(self) -> None:
        if self.talk not in TALK_SHAPES:
            raise ValueError(f"talk {self.talk!r} is not one of {', '.join(TALK_SHAPES)}")
        if self.ring_timeout < 15.0:
            raise ValueError("ring_timeout must be at least 15 s (minimum ring before giving up)")
        top = self.live_rate * (1 + self.drift_amplitude * self.drift)
        if top + self.machine_rate + self.busy_rate + self.failed_rate > 1.0:
            raise ValueError("live + machine + busy + failed rates exceed 1")

    @property
    def name(self) -> str:
        return f"{self.agents}ag {self.live_rate:.0%} {self.talk}{' drift' if self.drift else ''}"

    @property
    def ceiling(self) -> float:
        """The physical occupancy ceiling: mean talk / (mean talk + mean wrap-up)."""
        talk = TALK_SHAPES[self.talk][0]
        return talk / (talk + self.wrap_mean)

    def live_at(self, t: float) -> float:
        if not self.drift:
            return self.live_rate
        wave = math.sin(2.0 * math.pi * t / self.drift_period)
        return self.live_rate * (1.0 + self.drift_amplitude * wave)


@dataclass(slots=True)
class _Customer:
    kind: str  # true fate: human, machine, no_answer, busy, failed
    ring: float  # launch -> answer (or -> failure)
    amd: float  # answer -> AMD verdict
    greeting: float  # answer -> start of the connect deadline (humans)
    misclassified: bool  # human hung up as machine / machine sent to an agent
    talk: float


@dataclass(slots=True)
class Result:
    """What one run measured; rates use true live answers as the denominator."""

    scenario: str
    policy: str
    seed: int
    agents: int
    duration: float
    ceiling: float
    live: int = 0
    abandoned: int = 0
    connects: int = 0
    launched: int = 0
    talk_time: float = 0.0
    waits: list[float] = field(default_factory=list)

    @property
    def occupancy(self) -> float:
        return self.talk_time / (self.agents * self.duration)

    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.live if self.live else 0.0

    @property
    def mean_wait(self) -> float:
        return sum(self.waits) / len(self.waits) if self.waits else 0.0

    @property
    def p95_wait(self) -> float:
        if not self.waits:
            return 0.0
        ordered = sorted(self.waits)
        return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]

    @property
    def connects_per_agent_hour(self) -> float:
        return self.connects / (self.agents * self.duration / 3600.0)


_SURFACE, _TALK_END, _READY, _DEADLINE, _TICK = range(5)


class _Run:
    """One simulation run; separate from `simulate` only to keep the state in one place."""

    def __init__(self, scenario: Scenario, pacer: Pacer, seed: int, policy: str) -> None:
        self.sc = scenario
        self.pacer = pacer
        self.customers = random.Random(seed * 7919 + 1)
        self.wraps = random.Random(seed * 7919 + 2)
        mean, sigma = TALK_SHAPES[scenario.talk]
        self.talk_mu, self.talk_sigma = math.log(mean) - sigma * sigma / 2.0, sigma
        self.events: list[tuple[float, int, int, int]] = []
        self.seq = 0
        self.calls: dict[int, tuple[float, _Customer]] = {}
        self.dialing: dict[int, float] = {}
        self.waiting: OrderedDict[int, float] = OrderedDict()  # call -> answered-at
        self.ready: deque[tuple[int, float]] = deque((a, 0.0) for a in range(scenario.agents))
        self.talking: dict[int, float] = {}
        self.wrapping: dict[int, float] = {}
        self.agent_talk: dict[int, tuple[float, bool]] = {}
        self.result = Result(
            scenario.name, policy, seed, scenario.agents, scenario.duration, scenario.ceiling
        )

    def push(self, at: float, kind: int, ref: int) -> None:
        self.seq += 1
        heapq.heappush(self.events, (at, self.seq, kind, ref))

    def customer(self, now: float) -> _Customer:
        """Draw every attribute so the stream stays aligned whatever the fate."""
        r, sc = self.customers, self.sc
        u = r.random()
        human_ring = min(sc.ring_timeout - 0.5, r.lognormvariate(math.log(7.0), 0.45))
        machine_ring = r.uniform(5.0, 16.0)
        greeting = r.uniform(0.8, 1.6)
        slow = r.random() < sc.amd_slow_human
        overrun = r.uniform(2.0, 3.5) if slow else r.uniform(0.3, 0.8)
        machine_amd = r.uniform(2.5, 4.5)
        wrong = r.random()
        talk = r.lognormvariate(self.talk_mu, self.talk_sigma)
        machine_talk = r.uniform(3.0, 8.0)
        busy_after, failed_after = r.uniform(2.0, 6.0), r.uniform(0.5, 3.0)
        live = sc.live_at(now)
        if u < live:
            return _Customer(
                "human",
                human_ring,
                greeting + overrun,
                greeting,
                wrong < sc.amd_false_positive,
                talk,
            )
        u -= live
        if u < sc.machine_rate:
            return _Customer(
                "machine",
                machine_ring,
                machine_amd,
                0.0,
                wrong < sc.amd_false_negative,
                machine_talk,
            )
        u -= sc.machine_rate
        if u < sc.busy_rate:
            return _Customer("busy", busy_after, 0.0, 0.0, False, 0.0)
        if u - sc.busy_rate < sc.failed_rate:
            return _Customer("failed", failed_after, 0.0, 0.0, False, 0.0)
        return _Customer("no_answer", sc.ring_timeout, 0.0, 0.0, False, 0.0)

    def run(self) -> Result:
        end = self.sc.duration
        self.push(0.0, _TICK, 0)
        while self.events:
            now, _, kind, ref = heapq.heappop(self.events)
            if now > end:
                break
            if kind == _TICK:
                self.tick(now)
            elif kind == _SURFACE:
                self.surface(now, ref)
            elif kind == _DEADLINE:
                if ref in self.waiting:
                    self.abandon(now, ref)
            elif kind == _TALK_END:
                self.talk_end(now, ref)
            else:
                self.agent_ready(now, ref)
        res = self.result
        res.talk_time += sum(end - start for start in self.talking.values())
        return res

    def tick(self, now: float) -> None:
        floor = Floor(
            now=now,
            agents_ready=len(self.ready),
            agents_talking=tuple([now - s for s in self.talking.values()]),
            agents_wrapping=tuple([now - s for s in self.wrapping.values()]),
            calls_dialing=tuple([now - s for s in self.dialing.values()]),
            calls_waiting=len(self.waiting),
        )
        for _ in range(self.pacer.plan(floor)):
            self.result.launched += 1
            call = self.result.launched
            cust = self.customer(now)
            self.calls[call] = (now, cust)
            self.dialing[call] = now
            self.push(now + cust.ring + cust.amd, _SURFACE, call)
        self.push(now + self.sc.tick, _TICK, 0)

    def surface(self, now: float, call: int) -> None:
        """The call leaves the dialing phase: an AMD verdict, or a failure to answer."""
        del self.dialing[call]
        launched, c = self.calls[call]
        res = self.result
        if c.kind == "human":
            res.live += 1
            if c.misclassified:  # hung up on as a machine: the regulator's abandon
                res.abandoned += 1
                del self.calls[call]
                self.pacer.record(DialOutcome(now, c.ring, "machine", False, c.amd))
                return
        elif not (c.kind == "machine" and c.misclassified):
            del self.calls[call]
            self.pacer.record(DialOutcome(now, c.ring, c.kind, False, c.amd))
            return
        deadline = launched + c.ring + c.greeting + self.sc.connect_deadline
        if c.kind == "human" and now >= deadline:  # AMD screened past the deadline
            self.abandon(now, call)
        elif self.ready:
            agent, since = self.ready.popleft()
            res.waits.append(now - since)
            self.connect(now, call, agent)
        else:
            self.waiting[call] = now
            self.push(deadline, _DEADLINE, call)

    def connect(self, now: float, call: int, agent: int) -> None:
        _, c = self.calls.pop(call)
        is_human = c.kind == "human"
        self.result.connects += is_human
        self.talking[agent] = now
        self.agent_talk[agent] = (c.talk, is_human)
        self.push(now + c.talk, _TALK_END, agent)
        self.pacer.record(DialOutcome(now, c.ring, "human", False, c.amd))

    def abandon(self, now: float, call: int) -> None:
        self.waiting.pop(call, None)
        _, c = self.calls.pop(call)
        self.result.abandoned += c.kind == "human"
        self.pacer.record(DialOutcome(now, c.ring, "human", True, c.amd))

    def talk_end(self, now: float, agent: int) -> None:
        self.result.talk_time += now - self.talking.pop(agent)
        self.wrapping[agent] = now
        wrap = self.wraps.lognormvariate(math.log(self.sc.wrap_mean) - 0.08, 0.4)
        self.push(now + wrap, _READY, agent)

    def agent_ready(self, now: float, agent: int) -> None:
        started = self.wrapping.pop(agent)
        talk, _ = self.agent_talk.pop(agent)
        self.pacer.record(AgentCycle(now, talk, now - started))
        if self.waiting:
            call, _ = self.waiting.popitem(last=False)
            self.result.waits.append(0.0)
            self.connect(now, call, agent)
        else:
            self.ready.append((agent, now))


def simulate(scenario: Scenario, pacer: Pacer, seed: int, policy: str = "") -> Result:
    """Run `pacer` on `scenario` with random streams fixed by `seed`."""
    return _Run(scenario, pacer, seed, policy or pacer.mode).run()
