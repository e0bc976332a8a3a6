"""The sandbox Asterisk itself (foundation): up, idempotent, configured as dialerd expects."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import SANDBOX, Sandbox


def run_sandbox(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SANDBOX), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_runs_asterisk_22(sandbox: Sandbox) -> None:
    assert sandbox.version.startswith("Asterisk 22.")


def test_up_twice_is_harmless(sandbox: Sandbox) -> None:
    proc = run_sandbox("--name", sandbox.name, "up")
    assert proc.returncode == 0, proc.stderr
    assert "already running" in proc.stderr


def test_dialerd_contexts_and_agents_loaded(sandbox: Sandbox) -> None:
    for context in ("dialerd-outbound", "dialerd-agent", "dialerd-inbound", "world"):
        assert f"Context '{context}'" in sandbox.cli(f"dialplan show {context}")
    endpoints = sandbox.cli("pjsip show endpoints")
    assert "1001" in endpoints and "1050" in endpoints


def test_abandon_message_is_generated(sandbox: Sandbox) -> None:
    """R-DL-5: the safe-harbour message exists as 8 kHz audio Asterisk can play."""
    root = sandbox.spool_dir.parents[3] / "usr/share/asterisk/sounds"
    (wav,) = root.glob("*/dialerd/abandon.wav")
    header = wav.read_bytes()[:44]
    assert header[:4] == b"RIFF" and int.from_bytes(header[24:28], "little") == 8000


def test_taken_port_is_a_clear_error(sandbox: Sandbox) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = run_sandbox(
            "--name", "port-clash", "--ami-port", str(port), "--sip-port", "29999", "up"
        )
    assert proc.returncode == 1
    assert f"AMI port {port} on 127.0.0.1 is taken" in proc.stderr


def test_extra_conf_is_included(tmp_path: Path) -> None:
    (tmp_path / "extensions_mine.conf").write_text(
        "[my-world]\nexten => 1,1,Answer()\n same => n,Hangup()\n"
    )
    args = ("--name", "extra", "--ami-port", "29038", "--sip-port", "29060")
    proc = run_sandbox(*args, "--extra-conf", str(tmp_path), "up")
    try:
        assert proc.returncode == 0, proc.stderr
        shown = run_sandbox("--name", "extra", "cli", "dialplan show my-world")
        assert "Context 'my-world'" in shown.stdout
    finally:
        run_sandbox("--name", "extra", "down")
