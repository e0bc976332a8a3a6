"""The call-log fold, table-driven: recorded sandbox events and constructed ones (R-LOG-1/3).

The two long scenarios were recorded on the sandbox by tests/pbx/test_inbound_calls.py and
trimmed to the headers the fold reads; the short ones are built with the same helper.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from dialerd.ami.codec import Event
from dialerd.calllog.fold import CallConnected, CallEntry, CallLogFold, FoldOutput, extension_of
from dialerd.store.models import CallStatus, Direction

AGENTS = {"2001": "alice", "2002": "bob", "2003": "carol", "2004": "dave"}
_HEADERS = {"ctx": "Context", "num": "CallerIDNum", "name": "CallerIDName",
            "state": "ChannelStateDesc", "status": "DialStatus", "user": "UserEvent"}  # fmt: skip


@dataclass(frozen=True)
class E:
    """One event of a scenario: seconds after the start, name, channel alias, headers."""

    t: float
    name: str
    chan: str
    headers: dict[str, str]

    def __init__(self, t: float, event: str, chan: str, **headers: str) -> None:
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "name", event)
        object.__setattr__(self, "chan", chan)
        object.__setattr__(self, "headers", headers)


def play(
    events: tuple[E, ...], channels: dict[str, tuple[str, str]], linkedid: str, t0: float,
    variables: dict[str, str] | None = None,
) -> list[Event]:  # fmt: skip
    """AMI events from a scenario (channel aliases resolved, absolute timestamps)."""
    out = []
    for e in events:
        channel, uniqueid = channels[e.chan]
        headers: list[tuple[str, str]] = [
            ("Event", e.name), ("Timestamp", f"{t0 + e.t:.6f}"), ("Channel", channel),
            ("Uniqueid", uniqueid), ("Linkedid", linkedid),
        ]  # fmt: skip
        for key, value in e.headers.items():
            if key == "dest":
                headers.append(("DestChannel", channels[value][0]))
            else:
                headers.append((_HEADERS.get(key, key), value))
        headers += [("ChanVariable", f"{k}={v}") for k, v in (variables or {}).items()]
        out.append(Event(tuple(headers)))
    return out


def fold_all(events: list[Event], **kw: Any) -> list[FoldOutput]:
    fold = CallLogFold(AGENTS, **kw)
    out: list[FoldOutput] = []
    for event in events:
        out.extend(fold.feed(event))
    assert not fold.active
    return out


def entry(outputs: list[FoldOutput]) -> CallEntry:
    (only,) = [o for o in outputs if isinstance(o, CallEntry)]
    return only


# ------------------------------------------------------------------------------ recorded

GROUP_FALLBACK_CHANNELS = {
    "L1": ("Local/+31850000004@dialerd-inbound-00000008;1", "in751dcdd1dacd-a"),
    "L2": ("Local/+31850000004@dialerd-inbound-00000008;2", "in751dcdd1dacd-b"),
    "P2002": ("PJSIP/2002-00000006", "1795467438.24"),
    "P2003": ("PJSIP/2003-00000007", "1795467440.25"),
    "P2004": ("PJSIP/2004-00000008", "1795467442.26"),
}
GROUP_FALLBACK = (
    E(0.000, "Newchannel", "L1", ctx="dialerd-inbound"),
    E(0.000, "Newchannel", "L2", ctx="dialerd-inbound"),
    E(0.000, "NewCallerid", "L1", num="0201119004", name="Router Test"),
    E(0.000, "NewCallerid", "L2", num="0201119004", name="Router Test"),
    E(
        0.006,
        "UserEvent",
        "L2",
        num="0201119004",
        user="DialerInbound",
        Dialed="+31850000004",
        Caller="+31201119004",
        Contact="5",
        ClientType="prospect",
    ),
    E(0.006, "Newchannel", "P2002", ctx="dialerd-from-agent"),
    E(0.006, "NewCallerid", "P2002", num="s", name="Router Test"),
    E(0.008, "DialBegin", "L2", dest="P2002"),
    E(0.008, "Newstate", "P2002", state="Ringing"),
    E(0.008, "Newstate", "L1", state="Ringing"),
    E(0.008, "NewCallerid", "L1", num="s", name="Router Test"),
    E(2.010, "DialEnd", "L2", dest="P2002", status="NOANSWER"),
    E(2.010, "Hangup", "P2002", Cause="0"),
    E(2.014, "Newchannel", "P2003", ctx="dialerd-from-agent"),
    E(2.014, "NewCallerid", "P2003", num="s", name="Router Test"),
    E(2.015, "DialBegin", "L2", dest="P2003"),
    E(2.016, "Newstate", "P2003", state="Ringing"),
    E(4.018, "DialEnd", "L2", dest="P2003", status="NOANSWER"),
    E(4.018, "Hangup", "P2003", Cause="0"),
    E(4.021, "Newchannel", "P2004", ctx="dialerd-from-agent"),
    E(4.021, "NewCallerid", "P2004", num="s", name="Router Test"),
    E(4.022, "DialBegin", "L2", dest="P2004"),
    E(4.023, "Newstate", "P2004", state="Ringing"),
    E(4.024, "Newstate", "P2004", state="Up"),
    E(4.024, "DialEnd", "L2", dest="P2004", status="ANSWER"),
    E(4.024, "Newstate", "L2", state="Up"),
    E(4.024, "Newstate", "L1", state="Up"),
    E(4.024, "BridgeEnter", "P2004"),
    E(4.025, "BridgeEnter", "L2"),
    E(4.825, "Hangup", "L1", Cause="0"),
    E(4.825, "Hangup", "L2", Cause="16"),
    E(4.826, "Hangup", "P2004", Cause="16"),
)
GROUP_FALLBACK_T0 = 1795467438.964164
GROUP_FALLBACK_LINKEDID = "in751dcdd1dacd-a"
VOICEMAIL_FALLBACK_CHANNELS = {
    "L1": ("Local/+31850000005@dialerd-inbound-00000009;1", "in96fee1c24d2c-a"),
    "L2": ("Local/+31850000005@dialerd-inbound-00000009;2", "in96fee1c24d2c-b"),
    "P2002": ("PJSIP/2002-00000009", "1795467443.29"),
}
VOICEMAIL_FALLBACK = (
    E(0.000, "Newchannel", "L1", ctx="dialerd-inbound"),
    E(0.000, "Newchannel", "L2", ctx="dialerd-inbound"),
    E(0.000, "NewCallerid", "L1", num="0201119005", name="Router Test"),
    E(0.001, "NewCallerid", "L2", num="0201119005", name="Router Test"),
    E(
        0.004,
        "UserEvent",
        "L2",
        num="0201119005",
        user="DialerInbound",
        Dialed="+31850000005",
        Caller="+31201119005",
        Contact="6",
        ClientType="prospect",
    ),
    E(0.004, "Newchannel", "P2002", ctx="dialerd-from-agent"),
    E(0.004, "NewCallerid", "P2002", num="s", name="Router Test"),
    E(0.006, "DialBegin", "L2", dest="P2002"),
    E(0.007, "Newstate", "P2002", state="Ringing"),
    E(0.007, "Newstate", "L1", state="Ringing"),
    E(0.007, "NewCallerid", "L1", num="s", name="Router Test"),
    E(2.009, "DialEnd", "L2", dest="P2002", status="NOANSWER"),
    E(2.010, "Hangup", "P2002", Cause="0"),
    E(2.011, "UserEvent", "L2", num="0201119005", user="DialerFallback", Kind="voicemail"),
    E(2.011, "Newstate", "L1", state="Up"),
    E(2.012, "Newstate", "L2", state="Up"),
    E(2.012, "Hangup", "L2", Cause="16"),
    E(2.012, "Hangup", "L1", Cause="16"),
)
VOICEMAIL_FALLBACK_T0 = 1795467443.99676
VOICEMAIL_FALLBACK_LINKEDID = "in96fee1c24d2c-a"


def recorded_group_fallback() -> list[Event]:
    return play(GROUP_FALLBACK, GROUP_FALLBACK_CHANNELS, GROUP_FALLBACK_LINKEDID,
                GROUP_FALLBACK_T0)  # fmt: skip


def recorded_voicemail_fallback() -> list[Event]:
    return play(VOICEMAIL_FALLBACK, VOICEMAIL_FALLBACK_CHANNELS, VOICEMAIL_FALLBACK_LINKEDID,
                VOICEMAIL_FALLBACK_T0)  # fmt: skip


def test_recorded_hunt_then_group_fallback_is_answered_by_dave() -> None:
    """Two ignoring employees rang 2 s each, then the fallback group's dave answered."""
    outputs = fold_all(recorded_group_fallback())
    connected = [o for o in outputs if isinstance(o, CallConnected)]
    assert connected == [
        CallConnected(GROUP_FALLBACK_LINKEDID, GROUP_FALLBACK_T0 + 4.025, Direction.IN,
                      GROUP_FALLBACK_CHANNELS["L2"][0], "2004", "dave")
    ]  # fmt: skip
    call = entry(outputs)
    assert call.direction is Direction.IN and call.status is CallStatus.ANSWERED
    assert (call.number, call.dialed, call.caller_id) == (
        "+31201119004",
        "+31850000004",
        "Router Test <0201119004>",
    )
    assert (call.extension, call.agent, call.contact_id, call.client_type) == (
        "2004",
        "dave",
        5,
        "prospect",
    )
    assert call.started_at == pytest.approx(GROUP_FALLBACK_T0)
    assert call.answered_at == pytest.approx(GROUP_FALLBACK_T0 + 4.024)
    assert call.duration_seconds == pytest.approx(0.802, abs=0.002)
    assert not call.too_long and call.fallback is None


