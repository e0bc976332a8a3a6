"""The call log as a pure fold over AMI events (the shape of wazo-call-logd's interpretor).

`CallLogFold.feed(event)` takes one AMI event and returns what it means for the call log:
`CallConnected` when a customer is talking to an employee (the recorder starts MixMonitor
then) and `CallEntry` when a call is over (one row of the call log). No I/O and no clock:
the same fold runs on the live AMI stream, on recorded events in table-driven tests, and
after a reconnect (`connection_lost` + `reconcile`).

How calls are recognised, all by their Linkedid (every channel of a call shares it):
- inbound: a channel enters the ``dialerd-inbound`` context (the carrier trunk's context,
  or Local/<dialed>@dialerd-inbound on the sandbox). The dialplan's ``UserEvent
  DialerInbound`` carries what the caller-ID lookup found (E.164 number, contact id, client
  type), already reduced to digits and ids by dialerd's AGI handler.
- outbound: the channels carry ``DIALERD_ATTEMPT`` (set with ``__`` by dialerd's Originate).
Anything else (an agent's nailed-up leg, a test call) is folded and forgotten.

Status (R-LOG-1): inbound is *answered* once a Dial from the call reports ANSWER, outbound
once the customer's leg is Up; otherwise *missed*. A call whose end we did not see (the AMI
connection dropped meanwhile) is *unknown*: the PBX cannot tell us any more, so we do not
guess. Caller-ID text is kept as data only; nothing here interprets it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dialerd.ami.actions import unescape_c
from dialerd.ami.codec import Event
from dialerd.store.models import CallEntry, CallStatus, ClientType, Direction

__all__ = ["CallConnected", "CallEntry", "CallLogFold", "FoldOutput", "extension_of"]

INBOUND_CONTEXT = "dialerd-inbound"
AGENT_CONFERENCE_PREFIX = "dialerd-agent-"
# Caller-ID text is stored for people to read; 2 KB of junk has no business in the log.
CALLER_ID_LIMIT = 120


@dataclass(frozen=True, slots=True)
class CallConnected:
    """A customer is connected to an employee: the moment a recording may start.

    `channel` is the customer's channel as Asterisk names it (MixMonitor's target).
    """

    linkedid: str
    at: float | None
    direction: Direction
    channel: str
    extension: str | None
    agent: str | None


FoldOutput = CallConnected | CallEntry


def extension_of(channel: str) -> str | None:
    """The extension a dialed channel stands for: ``PJSIP/1001-0000002a`` -> ``1001``,
    ``Local/1001@ctx-00000001;1`` -> ``1001``; None for anything else."""
    tech, sep, rest = channel.partition("/")
    if not sep or not rest:
        return None
    if tech.upper() == "LOCAL":
        return rest.partition("@")[0] or None
    name = rest.rpartition("-")[0] if "-" in rest else rest
    return name.partition("@")[0] or None


def _number_of(channel: str) -> str | None:
    """The number an outbound leg dials: ``Local/+3120...@world-...;1`` or
    ``PJSIP/+3120...@carrier-...`` -> ``+3120...``."""
    _, sep, rest = channel.partition("/")
    if not sep:
        return None
    user, at, _ = rest.partition("@")
    return user if at and user else None


def _ts(event: Event) -> float | None:
    try:
        return float(event.get("Timestamp") or "")
    except ValueError:
        return None


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


def _clean(text: str | None) -> str | None:
    """Caller-supplied text as inert data: unescaped, control characters dropped, capped."""
    if not text or text == "<unknown>":
        return None
    value = "".join(c for c in unescape_c(text) if c.isprintable())
    return value[:CALLER_ID_LIMIT] or None


@dataclass
class _Call:
    linkedid: str
    started_at: float | None = None
    direction: Direction | None = None
    live: set[str] = field(default_factory=set)
    entry_channel: str | None = None
    caller_num: str | None = None
    caller_name: str | None = None
    number: str | None = None
    dialed: str | None = None
    contact_id: int | None = None
    client_type: str | None = None
    lead_id: int | None = None
    extension: str | None = None
    agent: str | None = None
    answered_at: float | None = None
    connected: bool = False
    fallback: str | None = None
    last_at: float | None = None
    stale: bool = False


class CallLogFold:
    """Folds AMI events into call-log facts.

    `extension_agents` maps an extension to the employee who owns it (from the YAML);
    `too_long_after` is the R-LOG-3 threshold in seconds of talk time (None: no flag).
    """

    ENDED_MEMORY = 10_000

    def __init__(
        self,
        extension_agents: Mapping[str, str] | None = None,
        too_long_after: float | None = None,
    ) -> None:
        self.extension_agents = dict(extension_agents or {})
        self.too_long_after = too_long_after
        self._calls: dict[str, _Call] = {}
        self._ended: dict[str, None] = {}

    @property
    def active(self) -> frozenset[str]:
        """Linkedids of the calls in progress."""
        return frozenset(self._calls)

    def feed(self, event: Event) -> list[FoldOutput]:
        """What `event` means for the call log (usually nothing)."""
        linkedid = event.get("Linkedid")
        if not linkedid or linkedid in self._ended or not event.get("Channel"):
            return []  # events without a channel (the Originate's own dial) add nothing
        call = self._calls.get(linkedid)
        if call is None:
            if event.name != "Newchannel" and not event.get("Uniqueid"):
                return []
            call = self._calls[linkedid] = _Call(linkedid)
        at = _ts(event)
        if call.started_at is None:
            call.started_at = at
        if at is not None:
            call.last_at = at
        self._classify(call, event)
        uniqueid = event.get("Uniqueid") or ""
        name = event.name
        if name == "Hangup":
            call.live.discard(uniqueid)
            if not call.live:
                return self._finish(call, at, CallStatus.UNKNOWN if call.stale else None)
            return []
        if uniqueid:
            call.live.add(uniqueid)
        handler = _HANDLERS.get(name)
        return handler(self, call, event, at) if handler else []

    # ------------------------------------------------------------------ per event
    def _classify(self, call: _Call, event: Event) -> None:
        channel = event.get("Channel") or ""
        num = _clean(event.get("CallerIDNum"))
        if call.direction is None:
            if event.get("Context") == INBOUND_CONTEXT:
                call.direction = Direction.IN
                call.entry_channel = channel
            elif event.variables().get("DIALERD_ATTEMPT"):
                call.direction = Direction.OUT
                call.lead_id = _int(event.variables().get("DIALERD_LEAD"))
        if call.direction is Direction.OUT and event.get("Uniqueid") == call.linkedid:
            call.entry_channel = channel
            call.number = call.number or _number_of(channel)
        if call.caller_num is None and num and channel == call.entry_channel:
            call.caller_num = num
            call.caller_name = _clean(event.get("CallerIDName"))

    def _user_event(self, call: _Call, event: Event, at: float | None) -> list[FoldOutput]:
        kind = event.get("UserEvent")
        if kind == "DialerInbound":
            call.direction = Direction.IN
            call.entry_channel = event.get("Channel")
            # The entry channel's number is the caller's (dialerd only renames it).
            call.caller_num = _clean(event.get("CallerIDNum")) or call.caller_num
            call.number = _clean(event.get("Caller")) or call.number
            call.dialed = _clean(event.get("Dialed"))
            call.contact_id = _int(event.get("Contact"))
            call.client_type = _clean(event.get("ClientType"))
        elif kind == "DialerFallback":
            call.fallback = _clean(event.get("Kind"))
        return []

    def _dial_begin(self, call: _Call, event: Event, at: float | None) -> list[FoldOutput]:
        if event.get("Channel") == call.entry_channel and not call.answered_at:
            call.extension = extension_of(event.get("DestChannel") or "") or call.extension
        return []

    def _dial_end(self, call: _Call, event: Event, at: float | None) -> list[FoldOutput]:
        if (
            call.direction is Direction.IN
            and event.get("Channel") == call.entry_channel
            and event.get("DialStatus") == "ANSWER"
            and call.answered_at is None
        ):
            call.answered_at = at if at is not None else call.last_at
            call.extension = extension_of(event.get("DestChannel") or "") or call.extension
            call.agent = self.extension_agents.get(call.extension or "")
        return []

    def _newstate(self, call: _Call, event: Event, at: float | None) -> list[FoldOutput]:
        if (
            call.direction is Direction.OUT
            and event.get("Uniqueid") == call.linkedid
            and event.get("ChannelStateDesc") == "Up"
            and call.answered_at is None
        ):
            call.answered_at = at if at is not None else call.last_at
        return []

    def _bridge_enter(self, call: _Call, event: Event, at: float | None) -> list[FoldOutput]:
        if (
            call.direction is Direction.IN
            and call.answered_at is not None
            and event.get("Channel") == call.entry_channel
        ):
            return self._connect(call, at)
        return []

    def _confbridge_join(self, call: _Call, event: Event, at: float | None) -> list[FoldOutput]:
        conference = event.get("Conference") or ""
        if call.direction is Direction.OUT and conference.startswith(AGENT_CONFERENCE_PREFIX):
            call.agent = call.agent or conference[len(AGENT_CONFERENCE_PREFIX) :]
            owned = [e for e, a in self.extension_agents.items() if a == call.agent]
            call.extension = call.extension or (owned[0] if owned else None)
            return self._connect(call, at)
        return []

    def _connect(self, call: _Call, at: float | None) -> list[FoldOutput]:
        if call.connected or call.direction is None or call.entry_channel is None:
            return []
        call.connected = True
        return [
            CallConnected(
                call.linkedid, at, call.direction, call.entry_channel, call.extension, call.agent
            )
        ]

    # ------------------------------------------------------------------ the end
    def _finish(self, call: _Call, at: float | None, forced: CallStatus | None) -> list[FoldOutput]:
        self._calls.pop(call.linkedid, None)
        self._ended[call.linkedid] = None
        if len(self._ended) > self.ENDED_MEMORY:
            del self._ended[next(iter(self._ended))]
        if call.direction is None:
            return []
        if forced is not None:
            status = forced
        else:
            status = CallStatus.ANSWERED if call.answered_at is not None else CallStatus.MISSED
        ended = at if at is not None else call.last_at
        duration: float | None = None
        if status is CallStatus.ANSWERED and ended is not None and call.answered_at is not None:
            duration = round(max(0.0, ended - call.answered_at), 3)
        elif status is CallStatus.MISSED:
            duration = 0.0
        too_long = (
            self.too_long_after is not None
            and duration is not None
            and duration > self.too_long_after
        )
        caller_id = call.caller_num
        if call.caller_name and caller_id:
            caller_id = f"{call.caller_name} <{caller_id}>"
        number = call.number or call.caller_num or ""
        return [
            CallEntry(
                linkedid=call.linkedid,
                direction=call.direction,
                status=status,
                number=number,
                started_at=call.started_at if call.started_at is not None else (ended or 0.0),
                caller_id=caller_id,
                dialed=call.dialed,
                extension=call.extension,
                agent=call.agent or self.extension_agents.get(call.extension or ""),
                contact_id=call.contact_id,
                client_type=_client_type(call.client_type),
                lead_id=call.lead_id,
                answered_at=call.answered_at,
                ended_at=ended,
                duration_seconds=duration,
                too_long=too_long,
                fallback=call.fallback,
            )
        ]

    # ------------------------------------------------------------------ reconnects
    def connection_lost(self) -> None:
        """Events may be missing from now on: every call in progress is checked against
        the next `reconcile`, and any call ending later is logged with status unknown."""
        for call in self._calls.values():
            call.stale = True

    def reconcile(self, live_linkedids: Iterable[str], now: float | None) -> list[FoldOutput]:
        """After a reconnect: calls with no channel left ended while we were away; they
        are logged as *unknown* (R-LOG-1: say so rather than guess)."""
        live = set(live_linkedids)
        out: list[FoldOutput] = []
        for call in list(self._calls.values()):
            if call.stale and call.linkedid not in live:
                out.extend(self._finish(call, now, CallStatus.UNKNOWN))
        return out


_HANDLERS = {
    "UserEvent": CallLogFold._user_event,
    "DialBegin": CallLogFold._dial_begin,
    "DialEnd": CallLogFold._dial_end,
    "Newstate": CallLogFold._newstate,
    "BridgeEnter": CallLogFold._bridge_enter,
    "ConfbridgeJoin": CallLogFold._confbridge_join,
}


def _client_type(raw: str | None) -> ClientType | None:
    """The lookup's client type as the log keeps it; anything else is not known."""
    try:
        return ClientType(raw) if raw else None
    except ValueError:
        return None
