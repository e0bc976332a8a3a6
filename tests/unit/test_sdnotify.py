"""systemd notify protocol against a real datagram socket."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from dialerd.sdnotify import notify, watchdog_interval


def test_notify_sends_states_to_the_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert notify("READY=1", "STATUS=AMI connected")
        assert server.recv(100) == b"READY=1\nSTATUS=AMI connected"


def test_outside_systemd_nothing_happens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert not notify("READY=1")
    assert watchdog_interval() is None


def test_watchdog_pings_twice_per_period(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == 15.0
