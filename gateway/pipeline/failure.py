"""The failure policy of the pipeline, by the kind of failure (:mod:`core.error_kinds`):

- **our outage** (database, store, key service): tried again a few seconds later, no
  attempt counted, so the message goes as soon as the service is back;
- **encryption that cannot happen now** (:class:`EncryptionFailed`): retried with backoff,
  and past ``queue_lifetime`` the pending recipients bounce with ``5.7.0``. Never a copy in
  clear;
- **a content error** (anything else: the message itself cannot be processed): a few quick
  tries (a passing fault should not bounce mail), then the pending recipients bounce with
  ``5.6.0`` and a reason a person understands; the message is ``failed``, kept sealed for
  an operator.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import error_kinds
from core.backoff import backoff
from core.errors import SealmailError, TransientError
from core.metrics import metrics
from core.models import Message, MessageRecipient, now
from core.services import Services
from gateway.delivery.dsn import Failure
from gateway.headers import head_of
from gateway.pipeline.bounce import enqueue_bounce


class EncryptionFailed(TransientError):
    """A copy that must be encrypted could not be: the message waits (fail closed)."""


async def record_failure(
    services: Services, message_id: str, lease: float, error: Exception
) -> None:
    """Record a failed pass: retry (how soon depends on the kind of failure), or bounce
    the recipients still pending to the sender. Never a copy in clear."""
    settings = services.settings
    async with services.db.write_gate.hold(), services.db.session() as s:
        message = await s.get(Message, message_id)
        if message is None or message.state != "received" or message.next_attempt_at != lease:
            return
        message.claimed_by = ""
        expired = now() - message.received_at > settings.queue_lifetime
        if _is_encryption_failure(error):
            message.attempts += 1
            message.last_error = _describe(error)
            delay = backoff(
                message.attempts, settings.queue_min_backoff, settings.queue_max_backoff
            )
        elif error_kinds.is_outage(error):
            message.last_error = error_kinds.labelled(error_kinds.OUTAGE, _describe(error))
            delay = min(settings.queue_min_backoff, error_kinds.OUTAGE_RETRY_SECONDS)
        else:
            message.attempts += 1
            reason = error_kinds.content_reason(error)
            kind = type(error).__name__
            message.last_error = error_kinds.labelled(
                error_kinds.CONTENT, reason if kind in reason else f"{reason} [{kind}]"
            )
            if message.attempts >= error_kinds.CONTENT_TRIES or expired:
                await _bounce(services, s, message, error_kinds.CONTENT_STATUS, reason)
                return
            first = min(settings.queue_min_backoff, error_kinds.CONTENT_RETRY_SECONDS)
            delay = backoff(message.attempts, first, max(first, 4 * first))
        if not expired:
            message.next_attempt_at = now() + delay
            await s.commit()
            return
        if _is_encryption_failure(error):
            status, text = (
                "5.7.0",
                "the message could not be encrypted as your organisation's policy requires, "
                "and it was not sent in clear",
            )
        else:
            status = "4.4.7"
            text = "the message could not be processed before its time in the queue ran out"
        await _bounce(services, s, message, status, text)


async def _bounce(
    services: Services, s: AsyncSession, message: Message, status: str, text: str
) -> None:
    """Bounce the pending recipients to the sender, end the message (the caller's session
    is committed here)."""
    pending = list(
        (
            await s.execute(
                select(MessageRecipient).where(
                    MessageRecipient.message_id == message.id,
                    MessageRecipient.state == "pending",
                )
            )
        )
        .scalars()
        .all()
    )
    try:  # the bounce quotes the header block: read no more of the message than that
        read = await services.vault.chunks(s, message.tenant_id, message.raw_object_id)
        raw = await asyncio.to_thread(lambda: head_of(read()))
    except Exception:  # noqa: BLE001 - the bounce still goes, with no original headers
        raw = b""
    await enqueue_bounce(
        services, s, message, raw, [Failure(r.rcpt, status, text) for r in pending]
    )
    for r in pending:
        r.state, r.disposition = "done", "bounced"
        r.reason = f"bounced ({status}): {text}"[:500]
    message.state = "failed"  # kept, sealed, for an operator to look at
    await s.commit()
    metrics().decisions.labels(message.tenant_id, "bounced").inc(len(pending))


def _describe(error: Exception) -> str:
    """What an operator reads in ``queue list``; vendor exceptions keep only their type."""
    if isinstance(error, SealmailError):
        return f"{type(error).__name__}: {error}"[:500]
    return type(error).__name__


def _is_encryption_failure(error: Exception) -> bool:
    return isinstance(error, EncryptionFailed)
