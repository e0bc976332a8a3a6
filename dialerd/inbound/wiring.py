"""Assembling inbound handling, the call log and the recorder from ``inbound.yaml``.

The daemon calls `build_inbound` once at start-up with the pieces it already owns (the
store, the AMI client, the FastAGI server, the MQTT bus, the mailer, the billing gate),
then runs ``service.follow(ami)`` for as long as it lives::

    service = await build_inbound(config_dir, store, ami, agi, bus=bus, mailer=mailer,
                                  gate=BillingGate(billing))
    tasks.append(asyncio.create_task(service.follow(ami)))
"""

from __future__ import annotations

from pathlib import Path

from dialerd.agi.server import AGIServer
from dialerd.ami.client import AMIClient
from dialerd.calllog.fold import CallLogFold
from dialerd.calllog.service import CallLogService, Publisher, TooLongNotifier
from dialerd.config.inbound import load_inbound
from dialerd.inbound.agi import InboundHandlers
from dialerd.inbound.employees import sync_employees
from dialerd.inbound.lookup import CallerLookup, CsvSource, LookupSource, StoreSource
from dialerd.mail import Mailer
from dialerd.recorder.recorder import Recorder, RecordingGate
from dialerd.store.calllog import CallLogStore

__all__ = ["build_inbound"]


async def build_inbound(
    config_dir: Path,
    store: CallLogStore,
    ami: AMIClient,
    agi: AGIServer,
    *,
    bus: Publisher | None = None,
    mailer: Mailer | None = None,
    gate: RecordingGate | None = None,
    extra_sources: tuple[LookupSource, ...] = (),
) -> CallLogService:
    """Load ``inbound.yaml`` (ConfigError / LookupSourceError on bad input), sync the
    employees into the store, install ``/inbound`` and ``/route-next`` on `agi`, and
    return the call-log service (not yet following the AMI stream)."""
    config = load_inbound(config_dir)
    await sync_employees(config, store)
    sources: list[LookupSource] = [StoreSource(store)]
    if config.lookup.csv_file:
        sources.append(CsvSource.load(config_dir / config.lookup.csv_file, config.default_region))
    sources.extend(extra_sources)
    lookup = CallerLookup(sources, timeout=config.lookup.timeout_ms / 1000)
    InboundHandlers(config, store, lookup).install(agi)
    rec = config.recordings
    recorder = Recorder(
        ami, store, gate, config_dir / rec.directory,
        Path(rec.pbx_directory) if rec.pbx_directory else None, enabled=rec.enabled,
    )  # fmt: skip
    threshold = config.too_long.threshold_seconds
    notifier = None
    if threshold is not None:
        notifier = TooLongNotifier(threshold, bus, mailer, config.too_long.reviewer_email)
    fold = CallLogFold(config.extension_agents(), threshold)
    return CallLogService(store, fold, recorder, notifier)
