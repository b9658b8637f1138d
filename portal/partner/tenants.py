"""``/partner`` and ``/partner/tenants/...``: the partner's tenants in sentences (standing,
plan and trial end, this month's messages, storage), creating one (credentials shown once),
and a tenant's page with its actions: convert, extend a trial, suspend, resume, terminate
(after typing its name), open its admin console as the partner, set it up."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core.accounts.partner_tenants import partner_tenant, summaries, trial_end_default
from core.accounts.trials import nfr_limits, parse_end_date
from core.errors import NotFound, PermanentError
from portal.forms import field
from portal.partner.doors import PartnerPerson, page_context, partner_post, signed_in
from portal.partner.operations import (
    NewTenant,
    change_standing,
    convert,
    create_for_partner,
    parse_domains,
)
from portal.state import PortalState, portal


def size_words(n: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


async def home(request: Request) -> Response:
    st = portal(request)
    who = await signed_in(st, request)
    if isinstance(who, Response):
        return who
    async with st.services.db.session() as s:
        rows = await summaries(s, who.partner.id)
    ctx = page_context(
        who,
        rows=rows,
        size_words=size_words,
        partner=who.partner,
        notice=request.query_params.get("done", "") == "signedin",
    )
    return st.pages.render("partner/tenants.html", ctx)


def _new_page(
    st: PortalState, who: PartnerPerson, values: dict[str, str], error: str = "", status: int = 200
) -> Response:
    ctx = page_context(who, values=values, error=error, partner=who.partner)
    return st.pages.render("partner/tenant_new.html", ctx, status=status)


async def new_form(request: Request) -> Response:
    st = portal(request)
    who = await signed_in(st, request)
    if isinstance(who, Response):
        return who
    if not who.is_admin:
        raise HTTPException(404)
    values = dict.fromkeys(("name", "domains", "networks", "admin_email"), "")
    values.update(plan="trial", trial_ends=trial_end_default().isoformat())
    return _new_page(st, who, values)


async def create(request: Request) -> Response:
    async with partner_post(request) as (st, s, who, form):
        values = {
            k: field(form, k)
            for k in ("name", "domains", "plan", "trial_ends", "networks", "admin_email")
        }
        try:
            plan = values["plan"]
            end = parse_end_date(values["trial_ends"]) if plan == "trial" else None
            new = NewTenant(
                name=values["name"].strip(),
                domains=parse_domains(values["domains"]),
                plan=plan,
                trial_ends_on=end,
                networks=parse_domains(values["networks"]),
                admin_email=values["admin_email"].strip(),
            )
            creds, tenant, domains = await create_for_partner(
                s, st.services.keyring, who.partner, new, who.actor
            )
        except PermanentError as exc:
            await s.rollback()
            return _new_page(st, who, values, error=f"Not created: {exc}.", status=400)
        await s.commit()
        ctx = page_context(
            who,
            creds=creds,
            tenant=tenant,
            domains=domains,
            admin_email=new.admin_email,
            smtp_host=st.settings.smtp_hostname,
            smtp_listen=st.settings.smtp_listen,
        )
        return st.pages.render("partner/tenant_created.html", ctx, status=201)


NOTICES = {"console": "You are back in your partner console."}


async def _tenant_ctx(st: PortalState, who: PartnerPerson, tenant_id: str) -> dict[str, Any]:
    async with st.services.db.session() as s:
        try:
            tenant = await partner_tenant(s, who.partner.id, tenant_id)
        except NotFound:
            raise HTTPException(404) from None
        row = (await summaries(s, who.partner.id, only=tenant.id))[0]
        users_limit, messages_limit = await nfr_limits(s, tenant)
    return page_context(
        who,
        row=row,
        tenant=tenant,
        size_words=size_words,
        users_limit=users_limit,
        messages_limit=messages_limit,
        trial_default=trial_end_default().isoformat(),
        notice="",
        error="",
    )


async def tenant_page(request: Request) -> Response:
    st = portal(request)
    who = await signed_in(st, request)
    if isinstance(who, Response):
        return who
    ctx = await _tenant_ctx(st, who, request.path_params["tenant_id"])
    ctx["notice"] = request.query_params.get("said", "")[:300]
    return st.pages.render("partner/tenant.html", ctx)


async def _answer(
    st: PortalState, who: PartnerPerson, tenant_id: str, error: str, status: int = 400
) -> Response:
    ctx = await _tenant_ctx(st, who, tenant_id)
    ctx["error"] = error
    return st.pages.render("partner/tenant.html", ctx, status=status)


def _done(tenant_id: str, said: str) -> Response:
    from urllib.parse import quote

    return RedirectResponse(f"/partner/tenants/{tenant_id}?said={quote(said)}", status_code=303)


async def set_plan(request: Request) -> Response:
    tenant_id = request.path_params["tenant_id"]
    async with partner_post(request) as (st, s, who, form):
        try:
            tenant = await partner_tenant(s, who.partner.id, tenant_id)
        except NotFound:
            raise HTTPException(404) from None
        try:
            plan = field(form, "plan")
            end = parse_end_date(field(form, "trial_ends")) if plan == "trial" else None
            said = await convert(s, tenant, plan, who.actor, end)
        except PermanentError as exc:
            await s.rollback()
            return await _answer(st, who, tenant_id, f"Not changed: {exc}.")
        await s.commit()
    return _done(tenant_id, said)


async def set_standing(request: Request) -> Response:
    tenant_id = request.path_params["tenant_id"]
    async with partner_post(request) as (st, s, who, form):
        try:
            tenant = await partner_tenant(s, who.partner.id, tenant_id)
        except NotFound:
            raise HTTPException(404) from None
        action = field(form, "action")
        if action == "terminate" and field(form, "confirm").strip() != tenant.name:
            return await _answer(
                st,
                who,
                tenant_id,
                f"Not terminated: type the tenant's name, {tenant.name}, to confirm.",
            )
        try:
            said = await change_standing(s, tenant, action, who.actor)
        except PermanentError as exc:
            await s.rollback()
            return await _answer(st, who, tenant_id, f"Not changed: {exc}.")
        await s.commit()
    return _done(tenant_id, said)
