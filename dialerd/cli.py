"""The `dialerd` command line.

Each domain owns its command group in its own module (``dialerd/<domain>/cli.py``); this
module only assembles them, so adding a command never means editing a neighbour's code.
Exit codes scripts can trust: 0 ok, 1 operational failure, 2 usage or input error.
"""

from __future__ import annotations

import click

from dialerd import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dialerd")
def cli() -> None:
    """Outbound/inbound dialer daemon that runs beside an Asterisk PBX."""


def main() -> None:
    cli()


# Each domain registers its own command group here, one line each.
from dialerd.billing.cli import billing  # noqa: E402
from dialerd.config.cli import campaign, check_config  # noqa: E402
from dialerd.daemon.cli import run  # noqa: E402
from dialerd.demo.cli import demo  # noqa: E402
from dialerd.leads.cli import dnc, leads  # noqa: E402
from dialerd.leads.why import why  # noqa: E402
from dialerd.phone.cli import phone  # noqa: E402

for command in (run, demo, phone, check_config, campaign, leads, dnc, billing):
    cli.add_command(command)
leads.add_command(why)
