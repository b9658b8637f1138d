"""``/admin/branding/{brand_id}/template``: a brand's notice written as the tenant's own
Jinja2 template (issue 13, item 3) — HTML and text, the documented variables listed, "Check
and preview" renders it with sample values in the sandboxed renderer
(:mod:`branding.custom_templates`) and shows a problem at its line; a template with a
problem cannot be saved; "Use the default" clears it. Admins only; audited."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from branding import brands
from branding.custom_templates import (
    NOTICE_VARIABLES,
    SAMPLE,
    TemplateProblem,
    check_template,
    render_limited,
)
from branding.templating import TEMPLATES_DIR
from core.audit import audit
from core.errors import NotFound
from core.models import now
from portal.admin.branding import PREVIEW_CSP
from portal.admin.context import officer, page_context
from portal.admin.doors import Admin, checked_large_form, current_admin
from portal.state import PortalState, portal

MAX_TEMPLATE = 64 * 1024
NOTICES = {
    "saved": "Template saved: the next notice uses it.",
    "reset": "The default notice is used again.",
}


STARTER = (TEMPLATES_DIR / "mail" / "custom_starter.html").read_text  # a place to start


async def _page(
    st: PortalState,
    admin: Admin,
    brand_id: str,
    *,
    html: str | None = None,
    text: str | None = None,
    problems: list[tuple[str, TemplateProblem]] | None = None,
    preview: dict[str, str] | None = None,
    notice: str = "",
    status: int = 200,
) -> Response:
    async with st.services.db.session() as s:
        try:
            row = await brands.brand_by_id(s, admin.tenant.id, brand_id)
        except NotFound:
            raise HTTPException(404) from None
    ctx = page_context(
        admin,
        brand=row,
        html=row.template_html if html is None else html,
        text=row.template_text if text is None else text,
        in_use=bool(row.template_html or row.template_text),
        variables=NOTICE_VARIABLES,
        problems=problems or [],
        preview=preview,
        notice=notice,
        example_html=STARTER(),
    )
    headers = {"Content-Security-Policy": PREVIEW_CSP} if preview else None
    return st.pages.render("admin/brand_template.html", ctx, status=status, headers=headers)


async def template_page(request: Request) -> Response:
    st = portal(request)
    admin = await officer(st, request)
    if isinstance(admin, Response):
        return admin
    if admin.user.role != "admin":
        raise HTTPException(404)
    done = request.query_params.get("done", "")
    notice = {
        "saved": "Template saved: the next notice uses it.",
        "reset": "The default notice is used again.",
    }.get(done, "")
    return await _page(st, admin, request.path_params["brand_id"][:40], notice=notice)


async def save_template(request: Request) -> Response:
    st = portal(request)
    brand_id = request.path_params["brand_id"][:40]
    async with st.services.db.session() as s:
        admin = await current_admin(s, request)
        if admin is None:
            raise HTTPException(401)
        form = await checked_large_form(request, admin, MAX_TEMPLATE * 8)
        if admin.user.role != "admin":
            raise HTTPException(404)
        try:
            row = await brands.brand_by_id(s, admin.tenant.id, brand_id)
        except NotFound:
            raise HTTPException(404) from None
        action = form.get("action")
        if action == "reset":
            row.template_html, row.template_text = "", ""
            row.updated_at, row.updated_by = now(), admin.actor
            await audit(s, admin.tenant.id, admin.actor, "brand.template.reset", row.id)
            await s.commit()
            return RedirectResponse(f"/admin/branding/{brand_id}/template?done=reset", 303)
        html = str(form.get("html") or "")[:MAX_TEMPLATE]
        text = str(form.get("text") or "")[:MAX_TEMPLATE]
        problems = []
        for label, source, is_html in (("HTML", html, True), ("Text", text, False)):
            if source.strip():
                found = check_template(source, html=is_html)
                if found is not None:
                    problems.append((label, found))
        if problems or action != "save":
            preview = None
            if not problems:
                preview = {
                    "html": render_limited(html, SAMPLE, html=True) if html.strip() else "",
                    "text": render_limited(text, SAMPLE, html=False) if text.strip() else "",
                }
            status = 400 if problems else 200
            return await _page(
                st, admin, brand_id, html=html, text=text, problems=problems, preview=preview,
                status=status,
            )  # fmt: skip
        row.template_html, row.template_text = html, text
        row.updated_at, row.updated_by = now(), admin.actor
        await audit(s, admin.tenant.id, admin.actor, "brand.template.save", row.id)
        await s.commit()
    return RedirectResponse(f"/admin/branding/{brand_id}/template?done=saved", 303)
