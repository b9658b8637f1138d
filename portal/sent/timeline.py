"""A message's events (:func:`conversations.events.of_message`) as a timeline of sentences
for the sender: who was notified, opened, downloaded, replied, and who revoked, changed the
expiry or sent a new link. Only ids, times and addresses are in an event; never content."""

from __future__ import annotations

import dataclasses
import json

from branding.notifications import format_time
from conversations import events
from conversations.models import MessageEvent

_WHAT = {
    events.NOTIFIED: "{rcpt} was notified",
    events.OPENED: "{rcpt} opened it",
    events.DOWNLOADED: "{rcpt} downloaded it",
    events.REPLIED: "{rcpt} replied",
    events.FORWARDED: "{rcpt} forwarded it",
    events.REVOKED: "{actor} revoked {whose} access",
    events.EXPIRY_CHANGED: "{actor} changed {whose} expiry to {after}",
    events.RESENT: "{actor} sent {rcpt} a new link; the old one stopped working",
    events.COPY_REQUESTED: "{rcpt} asked for a new copy",
    events.RECEIPT_SENT: "The read receipt was sent: {rcpt} opened it first",
}


@dataclasses.dataclass(frozen=True)
class Said:
    at: float
    when: str  # as people read it
    kind: str
    text: str


def _detail(event: MessageEvent) -> dict[str, object]:
    try:
        data = json.loads(event.detail or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def said(event: MessageEvent) -> Said:
    """One event as a sentence."""
    rcpt = event.recipient or "every recipient"
    whose = f"{event.recipient}'s" if event.recipient else "everyone's"
    after = _detail(event).get("after")
    after_words = format_time(after) if isinstance(after, int | float) else "a new date"
    template = _WHAT.get(event.kind, "{kind} ({rcpt})")
    text = template.format(
        rcpt=rcpt,
        whose=whose,
        actor=event.actor or "sealmail",
        after=after_words,
        kind=event.kind.replace("_", " "),
    )
    first = text.split(" ", 1)[0]
    if "@" not in first and ":" not in first:  # an address or "api-key:admin" keeps its case
        text = text[0].upper() + text[1:]
    return Said(event.at, format_time(event.at), event.kind, text + ".")
