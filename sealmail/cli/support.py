"""``sealmail support ...``: the support desk at the terminal (SPEC §8).

The ``support`` group: ``verify`` and ``letter`` (for a caller) are in
:mod:`sealmail.cli.support_caller`, ``agent add|list|remove|key`` (who may sign in at
``/support``) in :mod:`sealmail.cli.support_agent`; they are added here from one list.
"""

from __future__ import annotations

import click

from sealmail.cli.support_agent import agent
from sealmail.cli.support_caller import letter, verify


@click.group()
def support() -> None:
    """The support desk: check a caller's PIN, desk agents, the letter."""


for _command in (verify, agent, letter):
    support.add_command(_command)
