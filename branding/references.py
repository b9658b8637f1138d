"""The reference code every notice carries, so that a recipient can check at ``/verify`` that
a notice is genuine before trusting its link.

A code is 11 characters from an alphabet with no look-alikes (no 0/O, 1/I/L, U), shown as
``7KQ4-M2XD-9TB`` — 30^11, about 54 bits, so guessing one is hopeless within the rate limit.
Only its SHA-256 is stored; the row names the message and recipient it was written for, and
``/verify`` answers with the sender's address, the tenant's name and the date, never the
subject, the content or the recipient.
"""

from __future__ import annotations

import dataclasses
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from branding.models import NoticeReference
from core.hashing import sha256_hex
from core.models import Message, Tenant

ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 11
_LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1", "U": "V"})


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def canonical(text: str) -> str:
    """What a person typed, as stored: upper case, separators and spaces dropped."""
    cleaned = "".join(c for c in text.upper() if c.isalnum())
    return cleaned.translate(_LOOKALIKES)[:40]


def code_hash(text: str) -> str:
    return sha256_hex(canonical(text).encode("ascii", "replace"))


async def issue(session: AsyncSession, tenant_id: str, message_id: str, recipient: str) -> str:
    """A new code for one notice, added to the caller's transaction."""
    code = new_code()
    session.add(
        NoticeReference(
            code_hash=code_hash(code),
            tenant_id=tenant_id,
            message_id=message_id,
            recipient=recipient.strip().lower(),
        )
    )
    return code


@dataclasses.dataclass(frozen=True)
class Genuine:
    """What ``/verify`` may say about a real notice."""

    sender: str
    tenant_name: str
    sent_at: float


async def lookup(
    session: AsyncSession, text: str, only_tenant: str | None = None
) -> Genuine | None:
    """The notice a code belongs to, or None. ``only_tenant`` (a tenant's own portal host)
    makes another tenant's codes unknown there."""
    if len(canonical(text)) != LENGTH:
        return None
    ref = await session.get(NoticeReference, code_hash(text))
    if ref is None or (only_tenant is not None and ref.tenant_id != only_tenant):
        return None
    row = (
        await session.execute(
            select(Message.mail_from, Tenant.display_name, Tenant.name)
            .join(Tenant, Tenant.id == Message.tenant_id)
            .where(Message.id == ref.message_id, Message.tenant_id == ref.tenant_id)
        )
    ).first()
    if row is None:
        return None
    return Genuine(sender=row[0] or "", tenant_name=row[1] or row[2], sent_at=ref.created_at)
