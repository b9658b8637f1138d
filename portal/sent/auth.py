"""The sender's door: ``/sent/login``, ``/sent/verify`` and ``/sent/logout``, the one
email-code sign-in (:mod:`portal.signin`) at :data:`portal.admin.doors.SENDER_DOOR`.

Unlike ``/admin``, anyone with an address of a tenant's domains may pass (no operator step
first), unless the tenant lets only listed users in (:mod:`portal.sent.senders`). Every
address typed gets the same "we sent a code if ..." page and the same rate limits; only one
that may sign in gets a mail. The session is always of kind ``sender``: it opens ``/sent``
and ``/compose``, never an admin page.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from core.addresses import normalize, problem
from core.audit import audit
from portal.admin import auth as admin_auth
from portal.admin.doors import SENDER_DOOR
from portal.forms import field
from portal.hosts import foreign_here
from portal.sent.senders import sender_for, sender_of_subject
from portal.signin import by_address, passkeys
from portal.signin.by_address import Identity, start
from portal.signin.steps import TOO_MANY, count, limited, mail_code, pre_checked
from portal.signin.steps import set_pending_cookie as _set_pending
from portal.state import PortalState, client_ip

log = logging.getLogger("sealmail.portal.sent")
DOOR = SENDER_DOOR


async def login_form(request: Request) -> Response:
    return await admin_auth.login_form(request, DOOR)


async def send_code(request: Request) -> Response:
    st, form, nonce = await pre_checked(request, f"{DOOR.name}-login")
    email = normalize(field(form, "email"))
    if problem(email) is not None:
        return admin_auth.login_page(
            st, DOOR, nonce, error="Enter your email address.", status=400, email=email
        )
    ip = client_ip(request)
    buckets = DOOR.signin.send_limits(email, ip)
    async with st.services.db.session() as s:
        if await limited(s, buckets):
            return st.pages.error(429, headers=TOO_MANY)
        sender = await sender_for(s, email, DOOR.roles)
        if sender is not None and await foreign_here(s, request, sender.tenant.id):
            sender = None  # another tenant's own portal host: not this address's portal
        rp_id = passkeys.relying_party(request).rp_id
        if sender is not None and await passkeys.code_refused(
            s, sender.tenant.id, sender.user.email, rp_id
        ):
            return admin_auth.login_page(
                st, DOOR, nonce, error=passkeys.CODE_REFUSED, status=403, email=email
            )
        days = await admin_auth.days_shown(s, email, sender.tenant.id if sender else None)
        subject = sender.subject if sender is not None else ""
        secret, code = await start(s, request, DOOR.signin, st.code_key, subject)
        if sender is not None:
            await mail_code(st, s, sender.tenant, sender.user.email, code)
            await audit(
                s,
                sender.tenant.id,
                sender.user.email,
                f"{DOOR.name}.code.sent",
                sender.user.id or sender.user.email,
                ip=ip,
                listed=sender.listed,
            )
        else:
            log.info("sent sign-in asked for an address that may not sign in")
        await count(s, buckets)
        await s.commit()
    page = admin_auth.code_page(st, DOOR, nonce, email, remember_days=days)
    return _set_pending(page, DOOR.pending_cookie, secret)


async def _identify(s: AsyncSession, subject: str) -> Identity | None:
    sender = await sender_of_subject(s, subject, DOOR.roles)
    if sender is None:
        return None
    return Identity(
        sender.tenant.id,
        sender.user.email,
        sender.user.id or sender.user.email,
        signin_details={"listed": sender.listed},
    )


def _wrong(st: PortalState, nonce: str) -> Response:
    return admin_auth.code_page(st, DOOR, nonce, "", error=admin_auth.WRONG, status=400)


async def verify(request: Request) -> Response:
    return await by_address.verify(
        request,
        DOOR.signin,
        identify=_identify,
        session_kind=DOOR.session_kinds[0],  # always "sender", listed admin or not
        home=DOOR.home,
        wrong=_wrong,
    )


async def logout(request: Request) -> Response:
    return await admin_auth.logout(request, DOOR)
