"""Support desk agents (``sealmail support agent ...``): who may sign in at ``/support`` and
call the support API, with a random agent key shown once (SHA-256 stored), and which
accounts each desk sees (:func:`scope_of`)."""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.addresses import InvalidAddress, parse_address
from core.audit import audit
from core.errors import NotFound, PermanentError
from core.hashing import sha256_hex
from core.ids import new_id, new_token
from core.models import Partner
from support.desk import Scope
from support.models import SupportAgent


def _agent_email(email: str) -> str:
    try:
        return parse_address(email)
    except InvalidAddress:
        raise PermanentError(f"not an email address: {email!r}") from None


async def add_agent(
    session: AsyncSession, email: str, partner: Partner | None = None
) -> tuple[SupportAgent, str]:
    """A new desk agent; returns the row and the agent key (shown once, SHA-256 stored)."""
    address = _agent_email(email)
    if (await session.execute(select(SupportAgent).where(SupportAgent.email == address))).scalar():
        raise PermanentError(f"{address} is already a support agent")
    key = "sma_" + new_token(32)
    agent = SupportAgent(
        id=new_id("sa_"),
        email=address,
        partner_id=partner.id if partner else None,
        key_hash=sha256_hex(key),
    )
    session.add(agent)
    await audit(
        session,
        None,
        "cli",
        "support.agent.add",
        agent.id,
        email=address,
        partner=partner.name if partner else "",
    )
    return agent, key


async def new_agent_key(session: AsyncSession, email: str) -> str:
    """Replace an agent's key (the old one stops working at once)."""
    agent = await find_agent(session, email)
    key = "sma_" + new_token(32)
    agent.key_hash = sha256_hex(key)
    await audit(session, None, "cli", "support.agent.key", agent.id, email=agent.email)
    return key


async def find_agent(session: AsyncSession, email: str) -> SupportAgent:
    address = _agent_email(email)
    row = (
        await session.execute(select(SupportAgent).where(SupportAgent.email == address))
    ).scalar()
    if row is None:
        raise NotFound(f"no support agent {address}")
    return row


async def remove_agent(session: AsyncSession, email: str) -> None:
    agent = await find_agent(session, email)
    await session.delete(agent)
    await audit(session, None, "cli", "support.agent.remove", agent.id, email=agent.email)


async def list_agents(session: AsyncSession) -> Sequence[SupportAgent]:
    return (
        (await session.execute(select(SupportAgent).order_by(SupportAgent.email))).scalars().all()
    )


async def agent_by_key(session: AsyncSession, email: str, key: str) -> SupportAgent | None:
    """The agent with this address and key; the key's hash is looked up, then compared in
    constant time with the address's row."""
    address = email.strip().lower()
    row = (
        await session.execute(select(SupportAgent).where(SupportAgent.email == address))
    ).scalar()
    wanted = sha256_hex(key.strip())
    if row is None or not hmac.compare_digest(row.key_hash, wanted):
        return None
    return row


async def agent_by_bearer(session: AsyncSession, key: str) -> SupportAgent | None:
    """The agent whose key this is (the API's bearer token); a 256-bit random key, so the
    SHA-256 lookup is the check, as for API keys."""
    row = (
        await session.execute(
            select(SupportAgent).where(SupportAgent.key_hash == sha256_hex(key.strip()))
        )
    ).scalar()
    return row


def scope_of(agent: SupportAgent) -> Scope:
    return Scope(agent.partner_id)
