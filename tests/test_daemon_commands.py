"""Agents' MQTT commands against the daemon's real store (SQLite), no PBX needed:
bad input gets a clear one-line error, the scheduled-calls list answers (R-CB-1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialerd.billing.service import BillingGate, BillingService
from dialerd.bus.mqtt import CommandError
from dialerd.config.loader import load_config
from dialerd.daemon.app import Daemon, _reschedule
from dialerd.demo.run import DemoOptions, prepare_store, write_config
from dialerd.demo.services import SandboxInfo
from dialerd.leadflow import LeadFlow
from dialerd.store.billing import BillingStore
from dialerd.store.calllog import CallLogStore
from dialerd.store.db import open_db


@pytest.fixture
async def daemon(tmp_path: Path):  # type: ignore[no-untyped-def]
    box = SandboxInfo("none", "127.0.0.1", 1, "dialerd", "x", 2, 3, tmp_path, "n/a")
    opts = DemoOptions(agents=2, leads=3, workdir=tmp_path)
    config_dir = write_config(tmp_path, box, opts)
    config = load_config(config_dir)
    await prepare_store(config.store_path, config, "demo", opts)
    d = Daemon(config)
    d.store = await CallLogStore.open(config.store_path)
    conn = await open_db(config.store_path)
    d.flow = LeadFlow(d.store, config.campaigns)
    d.billing = BillingGate(BillingService(BillingStore(conn)))
    d._load_campaigns(config)
    yield d
    await d.store.close()
    await conn.close()


@pytest.mark.parametrize(
    ("verb", "body", "message"),
    [
        ("teleport", {}, "unknown command 'teleport'; one of login, logout"),
        ("pause", {"reason": "lunch"}, "not logged in"),
        ("disposition", {"result_code": "order"}, "not logged in"),
        ("login", {"campaigns": ["nope"]}, "unknown campaign(s) ['nope']; one of ['demo']"),
    ],
)
async def test_bad_commands_get_one_line_errors(
    daemon: Daemon,
    verb: str,
    body: dict,  # type: ignore[type-arg]
    message: str,
) -> None:
    with pytest.raises(CommandError) as err:
        await daemon._command("1001", verb, body)
    assert str(err.value).startswith(message)


async def test_unknown_agent_cannot_log_in(daemon: Daemon) -> None:
    with pytest.raises(CommandError, match="agent '4242' is not known to dialerd"):
        await daemon._command("4242", "login", {"campaigns": ["demo"]})


async def test_scheduled_calls_answer_even_when_empty(daemon: Daemon) -> None:
    """R-CB-1: the list is there for the console to show."""
    assert await daemon._command("1001", "scheduled", {}) == {"scheduled": []}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("tomorrow", "reschedule must be an object with when, to and comment"),
        ({"when": "soon"}, "reschedule.when must be an ISO 8601 date-time"),
        ({"when": "2030-01-01T10:00"}, "reschedule.when needs a UTC offset"),
        (
            {"when": "2030-01-01T10:00+01:00", "to": "boss"},
            "reschedule.to must be 'myself' or 'any'",
        ),
    ],
)
def test_reschedule_payloads_are_validated(raw: object, message: str) -> None:
    with pytest.raises(CommandError) as err:
        _reschedule(raw)
    assert str(err.value).startswith(message)
