"""Threading: which conversation a message belongs to.

A message's ``thread_id`` is the id of the conversation's first message. A reply written in
the portal names its parent; a reply by mail (an internal user answering in Outlook) is
found by its ``In-Reply-To`` / ``References`` headers, compared through ``msgid_hash`` (the
Message-ID headers themselves are never stored in clear).
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.hashing import sha256_hex
from core.models import Message

_MSGID = re.compile(r"<([^<>\s]{1,990})>")
MAX_REFERENCES = 50  # the newest ones: a thread is found by its recent messages


def msgids(value: str) -> list[str]:
    """The ``<id>`` tokens of a Message-ID, In-Reply-To or References value, in order."""
    return _MSGID.findall(value or "")


def msgid_hash(tenant_id: str, msgid: str) -> str:
    """The stored form of one Message-ID: bound to the tenant, case of the domain ignored."""
    token = msgid.strip().strip("<>")
    local, _, domain = token.rpartition("@")
    norm = f"{local}@{domain.lower()}" if local else token
    return sha256_hex(f"{tenant_id}\x00{norm}")


async def parent_by_headers(
    session: AsyncSession, tenant_id: str, in_reply_to: str, references: str
) -> Message | None:
    """The tenant's message this one answers: In-Reply-To first, then References from the
    newest; None when none is known."""
    candidates = msgids(in_reply_to) + list(reversed(msgids(references)))[:MAX_REFERENCES]
    for token in candidates:
        found = (
            (
                await session.execute(
                    select(Message)
                    .where(
                        Message.tenant_id == tenant_id,
                        Message.msgid_hash == msgid_hash(tenant_id, token),
                    )
                    .order_by(Message.received_at)
                    .limit(1)
                )
            )
            .scalars()
            .first()
        )
        if found is not None:
            return found
    return None
