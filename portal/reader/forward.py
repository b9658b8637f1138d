"""``/messages/{id}/forward``: forward a sealed message from the portal, when its forward mode
allows (``yes``: anyone; ``internal``: addresses of the tenant's domains only; ``no``: never).

The original's attachments go with it, streamed from their sealed objects into spooled
temporary files (never whole in memory); its text follows a "Forwarded message" line. The
new message enters the gateway's path like a reply (``conversations.submit``).
"""

from __future__ import annotations

import re
from contextlib import ExitStack
from tempfile import SpooledTemporaryFile
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from conversations.compose import Draft, Upload
from conversations.modes import forward_allowed, forward_mode
from core.accounts.domains import tenant_domains
from core.addresses import InvalidAddress, parse_address
from core.mime_text import clean
from portal.reader import refusals
from portal.reader.access import signed_in_context
from portal.reader.message import human_size
from portal.reader.reply import precheck
from portal.reader.writing import (
    Original,
    author_address,
    forwarded,
    load_original,
    msgid_domain,
    prefixed,
    rate_limited,
    send,
    threading_headers,
)
from portal.security import check_session_token
from portal.state import PortalState, portal
from portal.uploads import MAX_FILES, Posted, TooLarge, encoded_size, read_posted

MAX_RECIPIENTS = 20
SPOOL_IN_MEMORY = 1024 * 1024  # past this, an attachment being re-attached goes to disk
_SPLIT = re.compile(r"[\s,;]+")


def _allowed(mode: str) -> bool:
    return mode in ("internal", "yes")


async def _context(
    st: PortalState, s: AsyncSession, original: Original, mode: str
) -> dict[str, Any]:
    ctx = await signed_in_context(s, original.current)
    domains = await tenant_domains(s, original.msg.tenant_id)
    ctx.update(
        message_id=original.msg.id,
        internal_only=mode == "internal",
        domains=domains,
        subject=prefixed("Fwd:", original.pm.subject),
        forwarded=forwarded(original),
        files=[
            {"filename": clean(p.filename) or f"attachment-{i + 1}", "size": human_size(p.size)}
            for i, p in enumerate(original.pm.attachments)
            if not p.inline
        ],
        max_size=human_size(st.settings.smtp_max_message_size * 3 // 4),
        max_recipients=MAX_RECIPIENTS,
        to="",
        text="",
        error="",
    )
    return ctx


async def forward_form(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        original = await load_original(st, s, request)
        mode = forward_mode(original.msg, original.tenant)
        if not _allowed(mode):
            return refusals.forward_refused(st, original)
        ctx = await _context(st, s, original, mode)
    return st.pages.render("reader/forward.html", ctx)


async def forward_send(request: Request) -> Response:
    st = await precheck(request)
    try:
        posted = await read_posted(request, st.settings.smtp_max_message_size)
    except TooLarge:
        return refusals.too_large(st)
    if posted is None:
        raise HTTPException(400)
    try:
        with ExitStack() as spooled:
            return await _send(st, request, posted, spooled)
    finally:
        await posted.close()


def parse_recipients(text: str) -> tuple[list[str], list[str]]:
    """``(addresses, not addresses)`` of what was typed, in order, without repeats."""
    good: list[str] = []
    bad: list[str] = []
    for token in _SPLIT.split(text.strip()):
        if not token:
            continue
        try:
            address = parse_address(token.strip("<>"))
        except InvalidAddress:
            bad.append(token[:80])
            continue
        if address not in good:
            good.append(address)
    return good, bad


def _recipient_error(good: list[str], bad: list[str], mode: str, domains: list[str]) -> str | None:
    if bad:
        return f"These are not email addresses: {', '.join(bad)}. Check them and try again."
    if not good:
        return "Type the address of at least one person to forward this message to."
    if len(good) > MAX_RECIPIENTS:
        return f"You can forward to at most {MAX_RECIPIENTS} people at once."
    outside = [a for a in good if not forward_allowed(a, mode, domains)]
    if outside:
        where = " or ".join(domains) or "the sender's organisation"
        return (
            f"This message may only be forwarded to addresses at {where}, so it cannot go "
            f"to {', '.join(outside)}."
        )
    return None


async def _attachments(
    st: PortalState, s: AsyncSession, original: Original, spooled: ExitStack
) -> list[Upload]:
    """The original's attachments as spooled files, streamed from the vault."""
    out: list[Upload] = []
    for i, part in enumerate(original.pm.attachments):
        if part.inline:
            continue
        file = spooled.enter_context(SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY))  # noqa: SIM115
        size = 0
        stream = await st.services.vault.stream(s, original.msg.tenant_id, part.object_id)
        async for piece in stream:
            file.write(piece)
            size += len(piece)
        file.seek(0)
        name = clean(part.filename) or f"attachment-{i + 1}"
        out.append(Upload(name, part.content_type or "application/octet-stream", file, size))
    return out


async def _send(st: PortalState, request: Request, posted: Posted, spooled: ExitStack) -> Response:
    async with st.services.db.session() as s:
        original = await load_original(st, s, request)
        if not check_session_token(original.current.csrf_token, posted.text("csrf", 200)):
            raise HTTPException(403)
        mode = forward_mode(original.msg, original.tenant)
        if not _allowed(mode):
            return refusals.forward_refused(st, original)
        if await rate_limited(s, original.current):
            return refusals.too_many(st, original)
        ctx = await _context(st, s, original, mode)
        typed = posted.text("to", 20_000)
        note = posted.text("text").replace("\r\n", "\n")
        ctx.update(to=typed, text=note)
        good, bad = parse_recipients(typed)
        error = _recipient_error(good, bad, mode, ctx["domains"])
        if error:
            ctx["error"] = error
            return st.pages.render("reader/forward.html", ctx, status=400)
        kept = [p for p in original.pm.attachments if not p.inline]
        weight = sum(encoded_size(p.size) for p in kept) + 2 * len(note + ctx["forwarded"])
        weight += sum(encoded_size(u.size) for u in posted.uploads)
        if len(kept) + len(posted.uploads) > MAX_FILES * 2:
            weight = st.settings.smtp_max_message_size + 1
        if weight > st.settings.smtp_max_message_size:
            ctx["error"] = (
                f"With your files this message would be too large to send: a secure message "
                f"can carry up to {ctx['max_size']} of attachments."
            )
            return st.pages.render("reader/forward.html", ctx, status=413)
        in_reply_to, references = await threading_headers(st, s, original)
        draft = Draft(
            from_addr=await author_address(original),
            to=good,
            cc=[],
            subject=ctx["subject"],
            text=(note.rstrip() + "\n\n" if note.strip() else "") + ctx["forwarded"] + "\n",
            attachments=[*await _attachments(st, s, original, spooled), *posted.uploads],
            in_reply_to=in_reply_to,
            references=references,
            msgid_domain=await msgid_domain(s, original.msg.tenant_id),
        )
    await send(st, request, original, draft, good, "forward")
    return RedirectResponse(f"/messages/{original.msg.id}?notice=forwarded", status_code=303)
