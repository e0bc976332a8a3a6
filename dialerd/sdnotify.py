"""systemd's notify protocol (READY=1, WATCHDOG=1, STOPPING=1, STATUS=...).

Eight lines of socket code: the PyPI wrappers for it are unmaintained, and systemd's
protocol (a datagram to $NOTIFY_SOCKET) has been stable for a decade. Outside systemd the
socket is unset and every call is a no-op.
"""

from __future__ import annotations

import os
import socket


def notify(*states: str) -> bool:
    """Send `states` (e.g. "READY=1", "STATUS=dialing") to systemd; False if not under it."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall("\n".join(states).encode())
    return True


def watchdog_interval() -> float | None:
    """Half the watchdog timeout systemd gave us (ping twice per period), or None."""
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec or os.environ.get("WATCHDOG_PID", str(os.getpid())) != str(os.getpid()):
        return None
    return int(usec) / 2_000_000
