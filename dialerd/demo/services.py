"""The real components a demo (or a test session) needs, started on loopback.

Shared by `dialerd demo` and tests/conftest.py so both bring up Asterisk and mosquitto the
same way. The sandbox lives in the repository (`asterisk/sandbox`): the demo runs from a
checkout, as the README's first command does.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SANDBOX = Path(os.environ.get("DIALERD_SANDBOX", REPO / "asterisk" / "sandbox"))


class ServiceError(RuntimeError):
    """A component would not start; the message says which and why."""


@dataclass(frozen=True)
class SandboxInfo:
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


def sandbox_up(
    name: str, ami_port: int, sip_port: int, agi_port: int, extra_conf: list[Path] | None = None
) -> SandboxInfo:
    """Start (or find running) the named sandbox Asterisk and say how to reach it."""
    if not SANDBOX.exists():
        raise ServiceError(f"{SANDBOX} not found: run from a dialerd checkout")
    cmd = [
        str(SANDBOX),
        "--name",
        name,
        "--ami-port",
        str(ami_port),
        "--sip-port",
        str(sip_port),
        "--agi-port",
        str(agi_port),
    ]
    for directory in extra_conf or []:
        cmd += ["--extra-conf", str(directory)]
    proc = subprocess.run([*cmd, "--json", "up"], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise ServiceError(f"sandbox up failed: {proc.stderr.strip()}")
    info = json.loads(proc.stdout)
    version = subprocess.run(
        [str(SANDBOX), "--name", name, "cli", "core show version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    return SandboxInfo(
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


def sandbox_down(name: str) -> None:
    subprocess.run(
        [str(SANDBOX), "--name", name, "down"], check=False, timeout=60, capture_output=True
    )


@dataclass(frozen=True)
class BrokerTls:
    """PEM files for a TLS listener: the broker's certificate, its key, and the CA."""

    cert_file: Path
    key_file: Path
    ca_file: Path


class Mosquitto:
    """A private mosquitto on 127.0.0.1:`port`, stopped by `stop()`.

    Anonymous and plain by default. With `users` it takes only those user names and
    passwords (`password_file` written by `mosquitto_passwd`, `allow_anonymous false`);
    with `tls` the listener speaks TLS only: the shape of a production broker.
    """

    def __init__(
        self, port: int, *, users: Mapping[str, str] | None = None, tls: BrokerTls | None = None
    ) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).exists():
            raise ServiceError("mosquitto is not installed (apt-get install mosquitto)")
        self.host, self.port = "127.0.0.1", port
        with socket.socket() as probe:
            # Else a broker left running on the port would answer for this one, whose
            # own process exits unnoticed ("Address already in use").
            if probe.connect_ex((self.host, port)) == 0:
                raise ServiceError(f"port {port} on {self.host} is taken (another broker?)")
        self.workdir = Path(tempfile.mkdtemp(prefix="dialerd-mosquitto-"))
        conf = self.workdir / "mosquitto.conf"
        lines = [f"listener {port} 127.0.0.1", "persistence false"]
        if (users or tls) and os.geteuid() == 0:
            # Dropping to the 'mosquitto' user would lose access to the password file
            # and keys in root's private temp directories; this broker is loopback-only.
            lines.append("user root")
        if tls is not None:
            lines += [
                f"cafile {tls.ca_file}",
                f"certfile {tls.cert_file}",
                f"keyfile {tls.key_file}",
            ]
        if users:
            passwd = self.workdir / "passwd"
            passwd.touch(mode=0o600)
            for user, password in users.items():
                subprocess.run(
                    ["mosquitto_passwd", "-b", str(passwd), user, password],
                    check=True,
                    capture_output=True,
                    timeout=30,
                )
            lines += [f"password_file {passwd}", "allow_anonymous false"]
        else:
            lines.append("allow_anonymous true")
        conf.write_text("\n".join(lines) + "\n")
        self.log = self.workdir / "log"
        with self.log.open("wb") as err:
            self.proc = subprocess.Popen(
                [exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=err
            )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((self.host, port), timeout=0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    why = self.log.read_text().strip()  # before stop() removes it
                    self.stop()
                    raise ServiceError(f"mosquitto did not start on {port}: {why}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)
