"""What a recipient's reading tells the sender: the first opening of an access (event
``opened``), the first download (event ``downloaded``) and, when the message asks for one,
the single "opened" receipt mail to its sender.

Exactly one receipt per message, however many recipients open it and however often, also
when two openings race: the receipt's ``receipt_sent_at`` is claimed by a conditional UPDATE
(``WHERE receipt_sent_at IS NULL``) and only the transaction that changed the row sends the
mail. The same holds for the per-access first-opened and first-downloaded times.
"""

from __future__ import annotations

import logging

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from branding.conversation_mail import compose_to_sender, render_receipt_opened
from branding.mail import Rendered
from conversations import events
from core import outbox
from core.audit import audit
from core.models import Message, OutboxItem, PortalAccess, Tenant, now
from core.portal_links import portal_url_for
from core.portal_message import PortalMessage
from portal.reader.people import name_of
from portal.state import PortalState

log = logging.getLogger("sealmail.portal")
SENDER_MAIL_LIFETIME = 2 * 86400.0  # how long a receipt may wait in the outbox


async def mark_opened(st: PortalState, access_id: str) -> bool:
    """Record the first opening of a recipient's access (its own short transaction) and send
    the receipt if this is the message's first opening and it asks for one. True when this
    call was the first opening."""
    db = st.services.db
    async with db.write_gate.hold(), db.session() as s:
        at = now()
        result = await s.execute(
            update(PortalAccess)
            .where(
                PortalAccess.id == access_id,
                PortalAccess.kind == "recipient",
                PortalAccess.first_opened_at.is_(None),
            )
            .values(first_opened_at=at)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return False
        access = await s.get(PortalAccess, access_id)
        msg = await s.get(Message, access.message_id) if access else None
        if access is None or msg is None:
            await s.rollback()
            return False
        events.record(s, msg.tenant_id, msg.id, events.OPENED, access.recipient, access.recipient)
        await audit(s, msg.tenant_id, access.recipient, "portal.message.opened", msg.id)
        if msg.receipt and msg.mail_from:
            await _claim_and_send_receipt(st, s, msg, access, at)
        await s.commit()
    return True


async def mail_sender(
    st: PortalState, s: AsyncSession, tenant: Tenant, msg: Message, rendered: Rendered
) -> OutboxItem:
    """Queue ``rendered`` (a receipt, a request for a new copy) to the message's sender,
    from the tenant's notification address: outbox kind ``sender``, never taken for a
    recipient's notice or copy. The caller commits."""
    mail_from = tenant.notification_from or st.settings.sender_address
    return await outbox.post(
        s,
        st.services.vault,
        kind="sender",
        tenant_id=tenant.id,
        mail_from=mail_from,
        recipients=[msg.mail_from],
        raw=compose_to_sender(tenant, rendered, to=msg.mail_from, mail_from=mail_from),
        lifetime=SENDER_MAIL_LIFETIME,
        message_id=msg.id,
    )


async def _claim_and_send_receipt(
    st: PortalState, s: AsyncSession, msg: Message, access: PortalAccess, at: float
) -> None:
    won = await s.execute(
        update(Message)
        .where(Message.id == msg.id, Message.receipt_sent_at.is_(None))
        .values(receipt_sent_at=at)
        .execution_options(synchronize_session=False)
    )
    if won.rowcount != 1:  # type: ignore[attr-defined]
        return  # another opening sent it
    tenant = await s.get(Tenant, msg.tenant_id)
    if tenant is None or not msg.meta_object_id:
        return
    pm = PortalMessage.from_json(await st.services.vault.read(s, tenant.id, msg.meta_object_id))
    rendered = render_receipt_opened(
        tenant,
        reader=name_of(access.recipient, [*pm.to, *pm.cc]),
        subject=pm.subject,
        opened_at=at,
        sent_link=portal_url_for(st.settings.portal_base_url, tenant.portal_host)
        + f"/sent/{msg.id}",
    )
    item = await mail_sender(st, s, tenant, msg, rendered)
    events.record(
        s, msg.tenant_id, msg.id, events.RECEIPT_SENT, access.recipient, "", outbox=item.id
    )
    await audit(s, msg.tenant_id, "portal", "message.receipt_sent", msg.id, outbox=item.id)
    log.info("portal: receipt for message %s queued (outbox %s)", msg.id, item.id)


async def mark_downloaded(s: AsyncSession, access: PortalAccess, what: str) -> None:
    """The first download of anything of this access (an attachment, the .eml or the PDF):
    ``first_downloaded_at`` and the event ``downloaded``; the caller commits."""
    if access.kind != "recipient" or access.first_downloaded_at is not None:
        return
    at = now()
    result = await s.execute(
        update(PortalAccess)
        .where(PortalAccess.id == access.id, PortalAccess.first_downloaded_at.is_(None))
        .values(first_downloaded_at=at)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]
        events.record(
            s,
            access.tenant_id,
            access.message_id,
            events.DOWNLOADED,
            access.recipient,
            access.recipient,
            at=at,
            what=what,
        )
