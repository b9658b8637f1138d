"""Passkeys (WebAuthn): one identity's credentials, the ceremonies' challenges and their
checks, shared by every door (``/m/{token}``, ``/sent``, ``/admin``), ``/account`` and the
in-session confirmation that step-up asks for.

A passkey proves what an emailed code proves, control of an address at a tenant, so it is
stored per identity (tenant, lower-cased address), not per door. The relying party is the
host the browser is on (:func:`relying_party`): the operator's portal host or a tenant's own;
a credential is offered and accepted only on the host it was made on. The checks themselves
(CBOR, COSE keys, flags, signatures, sign counts) are py_webauthn's.

User verification is *required*: a passkey replaces the code and also satisfies step-up, so
it must be something the person has *and* unlocks (a fingerprint, face or PIN), not only a
key that happens to be plugged in.

Public helpers for other areas: :func:`has_passkey`, :func:`relying_party`,
:func:`confirm_options` / :func:`confirm` (the step-up confirmation, see
:mod:`portal.account.ceremonies`).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from typing import Any, cast
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.requests import Request
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    parse_authentication_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from conversations.protection import settings_of
from core.ids import new_id
from core.models import now
from portal.hosts import request_host
from portal.models import Passkey, WebAuthnChallenge
from portal.security import origin_of
from portal.state import portal

CHALLENGE_LIFETIME = 300.0  # five minutes from the options to the answer
TIMEOUT_MS = 120_000
MAX_NAME = 60
MAX_CREDENTIAL_JSON = 64_000
UV = UserVerificationRequirement.REQUIRED


class PasskeyError(Exception):
    """A ceremony that failed; ``str()`` is a sentence a person can read."""


@dataclasses.dataclass(frozen=True)
class RelyingParty:
    """Who the browser thinks it is talking to: the RP ID (a host) and the origins on it."""

    rp_id: str
    origins: tuple[str, ...]
    name: str = "Secure mail"


def relying_party(request: Request) -> RelyingParty:
    """The RP of this request: its host, and the origins on that host the browser may be on
    (the portal's base URL, or https on the host itself, as a TLS-terminating proxy passes
    it on)."""
    host = request_host(request)
    netloc = request.url.netloc
    candidates = {
        origin_of(portal(request).settings.portal_base_url),
        f"https://{netloc}",
        f"{request.url.scheme}://{netloc}",
    }
    origins = tuple(sorted(o for o in candidates if (urlsplit(o).hostname or "") == host))
    return RelyingParty(host, origins)


# --- the identity's passkeys -------------------------------------------------------------------


def _identity(tenant_id: str, email: str) -> tuple[Any, ...]:
    return (Passkey.tenant_id == tenant_id, Passkey.email == email.strip().lower())


async def passkeys_of(
    s: AsyncSession, tenant_id: str, email: str, rp_id: str | None = None
) -> list[Passkey]:
    """The identity's passkeys, oldest first; only those of ``rp_id`` when given."""
    stmt = select(Passkey).where(*_identity(tenant_id, email))
    if rp_id is not None:
        stmt = stmt.where(Passkey.rp_id == rp_id)
    return list((await s.execute(stmt.order_by(Passkey.created_at, Passkey.id))).scalars())


async def has_passkey(s: AsyncSession, tenant_id: str, email: str, rp_id: str) -> bool:
    """Whether the identity has a passkey it can use on ``rp_id`` (the host of the request)."""
    stmt = select(func.count()).select_from(Passkey)
    stmt = stmt.where(*_identity(tenant_id, email), Passkey.rp_id == rp_id)
    return int((await s.execute(stmt)).scalar_one()) > 0


async def remove_passkey(s: AsyncSession, tenant_id: str, email: str, passkey_id: str) -> bool:
    """Remove one of the identity's passkeys (the caller audits and commits)."""
    result = cast(
        CursorResult[Any],
        await s.execute(
            delete(Passkey).where(*_identity(tenant_id, email), Passkey.id == passkey_id)
        ),
    )
    return result.rowcount == 1


async def remove_all(s: AsyncSession, tenant_id: str, email: str) -> int:
    """Remove every passkey of the identity, on every host (an admin helping someone who lost
    theirs); how many went. The caller audits and commits."""
    result = cast(
        CursorResult[Any], await s.execute(delete(Passkey).where(*_identity(tenant_id, email)))
    )
    return int(result.rowcount or 0)


# --- challenges ------------------------------------------------------------------------------


