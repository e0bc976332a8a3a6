"""The call tracker: a pure fold from AMI events to typed call lifecycle events.

No I/O and no clock: `CallTracker.feed(event)` returns what the event *means* for dialerd's
calls, so the same tracker runs on the live stream, on recorded transcripts in unit tests,
and in reconciliation after a reconnect.

How calls are recognised (see asterisk/conf/extensions_dialerd.conf and the notes):
- dialerd originates with `ChannelId: <call_id>-a`, `OtherChannelId: <call_id>-b`, so the
  first leg's Uniqueid is `<call_id>-a` and every channel of the call has that Linkedid.
  The suffixes keep one id from being a prefix of another (Asterisk rejects those).
- The channel variables DIALERD_LEAD / DIALERD_ATTEMPT / DIALERD_CAMPAIGN (inherited with
  `__`, reported as `ChanVariable` through manager.conf `channelvars`) let a tracker adopt
  calls it did not see start (a dialerd restart, a reconnect).

Lifecycle: CallOriginated -> CallRinging -> CallAnswered -> CallAmd -> CallBridged or
CallAbandoned -> CallHungUp; a call that is never answered ends with CallFailed instead.
Exactly one terminal event (CallHungUp or CallFailed) is emitted per call, with one
exception: a call `reconcile` closed as `unknown` (no channel in the snapshot) that then
shows up after all (Asterisk acted on the Originate late) comes back as CallAdopted and
ends again. Treat `unknown` as "do not retry yet", never as "safe to redial".

Failure causes (observed on the sandbox): the OriginateResponse Reason says 5 busy, 3 no
answer, 8 congestion, but a SIP trunk's 486 and every Local-channel failure give Reason 0;
the Hangup cause (17 busy, 34 congestion, 1 unallocated...) then tells what happened, and
it may only be on one leg (`;2`), so the most specific cause over all legs wins.

OriginateResponse is raised by the originating thread while channel events travel through
Asterisk's message bus, so a failure's OriginateResponse can overtake the Newchannel and
Hangup of its own legs (seen under load: an invalid number reported as a plain failure).
A failure that names a channel we have not yet seen therefore waits for that channel's
events, at most `LEG_GRACE_SECONDS`; `settle(now)` closes it with what is known when they
never come, and `settle_deadline()` tells the I/O shell when to call it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from dialerd.ami.codec import Event

__all__ = [
    "AGENT_CONFERENCE_PREFIX",
    "CallAbandoned",
    "CallAdopted",
    "CallAmd",
    "CallAnswered",
    "CallBridged",
    "CallEvent",
    "CallFailed",
    "CallHungUp",
    "CallOriginated",
    "CallRinging",
    "CallTracker",
    "FailReason",
    "classify_failure",
]

AGENT_CONFERENCE_PREFIX = "dialerd-agent-"
LEG_A = "-a"
LEG_B = "-b"


class FailReason(StrEnum):
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    CONGESTION = "congestion"
    INVALID = "invalid"
    FAILED = "failed"
    UNKNOWN = "unknown"  # ended while we were disconnected; we cannot know how


# Q.850 causes, grouped by what a dialer does next.
_BUSY_CAUSES = frozenset({17})
_NO_ANSWER_CAUSES = frozenset({18, 19})
_CONGESTION_CAUSES = frozenset({34, 38, 41, 42, 44, 47})
_INVALID_CAUSES = frozenset({1, 2, 3, 22, 28})
# OriginateResponse Reason (enum ast_control_frame_type of the last control frame).
_REASON_FAILURE = {5: FailReason.BUSY, 3: FailReason.NO_ANSWER, 8: FailReason.CONGESTION}
_REASON_ANSWERED = 4


def classify_failure(originate_reason: int | None, cause: int | None) -> FailReason:
    """Why a never-answered call failed: the Reason when specific, else the Q.850 cause."""
    if originate_reason in _REASON_FAILURE:
        return _REASON_FAILURE[originate_reason]
    if cause in _BUSY_CAUSES:
        return FailReason.BUSY
    if cause in _NO_ANSWER_CAUSES:
        return FailReason.NO_ANSWER
    if cause in _CONGESTION_CAUSES:
        return FailReason.CONGESTION
    if cause in _INVALID_CAUSES:
        return FailReason.INVALID
    return FailReason.FAILED


# ------------------------------------------------------------------------------ events


@dataclass(frozen=True, slots=True)
class CallEvent:
    """Base: which call (dialerd's originate id) and when (Asterisk's event Timestamp,
    epoch seconds; None when the PBX does not send timestamps)."""

    call_id: str
    at: float | None


@dataclass(frozen=True, slots=True)
class CallOriginated(CallEvent):
    lead: str | None
    attempt: str | None
    campaign: str | None


@dataclass(frozen=True, slots=True)
class CallAdopted(CallEvent):
    """Found up after a (re)connect without having seen it start."""

    lead: str | None
    attempt: str | None
    campaign: str | None
    answered: bool
    bridged: bool


@dataclass(frozen=True, slots=True)
class CallRinging(CallEvent):
    pass


@dataclass(frozen=True, slots=True)
class CallAnswered(CallEvent):
    pass


@dataclass(frozen=True, slots=True)
class CallAmd(CallEvent):
    """The dialplan's AMD() verdict (HUMAN, MACHINE, NOTSURE, HANGUP) and its cause."""

    verdict: str
    cause: str


