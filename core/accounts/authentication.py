"""How a sender proves which tenant it belongs to: an SMTP login (Argon2), a connector's token
or an API key (SHA-256 of a 256-bit random value).
"""

from __future__ import annotations

import asyncio
import functools

from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts.api_keys import note_use
from core.accounts.networks import in_networks, tenant_networks
from core.hashing import hash_password, sha256_hex, verify_password
from core.models import ApiKey, ConnectorToken, SmtpCredential, Tenant


async def authenticate_smtp(session: AsyncSession, username: str, password: str) -> Tenant | None:
    cred = await session.get(SmtpCredential, username)
    if cred is None:
        # spend the same time as a real check so user names cannot be probed by timing
        await asyncio.to_thread(verify_password, _dummy_hash(), password)
        return None
    if not await asyncio.to_thread(verify_password, cred.password_hash, password):
        return None
    return await session.get(Tenant, cred.tenant_id)


@functools.cache
def _dummy_hash() -> str:
    """Made on first use, not at import: an Argon2 hash takes 64 MiB while it runs, which
    every process importing this module (CLI tools, the archive verifier) would pay."""
    return hash_password("sealmail-dummy-password")


async def tenant_by_connector_token(
    session: AsyncSession, token: str, client_ip: str
) -> Tenant | None:
    """The tenant whose connector token this is, if the client is in its allowed networks."""
    row = await session.get(ConnectorToken, sha256_hex(token.strip()))
    if row is None:
        return None
    if not in_networks(client_ip, await tenant_networks(session, row.tenant_id)):
        return None
    return await session.get(Tenant, row.tenant_id)


async def authenticate_api_key(session: AsyncSession, key: str) -> tuple[Tenant, str] | None:
    """The tenant and scope of a bearer key; None for an unknown or revoked one. Its last use
    is recorded (at most once a minute, so busy keys do not write on every request)."""
    row = await session.get(ApiKey, sha256_hex(key.strip()))
    if row is None or row.revoked_at is not None:
        return None
    tenant = await session.get(Tenant, row.tenant_id)
    if tenant is None:
        return None
    if note_use(row):
        await session.commit()
    return tenant, row.role
