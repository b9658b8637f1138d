"""``/m/{token}`` without a code: "Use a passkey" and "Continue: this device is remembered".

Both open the same recipient session the code opens (:func:`portal.reader.entry.signed_in`:
audited as ``portal.verified`` with its method, the first opening recorded), with factor
``passkey`` or ``device``. The passkey answers are JSON for ``/static/passkeys.js``; every
POST carries the entry page's pre-session token, and a failure counts against the link's
and the address's failure limits like a wrong code.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from core.audit import audit
from core.hashing import sha256_hex
from portal.forms import field
from portal.reader import entry
from portal.signin import devices, passkeys
from portal.signin.ceremony import TOO_MANY_TRIES, failed, json_redirect
from portal.signin.steps import TOO_MANY, count, limited, pre_checked
from portal.state import client_ip


def purpose_of(access_id: str) -> str:
    return f"m:{access_id}"


async def passkey_options(request: Request) -> Response:
    """``POST /m/{token}/passkey/options``: a challenge for the recipient's passkeys here."""
    token = request.path_params["token"]
    st, _form, nonce = await pre_checked(request, sha256_hex(token))
    rp = passkeys.relying_party(request)
    async with st.services.db.session() as s:
        found = await entry.find_access(s, token, request)
        if found is None:
            return failed("This link no longer works.", 404)
        access, _tenant = found
        if await limited(s, entry.LIMITS.failures(access.id, client_ip(request))):
            return failed(TOO_MANY_TRIES, 429)
        body = await passkeys.authentication_options(
            s,
            rp,
            purpose=purpose_of(access.id),
            binding=sha256_hex(nonce),
            tenant_id=access.tenant_id,
            email=access.recipient,
        )
        await s.commit()
    return JSONResponse(body)


async def passkey_verify(request: Request) -> Response:
    """``POST /m/{token}/passkey``: the passkey's answer; a session on the message."""
    token = request.path_params["token"]
    st, form, nonce = await pre_checked(request, sha256_hex(token))
    rp = passkeys.relying_party(request)
    ip = client_ip(request)
    async with st.services.db.session() as s:
        found = await entry.find_access(s, token, request)
        if found is None:
            return failed("This link no longer works.", 404)
        access, tenant = found
        buckets = entry.LIMITS.failures(access.id, ip)
        if await limited(s, buckets):
            return failed(TOO_MANY_TRIES, 429)
        try:
            row = await passkeys.take_challenge(
                s,
                field(form, "ticket"),
                purpose=purpose_of(access.id),
                binding=sha256_hex(nonce),
                rp_id=rp.rp_id,
            )
            passkey = await passkeys.authenticate(s, row, rp, passkeys.credential_field(form))
        except passkeys.PasskeyError as exc:
            await count(s, buckets)
            await audit(s, tenant.id, access.recipient, "portal.passkey.failed", access.id, ip=ip)
            await s.commit()
            return failed(str(exc))
        response = await entry.signed_in(
            st, s, request, access, factor="passkey", passkey=passkey.id
        )
    return json_redirect(response)


async def continue_device(request: Request) -> Response:
    """``POST /m/{token}/device``: this browser is remembered for the recipient."""
    token = request.path_params["token"]
    st, _form, _nonce = await pre_checked(request, sha256_hex(token))
    async with st.services.db.session() as s:
        found = await entry.find_access(s, token, request)
        if found is None:
            return st.pages.error(404)
        access, _tenant = found
        if await limited(s, entry.LIMITS.failures(access.id, client_ip(request))):
            return st.pages.error(429, headers=TOO_MANY)
        device = await devices.remembered_for(s, request, access.tenant_id, access.recipient)
        if device is None:  # expired, forgotten, or another browser: the code page again
            return RedirectResponse(f"/m/{token}", status_code=303)
        await devices.used(s, device)
        return await entry.signed_in(st, s, request, access, factor="device", device=device.id)
