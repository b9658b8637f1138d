"""The quarantine: messages a policy rule held for a tenant's compliance officer.

Held mail is never lost and never delivered in clear. A *release* hands the recipients back
to the pipeline (``override = "released"``), which decides again skipping hold rules, so the
message goes out as the policy says. A *reject* ends those recipients and sends the envelope
sender a notice that names the rule and says an officer rejected it, never the content.
Each decision is taken once (a conditional UPDATE) and audited.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid
from typing import Any, cast

from sqlalchemy import func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from core import outbox
from core.audit import audit
from core.errors import NotFound, PermanentError
from core.ids import new_id
from core.models import Message, MessageRecipient, Tenant, now
from core.policy.models import HeldMessage, PolicyDecision

HELD, RELEASED, REJECTED = "held", "released", "rejected"
NOTICE_LIFETIME = 5 * 86400.0

# (tenant, held, note, to_addr, from_addr) -> the complete notice message
NoticeComposer = Callable[[Tenant, HeldMessage, str, str, str], Awaitable[bytes] | bytes]


class AlreadyDecided(PermanentError):
    """The held message was released or rejected already."""


def recipients_of(held: HeldMessage) -> list[str]:
    try:
        value = json.loads(held.recipients or "[]")
    except ValueError:
        return []
    return [str(r) for r in value] if isinstance(value, list) else []


async def hold(
    session: AsyncSession,
    message_id: str,
    tenant_id: str,
    recipients: Sequence[str],
    rule: str,
    reason: str,
) -> HeldMessage:
    """Put ``recipients``' copy of a message in quarantine (the caller commits, in the same
    transaction as the rest of the pipeline's decision). Those recipients are done for now."""
    rcpts = list(dict.fromkeys(recipients))
    held = HeldMessage(
        id=new_id("h_"),
        message_id=message_id,
        tenant_id=tenant_id,
        recipients=json.dumps(rcpts),
        rule=rule[:200],
        reason=reason[:500],
        state=HELD,
    )
    session.add(held)
    if rcpts:
        await session.execute(
            update(MessageRecipient)
            .where(
                MessageRecipient.message_id == message_id,
                func.lower(MessageRecipient.rcpt).in_([r.lower() for r in rcpts]),
            )
            .values(disposition="hold", state="done", override="", reason=reason[:500])
        )
    await audit(
        session, tenant_id, "policy", "quarantine.hold", held.id,
        message=message_id, recipients=rcpts, rule=rule,
    )  # fmt: skip
    return held


async def get(session: AsyncSession, held_id: str, tenant_id: str) -> HeldMessage:
    """The held message of this tenant; another tenant's or an unknown id is the same
    :class:`NotFound`."""
    held = await session.get(HeldMessage, held_id[:40]) if held_id else None
    if held is None or held.tenant_id != tenant_id:
        raise NotFound("no such held message")
    return held


async def list_held(
    session: AsyncSession, tenant_id: str, state: str | None = HELD, limit: int = 200
) -> list[tuple[HeldMessage, Message]]:
    """Newest first, with the envelope of each message (never its content)."""
    stmt = (
        select(HeldMessage, Message)
        .join(Message, Message.id == HeldMessage.message_id)
        .where(HeldMessage.tenant_id == tenant_id, Message.tenant_id == tenant_id)
        .order_by(HeldMessage.created_at.desc(), HeldMessage.id)
        .limit(limit)
    )
    if state:
        stmt = stmt.where(HeldMessage.state == state)
    return [(h, m) for h, m in (await session.execute(stmt)).all()]


async def count_held(session: AsyncSession, tenant_id: str) -> int:
    stmt = (
        select(func.count())
        .select_from(HeldMessage)
        .where(HeldMessage.tenant_id == tenant_id, HeldMessage.state == HELD)
    )
    return int((await session.execute(stmt)).scalar() or 0)


async def decisions(session: AsyncSession, message_id: str, tenant_id: str) -> list[PolicyDecision]:
    stmt = (
        select(PolicyDecision)
        .where(PolicyDecision.message_id == message_id, PolicyDecision.tenant_id == tenant_id)
        .order_by(PolicyDecision.at, PolicyDecision.id)
    )
    return list((await session.execute(stmt)).scalars().all())


