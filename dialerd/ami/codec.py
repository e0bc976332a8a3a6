"""A sans-IO codec for the Asterisk Manager Interface (AMI).

No sockets, no asyncio, no clock: bytes go in with `receive_data`, typed frames come out of
`next_event`, and `send` turns an `Action` into the bytes to write. Keeping the protocol pure
lets the unit tests replay recorded sessions split at every byte offset and fuzz it with
arbitrary bytes, which no socket-bound parser allows (the shape follows h11).

Wire format (AMI 11, Asterisk 22): one banner line (`Asterisk Call Manager/11.0.0`), then
frames of `Key: Value` lines ended by an empty line. Lines end in CRLF; a bare LF is
tolerated. Frames are split on bytes first and decoded afterwards, so a UTF-8 character
split across two reads is never damaged.

Errors come in two kinds, as in h11:
- `LocalProtocolError`: *we* were about to send something invalid (a CR/LF in a header value
  would inject headers). Nothing is sent; the connection stays usable.
- `RemoteProtocolError`: the peer broke the protocol in a way that ends the session (the
  banner is not AMI's). A single malformed frame is not such an error: it is logged,
  counted in `skipped_frames`, and skipped.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

log = logging.getLogger(__name__)

__all__ = [
    "MAX_HEADERS",
    "MAX_LINE",
    "NEED_DATA",
    "AMIConnection",
    "Action",
    "Banner",
    "Closed",
    "Event",
    "LocalProtocolError",
    "Message",
    "ProtocolError",
    "RemoteProtocolError",
    "Response",
    "iter_events",
    "new_action_id",
    "safe_value",
]

# Asterisk's manager.c reads each line into a 1025-byte buffer and drops any longer line
# (and with it the whole action, answering "line too long"); it also keeps at most 128
# headers per action. Refusing both here turns a silent server-side drop into a clear
# local error.
MAX_LINE: Final = 1024
MAX_HEADERS: Final = 128
# A frame with no end in sight is not AMI: bound memory against a runaway peer.
MAX_FRAME: Final = 4 * 1024 * 1024

_FRAME_END = re.compile(rb"\r?\n\r?\n")


class ProtocolError(Exception):
    """Base of both protocol errors."""


class LocalProtocolError(ProtocolError):
    """We tried to send something AMI cannot carry; nothing was sent."""


class RemoteProtocolError(ProtocolError):
    """The peer is not speaking AMI; the session cannot continue."""


class _NeedData(Enum):
    NEED_DATA = "NEED_DATA"


NEED_DATA: Final = _NeedData.NEED_DATA
"""`next_event` has nothing complete yet: feed more bytes."""


@dataclass(frozen=True, slots=True)
class Banner:
    """The first line Asterisk sends, e.g. `Asterisk Call Manager/11.0.0`."""

    text: str

    @property
    def version(self) -> str:
        return self.text.rpartition("/")[2]


@dataclass(frozen=True, slots=True)
class Closed:
    """The peer closed the connection (after every complete frame was delivered)."""


@dataclass(frozen=True, slots=True)
class Message:
    """One AMI frame: its headers in wire order, repeated names kept (Variable, Output...).

    Header lookup is case-insensitive, as Asterisk's own is; the first occurrence wins
    for `get`, `get_all` returns every value in order.
    """

    headers: tuple[tuple[str, str], ...]
    _index: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = self._index
        for name, value in self.headers:
            index.setdefault(name, value)
            index.setdefault(name.lower(), value)

    def get(self, name: str, default: str | None = None) -> str | None:
        index = self._index
        value = index.get(name)
        if value is None:
            value = index.get(name.lower())
        return default if value is None else value

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def get_all(self, name: str) -> list[str]:
        low = name.lower()
        return [v for k, v in self.headers if k.lower() == low]

    def variables(self, header: str = "ChanVariable") -> dict[str, str]:
        """`NAME=value` pairs of a repeated header (ChanVariable, Variable) as a dict."""
        out: dict[str, str] = {}
        for item in self.get_all(header):
            name, _, value = item.partition("=")
            out[name] = value
        return out

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")


@dataclass(frozen=True, slots=True)
class Response(Message):
    """The reply to an action we sent (`Response: Success|Error|Goodbye|Follows`)."""

    @property
    def status(self) -> str:
        return self.get("Response", "") or ""

    @property
    def ok(self) -> bool:
        return self.status.lower() in ("success", "follows", "goodbye")

    @property
    def message(self) -> str:
        return self.get("Message", "") or ""

    @property
    def starts_list(self) -> bool:
        """True when events tagged with our ActionID follow until `EventList: Complete`."""
        return (self.get("EventList") or "").lower() == "start"


@dataclass(frozen=True, slots=True)
class Event(Message):
    """An event pushed by Asterisk (`Event: Newchannel`...)."""

    @property
    def name(self) -> str:
        return self.get("Event", "") or ""

    @property
    def completes_list(self) -> bool:
        return (self.get("EventList") or "").lower() == "complete"


_ids = itertools.count(1)
_id_prefix = os.urandom(4).hex()


def new_action_id() -> str:
    """A process-unique ActionID; the random prefix keeps two dialerd runs apart."""
    return f"dl{_id_prefix}-{next(_ids)}"


@dataclass(frozen=True, slots=True)
class Action:
    """One action to send. `headers` may repeat a name (e.g. several `Variable`).

    The ActionID is fresh per Action object; `AMIConnection.send` refuses to send the
    same one twice while it is still awaiting its response.
    """

    name: str
    headers: tuple[tuple[str, str], ...] = ()
    action_id: str = field(default_factory=new_action_id)

    @classmethod
    def build(
        cls,
        name: str,
        headers: Mapping[str, str | int | Iterable[str]] | None = None,
        **kw: str | int,
    ) -> Action:
        """Convenience: a mapping whose iterable values become repeated headers."""
        pairs: list[tuple[str, str]] = []
        for key, value in itertools.chain((headers or {}).items(), kw.items()):
            if isinstance(value, str | int):
                pairs.append((key, str(value)))
            else:
                pairs.extend((key, str(v)) for v in value)
        return cls(name, tuple(pairs))


def _check_token(what: str, text: str) -> None:
    if not text or any(c in text for c in ":\r\n\0") or text != text.strip():
        raise LocalProtocolError(f"invalid AMI header name {what}: {text!r}")


def _check_value(name: str, value: str) -> None:
    if "\r" in value or "\n" in value or "\0" in value:
        raise LocalProtocolError(
            f"header {name!r}: CR, LF or NUL in a value would inject headers: {value[:60]!r}"
        )


class AMIConnection:
    """The state of one AMI session, both directions, without any I/O."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._scan_from = 0
        self._frames: deque[bytes] = deque()
        self._banner_seen = False
        self._eof = False
        self._closed_reported = False
        self.skipped_frames = 0
        # ActionIDs sent and not yet answered, and those whose event list is still open.
        self.pending: set[str] = set()
        self.open_lists: set[str] = set()

    # ------------------------------------------------------------------ receiving
    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the peer; `b""` means the peer closed (EOF)."""
        if self._eof:
            if data:
                raise RuntimeError("receive_data after EOF")
            return
        if not data:
            self._eof = True
            return
        self._buf += data

    def _split(self) -> None:
        """Move every complete frame from the buffer to the frame queue."""
        buf = self._buf
        if not self._banner_seen:
            nl = buf.find(b"\n")
            if nl < 0:
                return
            self._frames.append(bytes(buf[: nl + 1]))
            del buf[: nl + 1]
            self._scan_from = 0
        start = 0
        pos = self._scan_from
        frames = self._frames
        search = _FRAME_END.search
        while True:
            m = search(buf, pos)
            if m is None:
                break
            end = m.start()
            if end > start:
                frames.append(bytes(buf[start:end]))
            start = pos = m.end()
        if start:
            del buf[:start]
        if len(buf) > MAX_FRAME:
            log.warning("AMI: dropping %d bytes without a frame end", len(buf))
            self.skipped_frames += 1
            del buf[:]
        # A CRLFCRLF may straddle this read and the next: rescan the last 3 bytes.
        self._scan_from = max(0, len(buf) - 3)

    def next_event(self) -> Banner | Response | Event | Closed | _NeedData:
        """The next complete frame, `NEED_DATA`, or `Closed` once after EOF."""
        while True:
            if not self._frames:
                self._split()
            if self._frames:
                raw = self._frames.popleft()
                item = self._parse(raw)
                if item is not None:
                    return item
                continue
            if self._eof:
                if self._buf.strip():
                    log.warning("AMI: connection closed inside a frame: %r", bytes(self._buf[:200]))
                    self.skipped_frames += 1
                del self._buf[:]
                if not self._closed_reported:
                    self._closed_reported = True
                    return Closed()
            return NEED_DATA

    def _parse(self, raw: bytes) -> Banner | Response | Event | None:
        text = raw.decode("utf-8", "replace")
        if not self._banner_seen:
            self._banner_seen = True
            line = text.strip()
            if "Call Manager" not in line:
                raise RemoteProtocolError(f"not an AMI banner: {line[:80]!r}")
            return Banner(line)
        headers: list[tuple[str, str]] = []
        for line in text.split("\n"):
            if line and line[-1] == "\r":
                line = line[:-1]
            name, sep, value = line.partition(":")
            if not sep or not name:
                if line.strip():
                    log.warning("AMI: ignoring a line with no header name: %r", line[:200])
                continue
            if value and value[0] == " ":
                value = value[1:]
            headers.append((name, value))
        if not headers:
            return None
        first = headers[0][0]
        if first == "Event" or first.lower() == "event":
            event = Event(tuple(headers))
            aid = event.get("ActionID")
            if aid is not None and aid in self.open_lists and event.completes_list:
                self.open_lists.discard(aid)
            return event
        if first == "Response" or first.lower() == "response":
            response = Response(tuple(headers))
            aid = response.get("ActionID")
            if aid is not None:
                self.pending.discard(aid)
                if response.starts_list:
                    self.open_lists.add(aid)
            return response
        log.warning("AMI: skipping a frame that is neither event nor response: %r", raw[:200])
        self.skipped_frames += 1
        return None

    # ------------------------------------------------------------------ sending
    def send(self, action: Action) -> bytes:
        """The wire bytes for `action`; raises `LocalProtocolError` and sends nothing
        if any header could be misread by Asterisk."""
        _check_token("Action", action.name)
        if action.action_id in self.pending:
            raise LocalProtocolError(f"ActionID {action.action_id!r} is already pending")
        _check_value("ActionID", action.action_id)
        if len(action.headers) + 2 > MAX_HEADERS:
            raise LocalProtocolError(f"{len(action.headers)} headers; Asterisk keeps {MAX_HEADERS}")
        lines = [f"Action: {action.name}", f"ActionID: {action.action_id}"]
        for name, value in action.headers:
            _check_token(name, name)
            if name.lower() in ("action", "actionid"):
                raise LocalProtocolError(f"{name!r} is set by the codec, not a header")
            _check_value(name, value)
            lines.append(f"{name}: {value}")
        encoded = [line.encode("utf-8") for line in lines]
        for line in encoded:
            if len(line) > MAX_LINE:
                raise LocalProtocolError(
                    f"header line of {len(line)} bytes; Asterisk drops lines over {MAX_LINE}"
                )
        self.pending.add(action.action_id)
        return b"\r\n".join(encoded) + b"\r\n\r\n"

    def forget(self, action_id: str) -> None:
        """Stop expecting a response (the caller gave up on it, e.g. timed out)."""
        self.pending.discard(action_id)
        self.open_lists.discard(action_id)


def iter_events(conn: AMIConnection) -> Iterator[Banner | Response | Event | Closed]:
    """Every frame `conn` can produce right now (stops at NEED_DATA)."""
    while True:
        item = conn.next_event()
        if item is NEED_DATA:
            return
        yield item
        if isinstance(item, Closed):
            return


def safe_value(text: str, limit: int = 256) -> str:
    """Make arbitrary text (a caller-ID name from a CSV, say) safe as a header value.

    CR, LF and NUL become spaces (they would inject headers) and the result is cut to
    `limit` UTF-8 bytes on a character boundary, so it always fits Asterisk's line limit.
    """
    cleaned = text.replace("\r", " ").replace("\n", " ").replace("\0", " ")
    data = cleaned.encode("utf-8")
    if len(data) <= limit:
        return cleaned
    return data[:limit].decode("utf-8", "ignore")
