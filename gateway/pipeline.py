"""After intake: decide per recipient and run the pipeline of that disposition.

Each message is claimed with a conditional UPDATE (two workers never take the same one),
opened, judged (:mod:`gateway.triggers`), and every effect — sealed parts, portal
access, notifications and clear copies in the outbox, state ``processed`` — is committed
in ONE transaction. A failure leaves it ``received`` with a backoff; it is retried, never
lost and never sent in clear instead.

Dispositions and their handlers (Mailman's pipelines, as data)::

    clear   to_outbox
    tls     to_outbox (flagged: only over verified TLS, else back here for the portal)
    portal  seal_to_portal, grant_access, notify_recipient
    pgp     encrypt_pgp       (PGP/MIME, RFC 3156)
    smime   encrypt_smime     (application/pkcs7-mime)
    hold    quarantine        (a compliance officer releases or rejects)
    reject  reject_notice     (the sender is told which rule refused it)
    journal archive_journal   (an Exchange journal report: archived, never delivered)

The policy (:mod:`gateway.policy.decide`) names the disposition per recipient; only
recipients still ``pending`` are handled, so a release from quarantine or a reroute from
``tls`` to the portal runs the pipeline again for just those recipients. Encryption that
cannot happen now raises: the message waits and is retried, and after ``queue_lifetime``
its sender gets a bounce. It never goes out in clear instead.
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

from archive import retention
from archive.services import Services
from core import logcontext, outbox
from core.config.settings import Settings
from core.errors import SealmailError, TransientError
from core.hashing import sha256_hex
from core.ids import new_id, new_token
from core.leases import owner_id
from core.metrics import metrics
from core.models import Message, MessageRecipient, PortalAccess, Recipient, Tenant, now
from gateway import archive_record
from gateway.dsn import Failure, queue_dsn
from gateway.headers import replace_field, strip_fields
from gateway.journal import DISPOSITION_JOURNAL, archive_report, is_journal_report
from gateway.policy.decide import Verdict
from gateway.policy.decide import decide as policy_decide
from gateway.policy.decide import record as record_decisions
from gateway.portal_seal import seal_parts, sender_of
from gateway.triggers import encrypt_reason, header_text, strip_keywords
from gateway.writegate import gate_for

log = logging.getLogger("sealmail.gateway.pipeline")


def claim_seconds(settings: Settings) -> float:
    """A claimed message is retried by other workers only after this (2 x queue_lease)."""
    return 2 * settings.queue_lease


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
    verdicts: dict[str, Verdict] = dataclasses.field(default_factory=dict)
    holds: dict[tuple[str, str], list[str]] = dataclasses.field(default_factory=dict)

    def outbound_raw(self) -> bytes:
        """The original bytes for the next hop: internal headers removed and, when a
        trigger keyword was in the subject, the subject without it."""
        data = strip_fields(self.raw)
        original = header_text(self.msg, "Subject")
        if self.subject != original:
            data = replace_field(data, "Subject", self.subject)
        return data


Handler = Callable[[Context, list[MessageRecipient]], Awaitable[None]]


# --- handlers ---------------------------------------------------------------------------


async def to_outbox(ctx: Context, rcpts: list[MessageRecipient]) -> None:
    """The original bytes, internal headers removed from the header block only."""
    await _enqueue_copy(ctx, rcpts, strip_fields(ctx.raw), kind="clear", require_tls=False)


async def to_outbox_tls(ctx: Context, rcpts: list[MessageRecipient]) -> None:
    """As :func:`to_outbox`, flagged so delivery sends it only over verified TLS."""
    await _enqueue_copy(ctx, rcpts, ctx.outbound_raw(), kind="clear", require_tls=True)


async def _enqueue_copy(
    ctx: Context, rcpts: list[MessageRecipient], data: bytes, *, kind: str, require_tls: bool
) -> None:
    obj = await ctx.services.vault.seal(ctx.session, ctx.tenant.id, data, kind="outbound")
    item = await outbox.enqueue(
        ctx.session,
        kind=kind,
        tenant_id=ctx.tenant.id,
        mail_from=ctx.message.mail_from,
        recipients=[r.rcpt for r in rcpts],
        object_id=obj.id,
        lifetime=ctx.services.settings.queue_lifetime,
        message_id=ctx.message.id,
    )
    item.require_tls = require_tls


class EncryptionFailed(TransientError):
    """A copy that must be encrypted could not be: the message waits (fail closed)."""


async def encrypt_pgp(ctx: Context, rcpts: list[MessageRecipient]) -> None:
    """One PGP/MIME copy per recipient, encrypted to that recipient's key only."""
    from gateway.crypto.pgp import encrypt_pgp_mime

    await _encrypt_each(ctx, rcpts, encrypt_pgp_mime, "OpenPGP")