def test_recorded_voicemail_fallback_is_missed() -> None:
    """VoiceMail answers the channel, but no employee did: missed, fallback noted, the
    extension is the last one that rang."""
    call = entry(fold_all(recorded_voicemail_fallback()))
    assert (call.status, call.fallback, call.extension, call.agent) == (
        CallStatus.MISSED,
        "voicemail",
        "2002",
        "bob",
    )
    assert call.duration_seconds == 0.0 and call.answered_at is None


@pytest.mark.parametrize(
    ("threshold", "too_long"), [(None, False), (0.5, True), (0.802, False), (5.0, False)]
)
def test_too_long_threshold(threshold: float | None, too_long: bool) -> None:
    """R-LOG-3: flagged only when talk time exceeds the threshold (strictly)."""
    call = entry(fold_all(recorded_group_fallback(), too_long_after=threshold))
    assert call.too_long is too_long


def test_split_stream_two_calls_interleaved() -> None:
    """Two calls at once, events interleaved: each folds on its own Linkedid."""
    a = recorded_group_fallback()
    b = recorded_voicemail_fallback()
    mixed = [e for pair in zip(a, b, strict=False) for e in pair] + a[len(b) :]
    calls = {c.linkedid: c for c in fold_all(mixed) if isinstance(c, CallEntry)}
    assert calls[GROUP_FALLBACK_LINKEDID].status is CallStatus.ANSWERED
    assert calls[VOICEMAIL_FALLBACK_LINKEDID].status is CallStatus.MISSED


