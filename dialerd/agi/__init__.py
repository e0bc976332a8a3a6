"""FastAGI: a sans-IO codec and a routed, fail-open asyncio server. See docs/ami.md."""

from dialerd.agi.codec import (
    AGIConnection,
    Environment,
    HangupNotice,
    LocalProtocolError,
    RemoteProtocolError,
    Reply,
)
from dialerd.agi.server import AGICommandError, AGIHangup, AGIRequest, AGIServer, Handler

__all__ = [
    "AGICommandError",
    "AGIConnection",
    "AGIHangup",
    "AGIRequest",
    "AGIServer",
    "Environment",
    "Handler",
    "HangupNotice",
    "LocalProtocolError",
    "RemoteProtocolError",
    "Reply",
]