async def encrypt_smime(ctx: Context, rcpts: list[MessageRecipient]) -> None:
    """One S/MIME enveloped copy per recipient."""
    from gateway.crypto.smime import encrypt_smime as envelope

    await _encrypt_each(ctx, rcpts, envelope, "S/MIME")


async def _encrypt_each(
    ctx: Context,
    rcpts: list[MessageRecipient],
    encrypt: Callable[[Services, Tenant, bytes, str], Awaitable[bytes]],
    name: str,
) -> None:
    data = ctx.outbound_raw()
    for r in rcpts:
        try:
            sealed = await encrypt(ctx.services, ctx.tenant, data, r.rcpt)
        except Exception as exc:  # noqa: BLE001 - any failure means: not now, never clear
            reason = str(exc) if isinstance(exc, SealmailError) else type(exc).__name__
            raise EncryptionFailed(f"{name} encryption to {r.rcpt} failed: {reason}") from exc
        await _enqueue_copy(ctx, [r], sealed, kind="encrypted", require_tls=False)


async def quarantine(ctx: Context, rcpts: list[MessageRecipient]) -> None:
    """Group the held recipients by rule; the holds are written with the rest in
    :func:`_finish` (nothing is written while handlers run)."""
    for r in rcpts:
        v = ctx.verdicts[r.rcpt]
        ctx.holds.setdefault((v.rule, v.reason), []).append(r.rcpt)


async def reject_notice(ctx: Context, rcpts: list[MessageRecipient]) -> None:
    """A bounce to the sender naming the rule; the copies are never sent."""
    failures = [
        Failure(r.rcpt, "5.7.1", f"refused by policy rule '{ctx.verdicts[r.rcpt].rule}'")
        for r in rcpts
    ]
    await enqueue_bounce(ctx.services, ctx.session, ctx.message, ctx.raw, failures)


async def enqueue_bounce(
    services: Services,
    session: AsyncSession,
    message: Message,
    raw: bytes,
    failures: list[Failure],
) -> None:
    """An RFC 3464 bounce of ``message`` to its envelope sender (never for the null
    sender: no bounce to a bounce)."""
    if not message.mail_from:
        return
    await queue_dsn(
        services,
        session,
        tenant_id=message.tenant_id,
        to_addr=message.mail_from,
        original=raw,
        failures=failures,
        arrival=message.received_at,
        message_id=message.id,
    )


async def seal_to_portal(ctx: Context, rcpts: list[MessageRecipient]) -> None:
    if ctx.message.meta_object_id:  # an earlier pass sealed it for other recipients
        ctx.portal_meta_id = ctx.message.meta_object_id
        return
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


async def archive_journal(ctx: Context, rcpts: list[MessageRecipient]) -> None:
    """The report unwrapped and archived (:mod:`gateway.journal`); nothing goes out."""
    entry = await archive_report(ctx.services, ctx.session, ctx.tenant, ctx.message, ctx.raw)
    await archive_record.record_journal(ctx.services, ctx.session, ctx.message, ctx.raw, entry)


