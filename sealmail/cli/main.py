"""The ``sealmail`` root group and the one place its commands are registered.

Every command and command group lives in its own module of ``sealmail/cli/``, named after
it, and builds on ``sealmail.cli.common``; this module adds them all from one explicit list.
A group whose commands are spread over several modules (``archive``, ``queue``,
``support``, ``tenant``) adds them the same way, from the group's module. Imports point
from a group to its commands only: no module imports the group it is added to, and none
imports this one.
"""

from __future__ import annotations

import click

from sealmail.cli.archive import archive
from sealmail.cli.billing import billing
from sealmail.cli.evidence import evidence
from sealmail.cli.init import init
from sealmail.cli.key_rotation import key
from sealmail.cli.message import message
from sealmail.cli.migrate import migrate
from sealmail.cli.partner import partner
from sealmail.cli.policy import policy
from sealmail.cli.queue import queue
from sealmail.cli.receipt import receipt
from sealmail.cli.recipient_keys import keys
from sealmail.cli.serve import serve
from sealmail.cli.support import support
from sealmail.cli.tenant import tenant
from sealmail.cli.user import user


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", type=click.Path(dir_okay=False), default=None, help="Config file.")
@click.version_option(package_name="sealmail")
@click.pass_context
def cli(ctx: click.Context, config: str | None) -> None:
    """sealmail: email encryption gateway and secure-message portal."""
    ctx.meta["config_path"] = config


COMMANDS: tuple[click.Command, ...] = (
    init,
    migrate,
    serve,
    partner,
    tenant,
    user,
    keys,
    policy,
    queue,
    archive,
    key,
    billing,
    support,
    message,
    receipt,
    evidence,
)
for _command in COMMANDS:
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="sealmail")
