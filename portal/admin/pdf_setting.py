"""``POST /admin/settings/pdf``: the tenant's "PDF when the recipient has no OpenPGP key or
S/MIME certificate" (``tenant_protection.pdf_when_no_key``, issue 16): with it, a policy's
method ``auto`` sends such a recipient the message as an encrypted PDF instead of the
portal notice. Shown on ``/admin/settings``; audited."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from conversations.protection import editable, settings_of
from core.audit import audit
from portal.admin.context import admin_post
from portal.forms import field


async def pdf_when_no_key(s: AsyncSession, tenant_id: str) -> bool:
    """The setting as the page shows it."""
    return bool((await settings_of(s, tenant_id)).pdf_when_no_key)


async def save(request: Request) -> Response:
    async with admin_post(request) as (_st, s, admin, form):
        wanted = field(form, "pdf_when_no_key") == "yes"
        if wanted == await pdf_when_no_key(s, admin.tenant.id):
            return RedirectResponse("/admin/settings?done=same", status_code=303)
        row = await editable(s, admin.tenant.id)
        row.pdf_when_no_key = wanted
        await audit(
            s, admin.tenant.id, admin.actor, "tenant.settings.changed", admin.tenant.id,
            pdf_when_no_key=wanted,
        )  # fmt: skip
        await s.commit()
    return RedirectResponse("/admin/settings?done=saved#pdf", status_code=303)
