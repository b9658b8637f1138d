"""Outbound webhooks to the billing system: queued in ``outbound_webhooks`` in the same
transaction as the action that caused them, signed at send time (a fresh ``t=``) the way
inbound webhooks are, and retried with exponential backoff until a 2xx answer."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.error
import urllib.request
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_hooks.models import OutboundWebhook
from billing_hooks.signing import HEADER, sign
from core.config.settings import Settings
from core.db import Database
from core.ids import new_id

log = logging.getLogger("sealmail.billing")
MIN_BACKOFF = 30.0
MAX_BACKOFF = 6 * 3600.0
TIMEOUT = 10.0
BATCH = 50


def backoff(attempts: int) -> float:
    """Seconds to wait after ``attempts`` failed attempts: 30 s, 60 s, 2 min ... 6 h."""
    return float(min(MAX_BACKOFF, MIN_BACKOFF * 2 ** max(0, attempts - 1)))


def queue(session: AsyncSession, type_: str, data: dict[str, Any]) -> OutboundWebhook:
    """Add a webhook; the caller commits."""
    event_id = new_id("evt_")
    created = time.time()
    body = json.dumps(
        {"id": event_id, "type": type_, "created": int(created), "data": data},
        sort_keys=True,
        separators=(",", ":"),
    )
    row = OutboundWebhook(
        id=event_id, type=type_, payload=body, attempts=0, next_attempt_at=created
    )
    session.add(row)
    return row


def _post(url: str, body: bytes, header: str) -> int:
    req = urllib.request.Request(  # noqa: S310 - the URL is validated config (http/https)
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", HEADER: header, "User-Agent": "sealmail"},
    )
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:  # noqa: S310
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


async def deliver_due(settings: Settings, db: Database, limit: int = BATCH) -> tuple[int, int]:
    """Send the webhooks that are due; (delivered, failed). Without
    ``billing_outbound_url`` nothing is sent (they wait in the queue)."""
    url = settings.billing_outbound_url
    secret = settings.billing_outbound_secret.reveal()
    if not url or not secret:
        return 0, 0
    async with db.session() as s:
        stmt = (
            select(OutboundWebhook)
            .where(
                OutboundWebhook.delivered_at.is_(None),
                OutboundWebhook.next_attempt_at <= time.time(),
            )
            .order_by(OutboundWebhook.next_attempt_at, OutboundWebhook.created_at)
            .limit(limit)
        )
        due = list((await s.execute(stmt)).scalars().all())
    delivered = failed = 0
    for row in due:
        body = row.payload.encode()
        error = ""
        try:
            status = await asyncio.to_thread(_post, url, body, sign(secret, body))
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except (OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        async with db.session() as s:
            current = await s.get(OutboundWebhook, row.id)
            if current is None or current.delivered_at is not None:
                continue
            current.attempts += 1
            if error:
                current.last_error = error
                current.next_attempt_at = time.time() + backoff(current.attempts)
                failed += 1
                log.warning("billing webhook %s (%s) failed: %s", row.id, row.type, error)
            else:
                current.delivered_at = time.time()
                current.last_error = ""
                delivered += 1
            await s.commit()
    return delivered, failed
