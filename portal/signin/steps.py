"""The steps every email-code door takes around the code: the pre-session form (nonce
cookie and signed double-submit token), the rate limits on sends and failures, the code
mail (branded, sealed and queued by ``core.outbox.post``), and opening the session.

A door supplies only what differs: how the identity is found, its pages, its audit events,
where it lands and the kind of session it opens."""

from __future__ import annotations

import dataclasses

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from branding.mail import compose
from branding.notifications import render_code_email
from core import outbox
from core.models import OutboxItem, Tenant
from portal import ratelimit, sessions
from portal.forms import field, read_form
from portal.security import PRE_COOKIE, check_pre_session, same_origin_request
from portal.signin.codes import CODE_MAIL_LIFETIME, minutes
from portal.state import PortalState, portal

TOO_MANY = {"Retry-After": "3600"}  # the 429 of every limit here


# --- the pre-session form --------------------------------------------------------------------


def nonce_of(request: Request) -> str | None:
    value = request.cookies.get(PRE_COOKIE)
    return value if value and len(value) <= 64 else None


def with_nonce(request: Request, response: Response, nonce: str) -> Response:
    if nonce != request.cookies.get(PRE_COOKIE):
        response.set_cookie(
            PRE_COOKIE, nonce, path="/", secure=True, httponly=True, samesite="strict"
        )
    return response


async def pre_checked(request: Request, purpose: str) -> tuple[PortalState, FormData, str]:
    """Origin and the signed double-submit token, before anything touches the database."""
    st = portal(request)
    if not same_origin_request(request, st.origins):
        raise HTTPException(403)
    form = await read_form(request)
    nonce = nonce_of(request)
    if not check_pre_session(st.csrf_key, nonce, field(form, "csrf"), purpose):
        raise HTTPException(403)
    return st, form, nonce or ""


# --- rate limits -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Limits:
    """Per hour, held in the database. ``prefix`` names the door's buckets; the subject of a
    send is who the code is for, of a failure the code's holder."""

    prefix: str
    failures_per_subject: int
    sends_per_subject: int = 5
    sends_per_ip: int = 20
    failures_per_ip: int = 30

    def sends(self, subject: str, ip: str) -> list[tuple[str, int]]:
        return [
            (f"{self.prefix}code-send:{subject}", self.sends_per_subject),
            (f"{self.prefix}code-send-ip:{ip}", self.sends_per_ip),
        ]

    def failures(self, subject: str, ip: str) -> list[tuple[str, int]]:
        return [
            (f"{self.prefix}verify-fail:{subject}", self.failures_per_subject),
            (f"{self.prefix}verify-fail-ip:{ip}", self.failures_per_ip),
        ]


async def limited(session: AsyncSession, buckets: list[tuple[str, int]]) -> bool:
    return await ratelimit.exceeded(session, buckets, ratelimit.HOUR)


async def count(session: AsyncSession, buckets: list[tuple[str, int]]) -> None:
    """One more send or failure in each bucket (the caller commits)."""
    await ratelimit.record(session, [b for b, _ in buckets], ratelimit.HOUR)


# --- the code mail ---------------------------------------------------------------------------


async def mail_code(
    st: PortalState, session: AsyncSession, tenant: Tenant, to: str, code: str
) -> OutboxItem:
    """The tenant's branded code email to ``to``, sealed and queued (the caller commits)."""
    mail_from = tenant.notification_from or st.settings.sender_address
    raw = compose(
        from_addr=mail_from,
        to_addr=to,
        rendered=render_code_email(tenant, code=code, recipient=to, minutes=minutes()),
        headers={"Auto-Submitted": "auto-generated"},
    )
    return await outbox.post(
        session,
        st.services.vault,
        kind="code",
        tenant_id=tenant.id,
        mail_from=mail_from,
        recipients=[to],
        raw=raw,
        lifetime=CODE_MAIL_LIFETIME,
    )


# --- the session -----------------------------------------------------------------------------


def set_pending_cookie(response: Response, cookie: str, secret: str) -> Response:
    response.set_cookie(cookie, secret, path="/", secure=True, httponly=True, samesite="strict")
    return response


async def open_session(
    session: AsyncSession,
    request: Request,
    *,
    tenant_id: str,
    email: str,
    kind: str,
    home: str,
    pending_cookie: str = "",
    factor: str = "code",
) -> RedirectResponse:
    """The code (or a passkey, or a remembered device: ``factor``) was right: a new session
    of ``kind`` (never one carried across identities) and the redirect to ``home`` that sets
    it. The caller audits and commits."""
    await sessions.destroy(session, request)
    secret, _row = await sessions.create(session, tenant_id, email, kind, factor)
    response = RedirectResponse(home, status_code=303)
    sessions.set_cookie(response, secret)
    if pending_cookie:
        response.delete_cookie(
            pending_cookie, path="/", secure=True, httponly=True, samesite="strict"
        )
    return response
