"""Calls in flight → what the pacer sees and learns; abandon accounting (R-DL-2)."""

from __future__ import annotations

from dialerd.floor.agents import Agent
from dialerd.floor.calls import CampaignFloor, agent_cycle
from dialerd.pacing import AgentCycle, DialOutcome


def test_connected_within_deadline_is_not_abandoned() -> None:
    floor = CampaignFloor()
    floor.launched("a1", 0.0)
    floor.live_answer("a1", 8.0)
    outcome = floor.agent_connected("a1", "1001", 8.3)
    assert outcome == DialOutcome(at=8.3, ring_seconds=8.0, result="human", abandoned=False)
    assert (floor.human_answered, floor.abandoned, floor.connected) == (1, 0, 1)
    assert floor.ended("a1", 60.0, "human") is None  # already told the pacer


def test_connected_after_the_deadline_counts_as_abandoned() -> None:
    """R-DL-2: live-answered with no agent within 2 s is an abandon, even if joined later."""
    floor = CampaignFloor(connect_deadline=2.0)
    floor.launched("a1", 0.0)
    floor.live_answer("a1", 5.0)
    outcome = floor.agent_connected("a1", "1001", 7.5)
    assert outcome is not None
    assert outcome.abandoned
    assert floor.abandon_rate == 1.0


def test_abandon_message_and_hangup_while_waiting_are_abandons_once() -> None:
    floor = CampaignFloor()
    for attempt in ("a1", "a2"):
        floor.launched(attempt, 0.0)
        floor.live_answer(attempt, 3.0)
    assert floor.abandon("a1", 5.0) == DialOutcome(5.0, 3.0, "human", True)
    assert floor.ended("a1", 9.0, "human") is None
    assert floor.ended("a2", 4.0, "human") == DialOutcome(4.0, 3.0, "human", True)
    assert (floor.human_answered, floor.abandoned) == (2, 2)


def test_unanswered_calls_report_their_own_result() -> None:
    floor = CampaignFloor()
    floor.launched("a1", 0.0)
    assert floor.ended("a1", 20.0, "no_answer") == DialOutcome(20.0, 20.0, "no_answer", False)
    assert floor.human_answered == 0


def test_pacing_floor_counts_only_this_campaigns_agents() -> None:
    floor = CampaignFloor()
    floor.launched("a1", 0.0)
    floor.launched("a2", 1.0)
    floor.live_answer("a2", 3.0)
    ready = Agent("1001", "PJSIP/1001").login(0, ("demo",)).leg_up(0)
    talking = Agent("1002", "PJSIP/1002").login(0, ("demo",)).leg_up(0)
    talking = talking.reserve(2, "x").customer_joined(4)
    other = Agent("1003", "PJSIP/1003").login(0, ("other",)).leg_up(0)
    seen = floor.pacing_floor(10.0, [ready, talking, other], "demo")
    assert seen.agents_ready == 1
    assert seen.agents_talking == (6.0,)
    assert seen.calls_dialing == (10.0,)
    assert seen.calls_waiting == 1


def test_agent_cycle_is_learned_when_wrapup_ends() -> None:
    agent = Agent("1001", "PJSIP/1001").login(0, ("demo",)).leg_up(0)
    agent = agent.reserve(1, "a").customer_joined(2).customer_left(62)
    assert agent_cycle(agent, 70) == AgentCycle(at=70, talk_seconds=60, wrap_seconds=8)