# ------------------------------------------------------------------------------ built

OUT_CHANNELS = {
    "C": ("Local/+31201234567@world-00000001;1", "c42-a"),
    "W": ("Local/+31201234567@world-00000001;2", "c42-b"),
}
OUTBOUND_ANSWERED = (
    E(0.0, "Newchannel", "C", ctx="world"),
    E(0.0, "Newchannel", "W", ctx="world"),
    E(3.0, "Newstate", "C", state="Up"),
    E(5.5, "ConfbridgeJoin", "C", Conference="dialerd-agent-alice"),
    E(65.5, "Hangup", "W", Cause="16"),
    E(65.5, "Hangup", "C", Cause="16"),
)


def test_outbound_answered_and_bridged_to_an_agent() -> None:
    """Outbound calls carry DIALERD_ATTEMPT; the customer's leg Up is the answer, the
    agent's conference names the agent."""
    events = play(OUTBOUND_ANSWERED, OUT_CHANNELS, "c42-a", 1000.0,
                  {"DIALERD_ATTEMPT": "77", "DIALERD_LEAD": "9"})  # fmt: skip
    outputs = fold_all(events, too_long_after=60)
    assert outputs[0] == CallConnected("c42-a", 1005.5, Direction.OUT, OUT_CHANNELS["C"][0],
                                       "2001", "alice")  # fmt: skip
    call = entry(outputs)
    assert (call.direction, call.status, call.number, call.lead_id) == (
        Direction.OUT,
        CallStatus.ANSWERED,
        "+31201234567",
        9,
    )
    assert (call.duration_seconds, call.too_long) == (62.5, True)