@dataclass(frozen=True, slots=True)
class CallBridged(CallEvent):
    """The customer joined agent `agent`'s conference (dialerd-agent-<agent>)."""

    agent: str


@dataclass(frozen=True, slots=True)
class CallAbandoned(CallEvent):
    """No agent in time: the safe-harbour message plays (UserEvent DialerAbandon)."""


@dataclass(frozen=True, slots=True)
class CallFailed(CallEvent):
    """Terminal: the call was never answered."""

    reason: FailReason
    cause: int | None
    originate_reason: int | None
    ring_seconds: float | None
    reconciled: bool = False


@dataclass(frozen=True, slots=True)
class CallHungUp(CallEvent):
    """Terminal: an answered call ended. Durations from Asterisk's timestamps."""

    cause: int | None
    cause_txt: str
    ring_seconds: float | None
    talk_seconds: float | None
    total_seconds: float | None
    amd: str | None
    agent: str | None
    abandoned: bool
    reconciled: bool = False


# ------------------------------------------------------------------------------ state


@dataclass
class _Call:
    call_id: str
    lead: str | None = None
    attempt: str | None = None
    campaign: str | None = None
    action_id: str | None = None
    announced: bool = False
    started_at: float | None = None
    ringing: bool = False
    answered_at: float | None = None
    answered: bool = False
    amd: str | None = None
    agent: str | None = None
    abandoned: bool = False
    originate_reason: int | None = None
    originate_failed: bool = False
    live: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)
    causes: list[tuple[int, str]] = field(default_factory=list)
    stale: bool = False

    def vars_from(self, variables: dict[str, str]) -> None:
        self.lead = self.lead or variables.get("DIALERD_LEAD") or None
        self.attempt = self.attempt or variables.get("DIALERD_ATTEMPT") or None
        self.campaign = self.campaign or variables.get("DIALERD_CAMPAIGN") or None

    def best_cause(self) -> tuple[int | None, str]:
        """The most telling hangup cause over all legs: anything specific beats
        0 (unknown) and 16 (normal clearing), which Local channels put on the other leg."""
        best: tuple[int | None, str] = (None, "")
        for cause, txt in self.causes:
            if cause not in (0, 16):
                return cause, txt
            if best[0] is None or (best[0] == 0 and cause == 16):
                best = (cause, txt)
        return best


def _ts(event: Event) -> float | None:
    raw = event.get("Timestamp")
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return None


def _int(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw.strip())
    except ValueError:
        return None


def _call_id_of(linkedid: str | None) -> str | None:
    if linkedid and linkedid.endswith(LEG_A) and len(linkedid) > len(LEG_A):
        return linkedid[: -len(LEG_A)]
    return None


def _succeeded(originate_response: Event) -> bool:
    return (originate_response.get("Response") or "").lower() == "success" or _int(
        originate_response.get("Reason")
    ) == _REASON_ANSWERED