HANDLERS: dict[str, Handler] = {
    "to_outbox": to_outbox,
    "to_outbox_tls": to_outbox_tls,
    "seal_to_portal": seal_to_portal,
    "grant_access": grant_access,
    "notify_recipient": notify_recipient,
    "encrypt_pgp": encrypt_pgp,
    "encrypt_smime": encrypt_smime,
    "quarantine": quarantine,
    "reject_notice": reject_notice,
    "archive_journal": archive_journal,
}
PIPELINES: dict[str, tuple[str, ...]] = {
    "clear": ("to_outbox",),
    "tls": ("to_outbox_tls",),
    "portal": ("seal_to_portal", "grant_access", "notify_recipient"),
    "pgp": ("encrypt_pgp",),
    "smime": ("encrypt_smime",),
    "hold": ("quarantine",),
    "reject": ("reject_notice",),
    DISPOSITION_JOURNAL: ("archive_journal",),
}


# --- decisions --------------------------------------------------------------------------


REROUTED = Verdict(
    disposition="portal",
    action="encrypt",
    method="portal",
    rule="",
    reason="verified TLS was required and the next hop could not give it",
    explanation={"reroute": "require_tls"},
)
LOOPED = Verdict(
    disposition="clear",
    action="pass",
    method="",
    rule="",
    reason="valid loop stamp: relayed as it is",
    explanation={"loop_stamp": True},
)


def _journaled(why: str) -> Verdict:
    return Verdict(
        disposition=DISPOSITION_JOURNAL,
        action="journal",
        method="",
        rule="",
        reason="Exchange journal report: archived, never delivered onwards",
        explanation={"journal": why},
    )


async def decide(ctx: Context, pending: list[MessageRecipient]) -> dict[str, Verdict]:
    """One verdict per pending recipient: a journal report (before anything else: it is
    never delivered), the loop stamp, a reroute to the portal, or the tenant's policy
    (with the built-in triggers and a release from quarantine)."""
    journal = is_journal_report(ctx.raw, ctx.tenant, [r.rcpt for r in pending])
    if journal:
        return {r.rcpt: _journaled(journal) for r in pending}
    if ctx.message.disposition == DISPOSITION_LOOP:
        return {r.rcpt: LOOPED for r in pending}
    verdicts = {r.rcpt: REROUTED for r in pending if r.override == "portal"}
    rest = [r for r in pending if r.rcpt not in verdicts]
    if rest:
        trigger = encrypt_reason(ctx.msg, ctx.tenant, ctx.services.settings.trigger_keywords)
        verdicts.update(
            await policy_decide(
                ctx.services,
                ctx.session,
                ctx.tenant,
                raw=ctx.raw,
                mail_from=ctx.message.mail_from,
                recipients=[r.rcpt for r in rest],
                trigger_reason=trigger,
                released=frozenset(r.rcpt for r in rest if r.override == "released"),
            )
        )
    return verdicts


# --- the loop ---------------------------------------------------------------------------


def _parse(raw: bytes) -> EmailMessage:
    return BytesParser(policy=default_policy).parsebytes(raw)  # type: ignore[return-value]


