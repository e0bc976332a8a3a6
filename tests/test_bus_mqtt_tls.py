"""The MQTT bus against a real mosquitto that wants TLS and a password (issue #7 item 4).

The broker is configured as a production one would be: a TLS-only listener with a
certificate from a private CA, `password_file` written by `mosquitto_passwd` and
`allow_anonymous false`. The bus is configured the way the daemon is: from a
`dialerd.yaml` read by the config loader, the password kept in a file beside it.
A wrong password, a CA that did not sign the broker's certificate, and TLS against a
plain port each give one log line naming the setting to check, and the bus keeps retrying.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import yaml

from dialerd.bus.mqtt import Bus, MqttSettings
from dialerd.config.loader import load_config
from dialerd.demo.services import BrokerTls, Mosquitto
from tests.conftest import Broker

pytestmark = pytest.mark.mqtt

DIALERD_PASSWORD = "dialerd-s3cret"
AGENT_PASSWORD = "agent-pw"


def make_pki(directory: Path) -> BrokerTls:
    """A throwaway CA and a certificate for 127.0.0.1/localhost signed by it (openssl CLI)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")

    def openssl(*args: str) -> None:
        subprocess.run(
            ["openssl", *args], cwd=directory, check=True, capture_output=True, timeout=60
        )

    openssl(
        *("req", "-x509", *key, "-days", "2", "-subj", "/CN=dialerd test CA"),
        *("-keyout", "ca.key", "-out", "ca.crt"),
    )
    openssl("req", *key, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (directory / "server.ext").write_text(
        "subjectAltName = IP:127.0.0.1, DNS:localhost\n"
        "basicConstraints = CA:FALSE\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid,issuer\n"
    )
    openssl(
        *("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key"),
        *("-CAcreateserial", "-days", "2", "-out", "server.crt", "-extfile", "server.ext"),
    )
    return BrokerTls(directory / "server.crt", directory / "server.key", directory / "ca.crt")


def secure_broker(workdir: Path, port: int) -> tuple[Mosquitto, BrokerTls]:
    """TLS only, passwords only: dialerd's own user and one agent's."""
    pki = make_pki(workdir / "pki")
    users = {"dialerd": DIALERD_PASSWORD, "agent": AGENT_PASSWORD}
    return Mosquitto(port, users=users, tls=pki), pki


def secure_mqtt_config(
    config_dir: Path, port: int, ca_file: Path, password: str, prefix: str = "dialerd"
) -> dict[str, Any]:
    """The `mqtt:` block of dialerd.yaml as docs/mqtt.md tells an operator to write it:
    the CA and the password in files beside the YAML, named by relative paths."""
    (config_dir / "tls").mkdir(parents=True, exist_ok=True)
    (config_dir / "tls" / "ca.crt").write_bytes(ca_file.read_bytes())
    (config_dir / "secrets").mkdir(exist_ok=True)
    (config_dir / "secrets" / "mqtt").write_text(password + "\n")
    return {
        "host": "127.0.0.1",
        "port": port,
        "prefix": prefix,
        "user": "dialerd",
        "password_file": "secrets/mqtt",
        "tls": {"enabled": True, "ca_file": "tls/ca.crt"},
    }


def agent_client(port: int, ca_file: Path) -> aiomqtt.Client:
    """An agent's console: its own user, trusting the same CA."""
    return aiomqtt.Client(
        "127.0.0.1",
        port,
        username="agent",
        password=AGENT_PASSWORD,
        tls_context=ssl.create_default_context(cafile=str(ca_file)),
        identifier="console-1001",
    )


def settings_from_yaml(config_dir: Path, mqtt: dict[str, Any]) -> MqttSettings:
    """Exactly the daemon's path: dialerd.yaml -> load_config -> MqttSettings.from_config."""
    daemon = {"ami": {"user": "dialerd", "secret": "unused here"}, "mqtt": mqtt}
    (config_dir / "dialerd.yaml").write_text(yaml.safe_dump(daemon, sort_keys=False))
    config = load_config(config_dir)
    return MqttSettings.from_config(config.daemon.mqtt, config.directory, client_id="dialerd-tls")


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Broker, BrokerTls]]:
    port = int(os.environ.get("DIALERD_TEST_MQTT_PORT", 21883)) + 3
    broker, pki = secure_broker(tmp_path_factory.mktemp("broker"), port)
    try:
        yield Broker(broker.host, broker.port), pki
    finally:
        broker.stop()