async def new_challenge(
    s: AsyncSession,
    *,
    purpose: str,
    binding: str,
    rp_id: str,
    tenant_id: str = "",
    email: str = "",
    user_handle: str = "",
) -> tuple[str, bytes]:
    """A fresh challenge for one ceremony; returns (ticket the browser sends back, the
    challenge bytes). Expired challenges are swept on the way. The caller commits."""
    await s.execute(delete(WebAuthnChallenge).where(WebAuthnChallenge.expires_at <= now()))
    challenge = secrets.token_bytes(32)
    ticket = new_id("wc_")
    s.add(
        WebAuthnChallenge(
            id=ticket,
            challenge=bytes_to_base64url(challenge),
            purpose=purpose,
            binding=binding,
            rp_id=rp_id,
            tenant_id=tenant_id,
            email=email.strip().lower(),
            user_handle=user_handle,
            expires_at=now() + CHALLENGE_LIFETIME,
        )
    )
    return ticket, challenge


async def take_challenge(
    s: AsyncSession, ticket: str, *, purpose: str, binding: str, rp_id: str
) -> WebAuthnChallenge:
    """The challenge of ``ticket``, used up: only once, only for its purpose, browser and
    host, and only before it expires (of concurrent takers, one wins)."""
    if not ticket or len(ticket) > 32:
        raise PasskeyError(_STALE)
    row = await s.get(WebAuthnChallenge, ticket)
    if row is None:
        raise PasskeyError(_STALE)
    taken = cast(
        CursorResult[Any],
        await s.execute(
            delete(WebAuthnChallenge).where(
                WebAuthnChallenge.id == ticket,
                WebAuthnChallenge.purpose == purpose,
                WebAuthnChallenge.binding == binding,
                WebAuthnChallenge.rp_id == rp_id,
                WebAuthnChallenge.expires_at > now(),
            )
        ),
    )
    if taken.rowcount != 1:
        raise PasskeyError(_STALE)
    return row


_STALE = "That passkey request has expired or was already used. Please try again."
_NOT_ACCEPTED = "That passkey was not accepted here. Use another passkey or an emailed code."


def _decoded(row: WebAuthnChallenge) -> bytes:
    return base64url_to_bytes(row.challenge)


# --- registration --------------------------------------------------------------------------


async def _user_handle(s: AsyncSession, tenant_id: str, email: str) -> str:
    """The identity's WebAuthn user handle: random, the same for all its passkeys."""
    stmt = select(Passkey.user_handle).where(*_identity(tenant_id, email)).limit(1)
    found = (await s.execute(stmt)).scalar_one_or_none()
    return found or bytes_to_base64url(secrets.token_bytes(32))


async def registration_options(
    s: AsyncSession, rp: RelyingParty, *, binding: str, tenant_id: str, email: str
) -> dict[str, Any]:
    """``{"ticket", "options"}`` for ``navigator.credentials.create`` (the caller commits)."""
    handle = await _user_handle(s, tenant_id, email)
    ticket, challenge = await new_challenge(
        s,
        purpose="register",
        binding=binding,
        rp_id=rp.rp_id,
        tenant_id=tenant_id,
        email=email,
        user_handle=handle,
    )
    existing = await passkeys_of(s, tenant_id, email, rp.rp_id)
    options = generate_registration_options(
        rp_id=rp.rp_id,
        rp_name=rp.name,
        user_name=email,
        user_display_name=email,
        user_id=base64url_to_bytes(handle),
        challenge=challenge,
        timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED, user_verification=UV
        ),
        exclude_credentials=[_descriptor(p) for p in existing],
    )
    return {"ticket": ticket, "options": json.loads(options_to_json(options))}


async def register(
    s: AsyncSession, row: WebAuthnChallenge, rp: RelyingParty, credential: str, name: str
) -> Passkey:
    """Check the browser's answer to :func:`registration_options` and store the passkey for
    the challenge's identity (the caller audits and commits)."""
    if len(credential) > MAX_CREDENTIAL_JSON:
        raise PasskeyError(_NOT_ACCEPTED)
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=_decoded(row),
            expected_rp_id=rp.rp_id,
            expected_origin=list(rp.origins),
            require_user_verification=True,
        )
        transports = json.loads(credential).get("response", {}).get("transports") or []
    except (WebAuthnException, ValueError, TypeError, AttributeError) as exc:
        raise PasskeyError("Your passkey could not be added. Please try again.") from exc
    credential_id = bytes_to_base64url(verified.credential_id)
    taken = select(Passkey.id).where(Passkey.credential_id == credential_id)
    if (await s.execute(taken)).first() is not None:
        raise PasskeyError("This passkey is already added.")
    known = {t.value for t in AuthenticatorTransport}
    passkey = Passkey(
        id=new_id("pk_"),
        tenant_id=row.tenant_id,
        email=row.email,
        rp_id=rp.rp_id,
        credential_id=credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=",".join(str(t) for t in transports if t in known),
        user_handle=row.user_handle,
        name=(name.strip() or "Passkey")[:MAX_NAME],
        created_at=now(),
    )
    s.add(passkey)
    return passkey


