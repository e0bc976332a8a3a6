"""Calls in flight for one campaign, and what the pacer learns from them.

Pure bookkeeping between the AMI call events (mapped by the daemon) and the pacing
contract: it answers "what does the floor look like now" (`pacing_floor`) and turns each
finished dialing phase into a `DialOutcome` and each finished agent cycle into an
`AgentCycle`, exactly once per call. Abandon accounting lives here too, on the same
definition the pacer and every report use: a live-answered call that no agent joined within
the connect deadline (R-DL-2).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from dialerd.floor.agents import Agent, AgentState
from dialerd.pacing import AgentCycle, DialOutcome, Floor


class CallPhase(StrEnum):
    DIALING = "dialing"  # launched; ringing, or answered and being screened by AMD
    WAITING = "waiting"  # live answer, no agent yet
    CONNECTED = "connected"
    ENDED = "ended"


@dataclass
class CallInFlight:
    attempt_id: str
    launched: float
    phase: CallPhase = CallPhase.DIALING
    answered: float | None = None
    connected: float | None = None
    agent_id: str | None = None


@dataclass
class CampaignFloor:
    """The calls of one campaign that are not finished yet, plus its running totals."""

    connect_deadline: float = 2.0
    calls: dict[str, CallInFlight] = field(default_factory=dict)
    human_answered: int = 0
    abandoned: int = 0
    connected: int = 0
    connect_latencies: list[float] = field(default_factory=list)

    # ------------------------------------------------------------------ events
    def launched(self, attempt_id: str, now: float) -> None:
        self.calls[attempt_id] = CallInFlight(attempt_id, now)

    def live_answer(self, attempt_id: str, now: float) -> None:
        """A human answered (AMD said HUMAN, or no AMD): the 2-second clock starts."""
        call = self.calls.get(attempt_id)
        if call is None or call.phase is not CallPhase.DIALING:
            return
        call.phase, call.answered = CallPhase.WAITING, now
        self.human_answered += 1

    def agent_connected(self, attempt_id: str, agent_id: str, now: float) -> DialOutcome | None:
        call = self.calls.get(attempt_id)
        if call is None or call.phase is not CallPhase.WAITING or call.answered is None:
            return None
        call.phase, call.connected, call.agent_id = CallPhase.CONNECTED, now, agent_id
        latency = now - call.answered
        late = latency > self.connect_deadline
        self.connected += 1
        self.connect_latencies.append(latency)
        if late:
            self.abandoned += 1
        return self._outcome(call, now, "human", abandoned=late)

    def abandon(self, attempt_id: str, now: float) -> DialOutcome | None:
        """Nobody was free in time: the customer hears the abandon message."""
        call = self.calls.get(attempt_id)
        if call is None or call.phase is not CallPhase.WAITING:
            return None
        self.abandoned += 1
        call.phase = CallPhase.ENDED
        return self._outcome(call, now, "human", abandoned=True)

    def ended(self, attempt_id: str, now: float, result: str) -> DialOutcome | None:
        """The call is over. `result` (machine/no_answer/busy/failed) matters only when the
        call never left the dialing phase; a live customer who hangs up while waiting for
        an agent is an abandon too."""
        call = self.calls.pop(attempt_id, None)
        if call is None:
            return None
        if call.phase is CallPhase.DIALING:
            return self._outcome(call, now, result, abandoned=False)
        if call.phase is CallPhase.WAITING:
            self.abandoned += 1
            return self._outcome(call, now, "human", abandoned=True)
        return None

    @staticmethod
    def _outcome(call: CallInFlight, now: float, result: str, *, abandoned: bool) -> DialOutcome:
        ring_end = call.answered if call.answered is not None else now
        return DialOutcome(
            at=now, ring_seconds=ring_end - call.launched, result=result, abandoned=abandoned
        )

    # ------------------------------------------------------------------ views
    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.human_answered if self.human_answered else 0.0

    def pacing_floor(self, now: float, agents: Iterable[Agent], campaign: str) -> Floor:
        """The instant the pacer sees: only this campaign's logged-in, unpaused agents."""
        mine = [a for a in agents if campaign in a.campaigns]
        return Floor(
            now=now,
            agents_ready=sum(a.state is AgentState.READY for a in mine),
            agents_talking=tuple(
                now - a.since for a in mine if a.state in (AgentState.TALKING, AgentState.RESERVED)
            ),
            agents_wrapping=tuple(now - a.since for a in mine if a.state is AgentState.WRAPUP),
            calls_dialing=tuple(
                now - c.launched for c in self.calls.values() if c.phase is CallPhase.DIALING
            ),
            calls_waiting=sum(c.phase is CallPhase.WAITING for c in self.calls.values()),
        )


def agent_cycle(agent: Agent, now: float) -> AgentCycle | None:
    """What the pacer learns when an agent leaves wrap-up."""
    if agent.state is not AgentState.WRAPUP or agent.talk_started is None:
        return None
    return AgentCycle(
        at=now, talk_seconds=agent.since - agent.talk_started, wrap_seconds=now - agent.since
    )
