"""`dialerd run --config DIR`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from dialerd.config.loader import ConfigError, load_config
from dialerd.logsetup import setup_logging


@click.command("run")
@click.option(
    "--config",
    "config_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/etc/dialerd"),
    show_default=True,
    help="directory with dialerd.yaml and campaigns/",
)
def run(config_dir: Path) -> None:
    """Run the floor: AMI, FastAGI, MQTT, pacing. SIGHUP reloads, SIGTERM drains."""
    try:
        config = load_config(config_dir)
    except ConfigError as exc:
        raise click.ClickException(f"configuration refused:\n{exc}") from None
    logging_cfg = config.daemon.logging
    setup_logging(logging_cfg.level.value, logging_cfg.format, logging_cfg.file)
    from dialerd.daemon.app import run_daemon  # the daemon's imports are heavy; CLI stays fast

    asyncio.run(run_daemon(config))
