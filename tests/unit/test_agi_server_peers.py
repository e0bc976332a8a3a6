"""The FastAGI server against misbehaving peers (no Asterisk needed: these are the bytes
a broken or hostile client could send). panoramisk's server hangs when a client closes
mid-headers; ours must shrug every one of these off and keep serving."""

from __future__ import annotations

import asyncio

import pytest

from dialerd.agi import AGIRequest, AGIServer

ENV = b"agi_network: yes\nagi_request: agi://127.0.0.1/connect\nagi_arg_1: A1\n\n"


async def exchange(port: int, data: bytes, *, close: bool = True) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    if close:
        writer.write_eof()
    async with asyncio.timeout(5):
        out = await reader.read()
    writer.close()
    return out


@pytest.mark.parametrize(
    "data",
    [
        b"",  # connect and close
        b"agi_network: yes\nagi_req",  # closed mid-headers
        b"no colon in this environment line\n\n",
        b"\xff\xfe\x00garbage\n\n",
        b"agi_request: agi://127.0.0.1/unknown-route\n\n",
    ],
    ids=["empty", "mid-headers", "no-colon", "binary", "unrouted"],
)
async def test_bad_peers_never_hang_or_reach_a_handler(data: bytes) -> None:
    calls: list[list[str]] = []

    async def connect(req: AGIRequest) -> None:
        calls.append(req.args)

    async with AGIServer({"/connect": connect}, port=0, timeout=2.0) as server:
        assert await exchange(server.port, data) == b""
        assert calls == []
        # and it still serves a good request afterwards
        assert await exchange(server.port, ENV, close=False) == b""
    assert calls == [["A1"]]


async def test_a_handler_reads_replies_and_sees_the_channel_hang_up() -> None:
    got: list[str | None] = []

    async def connect(req: AGIRequest) -> None:
        got.append(await req.get_variable("DIALERD_LEAD"))
        await req.set_variable("DIALERD_BRIDGE", 'dialerd-agent-"7"')

    async with AGIServer({"/connect": connect}, port=0, timeout=2.0) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(ENV)
        assert await reader.readline() == b'GET VARIABLE "DIALERD_LEAD"\n'
        writer.write(b"200 result=1 (L 1)\n")
        assert await reader.readline() == b'SET VARIABLE "DIALERD_BRIDGE" "dialerd-agent-\\"7\\""\n'
        writer.write(b"HANGUP\n200 result=1\n")
        assert await reader.read() == b""  # handler done, connection closed
        writer.close()
    assert got == ["L 1"]
    assert server.stats.handled == 1
