"""The model-free modes: preview, progressive and fixed ratio.

They share one safety rule with the predictive mode (`room`): never more calls in flight
than `max_ratio` per agent on the floor, whatever the mode's own arithmetic says.
"""

from __future__ import annotations

import math

from dialerd.pacing.model import AgentCycle, DialOutcome, Floor
from dialerd.pacing.settings import Settings


def room(floor: Floor, max_ratio: float) -> int:
    """How many more calls may be launched before the in-flight ceiling is reached."""
    return max(0, math.floor(max_ratio * floor.agents + 1e-9) - floor.in_flight)


def progressive_count(floor: Floor) -> int:
    """One call per ready agent that has no call coming yet."""
    return max(0, floor.agents_ready - floor.in_flight)


class PreviewPacer:
    """The agent dials by hand after reading the lead, so the pacer never launches."""

    mode = "preview"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def plan(self, floor: Floor) -> int:
        return 0

    def record(self, event: DialOutcome | AgentCycle) -> None:
        """Preview learns nothing: the agent paces themselves."""


class ProgressivePacer(PreviewPacer):
    """Never more calls dialing or waiting than ready agents: abandons only by accident."""

    mode = "progressive"

    def plan(self, floor: Floor) -> int:
        return min(progressive_count(floor), room(floor, self.settings.max_ratio))


class RatioPacer(PreviewPacer):
    """`ratio` calls in flight per ready agent: the classic fixed dial level."""

    mode = "ratio"

    def plan(self, floor: Floor) -> int:
        wanted = math.floor(self.settings.ratio * floor.agents_ready + 1e-9) - floor.in_flight
        return max(0, min(wanted, room(floor, self.settings.max_ratio)))
