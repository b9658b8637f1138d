"""Which messages the signed-in recipient may open.

Every lookup is scoped by the session's tenant and address: a message is shown only when a
live ``PortalAccess`` for exactly that pair exists; otherwise the same 404 as for a message
that does not exist. The conversation page itself tells a revoked or expired access apart
(:func:`accesses_to`), to say so with a 410 page that names the sender.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request

from branding.brands import resolve
from conversations import events, guards
from conversations.models import MessageEvent
from core.models import Message, PortalAccess, PortalSession, Tenant, now
from core.portal_message import PortalMessage
from portal import sessions
from portal.pages import branding_of
from portal.state import PortalState


class Locked(HTTPException):
    """The message is open to this session only after one more step (its passphrase, or
    step-up with a passkey): pages answer with :mod:`portal.reader.unlock`'s page."""

    def __init__(self, message_id: str) -> None:
        super().__init__(403)
        self.message_id = message_id


async def enforce_guards(
    s: AsyncSession, current: PortalSession, opened: list[tuple[str, str]]
) -> None:
    """Raise :class:`Locked` for the first of ``opened`` ((message id, access kind), the one
    asked for first) that the session may not read yet. A message opened through an author
    access (its writer's) needs nothing more."""
    ids = [m for m, kind in opened if kind == "recipient"]
    if not ids:
        return
    found = await guards.guards_of(s, current.tenant_id, ids)
    for m in ids:
        guard = found.get(m)
        if guards.missing(guard, current):
            raise Locked(m)
        if guard is not None and guard.step_up and m not in guards.unlocked_ids(current):
            await _note_step_up(s, current, m)  # passed with a passkey


async def _note_step_up(s: AsyncSession, current: PortalSession, message_id: str) -> None:
    """The first time a recipient passes a message's step-up with a passkey: its
    ``unlocked`` event (and so the evidence log), written with the page's commit."""
    seen = await s.execute(
        select(MessageEvent.id)
        .where(
            MessageEvent.tenant_id == current.tenant_id,
            MessageEvent.message_id == message_id,
            MessageEvent.recipient == current.email,
            MessageEvent.kind == events.UNLOCKED,
        )
        .limit(1)
    )
    if seen.first() is None:
        events.record(
            s, current.tenant_id, message_id, events.UNLOCKED, current.email, how="passkey"
        )


def live_access() -> tuple[ColumnElement[bool], ...]:
    """The conditions of an access that still opens its message."""
    return (PortalAccess.revoked.is_(False), PortalAccess.expires_at > now())


READABLE_KINDS = ("recipient", "author")  # a notified recipient, or the writer of a reply


def is_live(access: PortalAccess, at: float | None = None) -> bool:
    return not access.revoked and access.expires_at > (now() if at is None else at)


async def accesses_to(
    s: AsyncSession, current: PortalSession, message_id: str
) -> list[PortalAccess]:
    """Every access of the session's address to one message of its tenant, live or not
    (recipient ones first)."""
    if len(message_id) > 64:
        return []
    stmt = select(PortalAccess).where(
        PortalAccess.message_id == message_id,
        PortalAccess.tenant_id == current.tenant_id,
        func.lower(PortalAccess.recipient) == current.email,
        PortalAccess.kind.in_(READABLE_KINDS),
    )
    rows = list((await s.execute(stmt)).scalars().all())
    return sorted(rows, key=lambda a: (a.kind != "recipient", a.id))


async def accesses_with_message(
    s: AsyncSession, current: PortalSession, message_id: str
) -> tuple[list[PortalAccess], Message | None]:
    """:func:`accesses_to` and the message they open, in one query (no access: no message).
    The session's tenant row comes with them, so a later ``get`` of it is no statement."""
    if len(message_id) > 64:
        return [], None
    stmt = (
        select(PortalAccess, Message, Tenant)
        .join(Message, Message.id == PortalAccess.message_id)
        .join(Tenant, Tenant.id == PortalAccess.tenant_id)
        .where(
            PortalAccess.message_id == message_id,
            PortalAccess.tenant_id == current.tenant_id,
            func.lower(PortalAccess.recipient) == current.email,
            PortalAccess.kind.in_(READABLE_KINDS),
        )
    )
    pairs = (await s.execute(stmt)).all()
    rows = sorted((a for a, _m, _t in pairs), key=lambda a: (a.kind != "recipient", a.id))
    return rows, (pairs[0][1] if pairs else None)


async def recipient_session(s: AsyncSession, request: Request) -> PortalSession:
    current = await sessions.load(s, request)
    if current is None or current.kind != "recipient":  # admin and sender sessions: not here
        raise HTTPException(401)
    return current


async def load_message(
    st: PortalState, s: AsyncSession, current: PortalSession, message_id: str
) -> tuple[Message, PortalMessage]:
    msg, pm, _access = await load_with_access(st, s, current, message_id)
    return msg, pm


async def load_with_access(
    st: PortalState, s: AsyncSession, current: PortalSession, message_id: str
) -> tuple[Message, PortalMessage, PortalAccess]:
    """The message, what the portal shows of it and the live access that opens it (a
    recipient's before an author's); 404 for anything else, 410 once its copy expired."""
    if len(message_id) > 64:
        raise HTTPException(404)
    expired = await s.execute(
        select(PortalAccess.id)
        .join(Message, Message.id == PortalAccess.message_id)
        .where(
            PortalAccess.message_id == message_id,
            PortalAccess.tenant_id == current.tenant_id,
            func.lower(PortalAccess.recipient) == current.email,
            PortalAccess.revoked.is_(False),
            Message.portal_expired_at.is_not(None),
        )
        .limit(1)
    )
    if expired.first() is not None:  # the sweep ended its portal retention
        raise HTTPException(410)
    live = [a for a in await accesses_to(s, current, message_id) if is_live(a)]
    if not live:
        raise HTTPException(404)
    await enforce_guards(s, current, [(message_id, live[0].kind)])
    msg = await s.get(Message, message_id)
    if msg is None or msg.tenant_id != current.tenant_id or not msg.meta_object_id:
        raise HTTPException(404)
    meta = await st.services.vault.read(s, current.tenant_id, msg.meta_object_id)
    return msg, PortalMessage.from_json(meta), live[0]


async def signed_in_context(s: AsyncSession, current: PortalSession) -> dict[str, Any]:
    tenant = await s.get(Tenant, current.tenant_id)
    look = await resolve(s, tenant) if tenant is not None else None
    return {
        **branding_of(tenant, look),
        "signed_in": True,
        "csrf_token": current.csrf_token,
        "email": current.email,
    }
