"""A message's events (:func:`conversations.events.of_message`) as a timeline of sentences
for the sender: who was notified, opened, downloaded, replied, and who revoked, changed the
expiry or sent a new link. Only ids, times and addresses are in an event; never content."""

from __future__ import annotations

import dataclasses

from branding.notifications import format_time
from conversations import events
from conversations.models import MessageEvent


@dataclasses.dataclass(frozen=True)
class Said:
    at: float
    when: str  # as people read it
    kind: str
    text: str


def said(event: MessageEvent) -> Said:
    """One event as a sentence."""
    return Said(event.at, format_time(event.at), event.kind, events.sentence(event, format_time))
