"""Fixtures that bring up the real components once per test session.

Every `pbx` test talks to a real Asterisk 22 (the sandbox chroot) and every `mqtt` test to
a real mosquitto; nothing here is a fake. Ports come from the environment so several test
runs (or a developer's demo) can share the machine:

    DIALERD_TEST_SANDBOX   instance name            (default "pytest")
    DIALERD_TEST_AMI_PORT  AMI port                 (default 25038)
    DIALERD_TEST_SIP_PORT  SIP UDP port             (default 25060)
    DIALERD_TEST_AGI_PORT  FastAGI port the dialplan calls back to (default 24573)
    DIALERD_TEST_MQTT_PORT mosquitto port           (default 21883)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SANDBOX = REPO / "asterisk" / "sandbox"


@dataclass(frozen=True)
class Sandbox:
    """How to reach the sandbox Asterisk a test session runs against."""

    name: str
    ami_host: str
    ami_port: int
    ami_user: str
    ami_secret: str
    sip_port: int
    agi_port: int
    spool_dir: Path
    version: str

    def cli(self, command: str) -> str:
        """Run an Asterisk CLI command on this instance (`asterisk -rx`)."""
        return subprocess.run(
            [str(SANDBOX), "--name", self.name, "cli", command],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout


def _env_port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """The real Asterisk, up once for the whole session and stopped at the end."""
    name = os.environ.get("DIALERD_TEST_SANDBOX", "pytest")
    cmd = [
        str(SANDBOX),
        "--name",
        name,
        "--ami-port",
        str(_env_port("DIALERD_TEST_AMI_PORT", 25038)),
        "--sip-port",
        str(_env_port("DIALERD_TEST_SIP_PORT", 25060)),
        "--agi-port",
        str(_env_port("DIALERD_TEST_AGI_PORT", 24573)),
    ]
    extra = os.environ.get("DIALERD_TEST_EXTRA_CONF")
    if extra:
        cmd += ["--extra-conf", extra]
    proc = subprocess.run([*cmd, "--json", "up"], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"sandbox up failed: {proc.stderr.strip()}")
    info = json.loads(proc.stdout)
    version = subprocess.run(
        [str(SANDBOX), "--name", name, "cli", "core show version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(f"\nsandbox {name}: {version}")
    try:
        yield Sandbox(
            name=name,
            ami_host=str(info["ami_host"]),
            ami_port=int(info["ami_port"]),
            ami_user=str(info["ami_user"]),
            ami_secret=str(info["ami_secret"]),
            sip_port=int(info["sip_port"]),
            agi_port=int(info["agi_port"]),
            spool_dir=Path(str(info["spool_dir"])),
            version=version,
        )
    finally:
        subprocess.run([str(SANDBOX), "--name", name, "down"], check=False, timeout=60)


@dataclass(frozen=True)
class Broker:
    host: str
    port: int


@pytest.fixture(scope="session")
def mqtt_broker() -> Iterator[Broker]:
    """A real mosquitto on loopback, anonymous, for the session."""
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(exe).exists():
        pytest.fail("mosquitto is not installed (apt-get install mosquitto)")
    port = _env_port("DIALERD_TEST_MQTT_PORT", 21883)
    workdir = Path(tempfile.mkdtemp(prefix="dialerd-mosquitto-"))
    conf = workdir / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen(
        [exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=(workdir / "log").open("wb")
    )
    import socket

    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mosquitto did not start: {(workdir / 'log').read_text()}")
            time.sleep(0.05)
    try:
        yield Broker("127.0.0.1", port)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests under tests/pbx are `pbx` tests; everything else defaults to `unit`."""
    for item in items:
        if "/pbx/" in str(item.fspath) and "pbx" not in item.keywords:
            item.add_marker(pytest.mark.pbx)
        elif not any(m in item.keywords for m in ("pbx", "mqtt", "sip")):
            item.add_marker(pytest.mark.unit)
