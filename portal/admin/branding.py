"""``/admin/branding``: how the tenant's notices and portal pages look (issue 13, item 2).

One form per brand: the name shown, a logo (PNG, JPEG or WebP, re-encoded by
:mod:`branding.logos`), the colours (contrast checked), the tenant's own words (notice text,
portal introduction, footer, button text, privacy statement, support contact) and whether
notices show the sender and the subject. "Preview" renders the notice (HTML and text) and the
portal's entry page from the form as it is, saving nothing; "Save" applies it to the next
notice. More brands (one per department or domain) are added by name and chosen by a policy
rule's ``brand:``; the default one cannot be deleted. A brand's own template is edited at
``/admin/branding/{id}/template`` (:mod:`portal.admin.brand_template`). Admins change;
compliance officers look.
"""

from __future__ import annotations

import base64
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from branding import brands
from branding.brands import BrandLook
from branding.logos import MAX_BYTES, reencode_logo
from branding.notifications import render_notification
from core.errors import NotFound, PermanentError
from core.models import Tenant, now
from core.portal_links import portal_url_for
from portal.admin.context import admin_post, officer, page_context
from portal.admin.doors import Admin, current_admin
from portal.forms import field
from portal.security import PAGE_CSP, check_session_token, same_origin_request
from portal.state import PortalState, portal
from portal.uploads import TooLarge, TooManyFiles, read_posted

FIELDS = (
    "display_name",
    "color",
    "text_color",
    "notification_text",
    "portal_intro",
    "footer_text",
    "read_button_text",
    "privacy_url",
    "support_contact",
)
NOTICES = {"saved": "Brand saved: the next notice wears it.", "created": "Brand added."}
# the preview shows the notice as mail clients do: its own inline styles, images as data:
PREVIEW_CSP = PAGE_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")