async def _claim(services: Services, limit: int, owner: str) -> list[tuple[str, float]]:
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
        lease = t + claim_seconds(services.settings)
        for mid in ids:
            result = await s.execute(
                update(Message)
                .where(Message.id == mid, Message.state == "received", Message.next_attempt_at <= t)
                .values(next_attempt_at=lease, claimed_by=owner)
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
        logcontext.set_tenant(tenant.id)
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
        pending = [r for r in rcpts if r.state == "pending"]
        ctx = Context(services, s, message, tenant, raw, msg, pending)
        ctx.subject = await asyncio.to_thread(
            lambda: strip_keywords(header_text(msg, "Subject"), services.settings.trigger_keywords)
        )
        # Nothing is written while the policy runs and the handlers seal, encrypt and
        # compose (no autoflush): the write transaction below, which holds SQLite's lock,
        # stays short.
        with s.no_autoflush:
            ctx.verdicts = await decide(ctx, pending)
            groups: dict[str, list[MessageRecipient]] = {}
            for r in pending:
                groups.setdefault(ctx.verdicts[r.rcpt].disposition, []).append(r)
            for disposition in sorted(groups, key=lambda d: d != "portal"):
                for name in PIPELINES[disposition]:
                    await HANDLERS[name](ctx, groups[disposition])
            await archive_record.record_accepted(
                services, s, message, raw, msg, groups, [r.rcpt for r in rcpts]
            )
        async with gate_for(services.db).hold():
            await _finish(ctx, rcpts, pending, lease)


async def _finish(
    ctx: Context,
    rcpts: list[MessageRecipient],
    pending: list[MessageRecipient],
    lease: float,
) -> None:
    """Every write of one pass over a message, in one short transaction."""
    s, message = ctx.session, ctx.message
    for r in pending:
        v = ctx.verdicts[r.rcpt]
        r.disposition, r.reason = v.disposition, (v.rule and f"rule '{v.rule}': " or "") + v.reason
        r.reason = r.reason[:500]
        r.state, r.override = "done", ""
    await record_decisions(s, message.id, ctx.tenant.id, ctx.verdicts)
    await retention.settle_message(
        s,
        ctx.services.settings,
        ctx.services.store,
        message.id,
        [v.explanation.get("retain_days") for v in ctx.verdicts.values()],
    )
    if ctx.holds:
        from core.quarantine import hold

        for (rule, reason), addresses in ctx.holds.items():
            await hold(s, message.id, ctx.tenant.id, addresses, rule, reason)
    await _remember_recipients(ctx)
    dispositions = {r.disposition for r in rcpts if r.disposition}
    done = await s.execute(
        update(Message)
        .where(
            Message.id == message.id,
            Message.state == "received",
            Message.next_attempt_at == lease,
        )
        .values(
            state="processed",
            disposition=dispositions.pop() if len(dispositions) == 1 else "mixed",
            meta_object_id=ctx.portal_meta_id or message.meta_object_id,
            processed_at=now(),
            last_error="",
            claimed_by="",
        )
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # our claim ran out and someone else took it
        await s.rollback()
        return
    await s.commit()
    for r in pending:
        metrics().decisions.labels(ctx.tenant.id, r.disposition).inc()
    log.info(
        "processed %d recipients: %s",
        len(pending),
        ", ".join(sorted({r.disposition for r in pending})),
    )


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
    """Record a failed pass: retry with backoff, or — past ``queue_lifetime`` — bounce the
    recipients still pending to the sender. Never a copy in clear."""
    settings = services.settings
    async with gate_for(services.db).hold(), services.db.session() as s:
        message = await s.get(Message, message_id)
        if message is None or message.state != "received" or message.next_attempt_at != lease:
            return
        message.attempts += 1
        message.claimed_by = ""
        message.last_error = _describe(error)
        if now() - message.received_at <= settings.queue_lifetime:
            delay = backoff(
                message.attempts, settings.queue_min_backoff, settings.queue_max_backoff
            )
            message.next_attempt_at = now() + delay
            await s.commit()
            return
        pending = list(
            (
                await s.execute(
                    select(MessageRecipient).where(
                        MessageRecipient.message_id == message.id,
                        MessageRecipient.state == "pending",
                    )
                )
            )
            .scalars()
            .all()
        )
        try:
            raw = await services.vault.read(s, message.tenant_id, message.raw_object_id)
        except Exception:  # noqa: BLE001 - the bounce still goes, with no original headers
            raw = b""
        status = "5.7.0" if _is_encryption_failure(error) else "4.4.7"
        text = (
            "the message could not be encrypted as your organisation's policy requires, "
            "and it was not sent in clear"
            if status == "5.7.0"
            else "the message could not be processed before its time in the queue ran out"
        )
        await enqueue_bounce(
            services, s, message, raw, [Failure(r.rcpt, status, text) for r in pending]
        )
        for r in pending:
            r.state, r.disposition = "done", "bounced"
            r.reason = f"bounced after queue_lifetime: {message.last_error}"[:500]
        message.state = "failed"  # kept, sealed, for an operator to look at
        await s.commit()
        metrics().decisions.labels(message.tenant_id, "bounced").inc(len(pending))


def _describe(error: Exception) -> str:
    """What an operator reads in ``queue list``; vendor exceptions keep only their type."""
    if isinstance(error, SealmailError):
        return f"{type(error).__name__}: {error}"[:500]
    return type(error).__name__


def _is_encryption_failure(error: Exception) -> bool:
    return isinstance(error, EncryptionFailed)


async def _process_one(services: Services, message_id: str, lease: float) -> int:
    logcontext.set_context(message_id, None)  # a task of its own: lines name the message
    try:
        await _process(services, message_id, lease)
        return 1
    except Exception as exc:  # noqa: BLE001 - kept and retried later
        log.warning("processing %s failed: %s", message_id, exc, exc_info=exc)
        try:
            await _failed(services, message_id, lease, exc)
        except Exception as inner:  # noqa: BLE001 - recorded at the next round instead
            log.error("could not record failure of %s: %s", message_id, inner)
            _UNRECORDED[message_id] = (lease, exc)
        return 0


# Failed passes that could not be recorded (the database was down too). Left alone, such a
# message would wait out its whole claim (claim_seconds) after the database came back;
# each round first records them, and they are retried after the usual backoff.
_UNRECORDED: dict[str, tuple[float, Exception]] = {}


async def _record_unrecorded(services: Services) -> None:
    for message_id, (lease, exc) in list(_UNRECORDED.items()):
        try:
            await _failed(services, message_id, lease, exc)
        except Exception:  # noqa: BLE001 - still down: the next round tries again
            return
        del _UNRECORDED[message_id]


# Workers whose last claim failed with the database: the claim may have committed all the
# same (a connection lost at COMMIT), which would leave messages waiting out their claim.
# Their next round first gives back every claim of theirs (none is in progress between
# rounds), then claims afresh.
_CLAIM_UNSURE: set[str] = set()


async def _release_own_claims(services: Services, owner: str) -> None:
    async with gate_for(services.db).hold(), services.db.session() as s:
        await s.execute(
            update(Message)
            .where(Message.state == "received", Message.claimed_by == owner)
            .values(claimed_by="", next_attempt_at=now())
        )
        await s.commit()


_OWNER: list[str] = []


def _process_owner() -> str:
    if not _OWNER:
        _OWNER.append(owner_id())
    return _OWNER[0]


async def process_pending(services: Services, limit: int = 50, owner: str | None = None) -> int:
    """Process up to ``limit`` received messages, a few at a time (their disk and
    database waits overlap); returns how many were processed."""
    slots = asyncio.Semaphore(CONCURRENCY)
    # While SMTP clients wait for a 250, background work yields: on SQLite one message at a
    # time (one writer at all); on PostgreSQL a few, or delivery would stall under load.
    quiet = asyncio.Semaphore(1 if services.db.is_sqlite else max(1, CONCURRENCY // 2))
    gate = gate_for(services.db)

    async def one(message_id: str, lease: float) -> int:
        async with slots:
            if gate.intake_active:
                async with quiet:
                    return await _process_one(services, message_id, lease)
            return await _process_one(services, message_id, lease)

    who = owner or _process_owner()
    await _record_unrecorded(services)
    if who in _CLAIM_UNSURE:
        await _release_own_claims(services, who)
        _CLAIM_UNSURE.discard(who)
    try:
        claimed = await _claim(services, limit, who)
    except Exception:
        _CLAIM_UNSURE.add(who)
        raise
    return sum(await asyncio.gather(*(one(m, lease) for m, lease in claimed)))
