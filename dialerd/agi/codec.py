"""A sans-IO codec for FastAGI (Asterisk Gateway Interface over TCP).

Asterisk connects to us, sends an environment block (`agi_name: value` lines ended by an
empty line), then the conversation is strictly one command from us, one reply from it:

    SET VARIABLE DIALERD_BRIDGE "dialerd-agent-1001"\\n   ->   200 result=1\\n

Replies are `CODE result=VALUE [(DATA)] [key=value...]`; `520-` opens a multi-line usage
message closed by a `520 ` line; a bare `HANGUP` line may arrive at any time once the
channel hangs up. As with the AMI codec: bytes in with `receive_data` (`b""` = EOF), typed
items out of `next_event`, `send` returns bytes; `LocalProtocolError` when we would send
something that breaks the framing, `RemoteProtocolError` when Asterisk's bytes make no sense
(a garbled reply line is logged and surfaces as a `Reply` with code 0 rather than killing
the call's handler).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Final
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)

__all__ = [
    "NEED_DATA",
    "AGIConnection",
    "Closed",
    "Environment",
    "HangupNotice",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "Reply",
    "quote_arg",
]

MAX_LINE: Final = 64 * 1024
MAX_ENV_LINES: Final = 512


class ProtocolError(Exception):
    """Base of both protocol errors."""


class LocalProtocolError(ProtocolError):
    """We tried to send something AGI cannot carry (or out of turn); nothing was sent."""


class RemoteProtocolError(ProtocolError):
    """Asterisk's side broke the protocol; the session cannot continue."""


class _NeedData(Enum):
    NEED_DATA = "NEED_DATA"


NEED_DATA: Final = _NeedData.NEED_DATA


@dataclass(frozen=True, slots=True)
class Environment:
    """The `agi_*` block that opens every FastAGI session."""

    variables: dict[str, str]

    @property
    def request(self) -> str:
        return self.variables.get("agi_request", "")

    @property
    def path(self) -> str:
        """The route: `/connect` for `agi://host:port/connect?x`."""
        parts = urlsplit(self.request)
        return unquote(parts.path) or "/"

    @property
    def args(self) -> list[str]:
        """`agi_arg_1`, `agi_arg_2`... in order (the AGI() arguments after the URL)."""
        out: list[str] = []
        n = 1
        while f"agi_arg_{n}" in self.variables:
            out.append(self.variables[f"agi_arg_{n}"])
            n += 1
        return out

    def get(self, name: str, default: str = "") -> str:
        """`get("channel")` reads `agi_channel`."""
        return self.variables.get(name if name.startswith("agi_") else f"agi_{name}", default)


@dataclass(frozen=True, slots=True)
class Reply:
    """One reply: `code` 200 on success (then `result` is the command's value)."""

    code: int
    result: str | None
    data: str | None
    extra: dict[str, str] = field(default_factory=dict)
    text: str = ""

    @property
    def ok(self) -> bool:
        return self.code == 200


@dataclass(frozen=True, slots=True)
class HangupNotice:
    """Asterisk's `HANGUP` line: the channel is gone; further commands get 511."""


@dataclass(frozen=True, slots=True)
class Closed:
    """Asterisk closed the connection."""


def quote_arg(arg: str) -> str:
    """One AGI argument, double-quoted with `\\` escapes (Asterisk's parse_args undoes
    them), so spaces and quotes stay inside the argument."""
    if "\n" in arg or "\r" in arg or "\0" in arg:
        raise LocalProtocolError(f"CR, LF or NUL in an AGI argument: {arg[:60]!r}")
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_reply(line: str) -> Reply:
    """Parse `200 result=1 (data) key=value` (the line without its newline)."""
    code_txt, _, rest = line.partition(" ")
    try:
        code = int(code_txt)
    except ValueError:
        log.warning("AGI: unparsable reply line %r", line[:200])
        return Reply(0, None, None, text=line)
    if code != 200 or not rest.startswith("result="):
        return Reply(code, None, None, text=rest)
    rest = rest[len("result=") :]
    value, _, rest = rest.partition(" ")
    data: str | None = None
    if rest.startswith("("):
        close = rest.rfind(")")
        if close > 0:
            data, rest = rest[1:close], rest[close + 1 :]
    extra: dict[str, str] = {}
    for item in rest.split():
        key, sep, val = item.partition("=")
        if sep:
            extra[key] = val
    return Reply(code, value, data, extra, text=line)


class AGIConnection:
    """One FastAGI session's protocol state (server side), without I/O."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._eof = False
        self._closed_reported = False
        self._env: dict[str, str] | None = {}
        self._env_done = False
        self._multi: list[str] | None = None
        self._items: deque[Environment | Reply | HangupNotice] = deque()
        self.awaiting_reply = False
        self.hung_up = False

    def receive_data(self, data: bytes) -> None:
        if self._eof:
            if data:
                raise RuntimeError("receive_data after EOF")
            return
        if not data:
            self._eof = True
            return
        self._buf += data
        self._parse_lines()

    def _parse_lines(self) -> None:
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                if len(self._buf) > MAX_LINE:
                    raise RemoteProtocolError(f"AGI line over {MAX_LINE} bytes")
                return
            raw = bytes(self._buf[:nl])
            del self._buf[: nl + 1]
            self._line(raw.decode("utf-8", "replace").rstrip("\r"))

    def _line(self, line: str) -> None:
        if not self._env_done:
            env = self._env
            assert env is not None
            if line == "":
                if env:  # tolerate blank lines before the block
                    self._env_done = True
                    self._items.append(Environment(env))
                    self._env = None
                return
            name, sep, value = line.partition(":")
            if not sep:
                raise RemoteProtocolError(f"not an AGI environment line: {line[:80]!r}")
            if len(env) >= MAX_ENV_LINES:
                raise RemoteProtocolError("AGI environment block too long")
            env[name.strip()] = value[1:] if value.startswith(" ") else value
            return
        if line == "HANGUP":
            self.hung_up = True
            self._items.append(HangupNotice())
            return
        if self._multi is not None:
            self._multi.append(line)
            code = self._multi[0][:3]
            if line.startswith(code + " "):
                text = "\n".join(self._multi)
                self._multi = None
                self._deliver(Reply(int(code), None, None, text=text))
            return
        if line[:3].isdigit() and line[3:4] == "-":
            self._multi = [line]
            return
        if line == "":
            return
        self._deliver(parse_reply(line))

    def _deliver(self, reply: Reply) -> None:
        if not self.awaiting_reply:
            log.warning("AGI: reply with no command pending: %r", reply.text[:200])
            return
        self.awaiting_reply = False
        self._items.append(reply)

    def next_event(self) -> Environment | Reply | HangupNotice | Closed | _NeedData:
        if self._items:
            return self._items.popleft()
        if self._eof and not self._closed_reported:
            self._closed_reported = True
            return Closed()
        return NEED_DATA

    def send(self, command: str, *args: str) -> bytes:
        """`command` is the verb (`SET VARIABLE`), args are quoted one by one."""
        if not self._env_done:
            raise LocalProtocolError("AGI command before the environment block")
        if self.awaiting_reply:
            raise LocalProtocolError("AGI is one command at a time; a reply is pending")
        if not command or any(c in command for c in '\r\n\0"'):
            raise LocalProtocolError(f"invalid AGI command {command!r}")
        line = " ".join([command, *(quote_arg(a) for a in args)])
        self.awaiting_reply = True
        return line.encode("utf-8") + b"\n"
