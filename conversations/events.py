"""Recording and reading a message's events (:class:`conversations.models.MessageEvent`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.models import MessageEvent
from core.evidence import log as evidence
from core.models import now

NOTIFIED = "notified"
OPENED = "opened"
DOWNLOADED = "downloaded"
REPLIED = "replied"
FORWARDED = "forwarded"
REVOKED = "revoked"
EXPIRY_CHANGED = "expiry_changed"
RESENT = "resent"
COPY_REQUESTED = "copy_requested"
RECEIPT_SENT = "receipt_sent"
UNLOCKED = "unlocked"  # the passphrase given, or step-up passed with a passkey (issue 16)
PDF_SENT = "pdf_sent"

KINDS = (
    NOTIFIED,
    OPENED,
    DOWNLOADED,
    REPLIED,
    FORWARDED,
    REVOKED,
    EXPIRY_CHANGED,
    RESENT,
    COPY_REQUESTED,
    RECEIPT_SENT,
    UNLOCKED,
    PDF_SENT,
)


_SAID = {
    NOTIFIED: "{rcpt} was notified",
    OPENED: "{rcpt} opened it",
    DOWNLOADED: "{rcpt} downloaded it",
    REPLIED: "{rcpt} replied",
    FORWARDED: "{rcpt} forwarded it",
    REVOKED: "{actor} revoked {whose} access",
    EXPIRY_CHANGED: "{actor} changed {whose} expiry to {after}",
    RESENT: "{actor} sent {rcpt} a new link; the old one stopped working",
    COPY_REQUESTED: "{rcpt} asked for a new copy",
    RECEIPT_SENT: "The read receipt was sent: {rcpt} opened it first",
    UNLOCKED: "{rcpt} unlocked it with {how}",
    PDF_SENT: "{rcpt} was sent it as a password-protected PDF",
}


def detail_of(event: MessageEvent) -> dict[str, Any]:
    try:
        data = json.loads(event.detail or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def sentence(event: MessageEvent, when: Callable[[float], str]) -> str:
    """One event as a sentence people read (``when`` words a time), the same on ``/sent``,
    in ``sealmail message show`` and in the API."""
    rcpt = event.recipient or "every recipient"
    whose = f"{event.recipient}'s" if event.recipient else "everyone's"
    detail = detail_of(event)
    after = detail.get("after")
    how = "a passkey" if detail.get("how") == "passkey" else "the passphrase"
    text = _SAID.get(event.kind, "{kind} ({rcpt})").format(
        rcpt=rcpt,
        whose=whose,
        actor=event.actor or "sealmail",
        after=when(after) if isinstance(after, int | float) else "a new date",
        kind=event.kind.replace("_", " "),
        how=how,
    )
    first = text.split(" ", 1)[0]
    if "@" not in first and ":" not in first:  # an address or "api-key:admin" keeps its case
        text = text[0].upper() + text[1:]
    return text + "."


def record(
    session: AsyncSession,
    tenant_id: str,
    message_id: str,
    kind: str,
    recipient: str = "",
    actor: str = "",
    at: float | None = None,
    **detail: Any,
) -> MessageEvent:
    """Add one event to ``session`` (the caller commits it with what it is about)."""
    if kind not in KINDS:
        raise ValueError(f"unknown message event {kind!r}")
    event = MessageEvent(
        tenant_id=tenant_id,
        message_id=message_id,
        recipient=recipient.strip().lower(),
        kind=kind,
        actor=actor,
        detail=json.dumps(detail, sort_keys=True, default=str),
        at=now() if at is None else at,
    )
    session.add(event)
    # the same fact in the tenant's hash-chained evidence log (core.evidence)
    evidence.append(
        session, tenant_id, kind, message_id, event.recipient, at=event.at,
        **({"actor": actor} if actor else {}), **detail,
    )  # fmt: skip
    return event


async def of_message(session: AsyncSession, tenant_id: str, message_id: str) -> list[MessageEvent]:
    """Every event of one message of this tenant, oldest first."""
    rows = await session.execute(
        select(MessageEvent)
        .where(MessageEvent.tenant_id == tenant_id, MessageEvent.message_id == message_id)
        .order_by(MessageEvent.at, MessageEvent.id)
    )
    return list(rows.scalars().all())
