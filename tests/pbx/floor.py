"""The in-process floor of the console and wrap-up tests: one agent, real everything.

The daemon runs in the test's own event loop (so a test can also call its commands or
read its state), on a copy of the demo campaign with AMD off and only human customers,
with agent 1001's `dialerd phone` registered before anything is yielded.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml

from dialerd.config.loader import load_config
from dialerd.daemon.app import Daemon
from dialerd.demo.run import (
    DEMO_CAMPAIGN,
    DemoOptions,
    prepare_store,
    start_phones,
    stop_phones,
    write_config,
)
from tests.conftest import Broker, Sandbox, demo_options


@contextlib.asynccontextmanager
async def in_process_floor(
    sandbox: Sandbox,
    broker: Broker,
    work: Path,
    *,
    leads: int,
    seed: int,
    ring: tuple[int, int],
    **campaign: Any,
) -> AsyncIterator[tuple[Daemon, DemoOptions, asyncio.Event]]:
    """The daemon and agent 1001's registered softphone on `leads` human customers who
    pick up after `ring` seconds; `campaign` keys replace the demo campaign's. Setting the
    yielded event stops the daemon as SIGTERM does; everything is stopped afterwards."""
    text = {**yaml.safe_load(DEMO_CAMPAIGN.read_text()), "amd": False, **campaign}
    await asyncio.to_thread(work.mkdir, parents=True, exist_ok=True)
    campaign_file = work / "demo.yaml"
    campaign_file.write_text(yaml.safe_dump(text))
    opts = demo_options(
        sandbox,
        work,
        agents=1,
        leads=leads,
        seed=seed,
        mix={"human": 1.0},
        ring=ring,
        campaign_file=campaign_file,
        mqtt_port=broker.port,
    )
    config = load_config(write_config(work, sandbox, opts))
    await prepare_store(config.store_path, config, "demo", opts)
    daemon = Daemon(config)
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    phones: list[subprocess.Popen[bytes]] = []
    try:
        async with asyncio.timeout(30):
            await daemon.ready.wait()
        phones = start_phones(opts, sandbox, work)
        deadline = time.monotonic() + 30
        while "1001/sip:1001@" not in sandbox.cli("pjsip show contacts"):
            assert time.monotonic() < deadline, "the softphone did not register"
            await asyncio.sleep(0.5)
        yield daemon, opts, stop
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(30):
                await task
        task.cancel()
        stop_phones(phones)
