"""``/sent``: a sender's own messages, their status and the evidence (SPEC §5).

A tenant user signs in at ``/sent/login`` with the same one-time-code machinery as
``/admin`` (:data:`portal.admin_auth.SENDER_DOOR`); an officer already signed in at
``/admin`` is let in too. Every lookup is scoped by the session's tenant *and* the envelope
sender (``Message.mail_from``, case-insensitive) being the user's address: someone else's
message, in this tenant or another, answers the same 404 as one that does not exist.

Subjects are sealed: they are read from the sealed metadata (or the original's header block)
through the vault for the page being shown, and never stored anywhere.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Sequence
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core import quarantine
from core.audit import audit
from core.errors import NotFound, PermanentError
from core.models import Message, MessageRecipient, OutboxItem, OutboxRecipient, PortalAccess
from core.policy.models import HeldMessage
from core.portal_message import PortalMessage
from portal import admin_auth
from portal.admin_auth import SENDER_DOOR, Admin, current_user
from portal.admin_pages import _context, explain
from portal.state import PortalState, portal

PAGE_SIZE = 25
MAX_PAGE = 10_000
HEADER_LIMIT = 64 * 1024  # how much of an original is read to find its Subject
_NOT_DELIVERY = ("dsn", "code")  # outbox items about a message that are not its copies

METHODS = {
    "portal": "sealed to the portal",
    "pgp": "OpenPGP",
    "smime": "S/MIME",
    "tls": "TLS only",
    "clear": "clear",
    "hold": "held",
    "reject": "rejected",
    "bounced": "bounced",
    "journal": "journal",
}
DELIVERY = {
    "queued": "waiting to be sent",
    "deferred": "retrying",
    "sent": "delivered",
    "bounced": "bounced",
    "held": "held",
}

HELD_STATES = {
    "held": "waiting for review",
    "released": "released by compliance",
    "rejected": "rejected by compliance (you were told)",
}


@dataclasses.dataclass(frozen=True)
class RecipientStatus:
    rcpt: str
    disposition: str  # the raw value, for CSS and tests
    method: str  # readable
    delivery: str
    detail: str  # the last reply of a failed attempt, or the reason
    opened_at: float | None
    portal: bool


# --- signing in: the sender's door --------------------------------------------------------


async def login_form(request: Request) -> Response:
    return await admin_auth.login_form(request, SENDER_DOOR)


async def send_code(request: Request) -> Response:
    return await admin_auth.send_code(request, SENDER_DOOR)


async def verify(request: Request) -> Response:
    return await admin_auth.verify(request, SENDER_DOOR)


async def logout(request: Request) -> Response:
    return await admin_auth.logout(request, SENDER_DOOR)


async def _signed_in(s: AsyncSession, request: Request) -> Admin | Response:
    user = await current_user(s, request, SENDER_DOOR)
    if user is None:
        return RedirectResponse(SENDER_DOOR.login_path, status_code=303)
    return user


def _officer(user: Admin) -> bool:
    """Link to /admin only from an admin session (a sender's session gets 404 there)."""
    return user.session.kind == admin_auth.SESSION_KIND


def _own(user: Admin) -> tuple[Any, ...]:
    return (
        Message.tenant_id == user.tenant.id,
        func.lower(Message.mail_from) == user.user.email.strip().lower(),
    )


# --- status per recipient (shared by the list and the detail page) --------------------------


def _delivery_label(states: Sequence[OutboxRecipient], disposition: str) -> tuple[str, str]:
    if not states:
        return "", ""
    # the worst state wins: one bounced copy is a bounce, one waiting copy is waiting
    for state in ("bounced", "deferred", "queued", "held", "sent"):
        for row in states:
            if row.state == state:
                label = DELIVERY.get(state, state)
                if state == "sent" and disposition == "portal":
                    label = "notification delivered"
                if state == "deferred":
                    label = f"retrying (attempt {row.attempts})"
                return label, row.last_reply if state in ("bounced", "deferred") else ""
    return states[0].state, ""


def _fallback_delivery(r: MessageRecipient, held: Sequence[HeldMessage]) -> str:
    if r.state == "pending":
        return "being processed"
    if r.disposition == "hold":
        for h in held:
            if r.rcpt.lower() in (x.lower() for x in quarantine.recipients_of(h)):
                return HELD_STATES.get(h.state, h.state)
        return "waiting for review"
    if r.disposition == "reject":
        return "not sent (you were told)"
    if r.disposition == "bounced":
        return "bounced"
    return "-"


async def statuses(
    s: AsyncSession, tenant_id: str, message_ids: Iterable[str]
) -> dict[str, list[RecipientStatus]]:
    """Each message's recipients: how the policy sent it, where delivery stands, and whether
    a portal recipient opened it. Three queries for a whole page of messages."""
    ids = list(message_ids)
    out: dict[str, list[RecipientStatus]] = {m: [] for m in ids}
    if not ids:
        return out
    rcpts = (
        (
            await s.execute(
                select(MessageRecipient)
                .where(MessageRecipient.message_id.in_(ids))
                .order_by(MessageRecipient.id)
            )
        )
        .scalars()
        .all()
    )
    copies: dict[tuple[str, str], list[OutboxRecipient]] = {}
    rows = await s.execute(
        select(OutboxItem.message_id, OutboxRecipient)
        .join(OutboxRecipient, OutboxRecipient.outbox_id == OutboxItem.id)
        .where(
            OutboxItem.message_id.in_(ids),
            OutboxItem.tenant_id == tenant_id,
            OutboxItem.kind.not_in(_NOT_DELIVERY),
        )
    )
    for message_id, row in rows.all():
        copies.setdefault((str(message_id), row.rcpt.lower()), []).append(row)
    opened: dict[tuple[str, str], float | None] = {}
    for access in (
        (
            await s.execute(
                select(PortalAccess).where(
                    PortalAccess.message_id.in_(ids), PortalAccess.tenant_id == tenant_id
                )
            )
        )
        .scalars()
        .all()
    ):
        key = (access.message_id, access.recipient.lower())
        first = [t for t in (opened.get(key), access.first_opened_at) if t is not None]
        opened[key] = min(first) if first else None
    held_rows = (
        (
            await s.execute(
                select(HeldMessage).where(
                    HeldMessage.message_id.in_(ids), HeldMessage.tenant_id == tenant_id
                )
            )
        )
        .scalars()
        .all()
    )
    for r in rcpts:
        key = (r.message_id, r.rcpt.lower())
        label, detail = _delivery_label(copies.get(key, []), r.disposition)
        held = [h for h in held_rows if h.message_id == r.message_id]
        out[r.message_id].append(
            RecipientStatus(
                rcpt=r.rcpt,
                disposition=r.disposition,
                method=METHODS.get(r.disposition, r.disposition or "not decided yet"),
                delivery=label or _fallback_delivery(r, held),
                detail=detail or (r.reason if r.disposition in ("reject", "bounced") else ""),
                opened_at=opened.get(key),
                portal=key in opened,
            )
        )
    return out


# --- subjects, read through the vault and never kept ----------------------------------------


async def _subject(st: PortalState, s: AsyncSession, msg: Message) -> str:
    try:
        if msg.meta_object_id:
            meta = await st.services.vault.read(s, msg.tenant_id, msg.meta_object_id)
            return PortalMessage.from_json(meta).subject
        head = bytearray()
        stream = await st.services.vault.stream(s, msg.tenant_id, msg.raw_object_id)
        async with contextlib.aclosing(stream):  # type: ignore[type-var]
            async for chunk in stream:
                head += chunk
                if b"\r\n\r\n" in head or b"\n\n" in head or len(head) >= HEADER_LIMIT:
                    break
        parsed = BytesHeaderParser(policy=default_policy).parsebytes(bytes(head[:HEADER_LIMIT]))
        return " ".join(str(parsed.get("subject", "")).split())
    except (NotFound, PermanentError, ValueError, LookupError):
        return "(not available)"


# --- pages ----------------------------------------------------------------------------------


def _page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return min(int(raw), MAX_PAGE) if raw.isdigit() and 0 < len(raw) < 6 and int(raw) > 0 else 1


async def sent_list(request: Request) -> Response:
    st = portal(request)
    page = _page_number(request)
    async with st.services.db.session() as s:
        user = await _signed_in(s, request)
        if isinstance(user, Response):
            return user
        found = (
            (
                await s.execute(
                    select(Message)
                    .where(*_own(user))
                    .order_by(Message.received_at.desc(), Message.id.desc())
                    .offset((page - 1) * PAGE_SIZE)
                    .limit(PAGE_SIZE + 1)
                )
            )
            .scalars()
            .all()
        )
        more, found = len(found) > PAGE_SIZE, found[:PAGE_SIZE]
        status = await statuses(s, user.tenant.id, (m.id for m in found))
        items = [
            {
                "message": m,
                "subject": await _subject(st, s, m),
                "recipients": status[m.id],
            }
            for m in found
        ]
    ctx = _context(user, items=items, page=page, more=more, admin_link=_officer(user))
    return st.pages.render("portal/sent_list.html", ctx)


async def sent_message(request: Request) -> Response:
    """One sent message: its recipients' status and "why was this encrypted?" (the same
    decision rendering as ``/admin/messages/{id}``)."""
    st = portal(request)
    async with st.services.db.session() as s:
        user = await _signed_in(s, request)
        if isinstance(user, Response):
            return user
        message_id = request.path_params["message_id"][:40]
        msg = (
            await s.execute(select(Message).where(Message.id == message_id, *_own(user)))
        ).scalar_one_or_none()
        if msg is None:
            raise HTTPException(404)
        decisions = [
            {"row": d, **explain(d)} for d in await quarantine.decisions(s, msg.id, user.tenant.id)
        ]
        recipients = (await statuses(s, user.tenant.id, [msg.id]))[msg.id]
        subject = await _subject(st, s, msg)
        await audit(s, user.tenant.id, user.actor, "sent.message.viewed", msg.id)
        await s.commit()
    ctx = _context(
        user,
        message=msg,
        subject=subject,
        recipients=recipients,
        decisions=decisions,
        admin_link=_officer(user),
    )
    return st.pages.render("portal/sent_message.html", ctx)
