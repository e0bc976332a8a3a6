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

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dialerd.demo.run import DemoOptions
from dialerd.demo.services import SANDBOX, Mosquitto, ServiceError, sandbox_down, sandbox_up
from dialerd.demo.services import SandboxInfo as Sandbox

__all__ = ["SANDBOX", "Broker", "Sandbox", "demo_options"]


def _env_port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def demo_options(sandbox: Sandbox, workdir: Path, **options: Any) -> DemoOptions:
    """The demo's options aimed at the session's sandbox (its name and ports), working in
    `workdir`, without the live view; `options` set the rest."""
    return DemoOptions(
        sandbox_name=sandbox.name,
        ami_port=sandbox.ami_port,
        sip_port=sandbox.sip_port,
        agi_port=sandbox.agi_port,
        workdir=workdir,
        **{"live_view": False, **options},
    )


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """The real Asterisk, up once for the whole session and stopped at the end."""
    name = os.environ.get("DIALERD_TEST_SANDBOX", "pytest")
    extra = os.environ.get("DIALERD_TEST_EXTRA_CONF")
    try:
        info = sandbox_up(
            name,
            _env_port("DIALERD_TEST_AMI_PORT", 25038),
            _env_port("DIALERD_TEST_SIP_PORT", 25060),
            _env_port("DIALERD_TEST_AGI_PORT", 24573),
            [Path(extra)] if extra else None,
        )
    except ServiceError as exc:
        pytest.fail(str(exc))
    print(f"\nsandbox {name}: {info.version}")
    try:
        yield info
    finally:
        sandbox_down(name)


@dataclass(frozen=True)
class Broker:
    host: str
    port: int


@pytest.fixture(scope="session")
def mqtt_broker() -> Iterator[Broker]:
    """A real mosquitto on loopback, anonymous, for the session."""
    try:
        broker = Mosquitto(_env_port("DIALERD_TEST_MQTT_PORT", 21883))
    except ServiceError as exc:
        pytest.fail(str(exc))
    try:
        yield Broker(broker.host, broker.port)
    finally:
        broker.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests under tests/pbx are `pbx` tests; everything else defaults to `unit`."""
    for item in items:
        if "/pbx/" in str(item.fspath) and "pbx" not in item.keywords:
            item.add_marker(pytest.mark.pbx)
        elif not any(m in item.keywords for m in ("pbx", "mqtt", "sip")):
            item.add_marker(pytest.mark.unit)
