"""After intake: decide per recipient and run the pipeline of that disposition.

Each message is claimed with a conditional UPDATE (two workers never take the same one),
opened, judged (:mod:`gateway.triggers`), and every effect — sealed parts, portal
access, notifications and clear copies in the outbox, state ``processed`` — is committed
in ONE transaction, shared with the other messages finishing at the same moment (group
commit: one fsync of the database for several messages). A failure leaves it
``received`` with a backoff; it is retried, never lost and never sent in clear instead.

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


@dataclasses.dataclass
class Outcome:
    """What processing one message wants written: new rows (sealed objects, portal access,
    outbox items), each recipient's disposition, the message's final state."""

    message_id: str
    lease: float
    tenant_id: str
    rows: list[object]
    verdicts: dict[int, tuple[str, str]]  # MessageRecipient.id -> (disposition, reason)
    disposition: str
    meta_object_id: str | None
    new_recipients: set[str]


async def _process(services: Services, message_id: str, lease: float) -> Outcome | None:
    """Read, judge, seal and compose one message; nothing is written to the database
    here (the sealed objects are durable files without rows yet): see :func:`_apply`."""
    async with services.db.session() as s:
        message = await s.get(Message, message_id)
        tenant = await s.get(Tenant, message.tenant_id) if message else None
        if message is None or tenant is None:
            return None
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
        with s.no_autoflush:
            for disposition in sorted(groups, key=lambda d: d != "portal"):
                for name in PIPELINES[disposition]:
                    await HANDLERS[name](ctx, groups[disposition])
            rows = list(s.new)
            for row in rows:
                s.expunge(row)
        # leaving the session rolls back its (read-only) transaction
        return Outcome(
            message_id=message_id,
            lease=lease,
            tenant_id=tenant.id,
            rows=rows,
            verdicts={r.id: (verdicts[r.rcpt][0], verdicts[r.rcpt][1][:500]) for r in rcpts},
            disposition=next(iter(groups)) if len(groups) == 1 else "mixed",
            meta_object_id=ctx.portal_meta_id,
            new_recipients=ctx.new_recipients,
        )


async def _apply(services: Services, outcomes: list[Outcome]) -> list[bool]:
    """Write the outcomes of several messages in ONE transaction (one fsync of the
    database for all). A message whose claim ran out (someone else took it) writes
    nothing; ``False`` for it."""
    written: list[bool] = []
    async with gate_for(services.db).hold(), services.db.session() as s:
        for o in outcomes:
            done = await s.execute(
                update(Message)
                .where(
                    Message.id == o.message_id,
                    Message.state == "received",
                    Message.next_attempt_at == o.lease,
                )
                .values(
                    state="processed",
                    disposition=o.disposition,
                    processed_at=now(),
                    last_error="",
                )
                .execution_options(synchronize_session=False)
            )
            written.append(done.rowcount == 1)
            if done.rowcount != 1:
                continue
            s.add_all(o.rows)
            await s.flush()  # the sealed objects exist before anything points at them
            if o.meta_object_id:
                await s.execute(
                    update(Message)
                    .where(Message.id == o.message_id)
                    .values(meta_object_id=o.meta_object_id)
                    .execution_options(synchronize_session=False)
                )
            for rid, (disposition, reason) in o.verdicts.items():
                await s.execute(
                    update(MessageRecipient)
                    .where(MessageRecipient.id == rid)
                    .values(disposition=disposition, reason=reason)
                    .execution_options(synchronize_session=False)
                )
            await _remember_recipients(services, s, o.tenant_id, o.new_recipients)
        await s.commit()
    return written


async def _remember_recipients(
    services: Services, session: AsyncSession, tenant_id: str, emails: set[str]
) -> None:
    """Add the tenant's new external recipients; concurrent workers may race: the
    database keeps one row (ON CONFLICT DO NOTHING)."""
    if not emails:
        return
    insert = sqlite_insert if services.db.is_sqlite else pg_insert
    stmt = insert(Recipient).on_conflict_do_nothing(index_elements=["tenant_id", "email"])
    await session.execute(
        stmt, [{"tenant_id": tenant_id, "email": e, "first_seen": now()} for e in sorted(emails)]
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


async def _process_one(services: Services, message_id: str, lease: float) -> Outcome | None:
    try:
        return await _process(services, message_id, lease)
    except Exception as exc:  # noqa: BLE001 - kept and retried later
        await _record_failure(services, message_id, lease, exc)
        return None


async def _record_failure(
    services: Services, message_id: str, lease: float, exc: Exception
) -> None:
    log.warning("processing %s failed: %s", message_id, exc, exc_info=exc)
    try:
        await _failed(services, message_id, lease, exc)
    except Exception as inner:  # noqa: BLE001 - the claim runs out and it is retried
        log.error("could not record failure of %s: %s", message_id, inner)


class _Writer:
    """Group commit for the pipeline: outcomes ready at the same moment share one
    transaction; what finishes while it commits goes into the next."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.pending: list[Outcome] = []
        self.written = 0
        self._task: asyncio.Task[None] | None = None

    def add(self, outcome: Outcome) -> None:
        self.pending.append(outcome)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while self.pending:
            batch, self.pending = self.pending, []
            try:
                self.written += sum(await _apply(self.services, batch))
            except Exception:  # noqa: BLE001 - one by one, so one bad message costs only itself
                for o in batch:
                    try:
                        self.written += sum(await _apply(self.services, [o]))
                    except Exception as exc:  # noqa: BLE001
                        await _record_failure(self.services, o.message_id, o.lease, exc)

    async def drain(self) -> None:
        while self._task is not None and not self._task.done():
            await self._task


async def process_pending(services: Services, limit: int = 50) -> int:
    """Process up to ``limit`` received messages, a few at a time (their disk and
    database waits overlap); returns how many were processed."""
    slots = asyncio.Semaphore(CONCURRENCY)
    quiet = asyncio.Semaphore(1)
    gate = gate_for(services.db)
    writer = _Writer(services)

    async def one(message_id: str, lease: float) -> None:
        async with slots:
            if gate.intake_active:  # SMTP clients are waiting for a 250: one at a time
                async with quiet:
                    outcome = await _process_one(services, message_id, lease)
            else:
                outcome = await _process_one(services, message_id, lease)
        if outcome is not None:
            writer.add(outcome)

    claimed = await _claim(services, limit)
    await asyncio.gather(*(one(m, lease) for m, lease in claimed))
    await writer.drain()
    return writer.written
