"""The outcome of one pass over a message: every write of it (recipients done, decisions,
retention, holds, new recipients, its options and thread, state ``processed``) in one
short transaction."""

from __future__ import annotations

import logging
import weakref

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from archive import retention
from core.db import Database
from core.evidence import log as evidence
from core.metrics import metrics
from core.models import Message, MessageRecipient, Recipient, now
from gateway.pipeline.context import Context
from gateway.pipeline.conversation import conversation_values
from gateway.pipeline.decide import record as record_decisions

log = logging.getLogger("sealmail.gateway.pipeline")

# Per database, the (tenant, address) pairs this process has seen committed to
# ``recipients``: a row there is only ever removed with its tenant, so a known pair needs no
# INSERT (0.9 ms a message).
_KNOWN_RECIPIENTS: weakref.WeakKeyDictionary[Database, set[tuple[str, str]]] = (
    weakref.WeakKeyDictionary()
)
_KNOWN_LIMIT = 200_000


def _known(ctx: Context) -> set[tuple[str, str]]:
    return _KNOWN_RECIPIENTS.setdefault(ctx.services.db, set())


async def record_outcome(
    ctx: Context,
    rcpts: list[MessageRecipient],
    pending: list[MessageRecipient],
    lease: float,
) -> None:
    """Every write of one pass over a message, in one short transaction (only while the
    claim ``lease`` is still ours)."""
    s, message = ctx.session, ctx.message
    if message.processed_at is None:  # the first pass: what was accepted, in the evidence log
        evidence.append(
            s, ctx.tenant.id, evidence.ACCEPTED, message.id, at=message.received_at,
            digest=evidence.digest_commitment(ctx.services, ctx.tenant.id, ctx.raw_sha256),
            size=ctx.raw_size, envelope_from=message.mail_from,
            recipients=len(rcpts),
        )  # fmt: skip
    for r in pending:
        v = ctx.verdicts[r.rcpt]
        evidence.append(
            s, ctx.tenant.id, evidence.DECIDED, message.id, r.rcpt,
            disposition=v.disposition, action=v.action, method=v.method, rule=v.rule,
        )  # fmt: skip
        r.disposition, r.reason = v.disposition, (v.rule and f"rule '{v.rule}': " or "") + v.reason
        r.reason = r.reason[:500]
        r.state, r.override = "done", ""
    if ctx.sealed_parts is not None:
        evidence.append(s, ctx.tenant.id, evidence.SEALED, message.id, parts=ctx.sealed_parts)
    await record_decisions(s, message.id, ctx.tenant.id, ctx.verdicts)
    await retention.settle_message(
        s,
        ctx.services.settings,
        ctx.services.store,
        message.id,
        [v.explanation.get("retain_days") for v in ctx.verdicts.values()],
        first_pass=message.processed_at is None,
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
            **conversation_values(ctx),
        )
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # our claim ran out and someone else took it
        await s.rollback()
        return
    await s.commit()
    known = _known(ctx)
    if len(known) > _KNOWN_LIMIT:
        known.clear()
    known.update((ctx.tenant.id, e) for e in ctx.new_recipients)
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
    known = _known(ctx)
    new = sorted(e for e in ctx.new_recipients if (ctx.tenant.id, e) not in known)
    if not new:
        return
    insert = sqlite_insert if ctx.services.db.is_sqlite else pg_insert
    stmt = insert(Recipient).on_conflict_do_nothing(index_elements=["tenant_id", "email"])
    await ctx.session.execute(
        stmt,
        [{"tenant_id": ctx.tenant.id, "email": e, "first_seen": now()} for e in new],
    )
