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

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core.addresses import normalize, problem
from core.audit import audit
from portal.admin import auth as admin_auth
from portal.admin.doors import SENDER_DOOR
from portal.forms import field
from portal.sent.senders import sender_for, sender_of_subject
from portal.signin import codes
from portal.signin.by_address import pending_of, start
from portal.signin.steps import TOO_MANY, count, limited, mail_code, open_session, pre_checked
from portal.signin.steps import set_pending_cookie as _set_pending
from portal.state import client_ip

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
    page = admin_auth.code_page(st, DOOR, nonce, email)
    return _set_pending(page, DOOR.pending_cookie, secret)


async def verify(request: Request) -> Response:
    st, form, nonce = await pre_checked(request, f"{DOOR.name}-verify")
    ip = client_ip(request)
    found = pending_of(request, DOOR.signin, ip)
    if found is None:
        return RedirectResponse(DOOR.login_path, status_code=303)
    pending, buckets = found
    async with st.services.db.session() as s:
        if await limited(s, buckets):
            return st.pages.error(429, headers=TOO_MANY)
        held = await pending.newest(s)
        if held is None:
            return RedirectResponse(DOOR.login_path, status_code=303)
        sender = await sender_of_subject(s, held.subject, DOOR.roles)
        outcome = await codes.check(
            s, st.code_key, pending, held, field(form, "code"), allowed=sender is not None
        )
        if outcome.ok and sender is not None:
            response = await open_session(
                s,
                request,
                tenant_id=sender.tenant.id,
                email=sender.user.email,
                kind=DOOR.session_kinds[0],  # always "sender", listed admin or not
                home=DOOR.home,
                pending_cookie=DOOR.pending_cookie,
            )
            await audit(
                s,
                sender.tenant.id,
                sender.user.email,
                f"{DOOR.name}.signin",
                sender.user.id or sender.user.email,
                ip=ip,
                listed=sender.listed,
            )
            await s.commit()
            return response
        await count(s, buckets)
        if sender is not None:
            await audit(
                s,
                sender.tenant.id,
                sender.user.email,
                f"{DOOR.name}.code.failed",
                sender.user.id or sender.user.email,
                ip=ip,
                reason=outcome.reason,
                checked=outcome.checked,
            )
        await s.commit()
    return admin_auth.code_page(st, DOOR, nonce, "", error=admin_auth.WRONG, status=400)


async def logout(request: Request) -> Response:
    return await admin_auth.logout(request, DOOR)
