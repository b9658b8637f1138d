"""``sealmail queue list|show|retry|hold|release``: the outbound queue (SPEC §1).

The ``queue`` group; ``list``, ``show`` and the changes (``retry``, ``hold``,
``release``) live in their own modules and are added here from one list.

A queue id names an outbox item (what delivery sends) or an incoming message (what the
pipeline still works on); for a message, ``retry``, ``hold`` and ``release`` act on the
outbox items it produced. Nothing here ever prints message content. Every change is
written to the audit log.

Held recipients are skipped by delivery and do not expire while held; released, they are
due at once, and an item already past ``queue_lifetime`` gets one ``queue_max_backoff``
more so it is tried before it bounces.
"""

from __future__ import annotations

import click

from sealmail.cli.queue_actions import queue_hold, queue_release, queue_retry
from sealmail.cli.queue_list import queue_list
from sealmail.cli.queue_show import queue_show


@click.group()
def queue() -> None:
    """The outbound queue."""


for _command in (queue_list, queue_show, queue_retry, queue_hold, queue_release):
    queue.add_command(_command)
