"""Who is signed in, through which door: the two doors of tenant users (``/admin`` and
``/sent``), the signed-in :class:`Admin`, and the CSRF check of a signed-in form post.
Signing in itself is :mod:`portal.admin.auth` on :mod:`portal.signin`."""

from __future__ import annotations

import dataclasses

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request

from core.accounts.models import PartnerUser
from core.models import Partner, PortalSession, Tenant, User
from portal import sessions
from portal.forms import field, read_form
from portal.security import check_session_token, same_origin_request
from portal.sent.senders import unlisted
from portal.signin.by_address import AddressDoor
from portal.state import portal

ADMIN_ROLES = ("admin", "compliance")
SENDER_ROLES = ("admin", "compliance", "sender")
PENDING_COOKIE = "__Host-sealmail_admin_pending"
PENDING_KIND = "admin-code"
SESSION_KIND = "admin"
SENDER_SESSION_KIND = "sender"
PARTNER_AS_KIND = "partner-as"  # a partner's person in a tenant's console (portal.partner.console)


@dataclasses.dataclass(frozen=True)
class Door:
    """One way in: who may pass, what session they get, where they land."""

    name: str  # prefix of CSRF purposes, rate-limit buckets and audit actions
    roles: tuple[str, ...]
    pending_kind: str
    pending_cookie: str
    session_kinds: tuple[str, ...]  # sessions this door's pages accept; the first is made
    home: str
    login_template: str
    code_template: str

    @property
    def login_path(self) -> str:
        return f"{self.home}/login"

    @property
    def signin(self) -> AddressDoor:
        """This door in the email-code sign-in (:mod:`portal.signin`)."""
        return AddressDoor(self.name, self.pending_kind, self.pending_cookie, self.login_path)


ADMIN_DOOR = Door(
    "admin",
    ADMIN_ROLES,
    PENDING_KIND,
    PENDING_COOKIE,
    (SESSION_KIND, PARTNER_AS_KIND),
    "/admin",
    "admin/login.html",
    "admin/code.html",
)

SENDER_DOOR = Door(
    "sent",
    SENDER_ROLES,
    "sent-code",
    "__Host-sealmail_sent_pending",
    (SENDER_SESSION_KIND, SESSION_KIND),  # an officer signed in at /admin sees /sent too
    "/sent",
    "sent/login.html",
    "sent/code.html",
)


@dataclasses.dataclass(frozen=True)
class Admin:
    session: PortalSession
    user: User
    tenant: Tenant
    partner: str = ""  # the partner's name when its person opened this console

    @property
    def actor(self) -> str:
        """Who the audit log names: the user, or ``partner:<address>`` for a partner's person."""
        return f"partner:{self.user.email}" if self.partner else self.user.email

    def may(self, what: str) -> bool:
        """``quarantine`` for admin and compliance; everything else for admin only."""
        return self.user.role == "admin" or (what == "quarantine" and self.user.role in ADMIN_ROLES)


async def current_user(s: AsyncSession, request: Request, door: Door) -> Admin | None:
    """The user signed in through ``door``; the role is checked on every request, so a
    removed or demoted user loses access at once. A sender session of an address that is
    not a listed user stands for as long as its tenant lets any address of its domains in."""
    row = await sessions.load(s, request)
    if row is None or row.kind not in door.session_kinds:
        return None
    if row.kind == PARTNER_AS_KIND:
        return await _partner_as(s, row)
    roles = door.roles if row.kind == SENDER_SESSION_KIND else ADMIN_ROLES
    stmt = select(User, Tenant).join(Tenant, Tenant.id == User.tenant_id)
    stmt = stmt.where(
        User.tenant_id == row.tenant_id,
        func.lower(User.email) == row.email,
        User.role.in_(roles),
        Tenant.standing != "terminated",
    )
    found = (await s.execute(stmt)).first()
    if found is None:
        if row.kind != SENDER_SESSION_KIND:
            return None
        # an address of the tenant's domains that is not a listed user (portal.sent.senders)
        sender = await unlisted(s, row.tenant_id, row.email)
        return Admin(row, sender.user, sender.tenant) if sender is not None else None
    return Admin(row, found[0], found[1])


async def _partner_as(s: AsyncSession, row: PortalSession) -> Admin | None:
    """A partner's person in one of the partner's tenants' consoles, acting as an admin; the
    person must still work for the partner that owns the tenant, checked on every request."""
    stmt = (
        select(PartnerUser, Partner, Tenant)
        .join(Partner, Partner.id == PartnerUser.partner_id)
        .join(Tenant, Tenant.partner_id == Partner.id)
        .where(
            Tenant.id == row.tenant_id,
            Tenant.standing != "terminated",
            func.lower(PartnerUser.email) == row.email,
        )
    )
    found = (await s.execute(stmt)).first()
    if found is None:
        return None
    person, partner, tenant = found
    # never added to the database session: it stands for the partner's person on the pages
    user = User(id=person.id, tenant_id=tenant.id, email=person.email, role="admin")
    return Admin(row, user, tenant, partner=partner.name)


async def current_admin(s: AsyncSession, request: Request) -> Admin | None:
    """The signed-in admin of this request. A sender's session (``/sent``) is refused with
    404 here, not sent to the sign-in page: it is signed in, just not for this."""
    admin = await current_user(s, request, ADMIN_DOOR)
    if admin is None and await _sender_session(s, request):
        raise HTTPException(404)
    return admin


async def _sender_session(s: AsyncSession, request: Request) -> bool:
    row = await sessions.load(s, request)
    return row is not None and row.kind == SENDER_SESSION_KIND


async def checked_form(request: Request, admin: Admin) -> FormData:
    """Origin and the session's CSRF token of a signed-in POST."""
    if not same_origin_request(request, portal(request).origins):
        raise HTTPException(403)
    form = await read_form(request)
    if not check_session_token(admin.session.csrf_token, field(form, "csrf")):
        raise HTTPException(403)
    return form


async def checked_large_form(request: Request, admin: Admin, max_bytes: int) -> FormData:
    """Like :func:`checked_form`, for a form whose text fields are large (a policy document,
    a notice template): the body is refused past ``max_bytes`` (413) before it is parsed."""
    if not same_origin_request(request, portal(request).origins):
        raise HTTPException(403)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise HTTPException(413)
    try:
        form = await request.form(max_files=0, max_fields=10, max_part_size=max_bytes)
    except Exception:  # noqa: BLE001 - any malformed body is the client's error
        raise HTTPException(400) from None
    token = form.get("csrf")
    if not isinstance(token, str) or not check_session_token(admin.session.csrf_token, token):
        raise HTTPException(403)
    return form
