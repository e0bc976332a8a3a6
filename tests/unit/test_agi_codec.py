"""The FastAGI codec on recorded sandbox sessions (tests/fixtures/agi/*.agi.json) and on
arbitrary bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialerd.agi.codec import (
    NEED_DATA,
    AGIConnection,
    Closed,
    Environment,
    HangupNotice,
    LocalProtocolError,
    RemoteProtocolError,
    Reply,
    parse_reply,
    quote_arg,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "agi"
SESSIONS = [
    (path.stem, n, session)
    for path in sorted(FIXTURES.glob("*.agi.json"))
    for n, session in enumerate(json.loads(path.read_text()))
]
Item = Environment | Reply | HangupNotice | Closed


def replay(session: list[list[str]], cut: int | None = None) -> list[Item]:
    """Feed the recorded inbound bytes, sending our recorded commands in turn; `cut`
    splits every inbound chunk at that offset as well."""
    conn = AGIConnection()
    out: list[Item] = []

    def drain() -> None:
        while (item := conn.next_event()) is not NEED_DATA:
            out.append(item)

    for direction, text in session:
        if direction == "out":
            conn.send(text.strip().replace('"', ""))  # same turn-taking as the recording
            continue
        data = text.encode()
        pieces = [data] if cut is None or cut >= len(data) else [data[:cut], data[cut:]]
        for piece in pieces:
            conn.receive_data(piece)
            drain()
    conn.receive_data(b"")
    drain()
    return out


def test_sessions_were_recorded() -> None:
    assert {name for name, _, _ in SESSIONS} >= {"bridged.agi", "agi_hangup.agi"}


@pytest.mark.parametrize(("name", "n", "session"), SESSIONS, ids=lambda v: str(v)[:20])
def test_session_split_at_every_offset_is_the_same(
    name: str, n: int, session: list[list[str]]
) -> None:
    whole = replay(session)
    assert isinstance(whole[0], Environment)
    longest = max(len(text.encode()) for _, text in session)
    for cut in range(1, longest):
        assert replay(session, cut) == whole, f"{name}#{n} cut at {cut}"


def test_bridged_session_decodes_to_typed_items() -> None:
    (session,) = [s for name, _, s in SESSIONS if name == "bridged.agi"]
    items = replay(session)
    env = items[0]
    assert isinstance(env, Environment)
    assert env.path == "/connect"
    assert env.args == ["att-brid1"]
    assert env.get("uniqueid") == "brid1-a"
    assert env.get("context") == "dialerd-outbound"
    lead, setvar, unknown, usage, closed = items[1:]
    assert isinstance(lead, Reply)
    assert lead.ok
    assert (lead.result, lead.data) == ("1", "lead-brid1")
    assert isinstance(setvar, Reply)
    assert setvar.ok
    assert setvar.result == "1"
    assert isinstance(unknown, Reply)
    assert unknown.code == 510
    assert isinstance(usage, Reply)
    assert usage.code == 520
    assert usage.text.startswith("520-Invalid command syntax")
    assert usage.text.endswith("520 End of proper usage.")
    assert "Sets a variable" in usage.text
    assert isinstance(closed, Closed)


def test_hangup_notice_is_its_own_item() -> None:
    (session,) = [s for name, _, s in SESSIONS if name == "agi_hangup.agi"]
    items = replay(session)
    assert any(isinstance(i, HangupNotice) for i in items)
    assert isinstance(items[-1], Closed)


def test_send_quotes_arguments_and_refuses_newlines() -> None:
    conn = AGIConnection()
    conn.receive_data(b"agi_request: agi://h/connect\n\n")
    assert isinstance(conn.next_event(), Environment)
    wire = conn.send("SET VARIABLE", "NAME", 'va"l\\ue with space')
    assert wire == b'SET VARIABLE "NAME" "va\\"l\\\\ue with space"\n'
    with pytest.raises(LocalProtocolError, match="one command at a time"):
        conn.send("NOOP")
    conn.receive_data(b"200 result=1\n")
    assert isinstance(conn.next_event(), Reply)
    with pytest.raises(LocalProtocolError, match="LF"):
        conn.send("SET VARIABLE", "X", "a\nb")


def test_command_before_environment_is_refused() -> None:
    with pytest.raises(LocalProtocolError):
        AGIConnection().send("NOOP")


@pytest.mark.parametrize(
    ("line", "code", "result", "data", "extra"),
    [
        ("200 result=1", 200, "1", None, {}),
        ("200 result=0", 200, "0", None, {}),
        ("200 result=1 (a (nested) value)", 200, "1", "a (nested) value", {}),
        ("200 result=-1 (timeout) endpos=8000", 200, "-1", "timeout", {"endpos": "8000"}),
        ("510 Invalid or unknown command", 510, None, None, {}),
        ("511 Command Not Permitted on a dead channel", 511, None, None, {}),
        ("garbage", 0, None, None, {}),
    ],
)
def test_parse_reply(
    line: str, code: int, result: str | None, data: str | None, extra: dict[str, str]
) -> None:
    reply = parse_reply(line)
    assert (reply.code, reply.result, reply.data, reply.extra) == (code, result, data, extra)


@given(st.text(max_size=200).filter(lambda s: not any(c in s for c in "\r\n\0")))
def test_quote_arg_round_trips_through_asterisk_rules(arg: str) -> None:
    quoted = quote_arg(arg)
    assert quoted[0] == quoted[-1] == '"'
    # Asterisk's parse_args: a backslash escapes the next character inside quotes
    out, escaped = [], False
    for ch in quoted[1:-1]:
        if escaped:
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        else:
            assert ch != '"'
            out.append(ch)
    assert "".join(out) == arg


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1500), st.integers(0, 1500), st.booleans())
def test_arbitrary_bytes_raise_only_protocol_errors(data: bytes, cut: int, waiting: bool) -> None:
    conn = AGIConnection()
    try:
        for piece in [p for p in (data[:cut], data[cut:]) if p] + [b""]:
            conn.receive_data(piece)
            while (item := conn.next_event()) is not NEED_DATA:
                if isinstance(item, Environment) and waiting:
                    conn.send("NOOP")
                if isinstance(item, Closed):
                    break
    except RemoteProtocolError:
        pass
