"""The agent state machine, table-driven, and who takes a live customer."""

from __future__ import annotations

import pytest

from dialerd.floor.agents import Agent, AgentState, AgentStateError, choose_agent

S = AgentState


def ready_agent(agent_id: str = "1001", at: float = 0.0) -> Agent:
    return Agent(agent_id, f"PJSIP/{agent_id}").login(at, ("demo",)).leg_up(at)


def test_a_full_call_cycle() -> None:
    a = ready_agent()
    a = a.reserve(1, "att-1")
    assert (a.state, a.attempt_id) == (S.RESERVED, "att-1")
    a = a.customer_joined(1.2)
    assert (a.state, a.talk_started) == (S.TALKING, 1.2)
    a = a.customer_left(60)
    assert a.state is S.WRAPUP
    a = a.dispositioned(70)
    assert (a.state, a.attempt_id, a.ready_since) == (S.READY, None, 70)


@pytest.mark.parametrize(
    ("state_from", "action", "message"),
    [
        ("logged_out", lambda a: a.reserve(1, "x"), "cannot take a call while logged out"),
        ("ready", lambda a: a.dispositioned(1), "cannot close a call while ready"),
        ("ready", lambda a: a.login(1, ("demo",)), "cannot log in while ready"),
        ("ready", lambda a: a.pause(1, "  "), "a pause needs a reason"),
        ("talking", lambda a: a.logout(1), "cannot log out while talking"),
        ("wrapup", lambda a: a.logout(1), "cannot log out while wrapup"),
        ("logged_out", lambda a: a.login(1, ()), "log in to at least one campaign"),
    ],
)
def test_commands_at_the_wrong_moment_say_why(state_from: str, action, message: str) -> None:  # type: ignore[no-untyped-def]
    agent = {
        "logged_out": Agent("1001", "PJSIP/1001"),
        "ready": ready_agent(),
        "talking": ready_agent().reserve(1, "a").customer_joined(1),
        "wrapup": ready_agent().reserve(1, "a").customer_joined(1).customer_left(2),
    }[state_from]
    with pytest.raises(AgentStateError) as err:
        action(agent)
    assert str(err.value) == message


def test_a_phone_lost_in_wrapup_comes_back_to_that_wrapup_at_the_next_login() -> None:
    a = ready_agent().reserve(1, "a").customer_joined(1).customer_left(2).leg_down(3)
    assert (a.state, a.attempt_id) == (S.LOGGED_OUT, None)
    a = a.login(4, ("demo",)).leg_up(5, unfinished_attempt="a")
    assert (a.state, a.attempt_id, a.since) == (S.WRAPUP, "a", 5)
    assert a.dispositioned(6).state is S.READY


def test_pause_while_talking_waits_for_the_wrapup() -> None:
    a = ready_agent().reserve(1, "a").customer_joined(1).pause(5, "lunch")
    assert a.state is S.TALKING
    a = a.customer_left(9).dispositioned(10)
    assert (a.state, a.pause_reason) == (S.PAUSED, "lunch")
    assert a.resume(20).state is S.READY


def test_wrap_timeout_frees_the_agent_only_when_due() -> None:
    a = ready_agent().reserve(1, "a").customer_joined(1).customer_left(10)
    assert a.wrap_timeout(20, 15).state is S.WRAPUP
    assert a.wrap_timeout(25, 15).state is S.READY


def test_lost_leg_logs_out_from_any_state() -> None:
    a = ready_agent().reserve(1, "a").customer_joined(1).leg_down(3)
    assert (a.state, a.campaigns, a.attempt_id) == (S.LOGGED_OUT, (), None)


def test_choose_agent_prefers_callback_owner_then_linked_then_longest_idle() -> None:
    """R-CB-3 (owner first), R-RC-6 (linked agent next), else the longest idle."""
    a, b, c = ready_agent("1001", 5), ready_agent("1002", 1), ready_agent("1003", 3)
    floor = [a, b, c]
    assert choose_agent(floor, reserved_for="1003", linked_to="1001") is c
    assert choose_agent(floor, linked_to="1001") is a
    assert choose_agent(floor, reserved_for="1999") is b
    assert choose_agent([]) is None
    assert choose_agent([a.pause(6, "break")]) is None
