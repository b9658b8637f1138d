"""The passkey ceremonies of a signed-in session (JSON for ``/static/passkeys.js``):

- adding a passkey (``/account/passkeys/options``, ``/account/passkeys``): the first one
  after any sign-in; another one only from a session whose factor is ``passkey`` — else
  someone with only the mailbox (the code) could add theirs beside the owner's. Adding the
  first one, made and verified on this device, makes the session's factor ``passkey``;
- confirming with a passkey (``/account/passkey/confirm/options``,
  ``/account/passkey/confirm``): a session opened by a code or a remembered device proves
  the passkey now and becomes factor ``passkey`` (what step-up asks for). Any page can offer
  it with ``{% include "account/_confirm_passkey.html" %}``.

Every challenge is bound to the session (its id hash) and a purpose, single use.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.audit import audit
from core.hashing import sha256_hex
from portal.account.common import checked
from portal.forms import field
from portal.signin import passkeys
from portal.signin.ceremony import TOO_MANY_TRIES, failed
from portal.signin.steps import Limits, count, limited
from portal.state import client_ip, portal

LIMITS = Limits("account-", failures_per_subject=10)
CONFIRM_FIRST = "You already have a passkey. To add another, first confirm with the one you have."


def _buckets(request: Request, tenant_id: str, email: str) -> list[tuple[str, int]]:
    return LIMITS.failures(sha256_hex(f"{tenant_id}\x00{email}"), client_ip(request))


async def register_options(request: Request) -> Response:
    st = portal(request)
    rp = passkeys.relying_party(request)
    async with st.services.db.session() as s:
        current, _form = await checked(request, s)
        if current.factor != "passkey" and await passkeys.has_passkey(
            s, current.tenant_id, current.email, rp.rp_id
        ):
            return failed(CONFIRM_FIRST, 403)
        body = await passkeys.registration_options(
            s, rp, binding=current.id_hash, tenant_id=current.tenant_id, email=current.email
        )
        await s.commit()
    return JSONResponse(body)


async def register(request: Request) -> Response:
    st = portal(request)
    rp = passkeys.relying_party(request)
    async with st.services.db.session() as s:
        current, form = await checked(request, s)
        buckets = _buckets(request, current.tenant_id, current.email)
        if await limited(s, buckets):
            return failed(TOO_MANY_TRIES, 429)
        try:
            row = await passkeys.take_challenge(
                s,
                field(form, "ticket"),
                purpose="register",
                binding=current.id_hash,
                rp_id=rp.rp_id,
            )
            if current.factor != "passkey" and await passkeys.has_passkey(
                s, current.tenant_id, current.email, rp.rp_id
            ):
                raise passkeys.PasskeyError(CONFIRM_FIRST)
            passkey = await passkeys.register(
                s, row, rp, passkeys.credential_field(form), field(form, "name")
            )
        except passkeys.PasskeyError as exc:
            await count(s, buckets)
            await s.commit()
            return failed(str(exc))
        first = current.factor != "passkey"  # (else the check above refused it)
        if first:
            # the person's first passkey, just made and verified on this device, in a
            # session opened with the code: from now on this passkey, not the code, passes
            # step-up (the page that offers it says so)
            current.factor = "passkey"
        await audit(
            s,
            current.tenant_id,
            current.email,
            "account.passkey.added",
            passkey.id,
            ip=client_ip(request),
            rp_id=rp.rp_id,
            first=first,
        )
        await s.commit()
    return JSONResponse({"redirect": "/account?done=added"})


async def confirm_options(request: Request) -> Response:
    """Options to confirm with one of the session's identity's passkeys on this host."""
    st = portal(request)
    rp = passkeys.relying_party(request)
    async with st.services.db.session() as s:
        current, _form = await checked(request, s)
        if not await passkeys.has_passkey(s, current.tenant_id, current.email, rp.rp_id):
            return failed(
                "You have no passkey here yet. Add one on the \u201cYour sign-in\u201d page.", 404
            )
        body = await passkeys.authentication_options(
            s,
            rp,
            purpose="confirm",
            binding=current.id_hash,
            tenant_id=current.tenant_id,
            email=current.email,
        )
        await s.commit()
    return JSONResponse(body)


async def confirm(request: Request) -> Response:
    """The passkey's answer: the session becomes factor ``passkey``."""
    st = portal(request)
    rp = passkeys.relying_party(request)
    async with st.services.db.session() as s:
        current, form = await checked(request, s)
        buckets = _buckets(request, current.tenant_id, current.email)
        if await limited(s, buckets):
            return failed(TOO_MANY_TRIES, 429)
        try:
            row = await passkeys.take_challenge(
                s, field(form, "ticket"), purpose="confirm", binding=current.id_hash, rp_id=rp.rp_id
            )
            passkey = await passkeys.authenticate(s, row, rp, passkeys.credential_field(form))
        except passkeys.PasskeyError as exc:
            await count(s, buckets)
            await s.commit()
            return failed(str(exc))
        current.factor = "passkey"
        await audit(
            s,
            current.tenant_id,
            current.email,
            "account.passkey.confirmed",
            passkey.id,
            ip=client_ip(request),
        )
        await s.commit()
    return JSONResponse({"redirect": "/account?done=confirmed"})
