"""Agents on the floor: a pure state machine, time passed in.

An agent's phone is called once at login and the leg stays *nailed up* in the agent's own
conference for the whole session; every state below is about that one leg:

    logged_out --login--> nailing --leg_up--> ready <--> paused(reason)
    ready --reserve--> reserved --customer_joined--> talking --customer_left--> wrapup
    wrapup --disposition | wrap timeout--> ready (or paused, if a pause was asked for)
    a phone lost in wrap-up: logged out; the next login's leg_up returns to that wrap-up
    any --leg_down | logout--> logged_out

Illegal transitions raise `AgentStateError` with a message fit for the agent's screen,
because they are nearly always a command sent at the wrong moment (a disposition with no
call, a pause while talking), not a bug.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class AgentState(StrEnum):
    LOGGED_OUT = "logged_out"
    NAILING = "nailing"
    READY = "ready"
    RESERVED = "reserved"
    TALKING = "talking"
    WRAPUP = "wrapup"
    PAUSED = "paused"


class AgentStateError(Exception):
    """A transition the agent's current state does not allow."""


@dataclass(frozen=True)
class Agent:
    """One agent as the floor sees them. `since` is when the current state began."""

    agent_id: str
    endpoint: str
    state: AgentState = AgentState.LOGGED_OUT
    since: float = 0.0
    campaigns: tuple[str, ...] = ()
    pause_reason: str | None = None
    pause_after_wrapup: str | None = None
    attempt_id: str | None = None
    talk_started: float | None = None
    ready_since: float = 0.0
    """When the agent last became ready: the longest-idle agent gets the next call."""

    @property
    def logged_in(self) -> bool:
        return self.state is not AgentState.LOGGED_OUT

    def _to(self, state: AgentState, now: float, **changes: object) -> Agent:
        moved = replace(self, state=state, since=now, **changes)  # type: ignore[arg-type]
        if state is AgentState.READY:
            moved = replace(moved, ready_since=now)
        return moved

    def _require(self, verb: str, *allowed: AgentState) -> None:
        if self.state not in allowed:
            raise AgentStateError(f"cannot {verb} while {self.state.value.replace('_', ' ')}")

    # ------------------------------------------------------------------ session
    def login(self, now: float, campaigns: tuple[str, ...]) -> Agent:
        self._require("log in", AgentState.LOGGED_OUT)
        if not campaigns:
            raise AgentStateError("log in to at least one campaign")
        return self._to(AgentState.NAILING, now, campaigns=campaigns)

    def leg_up(self, now: float, unfinished_attempt: str | None = None) -> Agent:
        """The nailed-up leg answered and joined the agent's conference.

        An agent whose phone dropped during a wrap-up comes back to that wrap-up
        (`unfinished_attempt`): the call still needs its result code, and only they can
        give it (forced registration)."""
        self._require("join the conference", AgentState.NAILING)
        if unfinished_attempt is not None:
            return self._to(AgentState.WRAPUP, now, attempt_id=unfinished_attempt)
        return self._to(AgentState.READY, now)

    def leg_down(self, now: float) -> Agent:
        """The nailed-up leg is gone (phone hung up, network lost): the session ends."""
        return self._to(
            AgentState.LOGGED_OUT,
            now,
            campaigns=(),
            pause_reason=None,
            pause_after_wrapup=None,
            attempt_id=None,
            talk_started=None,
        )

    def logout(self, now: float) -> Agent:
        """Not mid-call, and not in wrap-up: the call must get its result code first."""
        self._require("log out", AgentState.READY, AgentState.PAUSED, AgentState.NAILING)
        return self.leg_down(now)

    # ------------------------------------------------------------------ pause
    def pause(self, now: float, reason: str) -> Agent:
        if not reason.strip():
            raise AgentStateError("a pause needs a reason")
        if self.state in (AgentState.TALKING, AgentState.RESERVED, AgentState.WRAPUP):
            # Honoured when the current call is wrapped up, never mid-call.
            return replace(self, pause_after_wrapup=reason)
        self._require("pause", AgentState.READY, AgentState.PAUSED)
        return self._to(AgentState.PAUSED, now, pause_reason=reason)

    def resume(self, now: float) -> Agent:
        self._require("resume", AgentState.PAUSED)
        return self._to(AgentState.READY, now, pause_reason=None)

    # ------------------------------------------------------------------ calls
    def reserve(self, now: float, attempt_id: str) -> Agent:
        self._require("take a call", AgentState.READY)
        return self._to(AgentState.RESERVED, now, attempt_id=attempt_id)

    def release(self, now: float) -> Agent:
        """A reservation that did not turn into a call (the customer hung up first)."""
        self._require("release a reservation", AgentState.RESERVED)
        return self._after_call(now)

    def customer_joined(self, now: float) -> Agent:
        self._require("talk", AgentState.RESERVED)
        return self._to(AgentState.TALKING, now, talk_started=now)

    def customer_left(self, now: float) -> Agent:
        self._require("wrap up", AgentState.TALKING)
        return self._to(AgentState.WRAPUP, now)

    def dispositioned(self, now: float) -> Agent:
        """The agent closed the call with a result code (forced registration checked
        by the caller: it knows the campaign's rules)."""
        self._require("close a call", AgentState.WRAPUP)
        return self._after_call(now)

    def wrap_expired(self, now: float, wrap_seconds: float) -> bool:
        """In wrap-up for `wrap_seconds` or longer (a timeout of 0 or less never expires)."""
        return (
            self.state is AgentState.WRAPUP
            and wrap_seconds > 0
            and now - self.since >= wrap_seconds
        )

    def wrap_timeout(self, now: float, wrap_seconds: float) -> Agent:
        """Wrap-up ended by the campaign's timeout; a no-op before it is due."""
        if not self.wrap_expired(now, wrap_seconds):
            return self
        return self._after_call(now)

    def _after_call(self, now: float) -> Agent:
        if self.pause_after_wrapup:
            return self._to(
                AgentState.PAUSED,
                now,
                pause_reason=self.pause_after_wrapup,
                pause_after_wrapup=None,
                attempt_id=None,
                talk_started=None,
            )
        return self._to(AgentState.READY, now, attempt_id=None, talk_started=None)


def choose_agent(
    ready: list[Agent], *, reserved_for: str | None = None, linked_to: str | None = None
) -> Agent | None:
    """Who takes a live customer: the callback's owner, then the address's linked agent,
    then the agent idle longest (R-CB-3, R-RC-6). A reservation or link to an agent who is
    not ready right now does not block the call here; holding a lead for its owner is the
    queue's job before the lead is ever dialed."""
    by_id = {a.agent_id: a for a in ready if a.state is AgentState.READY}
    for preferred in (reserved_for, linked_to):
        if preferred is not None and preferred in by_id:
            return by_id[preferred]
    if not by_id:
        return None
    return min(by_id.values(), key=lambda a: (a.ready_since, a.agent_id))
