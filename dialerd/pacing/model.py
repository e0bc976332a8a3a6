"""The value types of the pacing seam (see docs/pacing.md and the shared contract).

They are frozen dataclasses so that a floor snapshot handed to a policy can never be
mutated behind the caller's back, and so the simulator and the daemon can share them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

RESULTS = ("human", "machine", "no_answer", "busy", "failed")


@dataclass(frozen=True, slots=True)
class Floor:
    """The state of one campaign's floor at one instant (all durations in seconds)."""

    now: float
    agents_ready: int
    agents_talking: tuple[float, ...] = ()
    agents_wrapping: tuple[float, ...] = ()
    calls_dialing: tuple[float, ...] = ()
    calls_waiting: int = 0

    def __post_init__(self) -> None:
        if self.agents_ready < 0 or self.calls_waiting < 0:
            raise ValueError(
                f"Floor counts must be >= 0 (agents_ready={self.agents_ready}, "
                f"calls_waiting={self.calls_waiting})"
            )

    @property
    def agents(self) -> int:
        """Agents on the floor: ready, talking or wrapping (paused agents are absent)."""
        return self.agents_ready + len(self.agents_talking) + len(self.agents_wrapping)

    @property
    def in_flight(self) -> int:
        """Launched calls that do not have an agent yet: dialing plus waiting."""
        return len(self.calls_dialing) + self.calls_waiting


@dataclass(frozen=True, slots=True)
class DialOutcome:
    """A launched call has left the dialing phase.

    `amd_seconds` (answer to answering-machine verdict) is an addition to the contract
    with a default, so callers that do not know it stay valid; the predictive policy uses
    it to learn how long a live answer stays in `calls_dialing` after it picked up.
    """

    at: float
    ring_seconds: float
    result: str
    abandoned: bool = False
    amd_seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.result not in RESULTS:
            raise ValueError(
                f"DialOutcome.result {self.result!r} is not one of {', '.join(RESULTS)}"
            )
        if self.abandoned and self.result != "human":
            raise ValueError("DialOutcome.abandoned is only meaningful for result 'human'")


@dataclass(frozen=True, slots=True)
class AgentCycle:
    """An agent finished talk and wrap-up and is ready again."""

    at: float
    talk_seconds: float
    wrap_seconds: float


class Pacer(Protocol):
    """What every mode returned by `create_pacer` provides."""

    mode: str

    def plan(self, floor: Floor) -> int:
        """How many new calls to launch right now (>= 0)."""
        ...

    def record(self, event: DialOutcome | AgentCycle) -> None:
        """Learn from a finished dialing phase or agent cycle."""
        ...