# --- authentication ------------------------------------------------------------------------


def _descriptor(p: Passkey) -> PublicKeyCredentialDescriptor:
    transports = [AuthenticatorTransport(t) for t in p.transports.split(",") if t]
    return PublicKeyCredentialDescriptor(
        id=base64url_to_bytes(p.credential_id), transports=transports or None
    )


async def authentication_options(
    s: AsyncSession,
    rp: RelyingParty,
    *,
    purpose: str,
    binding: str,
    tenant_id: str = "",
    email: str = "",
) -> dict[str, Any]:
    """``{"ticket", "options"}`` for ``navigator.credentials.get``: with the identity's
    credentials on this host as allowCredentials when it is known, or none (a discoverable
    credential picks the identity). The caller commits."""
    ticket, challenge = await new_challenge(
        s, purpose=purpose, binding=binding, rp_id=rp.rp_id, tenant_id=tenant_id, email=email
    )
    allow = await passkeys_of(s, tenant_id, email, rp.rp_id) if tenant_id else []
    options = generate_authentication_options(
        rp_id=rp.rp_id,
        challenge=challenge,
        timeout=TIMEOUT_MS,
        allow_credentials=[_descriptor(p) for p in allow],
        user_verification=UV,
    )
    return {"ticket": ticket, "options": json.loads(options_to_json(options))}


async def authenticate(
    s: AsyncSession, row: WebAuthnChallenge, rp: RelyingParty, credential: str
) -> Passkey:
    """Check an answer to :func:`authentication_options`: a passkey of this host, of the
    challenge's identity when it names one, whose signature verifies and whose sign count
    went up (a count that stays put or goes back is a cloned authenticator: refused). The
    passkey's count and last use are written; the caller audits and commits."""
    if len(credential) > MAX_CREDENTIAL_JSON:
        raise PasskeyError(_NOT_ACCEPTED)
    try:
        parsed = parse_authentication_credential_json(credential)
    except (WebAuthnException, ValueError, TypeError) as exc:
        raise PasskeyError(_NOT_ACCEPTED) from exc
    stmt = select(Passkey).where(Passkey.credential_id == bytes_to_base64url(parsed.raw_id))
    passkey = (await s.execute(stmt)).scalar_one_or_none()
    if passkey is None or passkey.rp_id != rp.rp_id:
        raise PasskeyError(_NOT_ACCEPTED)
    if row.tenant_id and (passkey.tenant_id, passkey.email) != (row.tenant_id, row.email):
        raise PasskeyError(_NOT_ACCEPTED)
    handle = parsed.response.user_handle
    if handle and bytes_to_base64url(handle) != passkey.user_handle:
        raise PasskeyError(_NOT_ACCEPTED)
    try:
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=_decoded(row),
            expected_rp_id=rp.rp_id,
            expected_origin=list(rp.origins),
            credential_public_key=passkey.public_key,
            credential_current_sign_count=passkey.sign_count,
            require_user_verification=True,
        )
    except WebAuthnException as exc:
        raise PasskeyError(_NOT_ACCEPTED) from exc
    # a conditional write: of two answers with the same count, only one gets through
    moved = cast(
        CursorResult[Any],
        await s.execute(
            update(Passkey)
            .where(Passkey.id == passkey.id, Passkey.sign_count == passkey.sign_count)
            .values(sign_count=verified.new_sign_count, last_used_at=now())
        ),
    )
    if moved.rowcount != 1:
        raise PasskeyError(_NOT_ACCEPTED)
    return passkey


def credential_field(form: FormData) -> str:
    """The ``credential`` field of a ceremony's post (JSON; longer than the usual fields)."""
    value = form.get("credential")
    return value if isinstance(value, str) and len(value) <= MAX_CREDENTIAL_JSON else ""


# --- the code fallback -----------------------------------------------------------------------

CODE_REFUSED = (
    "Your organisation asks you to sign in with your passkey, so we cannot email you a code. "
    "If you have lost your passkey, ask your organisation's administrator to remove it; "
    "then you can sign in with an emailed code again."
)


async def code_refused(s: AsyncSession, tenant_id: str, email: str, rp_id: str) -> bool:
    """True when the tenant forbids the code fallback and the identity has a passkey here."""
    if not tenant_id:
        return False
    if (await settings_of(s, tenant_id)).code_fallback:
        return False
    return await has_passkey(s, tenant_id, email, rp_id)