async def _decide(
    session: AsyncSession, held_id: str, tenant_id: str, actor: str, state: str
) -> HeldMessage:
    held = await get(session, held_id, tenant_id)
    result = cast(
        CursorResult[Any],
        await session.execute(
            update(HeldMessage)
            .where(
                HeldMessage.id == held.id,
                HeldMessage.tenant_id == tenant_id,
                HeldMessage.state == HELD,
            )
            .values(state=state, decided_at=now(), decided_by=actor[:320])
        ),
    )
    if result.rowcount != 1:
        raise AlreadyDecided(f"held message {held.id} was already decided")
    await session.refresh(held)
    return held


def _rcpt_filter(held: HeldMessage) -> Any:
    rcpts = [r.lower() for r in recipients_of(held)]
    return (
        MessageRecipient.message_id == held.message_id,
        func.lower(MessageRecipient.rcpt).in_(rcpts),
    )


async def release(session: AsyncSession, held_id: str, tenant_id: str, actor: str) -> HeldMessage:
    """Hand the held recipients back to the pipeline, which decides again skipping hold
    rules. Commits."""
    held = await _decide(session, held_id, tenant_id, actor, RELEASED)
    await session.execute(
        update(MessageRecipient)
        .where(*_rcpt_filter(held))
        .values(override="released", state="pending")
    )
    await session.execute(
        update(Message)
        .where(Message.id == held.message_id, Message.tenant_id == tenant_id)
        .values(state="received", next_attempt_at=0.0)
    )
    await audit(
        session, tenant_id, actor, "quarantine.release", held.id,
        message=held.message_id, recipients=recipients_of(held), rule=held.rule,
    )  # fmt: skip
    await session.commit()
    return held


def plain_notice(
    tenant: Tenant, held: HeldMessage, note: str, to_addr: str, from_addr: str
) -> bytes:
    """The notice without branding's templates (core cannot use them): what happened, which
    rule, who to ask. Never the message's content."""
    name = tenant.display_name or tenant.name
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = f"{name} secure mail <{from_addr}>"
    msg["To"] = to_addr
    msg["Subject"] = "Your message was not delivered: rejected by your compliance officer"
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain=from_addr.rpartition("@")[2] or "localhost")
    msg["Auto-Submitted"] = "auto-replied"
    lines = [
        f"Your message (queue id {held.message_id}) to {', '.join(recipients_of(held))} "
        "was not delivered.",
        "",
        f"The policy rule \u201c{held.rule or 'hold'}\u201d of {name} held it for review, "
        "and a compliance officer rejected it.",
    ]
    if note:
        lines += ["", f"Note from the officer: {' '.join(note.split())}"]
    lines += ["", "If you think this is a mistake, contact your compliance officer."]
    msg.set_content("\n".join(lines) + "\n", cte="quoted-printable")
    return msg.as_bytes()


async def reject(
    services: Any,
    session: AsyncSession,
    held_id: str,
    tenant_id: str,
    actor: str,
    note: str = "",
    compose_notice: NoticeComposer | None = None,
) -> HeldMessage:
    """Reject: those recipients are done (disposition ``reject``) and the envelope sender
    gets one notice through the outbox (null sender, kind ``dsn``: never bounced back).
    ``services`` needs ``.vault`` and ``.settings``; ``compose_notice`` lets a layer that
    can see branding make it a branded email. Commits."""
    held = await _decide(session, held_id, tenant_id, actor, REJECTED)
    note = " ".join(note.split())[:500]
    await session.execute(
        update(MessageRecipient)
        .where(*_rcpt_filter(held))
        .values(state="done", disposition="reject", override="", reason=f"rejected by {actor}")
    )
    msg = await session.get(Message, held.message_id)
    tenant = await session.get(Tenant, tenant_id)
    notice_id = ""
    if msg is not None and tenant is not None and msg.mail_from:
        from_addr = tenant.notification_from or services.settings.sender_address
        made = (compose_notice or plain_notice)(tenant, held, note, msg.mail_from, from_addr)
        raw = made if isinstance(made, bytes) else await made
        item = await outbox.post(
            session,
            services.vault,
            kind="dsn",
            tenant_id=tenant_id,
            mail_from="",
            recipients=[msg.mail_from],
            raw=raw,
            lifetime=NOTICE_LIFETIME,
            message_id=msg.id,
        )
        notice_id = item.id
    await audit(
        session, tenant_id, actor, "quarantine.reject", held.id,
        message=held.message_id, recipients=recipients_of(held), rule=held.rule,
        note=note, notice=notice_id,
    )  # fmt: skip
    await session.commit()
    return held