def _elapsed(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return round(max(0.0, end - start), 6)


class CallTracker:
    """Folds AMI events into `CallEvent`s for dialerd's own calls; ignores the rest."""

    # Events can trail a call's last Hangup (ConfbridgeLeave, a late OriginateResponse):
    # remembering this many ended ids keeps them from resurrecting the call.
    ENDED_MEMORY = 10_000
    # How long a failed originate waits for channel events that trail its OriginateResponse.
    LEG_GRACE_SECONDS = 2.0

    def __init__(self) -> None:
        self._calls: dict[str, _Call] = {}
        self._by_action: dict[str, str] = {}
        self._ended: dict[str, None] = {}  # insertion-ordered set
        self._orphans: dict[str, Event] = {}  # OriginateResponses of not-yet-known calls
        self._presumed: dict[str, _Call] = {}  # closed as "unknown" by reconcile
        # Failed originates waiting for their legs' events: call id -> since (None: the
        # response had no Timestamp; the grace then starts at the next `settle`).
        self._awaiting: dict[str, float | None] = {}

    # ------------------------------------------------------------------ queries
    @property
    def active(self) -> frozenset[str]:
        """Ids of calls that have not ended."""
        return frozenset(self._calls)

    def expect(
        self,
        call_id: str,
        *,
        lead: str | None = None,
        attempt: str | None = None,
        campaign: str | None = None,
        action_id: str | None = None,
    ) -> None:
        """Announce a call we are about to originate, so it is tracked from its first
        event, and a failure that creates no channel at all is still attributed to it."""
        call = self._calls.setdefault(call_id, _Call(call_id))
        call.lead, call.attempt, call.campaign = lead, attempt, campaign
        if action_id is not None:
            call.action_id = action_id
            self._by_action[action_id] = call_id

    # ------------------------------------------------------------------ folding
    def feed(self, event: Event) -> list[CallEvent]:
        """What `event` means for our calls (often nothing)."""
        if not self._awaiting:
            return self._fold(event)
        settled = self.settle(_ts(event))  # the stream's own clock moved on
        return settled + self._fold(event)

    def _fold(self, event: Event) -> list[CallEvent]:
        name = event.name
        if name == "OriginateResponse":
            return self._originate_response(event)
        linkedid = event.get("Linkedid") or event.get("DestLinkedid")
        call_id = _call_id_of(linkedid)
        if call_id is None:
            return []
        out: list[CallEvent] = []
        at = _ts(event)
        if call_id in self._ended:
            if call_id not in self._presumed:
                return []
            out.extend(self._revive(call_id, at))
        call = self._calls.get(call_id)
        if call is None:
            variables = event.variables()
            if not variables.get("DIALERD_ATTEMPT"):
                return []
            call = self._calls[call_id] = _Call(call_id)
            orphan = self._orphans.pop(call_id, None)
            if orphan is not None and not _succeeded(orphan):
                call.originate_reason = _int(orphan.get("Reason"))
                call.originate_failed = True  # ends it once its legs are gone
        if not call.announced:
            call.vars_from(event.variables())
            call.announced = True
            call.started_at = at
            out.append(CallOriginated(call_id, at, call.lead, call.attempt, call.campaign))
        elif call.lead is None or call.attempt is None:
            call.vars_from(event.variables())
        uniqueid = event.get("Uniqueid")
        leg_a = call_id + LEG_A
        if name == "Hangup":
            if uniqueid:
                call.live.discard(uniqueid)
                call.seen.add(uniqueid)
            cause = _int(event.get("Cause"))
            if cause is not None:
                call.causes.append((cause, event.get("Cause-txt", "") or ""))
            out.extend(self._maybe_finish(call, at))
            return out
        if uniqueid and uniqueid not in call.seen:
            call.live.add(uniqueid)
            self._awaiting.pop(call_id, None)  # its legs turned up: their hangups close it
        if name == "Newstate" and uniqueid == leg_a:
            state = event.get("ChannelStateDesc")
            if state == "Ringing":
                out.extend(self._ringing(call, at))
            elif state == "Up":
                out.extend(self._answered(call, at))
        elif name == "DialState" and event.get("DestUniqueid") == leg_a:
            if event.get("DialStatus") == "RINGING":
                out.extend(self._ringing(call, at))
        elif name == "UserEvent":
            kind = event.get("UserEvent")
            if kind == "DialerAMD":
                call.amd = event.get("Verdict", "") or ""
                out.append(CallAmd(call_id, at, call.amd, event.get("Why", "") or ""))
            elif kind == "DialerAbandon" and not call.abandoned:
                call.abandoned = True
                out.append(CallAbandoned(call_id, at))
        elif name.lower() == "confbridgejoin":
            conference = event.get("Conference") or ""
            if conference.startswith(AGENT_CONFERENCE_PREFIX) and call.agent is None:
                call.agent = conference[len(AGENT_CONFERENCE_PREFIX) :]
                out.append(CallBridged(call_id, at, call.agent))
        return out

    def _ringing(self, call: _Call, at: float | None) -> list[CallEvent]:
        if call.ringing or call.answered:
            return []
        call.ringing = True
        return [CallRinging(call.call_id, at)]

    def _answered(self, call: _Call, at: float | None) -> list[CallEvent]:
        if call.answered:
            return []
        call.answered = True
        call.answered_at = at
        return [CallAnswered(call.call_id, at)]

    def _originate_response(self, event: Event) -> list[CallEvent]:
        call_id = _call_id_of(event.get("Uniqueid"))
        if call_id in self._ended:
            if call_id not in self._presumed:
                return []
            revived = self._revive(call_id, _ts(event))
            return revived + self._apply_originate_response(self._calls[call_id], event)
        if call_id is None or call_id not in self._calls:
            call_id = self._by_action.get(event.action_id or "")
        call = self._calls.get(call_id) if call_id else None
        if call is None:
            # Not (yet) known as ours: a call adopted from its channel variables may only
            # show them after its OriginateResponse. Keep the response for that moment.
            orphan_id = _call_id_of(event.get("Uniqueid"))
            if orphan_id is not None:
                self._orphans[orphan_id] = event
                if len(self._orphans) > self.ENDED_MEMORY:
                    del self._orphans[next(iter(self._orphans))]
            return []
        return self._apply_originate_response(call, event)

    def _apply_originate_response(self, call: _Call, event: Event) -> list[CallEvent]:
        at = _ts(event)
        out: list[CallEvent] = []
        if not call.announced:
            call.announced = True
            call.started_at = at
            out.append(CallOriginated(call.call_id, at, call.lead, call.attempt, call.campaign))
        call.originate_reason = _int(event.get("Reason"))
        if _succeeded(event):
            out.extend(self._answered(call, at))
        else:
            call.originate_failed = True
            made_channel = _call_id_of(event.get("Uniqueid")) == call.call_id
            if made_channel and not call.live and not call.seen:
                # A channel was made but none of its events has arrived yet: wait for them.
                self._awaiting[call.call_id] = at
                return out
            out.extend(self._maybe_finish(call, at))
        return out

    # ------------------------------------------------------------------ time
    def settle_deadline(self) -> float | None:
        """When `settle` next has work: the earliest grace end of a failed originate still
        waiting for its legs (-inf when one has no timestamp yet), or None."""
        if not self._awaiting:
            return None
        return min(
            (since + self.LEG_GRACE_SECONDS if since is not None else float("-inf"))
            for since in self._awaiting.values()
        )

    def settle(self, now: float | None) -> list[CallEvent]:
        """Close failed originates whose legs' events did not come within the grace.

        `now` is the caller's clock (the live shell passes wall time, the same clock as
        Asterisk's event Timestamps); None only starts the grace of untimed waits.
        """
        out: list[CallEvent] = []
        for call_id, since in list(self._awaiting.items()):
            if since is None:
                self._awaiting[call_id] = now
            elif now is not None and now >= since + self.LEG_GRACE_SECONDS:
                del self._awaiting[call_id]
                out.extend(self._maybe_finish(self._calls[call_id], now))
        return out

    def _maybe_finish(self, call: _Call, at: float | None) -> list[CallEvent]:
        """Emit the terminal event once every leg is gone and the outcome is known."""
        if call.live:
            return []
        if call.answered:
            return [self._hung_up(call, at, reconciled=False)]
        if call.originate_failed:
            return [self._failed(call, at, reconciled=False)]
        return []  # legs gone, OriginateResponse still to come

    def _hung_up(self, call: _Call, at: float | None, *, reconciled: bool) -> CallHungUp:
        self._forget(call)
        cause, txt = call.best_cause()
        return CallHungUp(
            call.call_id, at, cause, txt,
            ring_seconds=_elapsed(call.started_at, call.answered_at),
            talk_seconds=_elapsed(call.answered_at, at),
            total_seconds=_elapsed(call.started_at, at),
            amd=call.amd, agent=call.agent, abandoned=call.abandoned, reconciled=reconciled,
        )  # fmt: skip

    def _failed(self, call: _Call, at: float | None, *, reconciled: bool) -> CallFailed:
        self._forget(call)
        cause, _ = call.best_cause()
        reason = (
            FailReason.UNKNOWN if reconciled else classify_failure(call.originate_reason, cause)
        )
        return CallFailed(
            call.call_id, at, reason, cause, call.originate_reason,
            ring_seconds=_elapsed(call.started_at, at), reconciled=reconciled,
        )  # fmt: skip

    def _revive(self, call_id: str, at: float | None) -> list[CallEvent]:
        """A call closed by `reconcile` as unknown shows up after all (Asterisk acted on
        the Originate after the snapshot): track it again and say so."""
        call = self._presumed.pop(call_id)
        del self._ended[call_id]
        self._calls[call_id] = call
        if call.action_id is not None:
            self._by_action[call.action_id] = call_id
        call.announced = True
        call.started_at = at
        return [CallAdopted(call_id, at, call.lead, call.attempt, call.campaign,
                            answered=False, bridged=False)]  # fmt: skip

    def _forget(self, call: _Call) -> None:
        self._calls.pop(call.call_id, None)
        self._awaiting.pop(call.call_id, None)
        if call.action_id is not None:
            self._by_action.pop(call.action_id, None)
        self._ended[call.call_id] = None
        if len(self._ended) > self.ENDED_MEMORY:
            self._presumed.pop(next(iter(self._ended)), None)
            del self._ended[next(iter(self._ended))]

    # ------------------------------------------------------------------ reconnects
    def connection_lost(self) -> None:
        """Events may be missing from here on: every call known now gets checked against
        the next `reconcile` snapshot. Calls expected later are left alone by it."""
        for call in self._calls.values():
            call.stale = True

    def reconcile(self, channels: Iterable[Event], now: float | None) -> list[CallEvent]:
        """Fold a CoreShowChannels snapshot taken after a (re)connect.

        Calls that were known before the connection was lost and have no channel left
        ended while we were away: they are closed (`reconciled=True`, cause unknown).
        dialerd calls that are up but unknown (a daemon restart) are adopted. Known calls
        that got answered meanwhile report it.
        """
        groups: dict[str, list[Event]] = {}
        for chan in channels:
            call_id = _call_id_of(chan.get("Linkedid"))
            if call_id is not None:
                groups.setdefault(call_id, []).append(chan)
        out: list[CallEvent] = []
        for call in list(self._calls.values()):
            if not call.stale:
                continue
            call.stale = False
            legs = groups.get(call.call_id)
            if not legs:
                if call.answered:
                    out.append(self._hung_up(call, now, reconciled=True))
                    continue
                out.append(self._failed(call, now, reconciled=True))
                # Never seen answered and gone: maybe it never existed, maybe Asterisk
                # has yet to act on the Originate. Remember it, in case it shows up.
                self._presumed[call.call_id] = _Call(
                    call.call_id, call.lead, call.attempt, call.campaign, call.action_id
                )
                if len(self._presumed) > self.ENDED_MEMORY:
                    del self._presumed[next(iter(self._presumed))]
                continue
            call.live = {u for u in (c.get("Uniqueid") for c in legs) if u}
            if any(c.get("Uniqueid") == call.call_id + LEG_A
                   and c.get("ChannelStateDesc") == "Up" for c in legs):  # fmt: skip
                out.extend(self._answered(call, now))
        for call_id, legs in groups.items():
            if call_id in self._calls or call_id in self._ended:
                continue
            variables: dict[str, str] = {}
            for chan in legs:
                variables.update({k: v for k, v in chan.variables().items() if v})
            if not variables.get("DIALERD_ATTEMPT"):
                continue
            call = self._calls[call_id] = _Call(call_id, announced=True, started_at=now)
            call.vars_from(variables)
            call.live = {u for u in (c.get("Uniqueid") for c in legs) if u}
            leg_a = next((c for c in legs if c.get("Uniqueid") == call_id + LEG_A), None)
            call.answered = leg_a is not None and leg_a.get("ChannelStateDesc") == "Up"
            call.answered_at = now if call.answered else None
            bridged = any((c.get("BridgeId") or "") for c in legs)
            out.append(
                CallAdopted(call_id, now, call.lead, call.attempt, call.campaign,
                            answered=call.answered, bridged=bridged)
            )  # fmt: skip
        return out
