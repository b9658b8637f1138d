"""The password that opens a recipient's encrypted PDFs (issue 16, method ``pdf``).

A recipient chooses it once in the portal, per tenant and address, and every later PDF of
that tenant to that address is encrypted with it. The server has to encrypt with it again
and again, so a hash cannot do: it is sealed under the tenant's keys like message content
(a sealed object of kind ``pdf-password``, named by :class:`PdfPassword`); changing it
crypto-shreds the old object. No mail ever carries it.

:func:`pdf_password_for` is the one place that chooses the password of a message's PDF.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from conversations import guards
from conversations.models import PdfPassword
from core.errors import NotFound
from core.models import SealedObject, now
from core.storage.vault import Vault

MIN_LENGTH = 10
MAX_LENGTH = 200
OBJECT_KIND = "pdf-password"


def weakness(password: str, address: str) -> str:
    """Why ``password`` may not be used by ``address`` (a sentence), or "" when it may."""
    if len(password) < MIN_LENGTH:
        return f"Your PDF password needs at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"Your PDF password may have at most {MAX_LENGTH} characters."
    if password.strip() != password or not password.strip():
        return "Your PDF password may not start or end with a space."
    lowered = password.lower()
    address = address.strip().lower()
    if lowered == address or lowered == address.split("@", 1)[0]:
        return "Your PDF password may not be your email address."
    if len(set(password)) < 4:
        return "Your PDF password needs more different characters."
    return ""


async def has_password(session: AsyncSession, tenant_id: str, address: str) -> bool:
    return await session.get(PdfPassword, (tenant_id, address.strip().lower())) is not None


async def set_password(
    session: AsyncSession, vault: Vault, tenant_id: str, address: str, password: str
) -> None:
    """Keep ``password`` for ``address`` (checked with :func:`weakness` first: a weak one
    raises ``ValueError``); the caller commits. A previous password's object is destroyed."""
    address = address.strip().lower()
    problem = weakness(password, address)
    if problem:
        raise ValueError(problem)
    sealed = await vault.seal(session, tenant_id, password.encode("utf-8"), kind=OBJECT_KIND)
    row = await session.get(PdfPassword, (tenant_id, address))
    if row is None:
        session.add(
            PdfPassword(tenant_id=tenant_id, address=address, object_id=sealed.id, created_at=now())
        )
        return
    old = await session.get(SealedObject, row.object_id)
    if old is not None:  # crypto-shredded: without its wrapped key no one reads it again
        old.wrapped_key = None
        old.destroyed_at = now()
    row.object_id = sealed.id
    row.updated_at = now()


async def recipient_password(
    session: AsyncSession, vault: Vault, tenant_id: str, address: str
) -> str | None:
    """The password ``address`` chose for ``tenant_id``'s PDFs, or ``None``."""
    row = await session.get(PdfPassword, (tenant_id, address.strip().lower()))
    if row is None:
        return None
    try:
        return (await vault.read(session, tenant_id, row.object_id)).decode("utf-8")
    except NotFound:
        return None


async def pdf_password_for(
    session: AsyncSession, vault: Vault, tenant_id: str, message_id: str, address: str
) -> str | None:
    """The password that encrypts ``message_id``'s PDF for ``address``, or ``None`` when
    there is none yet (then the mail carries no PDF and asks the recipient to choose one).

    The sender-set passphrase of the message comes first, while its sealed copy is kept
    (:func:`conversations.guards.sealed_passphrase`: until the pipeline made the message's
    PDFs); else the password the recipient chose in the portal."""
    guard = await guards.guard_of(session, tenant_id, message_id)
    if guard is not None:
        passphrase = await guards.sealed_passphrase(session, vault, guard)
        if passphrase:
            return passphrase
    return await recipient_password(session, vault, tenant_id, address)
