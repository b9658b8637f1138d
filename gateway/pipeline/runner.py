"""The pipeline runner: claim received messages, run each one's pass, record it.

Each message is claimed with a conditional UPDATE (two workers never take the same one),
opened, judged (:mod:`gateway.pipeline.verdicts`), and every effect — sealed parts, portal
access, notifications and clear copies in the outbox, state ``processed`` — is committed
in ONE transaction (:mod:`gateway.pipeline.outcome`). A failure leaves it ``received``
with a backoff (:mod:`gateway.pipeline.failure`); it is retried, never lost and never sent
in clear instead.

The handlers of each disposition are listed in :mod:`gateway.pipeline.table`. Only
recipients still ``pending`` are handled, so a release from quarantine or a reroute from
``tls`` to the portal runs the pipeline again for just those recipients. Encryption that
cannot happen now raises: the message waits and is retried, and after ``queue_lifetime``
its sender gets a bounce. It never goes out in clear instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from email.message import EmailMessage

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import logcontext
from core.config.settings import Settings
from core.leases import owner_id
from core.mime_text import header_text, parse_message
from core.models import Message, MessageRecipient, SealedObject, Tenant, now
from core.services import Services
from gateway import onboarding
from gateway.pipeline import archive_record, failure
from gateway.pipeline.context import Context
from gateway.pipeline.conversation import read_conversation
from gateway.pipeline.crypto.large import LargeSource
from gateway.pipeline.handlers.grant_author import AUTHOR_ORIGINS, grant_author
from gateway.pipeline.journal import DISPOSITION_JOURNAL
from gateway.pipeline.original import LARGE, LargeOriginal, open_large
from gateway.pipeline.outcome import record_outcome
from gateway.pipeline.round_cache import RoundCache
from gateway.pipeline.table import HANDLERS, PIPELINES
from gateway.pipeline.triggers import strip_keywords
from gateway.pipeline.verdicts import verdicts_for

log = logging.getLogger("sealmail.gateway.pipeline")

CONCURRENCY = 8  # messages processed at once by one worker


def claim_seconds(settings: Settings) -> float:
    """A claimed message is retried by other workers only after this (2 x queue_lease)."""
    return 2 * settings.queue_lease


class PipelineState:
    """What a worker's pipeline remembers from one round to the next.

    ``unrecorded``: failed passes that could not be recorded (the database was down too).
    Left alone, such a message would wait out its whole claim (:func:`claim_seconds`) after
    the database came back; each round first records them, and (the failure being our
    outage) they are retried seconds later (:mod:`gateway.pipeline.failure`).

    ``claim_unsure``: owners whose last claim failed with the database: the claim may have
    committed all the same (a connection lost at COMMIT), which would leave messages
    waiting out their claim. Their next round first gives back every claim of theirs (none
    is in progress between rounds), then claims afresh.
    """

    def __init__(self) -> None:
        self._owner = ""
        self.unrecorded: dict[str, tuple[float, Exception]] = {}
        self.claim_unsure: set[str] = set()

    @property
    def owner(self) -> str:
        """This state's claim owner (``host:pid:random``), made at first use."""
        if not self._owner:
            self._owner = owner_id()
        return self._owner


# The state of callers that keep none of their own (one-off rounds: ``run_once``, tools,
# tests): what one such round could not record, the next one records, as in a worker.
_ONE_OFF_ROUNDS = PipelineState()


def _parse(raw: bytes) -> EmailMessage:
    return parse_message(raw)


# dispositions a large message takes without being held: sealed for the portal part by part,
# its clear copy written from the stream (gateway.pipeline.large_copy), held or refused on
# its decision alone (a hold keeps the stored original; a bounce quotes the header block),
# a journal report unwrapped from the stream (gateway.pipeline.journal_large)
STREAMED = frozenset({"portal", "pdf", "clear", "tls", "hold", "reject", DISPOSITION_JOURNAL})
# encrypted from the stream too (gateway.pipeline.crypto.large) when the header block was kept
ENCRYPTED = frozenset({"pgp", "smime"})


async def _large(services: Services, s: AsyncSession, message: Message) -> LargeOriginal | None:
    """The large path's view of ``message`` when it is above :data:`LARGE` bytes (a message
    written in the portal too: its attachments may reach ``smtp_max_message_size``), else
    ``None``."""
    obj = await s.get(SealedObject, message.raw_object_id)
    if obj is None or obj.size <= LARGE:
        return None
    return await open_large(services.vault, s, message.tenant_id, message.raw_object_id)


async def _claim(services: Services, limit: int, owner: str) -> list[tuple[str, float]]:
    async with services.db.write_gate.hold(), services.db.session() as s:
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
        lease = t + claim_seconds(services.settings)
        won: list[tuple[str, float]] = []
        if ids:  # one statement: a message another worker claimed meanwhile is not taken
            result = await s.execute(
                update(Message)
                .where(
                    Message.id.in_(ids), Message.state == "received", Message.next_attempt_at <= t
                )
                .values(next_attempt_at=lease, claimed_by=owner)
                .returning(Message.id)
                .execution_options(synchronize_session=False)
            )
            taken = set(result.scalars().all())
            won = [(mid, lease) for mid in ids if mid in taken]
        await s.commit()
        return won


