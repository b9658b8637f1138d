"""``/messages/{id}``: the conversation that message belongs to, every message of it the
signed-in recipient may open (a live access of kind ``recipient`` or ``author`` for the
session's tenant and address), oldest first, the requested one marked.

A message sealed before conversations existed has no ``thread_id``: it is its own thread.
A revoked or expired access answers the 410 page of :mod:`portal.reader.gone`; no access at
all is the plain 404, the same as a message that does not exist.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from conversations.modes import forward_mode, reply_mode
from core.audit import audit
from core.mime_text import MAX_DEPTH, clean, clean_lines
from core.models import Message, PortalAccess, PortalSession, Tenant, now
from core.portal_message import PortalMessage
from core.storage.plain_cache import PlainCache
from portal.reader import gone, receipts
from portal.reader.access import (
    READABLE_KINDS,
    accesses_with_message,
    enforce_guards,
    is_live,
    recipient_session,
    signed_in_context,
)
from portal.reader.message import human_size
from portal.reader.pdf import pdf_offer
from portal.reader.people import full_name, sent_sentence
from portal.signin import passkeys
from portal.state import PortalState, portal

MAX_THREAD = 100  # messages of one conversation shown on one page
NOTICES = {
    "replied": "Your reply was sent securely.",
    "forwarded": "Your message was forwarded securely.",
    "pdf_sent": "We are sending you this message by email as a PDF encrypted with your PDF "
    "password. It should arrive in a minute or two.",
    "pdf_too_large": "This message is too large to send as a PDF; read it here instead.",
    "pdf_password": "Your PDF password is saved. The next messages arrive as PDFs you open "
    "with it.",
}


@dataclasses.dataclass
class Item:
    """One message of the conversation with the access that opens it."""

    msg: Message
    access: PortalAccess
    pm: PortalMessage


def thread_of(msg: Message) -> str:
    return msg.thread_id or msg.id


def _thread_stmt(tid: Any, with_tenant: bool) -> Any:
    """The conversation's open messages and their accesses, built once (bound parameters:
    ``tenant``, ``email``, ``at`` and the thread's ``tid`` or the ``wanted`` message's id):
    building a statement costs more than running it."""
    stmt = (
        select(Message, PortalAccess, *([Tenant] if with_tenant else []))
        .join(PortalAccess, PortalAccess.message_id == Message.id)
        .where(
            Message.tenant_id == bindparam("tenant"),
            PortalAccess.tenant_id == bindparam("tenant"),
            func.lower(PortalAccess.recipient) == bindparam("email"),
            PortalAccess.kind.in_(READABLE_KINDS),
            or_(Message.thread_id == tid, Message.id == tid),
            Message.meta_object_id.is_not(None),
            Message.portal_expired_at.is_(None),
            PortalAccess.revoked.is_(False),
            PortalAccess.expires_at > bindparam("at"),
        )
        .order_by(Message.received_at, Message.id)
    )
    return stmt.join(Tenant, Tenant.id == Message.tenant_id) if with_tenant else stmt


_WANTED = aliased(Message)
_BY_THREAD = _thread_stmt(bindparam("tid"), with_tenant=False)
_BY_MESSAGE = _thread_stmt(
    select(func.coalesce(func.nullif(_WANTED.thread_id, ""), _WANTED.id))  # as thread_of
    .where(_WANTED.id == bindparam("wanted"), _WANTED.tenant_id == bindparam("tenant"))
    .scalar_subquery(),
    with_tenant=True,
)


async def thread_items(
    st: PortalState, s: AsyncSession, current: PortalSession, msg: Message
) -> tuple[list[Item], dict[str, bytes]]:
    """The conversation's messages this session may open, oldest first (one access each,
    a recipient's before an author's), and the plaintext of their metadata and text parts
    by object id (checked and read in one query when they are kept)."""
    items, plain, _tenant = await _items_where(
        st, s, current, msg.id, _BY_THREAD, {"tid": thread_of(msg)}
    )
    await _enforce(s, current, items, msg.id)
    return items, plain


async def thread_items_of(
    st: PortalState, s: AsyncSession, current: PortalSession, message_id: str
) -> tuple[list[Item], dict[str, bytes], Tenant] | None:
    """:func:`thread_items` for the message ``message_id`` in one query (its thread found by
    a subquery, the tenant's row joined), when that message is one this session may open
    now; None otherwise (not found, not its tenant's, revoked, expired: the caller looks
    at why)."""
    if len(message_id) > 64:
        return None
    items, plain, tenant = await _items_where(
        st, s, current, message_id, _BY_MESSAGE, {"wanted": message_id}
    )
    if tenant is None or not any(it.msg.id == message_id for it in items):
        return None
    await _enforce(s, current, items, message_id)
    return items, plain, tenant


async def _enforce(s: AsyncSession, current: PortalSession, items: list[Item], first: str) -> None:
    """Every message shown needs its guard satisfied (the one asked for is named first)."""
    opened = sorted(((it.msg.id, it.access.kind) for it in items), key=lambda p: p[0] != first)
    await enforce_guards(s, current, opened)


async def _items_where(
    st: PortalState,
    s: AsyncSession,
    current: PortalSession,
    message_id: str,
    stmt: Any,
    params: dict[str, Any],
) -> tuple[list[Item], dict[str, bytes], Tenant | None]:
    params = {**params, "tenant": current.tenant_id, "email": current.email, "at": now()}
    chosen: dict[str, tuple[Message, PortalAccess]] = {}
    tenant: Tenant | None = None
    for m, a, *joined in (await s.execute(stmt, params)).all():
        tenant = joined[0] if joined else tenant
        held = chosen.get(m.id)
        if held is None or (held[1].kind != "recipient" and a.kind == "recipient"):
            chosen[m.id] = (m, a)
    pairs = list(chosen.values())
    if len(pairs) > MAX_THREAD:  # the newest ones, and always the one asked for
        keep = {m.id for m, _a in pairs[-MAX_THREAD:]} | {message_id}
        pairs = [p for p in pairs if p[0].id in keep]
    meta_ids = [m.meta_object_id or "" for m, _a in pairs]
    metas = await st.services.vault.read_many(
        s,
        current.tenant_id,
        [*meta_ids, *_kept_text_ids(st, current.tenant_id, meta_ids)],
        st.plain,
    )
    items = [Item(m, a, PortalMessage.from_json(metas[m.meta_object_id or ""])) for m, a in pairs]
    missing = [
        it.pm.text_object_id
        for it in items
        if it.pm.text_object_id and it.pm.text_object_id not in metas
    ]
    if missing:
        metas.update(await st.services.vault.read_many(s, current.tenant_id, missing, st.plain))
    return items, metas, tenant


def _kept_text_ids(st: PortalState, tenant_id: str, meta_ids: list[str]) -> list[str]:
    """The text parts of the metadata already kept, to be checked and read together with
    the metadata in one query (anything taken from here is checked by read_many)."""
    out = []
    for meta_id in meta_ids:
        kept = st.plain.get(tenant_id, meta_id)
        text_id = PortalMessage.from_json(kept).text_object_id if kept is not None else None
        if text_id:
            out.append(text_id)
    return out


def _lines(raw: bytes) -> str:
    return clean_lines(raw.decode("utf-8", "replace"))


def _view_of(
    plain: PlainCache,
    current: PortalSession,
    tenant: Tenant,
    item: Item,
    texts: dict[str, bytes],
    *,
    wanted: bool,
    text_view: bool,
) -> dict[str, Any]:
    pm, msg = item.pm, item.msg
    text = None
    if pm.text_object_id:
        text = plain.derived(
            current.tenant_id, pm.text_object_id, texts[pm.text_object_id], "lines", _lines
        )
    frame = bool(pm.html_object_id) and not text_view
    mine = item.access.kind == "author"
    replies = reply_mode(msg, tenant) if not mine else "none"
    forwards = forward_mode(msg, tenant) if not mine else "no"
    return {
        "id": msg.id,
        "wanted": wanted,
        "mine": mine,
        # cleaned again: a message sealed before core.mime_text may hold raw bytes
        "subject": clean(pm.subject),
        "sentence": sent_sentence(pm.sender, pm.date, pm.to, pm.cc, me=current.email, mine=mine),
        "sender": full_name(pm.sender) if pm.sender else clean(msg.mail_from),
        "to": [full_name(a) for a in pm.to],
        "cc": [full_name(a) for a in pm.cc],
        "date": clean(pm.date),
        "frame": frame,
        "text": text,
        "has_html": bool(pm.html_object_id),
        "not_shown": pm.not_shown,
        "can_reply": replies in ("sender", "all"),
        "can_reply_all": replies == "all" and len(pm.to) + len(pm.cc) > 1,
        "can_forward": forwards in ("internal", "yes"),
        "forward_internal": forwards == "internal",
        "attachments": [
            {
                "index": i,
                "filename": part.filename or f"attachment-{i + 1}",
                "size": human_size(part.size),
                "sha256": part.sha256,
            }
            for i, part in enumerate(pm.attachments)
        ],
    }


async def conversation(request: Request) -> Response:
    st = portal(request)
    message_id: str = request.path_params["message_id"]
    async with st.services.db.session() as s:
        current = await recipient_session(s, request)
        # the usual case in one query: the message is open to this session now
        found = await thread_items_of(st, s, current, message_id)
        if found is None:  # why not: unknown (404), or revoked / expired (410 page)
            rows, msg = await accesses_with_message(s, current, message_id)
            tenant = await s.get(Tenant, current.tenant_id)
            if msg is None or tenant is None or msg.tenant_id != current.tenant_id:
                raise HTTPException(404)
            live = [a for a in rows if is_live(a)]
            if not live or msg.portal_expired_at is not None or not msg.meta_object_id:
                ended = [a for a in rows if gone.reason_of(a, msg)]
                if not ended:
                    raise HTTPException(404)
                return await gone.gone_page(st, s, ended[0], msg, tenant, current=current)
            found = (*await thread_items(st, s, current, msg), tenant)
        items, texts, tenant = found
        msg = next((it.msg for it in items if it.msg.id == message_id), None)
        if msg is None:  # ended between the two queries
            raise HTTPException(404)
        text_view = request.query_params.get("view") == "text"
        views = [
            _view_of(
                st.plain,
                current,
                tenant,
                it,
                texts,
                wanted=it.msg.id == msg.id,
                text_view=text_view,
            )
            for it in items
        ]
        ctx = await signed_in_context(s, current)
        ctx["pdf_offer"] = await pdf_offer(s, current, msg.id)
        ctx["suggest_passkey"] = False
        if current.factor == "code":  # "Sign in faster next time: add a passkey"
            rp_id = passkeys.relying_party(request).rp_id
            has = await passkeys.has_passkey(s, current.tenant_id, current.email, rp_id)
            ctx["suggest_passkey"] = not has
        await s.commit()
    # written with other views within half a second, off this request (portal.view_log)
    if st.views is not None:
        st.views.viewed(current.tenant_id, current.email, "portal.message.viewed", msg.id)
    else:
        async with st.services.db.session() as s:
            await audit(s, current.tenant_id, current.email, "portal.message.viewed", msg.id)
            await s.commit()
    unopened = [
        it.access.id
        for it in items
        if it.access.kind == "recipient" and it.access.first_opened_at is None
    ]
    for access_id in unopened:  # reading the thread opens every message shown in it
        await receipts.mark_opened(st, access_id)
    wanted = next((v for v in views if v["wanted"]), views[-1] if views else None)
    ctx.update(
        message_id=msg.id,
        subject=(views[0]["subject"] if views else "") or (wanted or {}).get("subject", ""),
        messages=views,
        count=len(views),
        text_view=text_view,
        max_depth=MAX_DEPTH,
        notice=NOTICES.get(request.query_params.get("notice", ""), ""),
    )
    return st.pages.render("reader/thread.html", ctx)
