"""Extension routing (R-LOG-5): a scenario plus the caller's linked agent -> ringing steps.

Pure and stateless on purpose: the dialplan keeps the position (``DIALERD_ROUTE_STEP``) on
the channel and asks ``/route-next`` after each unanswered step, and the plan is recomputed
from the YAML each time. So a dialerd restart mid-call loses nothing, and a call never
depends on memory in the daemon.
"""

from __future__ import annotations

from dataclasses import dataclass

from dialerd.config.inbound import FallbackKind, InboundConfig, RouteScenario, Strategy

__all__ = ["Plan", "Step", "plan_route"]


@dataclass(frozen=True, slots=True)
class Step:
    """Ring `dial` (an Asterisk Dial string such as ``PJSIP/2001&PJSIP/2002``) for
    `timeout` seconds."""

    dial: str
    timeout: int
    extensions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    """The steps in order, then the final fallback (hangup, voicemail or queue)."""

    steps: tuple[Step, ...]
    fallback: FallbackKind
    fallback_target: str = ""

    def step(self, index: int) -> Step | None:
        return self.steps[index] if 0 <= index < len(self.steps) else None


def plan_route(
    config: InboundConfig, scenario: RouteScenario | None, linked_agent: str | None = None
) -> Plan:
    """The ringing plan for one call.

    - ``ring_one`` rings the first member, ``hunt`` each member in turn, ``ring_all`` all
      members at once; every step lasts ``step_timeout`` seconds.
    - With ``linked_agent_first`` a known client's own employee rings alone first (and
      is not rung again by the scenario).
    - A ``group`` fallback is one more ring-all step over the group; ``voicemail`` and
      ``queue`` are done by the dialplan once the steps are exhausted.
    """
    if scenario is None:
        return Plan((), FallbackKind.HANGUP)
    members = list(scenario.members)
    steps: list[Step] = []
    timeout = scenario.step_timeout
    linked = config.employees.get(linked_agent) if linked_agent else None
    if scenario.linked_agent_first and linked is not None:
        steps.append(_step(config, [linked.extension], timeout))
        members = [m for m in members if m != linked.extension]
    if members:
        if scenario.strategy is Strategy.RING_ONE:
            steps.append(_step(config, members[:1], timeout))
        elif scenario.strategy is Strategy.HUNT:
            steps.extend(_step(config, [m], timeout) for m in members)
        else:
            steps.append(_step(config, members, timeout))
    fallback = scenario.fallback
    if fallback.kind is FallbackKind.GROUP:
        steps.append(_step(config, list(config.groups[fallback.target]), timeout))
        return Plan(tuple(steps), FallbackKind.HANGUP)
    return Plan(tuple(steps), fallback.kind, fallback.target)


def _step(config: InboundConfig, extensions: list[str], timeout: int) -> Step:
    endpoints = {e.extension: e.endpoint for e in config.employees.values()}
    return Step("&".join(endpoints[x] for x in extensions), timeout, tuple(extensions))