async def _process(
    services: Services, message_id: str, lease: float, cache: RoundCache | None = None
) -> None:
    async with services.db.session() as s:
        message = await s.get(Message, message_id)
        tenant = await s.get(Tenant, message.tenant_id) if message else None
        if message is None or tenant is None:
            return
        logcontext.set_tenant(tenant.id)
        large = await _large(services, s, message)
        if large is None:
            raw = await services.vault.read(s, tenant.id, message.raw_object_id)
            msg = await asyncio.to_thread(_parse, raw)
        else:  # decided from its skeleton; read whole only for a handler that needs it
            raw, msg = large.head, large.skeleton.headers
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
        ctx = Context(services, s, message, tenant, raw, msg, pending, large=large)
        if large is None:
            ctx.raw_sha256, ctx.raw_size = hashlib.sha256(raw).hexdigest(), len(raw)
        else:  # digested on the skeleton's pass
            ctx.raw_sha256, ctx.raw_size = large.summary.sha.hexdigest(), large.summary.size
        if cache is not None:
            ctx.cache = cache
        ctx.subject = await asyncio.to_thread(
            lambda: strip_keywords(header_text(msg, "Subject"), services.settings.trigger_keywords)
        )
        # Nothing is written while the policy runs and the handlers seal, encrypt and
        # compose (no autoflush): the write transaction below, which holds SQLite's lock,
        # stays short.
        with s.no_autoflush:
            await read_conversation(ctx)
            ctx.verdicts = await verdicts_for(ctx, pending)
            groups: dict[str, list[MessageRecipient]] = {}
            for r in pending:
                groups.setdefault(ctx.verdicts[r.rcpt].disposition, []).append(r)
            streamed = STREAMED | (ENCRYPTED if large and LargeSource.fits(large) else set())
            if large is not None and set(groups) - streamed:
                # an encrypted copy of a message whose header block was too long to keep
                # (over 256 KiB): read whole
                raw = await services.vault.read(s, tenant.id, message.raw_object_id)
                msg = await asyncio.to_thread(_parse, raw)
                ctx.raw, ctx.msg, ctx.large, large = raw, msg, None, None
            for disposition in sorted(groups, key=lambda d: d not in ("portal", "pdf")):
                for name in PIPELINES[disposition]:
                    await HANDLERS[name](ctx, groups[disposition])
            if message.origin in AUTHOR_ORIGINS:
                await grant_author(ctx)
            envelope = [r.rcpt for r in rcpts]
            summary = None if large is None else large.archive_summary(message.mail_from, envelope)
            await archive_record.record_accepted(
                services, s, message, raw, msg, groups, envelope, summary
            )
        async with services.db.write_gate.hold():
            await record_outcome(ctx, rcpts, pending, lease)
    await onboarding.decided(
        services,
        tenant.id,
        message.id,
        [(v.disposition, v.action, v.method, v.rule) for v in ctx.verdicts.values()],
    )


async def _process_one(
    services: Services,
    state: PipelineState,
    message_id: str,
    lease: float,
    cache: RoundCache | None = None,
) -> int:
    logcontext.set_context(message_id, None)  # a task of its own: lines name the message
    try:
        await _process(services, message_id, lease, cache)
        return 1
    except Exception as exc:  # noqa: BLE001 - kept and retried later
        log.warning("processing %s failed: %s", message_id, exc, exc_info=exc)
        try:
            await failure.record_failure(services, message_id, lease, exc)
        except Exception as inner:  # noqa: BLE001 - recorded at the next round instead
            log.error("could not record failure of %s: %s", message_id, inner)
            state.unrecorded[message_id] = (lease, exc)
        return 0


async def _record_unrecorded(services: Services, state: PipelineState) -> None:
    for message_id, (lease, exc) in list(state.unrecorded.items()):
        try:
            await failure.record_failure(services, message_id, lease, exc)
        except Exception:  # noqa: BLE001 - still down: the next round tries again
            return
        del state.unrecorded[message_id]


async def _release_own_claims(services: Services, owner: str) -> None:
    async with services.db.write_gate.hold(), services.db.session() as s:
        await s.execute(
            update(Message)
            .where(Message.state == "received", Message.claimed_by == owner)
            .values(claimed_by="", next_attempt_at=now())
        )
        await s.commit()


async def process_pending(
    services: Services,
    limit: int = 50,
    owner: str | None = None,
    state: PipelineState | None = None,
) -> int:
    """Process up to ``limit`` received messages, a few at a time (their disk and
    database waits overlap); returns how many were processed. ``state`` is the worker's
    memory between rounds (one-off rounds share one)."""
    state = state if state is not None else _ONE_OFF_ROUNDS
    slots = asyncio.Semaphore(CONCURRENCY)
    # While SMTP clients wait for a 250, background work yields: on SQLite one message at a
    # time (one writer at all); on PostgreSQL a few, or delivery would stall under load.
    quiet = asyncio.Semaphore(1 if services.db.is_sqlite else max(1, CONCURRENCY // 2))
    gate = services.db.write_gate
    cache = RoundCache()  # the tenants' policy, domains and brands, read once this round

    async def one(message_id: str, lease: float) -> int:
        async with slots:
            if gate.intake_active:
                async with quiet:
                    return await _process_one(services, state, message_id, lease, cache)
            return await _process_one(services, state, message_id, lease, cache)

    who = owner or state.owner
    await _record_unrecorded(services, state)
    if who in state.claim_unsure:
        await _release_own_claims(services, who)
        state.claim_unsure.discard(who)
    try:
        claimed = await _claim(services, limit, who)
    except Exception:
        state.claim_unsure.add(who)
        raise
    return sum(await asyncio.gather(*(one(m, lease) for m, lease in claimed)))