def test_outbound_not_answered_is_missed() -> None:
    events = play(
        (E(0.0, "Newchannel", "C"), E(30.0, "Hangup", "C", Cause="19")),
        OUT_CHANNELS, "c42-a", 1000.0, {"DIALERD_ATTEMPT": "77"},
    )  # fmt: skip
    call = entry(fold_all(events))
    assert (call.status, call.duration_seconds, call.ended_at) == (CallStatus.MISSED, 0.0, 1030.0)


def test_calls_that_are_not_dialerd_calls_are_ignored() -> None:
    """An agent's nailed-up leg (no inbound context, no attempt) leaves no log line."""
    chans = {"A": ("PJSIP/1001-00000001", "agent-1-a")}
    events = play((E(0.0, "Newchannel", "A", ctx="dialerd-agent"),
                   E(9.0, "Hangup", "A", Cause="16")), chans, "agent-1-a", 5.0)  # fmt: skip
    assert fold_all(events) == []


def test_call_ended_while_disconnected_is_unknown() -> None:
    """R-LOG-1: we lost the AMI connection mid-call and the call is gone on reconnect:
    its status is unknown, not guessed."""
    fold = CallLogFold(AGENTS)
    events = recorded_group_fallback()
    for event in events[:20]:
        fold.feed(event)
    fold.connection_lost()
    (call,) = [o for o in fold.reconcile({"another-call"}, 2000.0) if isinstance(o, CallEntry)]
    assert call.status is CallStatus.UNKNOWN and call.ended_at == 2000.0


def test_call_still_up_after_reconnect_ends_unknown() -> None:
    """A call that survived the disconnect is still tracked, but since events may be
    missing its status is reported as unknown."""
    fold = CallLogFold(AGENTS)
    events = recorded_group_fallback()
    for event in events[:20]:
        fold.feed(event)
    fold.connection_lost()
    assert fold.reconcile({GROUP_FALLBACK_LINKEDID}, 2000.0) == []
    out: list[FoldOutput] = []
    for event in events[20:]:
        out.extend(fold.feed(event))
    assert entry(out).status is CallStatus.UNKNOWN


def test_hostile_caller_id_is_kept_as_inert_text() -> None:
    """Escaped quotes are unescaped, control characters dropped, length capped."""
    chans = {"T": ("PJSIP/carrier-00000001", "t1"), "A": ("PJSIP/2001-00000002", "t2")}
    junk = 'Evil\\" \\n\x07guy ' + "x" * 2000
    events = play((
        E(0.0, "Newchannel", "T", ctx="dialerd-inbound", num="0201234567", name=junk),
        E(1.0, "Hangup", "T", Cause="16"),
    ), chans, "t1", 0.0)  # fmt: skip
    call = entry(fold_all(events))
    assert call.caller_id is not None
    assert call.caller_id.startswith('Evil" guy xxx') and "\n" not in call.caller_id
    assert len(call.caller_id) <= 120 + len(" <0201234567>")


def test_duplicate_and_trailing_events_do_not_resurrect_a_call() -> None:
    events = recorded_voicemail_fallback()
    fold = CallLogFold(AGENTS)
    outputs = [o for e in events + events[-3:] for o in fold.feed(e)]
    assert len([o for o in outputs if isinstance(o, CallEntry)]) == 1


@pytest.mark.parametrize(
    ("channel", "extension"),
    [
        ("PJSIP/2001-0000002a", "2001"),
        ("PJSIP/2001", "2001"),
        ("Local/2002@dialerd-agents-00000001;1", "2002"),
        ("SIP/carrier-trunk-000001", "carrier-trunk"),
        ("garbage", None),
        ("PJSIP/", None),
    ],
)
def test_extension_of(channel: str, extension: str | None) -> None:
    assert extension_of(channel) == extension
