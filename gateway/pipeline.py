"""After intake: decide per recipient and run the pipeline of that disposition.

Each message is claimed with a conditional UPDATE (two workers never take the same one),
opened, judged (:mod:`gateway.triggers`), and every effect — sealed parts, portal
access, notifications and clear copies in the outbox, state ``processed`` — is committed
in ONE transaction. A failure leaves it ``received`` with a backoff; it is retried, never
lost and never sent in clear instead.

Dispositions and their handlers (Mailman's pipelines, as data)::

    clear   to_outbox
    portal  seal_to_portal, grant_access, notify_recipient
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from archive.services import Services
from core import outbox
from core.ids import new_id, new_token
from core.keys import sha256_hex
from core.models import Message, MessageRecipient, PortalAccess, Recipient, Tenant, now
from gateway.headers import strip_fields
from gateway.portal_seal import seal_parts, sender_of
from gateway.triggers import encrypt_reason, header_text, strip_keywords
from gateway.writegate import gate_for

log = logging.getLogger("sealmail.gateway.pipeline")

CLAIM_SECONDS = 600.0  # a claimed message is retried by others only after this
CONCURRENCY = 8  # messages processed at once by one worker
DISPOSITION_LOOP = "loop"


@dataclasses.dataclass
class Context:
    services: Services
    session: AsyncSession
    message: Message
    tenant: Tenant
    raw: bytes
    msg: EmailMessage
    recipients: list[MessageRecipient]
    subject: str = ""  # as the recipient sees it (trigger keywords removed)
    portal_meta_id: str | None = None
    links: dict[str, tuple[str, float]] = dataclasses.field(default_factory=dict)
    new_recipients: set[str] = dataclasses.field(default_factory=set)


Handler = Callable[[Context, list[MessageRecipient]], Awaitable[None]]


# --- handlers ---------------------------------------------------------------------------


async def to_outbox(ctx: Context, rcpts: list[MessageRecipient]) -> None:
    """The original bytes, internal headers removed from the header block only."""
    data = strip_fields(ctx.raw)
    obj = await ctx.services.vault.seal(ctx.session, ctx.tenant.id, data, kind="outbound")
    await outbox.enqueue(
        ctx.session,
        kind="clear",
        tenant_id=ctx.tenant.id,
        mail_from=ctx.message.mail_from,
        recipients=[r.rcpt for r in rcpts],
        object_id=obj.id,
        lifetime=ctx.services.settings.queue_lifetime,
        message_id=ctx.message.id,
    )


async def seal_to_portal(ctx: Context, rcpts: list[MessageRecipient]) -> None:
    meta = await seal_parts(
        ctx.session,
        ctx.services.vault,
        ctx.tenant.id,
        ctx.msg,
        ctx.subject,
        ctx.message.mail_from,
    )
    obj = await ctx.services.vault.seal(ctx.session, ctx.tenant.id, meta.to_json(), kind="meta")
    ctx.message.meta_object_id = obj.id
    ctx.portal_meta_id = obj.id


async def grant_access(ctx: Context, rcpts: list[MessageRecipient]) -> None:
    """One link per recipient: ≥ 256 random bits, only its SHA-256 stored."""
    settings = ctx.services.settings
    expires = now() + settings.portal_link_lifetime
    for r in rcpts:
        email = r.rcpt.strip().lower()
        token = new_token()
        ctx.session.add(
            PortalAccess(
                id=new_id("a_"),
                token_hash=sha256_hex(token),
                message_id=ctx.message.id,
                tenant_id=ctx.tenant.id,
                recipient=email,
                expires_at=expires,
            )
        )
        ctx.new_recipients.add(email)
        ctx.links[r.rcpt] = (f"{settings.portal_base_url}/m/{token}", expires)


async def notify_recipient(ctx: Context, rcpts: list[MessageRecipient]) -> None:
    # Imported here: branding is layer 1 and renders templates; nothing at import time.
    from branding.mail import compose
    from branding.notifications import render_notification

    settings = ctx.services.settings
    _, name, address = sender_of(ctx.msg, ctx.message.mail_from)
    from_addr = ctx.tenant.notification_from or settings.sender_address
    for r in rcpts:
        link, expires = ctx.links[r.rcpt]

        def build(rcpt: str = r.rcpt, link: str = link, expires: float = expires) -> bytes:
            rendered = render_notification(
                ctx.tenant,
                sender_name=name or address,
                sender_address=address,
                subject=None if ctx.tenant.hide_subject else ctx.subject,
                link=link,
                recipient=rcpt,
                expires_at=expires,
                portal_base_url=settings.portal_base_url,
            )
            return compose(from_addr=from_addr, to_addr=rcpt, rendered=rendered, reply_to=address)

        # Templates and MIME composition are CPU work: off the loop that serves SMTP.
        data = await asyncio.to_thread(build)
        obj = await ctx.services.vault.seal(ctx.session, ctx.tenant.id, data, kind="outbound")
        await outbox.enqueue(
            ctx.session,
            kind="notification",
            tenant_id=ctx.tenant.id,
            mail_from=ctx.message.mail_from,
            recipients=[r.rcpt],
            object_id=obj.id,
            lifetime=settings.queue_lifetime,
            message_id=ctx.message.id,
        )


HANDLERS: dict[str, Handler] = {
    "to_outbox": to_outbox,
    "seal_to_portal": seal_to_portal,
    "grant_access": grant_access,
    "notify_recipient": notify_recipient,
}
PIPELINES: dict[str, tuple[str, ...]] = {
    "clear": ("to_outbox",),
    "portal": ("seal_to_portal", "grant_access", "notify_recipient"),
}


# --- decisions --------------------------------------------------------------------------


def decide(ctx: Context) -> dict[str, tuple[str, str]]:
    """``{rcpt: (disposition, reason)}``; the same for every recipient until policy
    rules (SPEC §4) can tell recipients apart."""
    if ctx.message.disposition == DISPOSITION_LOOP:
        verdict = ("clear", "valid loop stamp: relayed as it is")
    else:
        reason = encrypt_reason(ctx.msg, ctx.tenant, ctx.services.settings.trigger_keywords)
        verdict = ("portal", reason) if reason else ("clear", "no trigger")
    return {r.rcpt: verdict for r in ctx.recipients}


# --- the loop ---------------------------------------------------------------------------


def _judge(ctx: Context) -> dict[str, tuple[str, str]]:
    ctx.subject = strip_keywords(
        header_text(ctx.msg, "Subject"), ctx.services.settings.trigger_keywords
    )
    return decide(ctx)


def _parse(raw: bytes) -> EmailMessage:
    return BytesParser(policy=default_policy).parsebytes(raw)  # type: ignore[return-value]


async def _claim(services: Services, limit: int) -> list[tuple[str, float]]:
    async with gate_for(services.db).hold(), services.db.session() as s:
        t = now()
        ids = (
            (
                await s.execute(
                    select(Message.id)
                    .where(Message.state == "received", Message.next_attempt_at <= t)
                    .order_by(Message.received_at)
                    .limit(limit)
                )
            )
            .scalars()
            .all()
        )
        won: list[tuple[str, float]] = []
        lease = t + CLAIM_SECONDS
        for mid in ids:
            result = await s.execute(
                update(Message)
                .where(Message.id == mid, Message.state == "received", Message.next_attempt_at <= t)
                .values(next_attempt_at=lease)
            )
            if result.rowcount == 1:
                won.append((mid, lease))
        await s.commit()
        return won


async def _process(services: Services, message_id: str, lease: float) -> None:
    async with services.db.session() as s:
        message = await s.get(Message, message_id)
        tenant = await s.get(Tenant, message.tenant_id) if message else None
        if message is None or tenant is None:
            return
        raw = await services.vault.read(s, tenant.id, message.raw_object_id)
        msg = await asyncio.to_thread(_parse, raw)
        rcpts = list(
            (
                await s.execute(
                    select(MessageRecipient)
                    .where(MessageRecipient.message_id == message.id)
                    .order_by(MessageRecipient.id)
                )
            )
            .scalars()
            .all()
        )
        ctx = Context(services, s, message, tenant, raw, msg, rcpts)
        verdicts = await asyncio.to_thread(_judge, ctx)  # header parsing: off the loop
        groups: dict[str, list[MessageRecipient]] = {}
        for r in rcpts:
            groups.setdefault(verdicts[r.rcpt][0], []).append(r)
        # Nothing is written while the handlers seal and compose (no autoflush): the
        # write transaction below, which holds SQLite's lock, stays short.
        with s.no_autoflush:
            for disposition in sorted(groups, key=lambda d: d != "portal"):
                for name in PIPELINES[disposition]:
                    await HANDLERS[name](ctx, groups[disposition])
        async with gate_for(services.db).hold():
            await _finish(ctx, rcpts, verdicts, groups, lease)


async def _finish(
    ctx: Context,
    rcpts: list[MessageRecipient],
    verdicts: dict[str, tuple[str, str]],
    groups: dict[str, list[MessageRecipient]],
    lease: float,
) -> None:
    """Every write of one message, in one short transaction."""
    s, message = ctx.session, ctx.message
    for r in rcpts:
        r.disposition, r.reason = verdicts[r.rcpt][0], verdicts[r.rcpt][1][:500]
    await _remember_recipients(ctx)
    done = await s.execute(
        update(Message)
        .where(
            Message.id == message.id,
            Message.state == "received",
            Message.next_attempt_at == lease,
        )
        .values(
            state="processed",
            disposition=next(iter(groups)) if len(groups) == 1 else "mixed",
            meta_object_id=ctx.portal_meta_id,
            processed_at=now(),
            last_error="",
        )
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # our claim ran out and someone else took it
        await s.rollback()
        return
    await s.commit()


async def _remember_recipients(ctx: Context) -> None:
    """Add the tenant's new external recipients; concurrent workers may race: the
    database keeps one row (ON CONFLICT DO NOTHING)."""
    if not ctx.new_recipients:
        return
    insert = sqlite_insert if ctx.services.db.is_sqlite else pg_insert
    stmt = insert(Recipient).on_conflict_do_nothing(index_elements=["tenant_id", "email"])
    await ctx.session.execute(
        stmt,
        [
            {"tenant_id": ctx.tenant.id, "email": e, "first_seen": now()}
            for e in sorted(ctx.new_recipients)
        ],
    )


def backoff(attempts: int, minimum: float, maximum: float) -> float:
    """Exponential backoff with ±25 % jitter, within ``[minimum, maximum]``."""
    base = min(maximum, minimum * 2 ** max(attempts - 1, 0))
    return max(minimum, min(maximum, base * random.uniform(0.75, 1.25)))


async def _failed(services: Services, message_id: str, lease: float, error: Exception) -> None:
    settings = services.settings
    async with gate_for(services.db).hold(), services.db.session() as s:
        message = await s.get(Message, message_id)
        if message is None or message.state != "received" or message.next_attempt_at != lease:
            return
        message.attempts += 1
        message.last_error = f"{type(error).__name__}: {error}"[:500]
        if now() - message.received_at > settings.queue_lifetime:
            message.state = "failed"  # kept, sealed, for an operator to look at
        else:
            delay = backoff(
                message.attempts, settings.queue_min_backoff, settings.queue_max_backoff
            )
            message.next_attempt_at = now() + delay
        await s.commit()


async def _process_one(services: Services, message_id: str, lease: float) -> int:
    try:
        await _process(services, message_id, lease)
        return 1
    except Exception as exc:  # noqa: BLE001 - kept and retried later
        log.warning("processing %s failed: %s", message_id, exc, exc_info=exc)
        try:
            await _failed(services, message_id, lease, exc)
        except Exception as inner:  # noqa: BLE001 - the claim runs out and it is retried
            log.error("could not record failure of %s: %s", message_id, inner)
        return 0


async def process_pending(services: Services, limit: int = 50) -> int:
    """Process up to ``limit`` received messages, a few at a time (their disk and
    database waits overlap); returns how many were processed."""
    slots = asyncio.Semaphore(CONCURRENCY)
    quiet = asyncio.Semaphore(1)
    gate = gate_for(services.db)

    async def one(message_id: str, lease: float) -> int:
        async with slots:
            if gate.intake_active:  # SMTP clients are waiting for a 250: one at a time
                async with quiet:
                    return await _process_one(services, message_id, lease)
            return await _process_one(services, message_id, lease)

    claimed = await _claim(services, limit)
    return sum(await asyncio.gather(*(one(m, lease) for m, lease in claimed)))
