"""The AMI codec on real transcripts and on hostile bytes.

Transcripts in tests/fixtures/ami/ are the exact bytes a sandbox Asterisk 22 sent
(recorded by tests/fixtures/ami/record.py). Splitting them at every byte offset must not
change a single decoded frame: TCP may cut anywhere, including inside a UTF-8 character
or between the CR and LF of the blank line.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialerd.ami.codec import (
    MAX_LINE,
    NEED_DATA,
    Action,
    AMIConnection,
    Banner,
    Closed,
    Event,
    LocalProtocolError,
    RemoteProtocolError,
    Response,
    iter_events,
    safe_value,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ami"
TRANSCRIPTS = sorted(FIXTURES.glob("*.ami"))
BANNER = b"Asterisk Call Manager/11.0.0\r\n"


def decode(chunks: list[bytes]) -> list[object]:
    conn = AMIConnection()
    out: list[object] = []
    for chunk in [*(c for c in chunks if c), b""]:
        conn.receive_data(chunk)
        out.extend(iter_events(conn))
    return out


def frame_windows(data: bytes) -> list[bytes]:
    """The transcript as banner + three consecutive frames, for every frame: a cut inside
    a frame can only change that frame, so cutting every window at every offset covers
    every offset of the whole transcript in linear time."""
    banner_end = data.index(b"\n") + 1
    ends = [m.end() for m in re.compile(rb"\r?\n\r?\n").finditer(data, banner_end)]
    starts = [banner_end, *ends]
    spans = list(zip(starts, [*ends, len(data)], strict=True))
    return [
        data[:banner_end] + data[spans[max(0, i - 1)][0] : spans[min(len(spans) - 1, i + 1)][1]]
        for i in range(len(spans))
    ]


def test_transcripts_were_recorded() -> None:
    names = {p.stem for p in TRANSCRIPTS}
    assert {"failures", "machine", "abandon", "bridged", "callerid", "restart"} <= names


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.stem)
def test_transcript_split_at_every_offset_decodes_the_same(path: Path) -> None:
    data = path.read_bytes()
    whole = decode([data])
    assert isinstance(whole[0], Banner)
    assert isinstance(whole[-1], Closed)
    assert sum(isinstance(f, Event) for f in whole) >= 2
    windows = frame_windows(data)
    assert sum(len(w) for w in windows) > len(data)
    for window in windows:
        expected = decode([window])
        for cut in range(1, len(window)):
            assert decode([window[:cut], window[cut:]]) == expected, f"{window[:80]!r} @{cut}"


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.stem)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_transcript_in_random_chunks_decodes_the_same(path: Path, data: st.DataObject) -> None:
    raw = path.read_bytes()
    cuts = sorted(data.draw(st.sets(st.integers(1, len(raw) - 1), max_size=60)))
    chunks = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    assert decode(chunks) == decode([raw])


def test_bare_lf_and_mixed_line_ends_are_tolerated() -> None:
    frames = decode([BANNER, b"Event: A\nX: 1\n\nEvent: B\r\nX: 2\n\r\nEvent: C\r\nX: 3\r\n\r\n"])
    events = [f for f in frames if isinstance(f, Event)]
    assert [(e.name, e["X"]) for e in events] == [("A", "1"), ("B", "2"), ("C", "3")]


def test_repeated_headers_keep_their_order() -> None:
    raw = BANNER + (
        b"Event: Newchannel\r\nChanVariable: DIALERD_LEAD=L1\r\n"
        b"ChanVariable: DIALERD_ATTEMPT=A=1\r\n"
        b"Output: one\r\nOutput: two\r\nOutput: \r\n\r\n"
    )
    (event,) = [f for f in decode([raw]) if isinstance(f, Event)]
    assert event.get_all("ChanVariable") == ["DIALERD_LEAD=L1", "DIALERD_ATTEMPT=A=1"]
    assert event.variables() == {"DIALERD_LEAD": "L1", "DIALERD_ATTEMPT": "A=1"}
    assert event.get_all("output") == ["one", "two", ""]
    assert event.get("chanvariable") == "DIALERD_LEAD=L1"  # case-insensitive, first wins


def test_utf8_split_inside_a_character_survives() -> None:
    raw = BANNER + "Event: UserEvent\r\nName: Zoë ☎ 日本\r\n\r\n".encode()
    cut = raw.index("☎".encode()) + 1  # inside the 3-byte character
    (event,) = [f for f in decode([raw[:cut], raw[cut:]]) if isinstance(f, Event)]
    assert event["Name"] == "Zoë ☎ 日本"


def test_invalid_utf8_is_replaced_after_framing() -> None:
    raw = BANNER + b"Event: X\r\nName: a\xff\xfeb\r\n\r\n"
    (event,) = [f for f in decode([raw]) if isinstance(f, Event)]
    assert event["Name"] == "a\ufffd\ufffdb"


def test_malformed_frames_are_skipped_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    conn = AMIConnection()
    conn.receive_data(BANNER + b"garbage without colon\r\n\r\nFoo: bar\r\n\r\nEvent: Ok\r\n\r\n")
    frames = list(iter_events(conn))
    assert [type(f) for f in frames] == [Banner, Event]
    assert conn.skipped_frames == 2  # neither is an event or a response
    assert "neither event nor response" in caplog.text


def test_odd_lines_inside_an_event_are_dropped_not_the_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    (event,) = [
        f
        for f in decode([BANNER, b"Event: X\r\nno colon here\r\nKey:value\r\nEmpty:\r\n\r\n"])
        if isinstance(f, Event)
    ]
    assert event.headers == (("Event", "X"), ("Key", "value"), ("Empty", ""))
    assert event["key"] == "value"
    assert "no header name" in caplog.text


def test_eof_inside_a_frame_is_logged_and_closed() -> None:
    conn = AMIConnection()
    conn.receive_data(BANNER + b"Event: Partial\r\nX: 1")
    conn.receive_data(b"")
    assert [type(f) for f in iter_events(conn)] == [Banner, Closed]
    assert conn.skipped_frames == 1
    assert conn.next_event() is NEED_DATA  # Closed is reported once


def test_a_non_ami_banner_is_a_remote_protocol_error() -> None:
    conn = AMIConnection()
    conn.receive_data(b"SSH-2.0-OpenSSH_9.2\r\n")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


def test_event_list_tracking() -> None:
    conn = AMIConnection()
    action = Action("CoreShowChannels")
    conn.send(action)
    aid = action.action_id.encode()
    conn.receive_data(
        BANNER + b"Response: Success\r\nActionID: " + aid + b"\r\nEventList: start\r\n\r\n"
    )
    frames = list(iter_events(conn))
    assert isinstance(frames[-1], Response)
    assert frames[-1].starts_list
    assert conn.open_lists == {action.action_id}
    assert conn.pending == set()
    conn.receive_data(
        b"Event: CoreShowChannel\r\nActionID: " + aid + b"\r\n\r\n"
        b"Event: CoreShowChannelsComplete\r\nActionID: " + aid + b"\r\nEventList: Complete\r\n\r\n"
    )
    *_, last = iter_events(conn)
    assert isinstance(last, Event)
    assert last.completes_list
    assert conn.open_lists == set()


# ------------------------------------------------------------------------- sending


def test_send_puts_a_fresh_action_id_and_keeps_repeats() -> None:
    conn = AMIConnection()
    a = Action.build("Originate", {"Channel": "Local/1@world/n", "Variable": ["A=1", "B=2"]})
    b = Action("Ping")
    assert a.action_id != b.action_id
    wire = conn.send(a)
    assert (
        wire
        == (
            f"Action: Originate\r\nActionID: {a.action_id}\r\nChannel: Local/1@world/n\r\n"
            "Variable: A=1\r\nVariable: B=2\r\n\r\n"
        ).encode()
    )
    with pytest.raises(LocalProtocolError, match="already pending"):
        conn.send(a)


@pytest.mark.parametrize(
    "value",
    ["evil\r\nAction: Hangup", "evil\nChannel: x", "cr\ronly", "nul\0byte"],
)
def test_cr_lf_in_a_value_is_refused_and_nothing_is_sent(value: str) -> None:
    conn = AMIConnection()
    with pytest.raises(LocalProtocolError, match="inject"):
        conn.send(Action("Originate", (("CallerID", value),)))
    assert conn.pending == set()


@pytest.mark.parametrize("name", ["", "Bad Name ", "Has:Colon", "New\nLine", "ActionID", "action"])
def test_bad_header_names_are_refused(name: str) -> None:
    with pytest.raises(LocalProtocolError):
        AMIConnection().send(Action("Ping", ((name, "x"),)))


def test_lines_asterisk_would_drop_are_refused() -> None:
    with pytest.raises(LocalProtocolError, match="drops lines"):
        AMIConnection().send(Action("Setvar", (("Value", "x" * MAX_LINE),)))


@given(st.text(max_size=3000))
def test_safe_value_always_makes_a_sendable_header(text: str) -> None:
    value = safe_value(text)
    assert len(value.encode()) <= 256
    wire = AMIConnection().send(Action("Setvar", (("Value", value),)))
    frames = decode([BANNER, wire.replace(b"Action: Setvar", b"Event: Setvar", 1)])
    (event,) = [f for f in frames if isinstance(f, Event)]
    assert event["Value"] == value


# ------------------------------------------------------------------------- fuzzing


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.lists(st.integers(0, 2000), max_size=8))
def test_arbitrary_bytes_never_raise_past_the_banner(payload: bytes, cuts: list[int]) -> None:
    data = BANNER + payload
    edges = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *edges], [*edges, len(data)], strict=True)]
    frames = decode(chunks)
    assert isinstance(frames[0], Banner)
    assert isinstance(frames[-1], Closed)
    assert all(isinstance(f, Event | Response) for f in frames[1:-1])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_first_bytes_raise_only_remote_protocol_error(payload: bytes) -> None:
    conn = AMIConnection()
    conn.receive_data(payload)
    conn.receive_data(b"")
    with contextlib.suppress(RemoteProtocolError):
        list(iter_events(conn))
