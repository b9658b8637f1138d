"""The ``sealmail`` root group and the one place its commands are registered.

Every command and command group lives in its own module of ``sealmail/cli/``, named after
it, and builds on ``sealmail.cli.common``; this module adds them all from one explicit list.
A group whose commands are spread over several modules (``archive``, ``queue``,
``support``, ``tenant``) adds them the same way, from the group's module. Imports point
from a group to its commands only: no module imports the group it is added to, and none
imports this one.
"""

from __future__ import annotations

import ctypes
import sys

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


def cap_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's malloc arenas. glibc gives a thread that finds the main arena busy an
    arena of its own (up to eight per core), and each keeps the memory freed in it: with
    the threads asyncio hands blocking reads to, a streaming job's peak memory then depends
    on timing (``archive export`` of a 200 MB message: 97 MB on an idle machine, 100-101 MB
    with the cores busy; capped at two, 96 MB either way). Nothing on other C libraries."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.mallopt(_M_ARENA_MAX, arenas)
    except (OSError, AttributeError):  # musl and others: no such call, nothing to cap
        return


_M_ARENA_MAX = -8  # glibc's malloc.h


def main() -> None:
    cap_malloc_arenas()
    cli(prog_name="sealmail")