async def _page(
    st: PortalState,
    admin: Admin,
    brand_id: str = "",
    *,
    values: dict[str, Any] | None = None,
    error: str = "",
    notice: str = "",
    preview: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    async with st.services.db.session() as s:
        tenant = await s.get(Tenant, admin.tenant.id)
        assert tenant is not None
        await brands.default_brand(s, tenant, admin.actor)
        await s.commit()
        rows = await brands.brands_of(s, tenant.id)
    current = next((r for r in rows if r.id == brand_id), rows[0])
    ctx = page_context(
        admin,
        brands=rows,
        brand=current,
        values=values or {k: getattr(current, k) for k in (*FIELDS, "show_sender", "show_subject")},
        logo_url=f"/brand/{tenant.id}/logo/{current.id}.png?v={current.logo_sha256[:16]}"
        if current.logo_png
        else "",
        may_change=admin.user.role == "admin",
        error=error,
        notice=notice,
        preview=preview,
        max_mb=MAX_BYTES // (1024 * 1024),
    )
    headers = {"Content-Security-Policy": PREVIEW_CSP} if preview else None
    return st.pages.render("admin/branding.html", ctx, status=status, headers=headers)


async def branding_page(request: Request) -> Response:
    st = portal(request)
    admin = await officer(st, request)
    if isinstance(admin, Response):
        return admin
    notice = NOTICES.get(request.query_params.get("done", ""), "")
    return await _page(st, admin, request.query_params.get("brand", "")[:40], notice=notice)


def _values(posted: Any) -> dict[str, Any]:
    out: dict[str, Any] = {k: posted.text(k, 2000) for k in FIELDS}
    out["show_sender"] = posted.text("show_sender", 10) == "yes"
    out["show_subject"] = posted.text("show_subject", 10) == "yes"
    return out


def _preview(st: PortalState, tenant: Tenant, look: BrandLook, portal_url: str) -> dict[str, str]:
    logo_src = ""
    if look.logo_png:
        logo_src = "data:image/png;base64," + base64.b64encode(look.logo_png).decode()
    rendered = render_notification(
        tenant,
        sender_name="Alice Sender",
        sender_address=f"alice@{tenant.name.lower()}.example",
        subject="Quarterly figures",
        link=f"{portal_url}/m/EXAMPLE",
        recipient="bob@client.example",
        expires_at=now() + 30 * 86400,
        portal_base_url=portal_url,
        reference="7KQ4-M2XD-9TB",
        look=look,
        logo_src=logo_src,
    )
    page = st.pages.env.get_template("admin/brand_portal_preview.html").render(
        color=look.color,
        text_color=look.text_color,
        logo_src=logo_src,
        name=look.display_name,
        intro=look.portal_intro,
        footer=look.footer_text,
        support=look.support_contact,
    )
    return {
        "subject": rendered.subject,
        "html": rendered.html,
        "text": rendered.text,
        "portal": page,
    }


async def save(request: Request) -> Response:
    """``POST /admin/branding/{brand_id}``: save, or with ``preview=yes`` only show."""
    st = portal(request)
    async with st.services.db.session() as s:
        admin = await current_admin(s, request)
        if admin is None:
            raise HTTPException(401)
        if not same_origin_request(request, st.origins):
            raise HTTPException(403)
        brand_id = request.path_params["brand_id"]
        try:
            posted = await read_posted(request, MAX_BYTES, max_files=1, max_fields=20)
        except TooLarge:
            error = f"The logo is larger than {MAX_BYTES // (1024 * 1024)} MB; nothing was saved."
            return await _page(st, admin, brand_id, error=error, status=413)
        except TooManyFiles:
            return await _page(st, admin, brand_id, error="Choose one logo.", status=400)
        if posted is None:
            raise HTTPException(400)
        try:
            if not check_session_token(admin.session.csrf_token, posted.text("csrf", 200)):
                raise HTTPException(403)
            wants_preview = posted.text("preview", 10) == "yes"
            if admin.user.role != "admin" and not wants_preview:
                raise HTTPException(404)
            try:
                row = await brands.brand_by_id(s, admin.tenant.id, brand_id)
            except NotFound:
                raise HTTPException(404) from None
            values = _values(posted)
            try:
                fields = brands.checked_fields(values)
                logo = None
                if posted.uploads:
                    upload = posted.uploads[0]
                    logo = reencode_logo(upload.file.read(MAX_BYTES + 1))
            except PermanentError as exc:
                return await _page(
                    st, admin, brand_id, values=values, error=f"Not saved: {exc}.", status=400
                )
            tenant = await s.get(Tenant, admin.tenant.id)
            assert tenant is not None
            if wants_preview:
                draft = brands.look_of(tenant, row)
                look = BrandLook(
                    **{
                        **draft.__dict__,
                        **fields,
                        "logo_png": logo[0] if logo else draft.logo_png,
                    }
                )
                base = portal_url_for(st.settings.portal_base_url, tenant.portal_host)
                preview = _preview(st, tenant, look, base)
                return await _page(st, admin, brand_id, values=values, preview=preview)
            remove = posted.text("remove_logo", 10) == "yes"
            await brands.update_brand(s, row, fields, admin.actor, logo=logo, remove_logo=remove)
            await s.commit()
        finally:
            await posted.close()
    return RedirectResponse(f"/admin/branding?brand={brand_id}&done=saved", status_code=303)


async def create(request: Request) -> Response:
    async with admin_post(request) as (st, s, admin, form):
        tenant = await s.get(Tenant, admin.tenant.id)
        assert tenant is not None
        try:
            row = await brands.create_brand(s, tenant, field(form, "name"), admin.actor)
        except PermanentError as exc:
            return await _page(st, admin, error=f"Not added: {exc}.", status=400)
        await s.commit()
        new_id = row.id
    return RedirectResponse(f"/admin/branding?brand={new_id}&done=created", status_code=303)


async def delete(request: Request) -> Response:
    async with admin_post(request) as (st, s, admin, _form):
        try:
            await brands.delete_brand(
                s, admin.tenant.id, request.path_params["brand_id"], admin.actor
            )
        except NotFound:
            raise HTTPException(404) from None
        except PermanentError as exc:
            return await _page(st, admin, error=f"Not deleted: {exc}.", status=400)
        await s.commit()
    return RedirectResponse("/admin/branding", status_code=303)
