"""`dialerd console`: the agent console on the command line.

    dialerd console --broker mqtt.example:1883 --agent 1001 --campaign demo
    dialerd console --broker mqtt.example:8883 --tls --username agent1001 \
        --password-file ~/.mqtt-pass --agent 1001 --campaign demo --campaign winback

Textual is imported only when the console actually starts, so `dialerd --help` stays fast
and a machine without it gets one line saying what to install.
"""

from __future__ import annotations

from pathlib import Path

import click

from dialerd.console.link import LinkSettings, parse_broker, split_campaigns


@click.command("console")
@click.option("--broker", default="127.0.0.1:1883", show_default=True, help="MQTT HOST:PORT")
@click.option("--agent", required=True, help="the agent id (as dialerd knows it, e.g. 1001)")
@click.option(
    "--campaign",
    "campaigns",
    multiple=True,
    required=True,
    help="campaign(s) to log in to; repeat or comma-separate",
)
@click.option("--prefix", default="dialerd", show_default=True, help="MQTT topic prefix")
@click.option("--username", default=None, help="MQTT user name")
@click.option(
    "--password-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="file holding the MQTT password (first line)",
)
@click.option("--tls", is_flag=True, help="connect with TLS")
@click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="CA bundle for --tls (default: the system's)",
)
def console(
    broker: str,
    agent: str,
    campaigns: tuple[str, ...],
    prefix: str,
    username: str | None,
    password_file: Path | None,
    tls: bool,
    ca_file: str | None,
) -> None:
    """The agent console: log in, take calls, disposition them (talks MQTT only)."""
    try:
        host, port = parse_broker(broker, 8883 if tls else 1883)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--broker") from None
    password = None
    if password_file is not None:
        lines = password_file.read_text().splitlines()
        password = lines[0] if lines else ""
    names = split_campaigns(campaigns)
    if not names:
        raise click.BadParameter("name at least one campaign", param_hint="--campaign")
    settings = LinkSettings(
        host=host,
        port=port,
        agent=agent,
        campaigns=names,
        prefix=prefix.strip("/"),
        username=username,
        password=password,
        tls=tls,
        ca_file=ca_file,
    )
    try:
        from dialerd.console.app import run_console
    except ImportError as exc:
        click.echo(f"the console needs Textual ({exc}); pip install 'dialerd[phone]'", err=True)
        raise SystemExit(1) from None
    run_console(settings)
