"""The mails the support feature sends an account contact: the one-time code for ``/pin``,
"your PIN was changed" and "your PIN is locked". None of them ever holds a PIN.

Like ``billing_hooks.notify``, this module states the facts (who, which mail, what it says,
under which tenant's keys it is sealed); the :class:`Mailer` that renders, seals and queues
it is handed in by the caller (``branding.support_mail.support_mailer``: the portal and the
CLI build it), since a layer-1 package may not import ``branding``.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts.billing_accounts import sealing_tenant_id
from core.models import Tenant, now
from support.desk import ContactView
from support.pins import MAX_FAILURES

log = logging.getLogger("sealmail.support")

# the mails (branding/templates/mail/support_<kind>.txt|html)
PIN_CODE = "pin_code"
PIN_CHANGED = "pin_changed"
PIN_LOCKED = "pin_locked"

NOTICE_LIFETIME = 2 * 86400.0  # how long a "changed" or "locked" mail may wait in the outbox


class Mailer(Protocol):
    """Renders mail ``kind`` with ``context``, wearing ``brand``'s branding (None: ours),
    seals it under ``tenant_id``'s keys and queues it to ``to`` (the caller commits)."""

    async def __call__(
        self,
        session: AsyncSession,
        *,
        tenant_id: str,
        brand: Tenant | None,
        to: str,
        kind: str,
        context: dict[str, Any],
        outbox_kind: str,
        lifetime: float,
    ) -> None: ...


def brand_of(view: ContactView) -> Tenant | None:
    """Whose branding the mail wears: a tenant account's own; a partner account's mail is
    sealed under one of its tenants' keys but wears no tenant's branding."""
    return view.tenant if view.account.tenant_id else None


async def mail_contact(
    session: AsyncSession,
    mailer: Mailer,
    view: ContactView,
    kind: str,
    context: dict[str, Any],
    *,
    outbox_kind: str = "notification",
    lifetime: float = NOTICE_LIFETIME,
) -> bool:
    """Have one mail to one contact sealed and queued (the caller commits). False when the
    account has no tenant whose keys could seal it (a partner account with no tenant yet)."""
    tenant_id = await sealing_tenant_id(session, view.account)
    if tenant_id is None:
        log.warning("support: no tenant to seal mail for account %s", view.account.id)
        return False
    await mailer(
        session,
        tenant_id=tenant_id,
        brand=brand_of(view),
        to=view.contact.email,
        kind=kind,
        context=context,
        outbox_kind=outbox_kind,
        lifetime=lifetime,
    )
    return True


async def send_pin_code(
    session: AsyncSession,
    mailer: Mailer,
    views: list[ContactView],
    *,
    email: str,
    code: str,
    minutes: int,
    lifetime: float,
) -> None:
    """The one-time code that opens ``/pin`` for ``email``: one mail (to its first contact
    record) naming every account the address is a contact of. ``lifetime`` is the sign-in's
    (a code mail that waits longer is useless)."""
    context = {
        "code": code,
        "recipient": email,
        "account_name": ", ".join(v.account_name for v in views),
        "minutes": minutes,
    }
    await mail_contact(
        session, mailer, views[0], PIN_CODE, context, outbox_kind="code", lifetime=lifetime
    )


async def notify_changed(
    session: AsyncSession, mailer: Mailer, view: ContactView, *, chosen: bool
) -> None:
    """Tell a contact their PIN was changed (a new random one, or one they chose)."""
    context = {
        "recipient": view.contact.email,
        "account_name": view.account_name,
        "chosen": chosen,
        "at": now(),
    }
    await mail_contact(session, mailer, view, PIN_CHANGED, context)


async def notify_locked(session: AsyncSession, mailer: Mailer, views: list[ContactView]) -> None:
    """Tell each contact whose PIN a check just locked (the lock is taken once, so this
    runs once per lock)."""
    for v in views:
        context = {
            "recipient": v.contact.email,
            "account_name": v.account_name,
            "failures": MAX_FAILURES,
            "at": now(),
        }
        await mail_contact(session, mailer, v, PIN_LOCKED, context)
