"""A tenant's connector tokens: issue a new one, list them, revoke one.

Only the SHA-256 of a token is kept, so a token is shown once, when it is issued. A
rotation must not break mail in flight: issuing a new token leaves the old ones valid
(Exchange keeps sending with the old token until the mail flow rule is changed, and
messages already queued there carry it); the admin revokes the old one once the rule
carries the new token. The last token cannot be revoked (issue a new one first): a tenant
whose connector has no token cannot send through it at all.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import audit
from core.errors import NotFound, PermanentError
from core.hashing import sha256_hex
from core.ids import new_token
from core.models import ConnectorToken

ID_LENGTH = 12  # a token is named by the start of its hash: says nothing of the token


def token_id(row: ConnectorToken) -> str:
    return row.token_hash[:ID_LENGTH]


async def list_tokens(session: AsyncSession, tenant_id: str) -> Sequence[ConnectorToken]:
    """The tenant's tokens, oldest first."""
    stmt = (
        select(ConnectorToken)
        .where(ConnectorToken.tenant_id == tenant_id)
        .order_by(ConnectorToken.created_at)
    )
    return (await session.execute(stmt)).scalars().all()


async def issue_token(session: AsyncSession, tenant_id: str, actor: str) -> str:
    """A new token for the tenant (returned once; only its hash is stored). The older
    tokens stay valid until revoked. The caller commits."""
    token = new_token(32)
    row = ConnectorToken(token_hash=sha256_hex(token), tenant_id=tenant_id)
    session.add(row)
    await audit(session, tenant_id, actor, "tenant.connector_token.issue", token_id(row))
    return token


async def revoke_token(session: AsyncSession, tenant_id: str, tid: str, actor: str) -> None:
    """Revoke the tenant's token named ``tid`` (:func:`token_id`); NotFound for another
    tenant's or an unknown one, PermanentError for the last one. The caller commits."""
    rows = await list_tokens(session, tenant_id)
    found = [r for r in rows if token_id(r) == tid]
    if not found or len(tid) != ID_LENGTH:
        raise NotFound("no such connector token")
    if len(rows) == 1:
        raise PermanentError(
            "this is the tenant's only connector token; issue a new one and put it in the "
            "mail flow rule before revoking this one"
        )
    await session.delete(found[0])
    await audit(session, tenant_id, actor, "tenant.connector_token.revoke", tid)