async def echo(agent: str, verb: str, body: dict[str, Any]) -> dict[str, Any] | None:
    return {"agent": agent, "verb": verb}


async def test_bus_from_yaml_talks_over_tls_with_a_password(
    secure: tuple[Broker, BrokerTls], tmp_path: Path
) -> None:
    broker, pki = secure
    settings = settings_from_yaml(
        tmp_path, secure_mqtt_config(tmp_path, broker.port, pki.ca_file, DIALERD_PASSWORD, "tls")
    )
    assert settings.password == DIALERD_PASSWORD and settings.ca_file is not None
    assert Path(settings.ca_file).is_absolute(), "relative to the config dir, not the cwd"
    bus = Bus(settings, on_command=echo)
    task = asyncio.create_task(bus.run())
    try:
        await asyncio.wait_for(bus.connected.wait(), 10)
        async with agent_client(broker.port, pki.ca_file) as client:
            await client.subscribe("tls/agents/1001/reply", qos=1)
            await client.subscribe("tls/status", qos=1)
            await client.publish(
                "tls/agents/1001/cmd", json.dumps({"id": 7, "command": "ping"}), qos=1
            )
            got: dict[str, dict[str, Any]] = {}
            async with asyncio.timeout(10):
                async for message in client.messages:
                    assert isinstance(message.payload, bytes)
                    got[str(message.topic)] = json.loads(message.payload)
                    if len(got) == 2:
                        break
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert got["tls/status"] == {"schema": 1, "online": True}
    assert got["tls/agents/1001/reply"] == {
        "schema": 1,
        "id": 7,
        "ok": True,
        "agent": "1001",
        "verb": "ping",
    }


def _other_ca(tmp_path: Path) -> Path:
    return make_pki(tmp_path / "other-pki").ca_file


@pytest.mark.parametrize(
    ("case", "hint"),
    [
        ("wrong password", "check mqtt.user and mqtt.password"),
        ("untrusted CA", "check mqtt.tls.ca_file"),
        ("TLS to a plain port", "is mqtt.tls.enabled right for this port?"),
    ],
)
async def test_bad_credentials_give_one_clear_line_and_retries(
    secure: tuple[Broker, BrokerTls],
    mqtt_broker: Broker,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    case: str,
    hint: str,
) -> None:
    broker, pki = secure
    port, ca_file, password = broker.port, pki.ca_file, DIALERD_PASSWORD
    if case == "wrong password":
        password = "not-the-password"
    elif case == "untrusted CA":
        ca_file = _other_ca(tmp_path)
    else:
        port = mqtt_broker.port
    settings = settings_from_yaml(tmp_path, secure_mqtt_config(tmp_path, port, ca_file, password))
    bus = Bus(settings)
    bus.publish(bus.topic("calls", "events"), {"n": 1})  # kept while the broker refuses us
    caplog.set_level(logging.WARNING, logger="dialerd.bus.mqtt")
    task = asyncio.create_task(bus.run())
    try:
        async with asyncio.timeout(15):
            while len(caplog.records) < 2:  # noqa: ASYNC110 - log records have no event
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert not bus.connected.is_set()
    assert bus.reconnects >= 2, "it keeps retrying"
    assert bus.pending == 1, "nothing queued is lost while refused"
    for record in caplog.records:
        line = record.getMessage()
        print(line)
        assert hint in line
        assert "\n" not in line and record.exc_info is None, "one line, no traceback"
        assert DIALERD_PASSWORD not in line and "not-the-password" not in line
