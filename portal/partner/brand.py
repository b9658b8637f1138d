"""``/partner/brand``: the partner's default brand, the look every new tenant of the partner
starts from (its colours, logo, footer, support contact, privacy statement and words). The
same checks as a tenant's brand (contrast, https privacy link, re-encoded logo); a tenant's
display name stays its own. Existing tenants keep their own brands."""

from __future__ import annotations

import base64
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from branding import brands
from branding.logos import MAX_BYTES, reencode_logo
from branding.partner_brand import partner_brand
from core.errors import PermanentError
from portal.partner.doors import PartnerPerson, current_partner, page_context, signed_in
from portal.security import check_session_token, same_origin_request
from portal.state import PortalState, portal
from portal.uploads import TooLarge, TooManyFiles, read_posted

FIELDS = (
    "color",
    "text_color",
    "notification_text",
    "portal_intro",
    "footer_text",
    "read_button_text",
    "privacy_url",
    "support_contact",
)


async def _page(
    st: PortalState,
    who: PartnerPerson,
    *,
    values: dict[str, Any] | None = None,
    error: str = "",
    notice: str = "",
    status: int = 200,
) -> Response:
    async with st.services.db.session() as s:
        row = await partner_brand(s, who.partner, who.actor)
        await s.commit()
        current = {k: getattr(row, k) for k in (*FIELDS, "show_sender", "show_subject")}
        logo = base64.b64encode(row.logo_png).decode() if row.logo_png else ""
    ctx = page_context(who, values=values or current, error=error, notice=notice, logo_b64=logo)
    return st.pages.render("partner/brand.html", ctx, status=status)


async def brand_page(request: Request) -> Response:
    st = portal(request)
    who = await signed_in(st, request)
    if isinstance(who, Response):
        return who
    saved = request.query_params.get("done") == "saved"
    return await _page(st, who, notice="Saved: new tenants start from this look." if saved else "")


async def save_brand(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        who = await current_partner(s, request)
        if who is None:
            raise HTTPException(401)
        if not same_origin_request(request, st.origins):
            raise HTTPException(403)
        try:
            posted = await read_posted(request, MAX_BYTES, max_files=1, max_fields=14)
        except TooLarge:
            error = f"The logo is larger than {MAX_BYTES // (1024 * 1024)} MB; nothing was saved."
            return await _page(st, who, error=error, status=413)
        except TooManyFiles:
            return await _page(st, who, error="Choose one logo.", status=400)
        if posted is None:
            raise HTTPException(400)
        if not check_session_token(who.session.csrf_token, posted.text("csrf", 200)):
            raise HTTPException(403)
        if not who.is_admin:
            raise HTTPException(404)
        values: dict[str, Any] = {k: posted.text(k, 2000) for k in FIELDS}
        values["show_sender"] = posted.text("show_sender", 10) == "yes"
        values["show_subject"] = posted.text("show_subject", 10) == "yes"
        try:
            fields = brands.checked_fields({**values, "display_name": who.partner.name})
            fields.pop("display_name")
            logo = None
            if posted.uploads:
                logo = reencode_logo(posted.uploads[0].file.read(MAX_BYTES + 1))
        except PermanentError as exc:
            return await _page(st, who, values=values, error=f"Not saved: {exc}.", status=400)
        row = await partner_brand(s, who.partner, who.actor)
        await brands.update_brand(
            s,
            row,
            fields,
            who.actor,
            logo=logo,
            remove_logo=posted.text("remove_logo", 10) == "yes",
        )
        await s.commit()
    return RedirectResponse("/partner/brand?done=saved", status_code=303)
