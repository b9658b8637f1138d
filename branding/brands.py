"""A tenant's brands (issue 13, item 2): how its notices and portal pages look. A tenant has a
default brand and may add more (one per department or per domain), which a policy rule picks
by name (``brand: legal``). The default brand starts from the tenant's older settings
(display name, colour, subject shown or hidden), so a tenant looks the same until an admin
changes it, and ``sealmail tenant update --display-name/--brand-color/--hide-subject`` keep
working: they change those settings, which the default brand follows until it is saved in
``/admin/branding``.

Every text and colour is validated here, for the page and any other caller alike: lengths,
``https://`` links, colours as hex, and contrast to WCAG AA (4.5:1) for the button text on
the brand colour and for the brand colour as link text on white.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from branding.contrast import AA_TEXT, contrast_ratio
from branding.models import Brand
from core.audit import audit
from core.errors import NotFound, PermanentError
from core.ids import new_id
from core.models import Tenant, now

DEFAULT_NAME = "default"
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,49}$")
TEXT_LIMITS = {
    "display_name": 200,
    "notification_text": 1000,
    "portal_intro": 1000,
    "footer_text": 1000,
    "read_button_text": 60,
    "privacy_url": 500,
    "support_contact": 320,
}


@dataclasses.dataclass(frozen=True)
class BrandLook:
    """What a notice or a page needs of a brand (the row, or the tenant's defaults)."""

    brand_id: str  # "" while the default brand has never been saved
    name: str
    display_name: str
    color: str
    text_color: str
    notification_text: str = ""
    portal_intro: str = ""
    footer_text: str = ""
    read_button_text: str = ""
    privacy_url: str = ""
    support_contact: str = ""
    show_sender: bool = True
    show_subject: bool = True
    logo_png: bytes | None = None
    logo_sha256: str = ""
    template_html: str = ""
    template_text: str = ""

    @property
    def button_text(self) -> str:
        return self.read_button_text or "Open the secure message"


def _color(value: str) -> str:
    return value.lower() if _HEX.match(value or "") else "#1f4e79"


def look_of(tenant: Tenant, row: Brand | None) -> BrandLook:
    if row is None:
        return BrandLook(
            brand_id="",
            name=DEFAULT_NAME,
            display_name=tenant.display_name or tenant.name,
            color=_color(tenant.brand_color),
            text_color="#ffffff",
            show_subject=not tenant.hide_subject,
        )
    return BrandLook(
        brand_id=row.id,
        name=row.name,
        display_name=row.display_name or tenant.display_name or tenant.name,
        color=_color(row.color),
        text_color=_color(row.text_color) if row.text_color else "#ffffff",
        notification_text=row.notification_text,
        portal_intro=row.portal_intro,
        footer_text=row.footer_text,
        read_button_text=row.read_button_text,
        privacy_url=row.privacy_url,
        support_contact=row.support_contact,
        show_sender=row.show_sender,
        show_subject=row.show_subject,
        logo_png=row.logo_png,
        logo_sha256=row.logo_sha256,
        template_html=row.template_html,
        template_text=row.template_text,
    )


_BRANDS_OF = select(Brand).where(Brand.tenant_id == bindparam("tenant"))  # built once


async def brands_of(session: AsyncSession, tenant_id: str) -> list[Brand]:
    rows = list((await session.execute(_BRANDS_OF, {"tenant": tenant_id})).scalars())
    return sorted(rows, key=lambda b: (not b.is_default, b.name))


async def resolve(session: AsyncSession, tenant: Tenant, name: str = "") -> BrandLook:
    """The brand called ``name`` (a policy rule's ``brand:``), else the default one."""
    rows = await brands_of(session, tenant.id)
    wanted = [r for r in rows if name and r.name == name.strip().lower()]
    default = [r for r in rows if r.is_default]
    return look_of(tenant, (wanted or default or [None])[0])


async def brand_by_id(session: AsyncSession, tenant_id: str, brand_id: str) -> Brand:
    row = await session.get(Brand, brand_id[:40])
    if row is None or row.tenant_id != tenant_id:
        raise NotFound("no such brand")
    return row


async def default_brand(session: AsyncSession, tenant: Tenant, actor: str) -> Brand:
    """The default brand's row, made from the tenant's settings the first time it is needed."""
    for row in await brands_of(session, tenant.id):
        if row.is_default:
            return row
    row = Brand(
        id=new_id("b_"),
        tenant_id=tenant.id,
        name=DEFAULT_NAME,
        is_default=True,
        display_name=tenant.display_name or tenant.name,
        color=_color(tenant.brand_color),
        text_color="#ffffff",
        show_subject=not tenant.hide_subject,
        updated_by=actor,
    )
    session.add(row)
    await session.flush()
    return row


async def create_brand(session: AsyncSession, tenant: Tenant, name: str, actor: str) -> Brand:
    await default_brand(session, tenant, actor)
    name = name.strip().lower()
    if not _NAME.match(name):
        raise PermanentError(
            "a brand's name is 1 to 50 lower-case letters, digits, dots, dashes or underscores"
        )
    if any(r.name == name for r in await brands_of(session, tenant.id)):
        raise PermanentError(f"there is already a brand called {name!r}")
    row = Brand(
        id=new_id("b_"),
        tenant_id=tenant.id,
        name=name,
        is_default=False,
        display_name=tenant.display_name or tenant.name,
        color=_color(tenant.brand_color),
        text_color="#ffffff",
        updated_by=actor,
    )
    session.add(row)
    await audit(session, tenant.id, actor, "brand.create", row.id, name=name)
    return row


def check_colors(color: str, text_color: str) -> None:
    for label, value in (("brand colour", color), ("text colour", text_color)):
        if not _HEX.match(value):
            raise PermanentError(f"the {label} must look like #1f4e79")
    on_color = contrast_ratio(text_color, color)
    if on_color < AA_TEXT:
        raise PermanentError(
            f"the text colour on the brand colour has a contrast of {on_color:.1f}:1; "
            f"at least {AA_TEXT}:1 is needed so everyone can read the button"
        )
    on_white = contrast_ratio(color, "#ffffff")
    if on_white < AA_TEXT:
        raise PermanentError(
            f"the brand colour on white has a contrast of {on_white:.1f}:1; links and headings "
            f"in that colour need at least {AA_TEXT}:1 — choose a darker colour"
        )


def checked_fields(values: dict[str, Any]) -> dict[str, Any]:
    """The brand's fields from a form, validated; raises PermanentError with a sentence."""
    out: dict[str, Any] = {}
    for key, limit in TEXT_LIMITS.items():
        text = str(values.get(key, "") or "").strip()
        if len(text) > limit:
            raise PermanentError(f"{key.replace('_', ' ')} is longer than {limit} characters")
        out[key] = text
    if not out["display_name"]:
        raise PermanentError("the display name cannot be empty")
    url = out["privacy_url"]
    if url and (not url.lower().startswith("https://") or any(c.isspace() for c in url)):
        raise PermanentError("the privacy statement's address must start with https://")
    color = str(values.get("color", "")).strip().lower()
    text_color = str(values.get("text_color", "")).strip().lower()
    check_colors(color, text_color)
    out.update(
        color=color,
        text_color=text_color,
        show_sender=bool(values.get("show_sender")),
        show_subject=bool(values.get("show_subject")),
    )
    return out


async def update_brand(
    session: AsyncSession,
    row: Brand,
    fields: dict[str, Any],
    actor: str,
    logo: tuple[bytes, int, int] | None = None,
    remove_logo: bool = False,
) -> list[str]:
    """Apply validated ``fields`` (and a re-encoded logo); returns what changed (audited)."""
    changed = [k for k, v in fields.items() if getattr(row, k) != v]
    for key in changed:
        setattr(row, key, fields[key])
    if logo is not None:
        import hashlib

        row.logo_png, row.logo_width, row.logo_height = logo
        row.logo_sha256 = hashlib.sha256(logo[0]).hexdigest()
        changed.append("logo")
    elif remove_logo and row.logo_png is not None:
        row.logo_png, row.logo_sha256, row.logo_width, row.logo_height = None, "", 0, 0
        changed.append("logo removed")
    if changed:
        row.updated_at, row.updated_by = now(), actor
        owner = row.tenant_id or row.partner_id  # a partner's default brand has no tenant
        await audit(session, owner, actor, "brand.update", row.id, changed=changed)
    return changed


async def delete_brand(session: AsyncSession, tenant_id: str, brand_id: str, actor: str) -> str:
    row = await brand_by_id(session, tenant_id, brand_id)
    if row.is_default:
        raise PermanentError("the default brand cannot be deleted")
    await session.delete(row)
    await audit(session, tenant_id, actor, "brand.delete", row.id, name=row.name)
    return row.name


async def brand_of_message(
    session: AsyncSession, tenant: Tenant, message_id: str, rcpt: str
) -> BrandLook:
    """The brand a recipient's notice wore (the matched rule's ``brand:``, recorded with the
    policy decision), so the portal pages and a resent notice look the same."""
    import json

    from core.policy.models import PolicyDecision

    stmt = (
        select(PolicyDecision.explanation)
        .where(
            PolicyDecision.message_id == message_id,
            PolicyDecision.tenant_id == tenant.id,
            PolicyDecision.rcpt == rcpt,
        )
        .order_by(PolicyDecision.id.desc())
        .limit(1)
    )
    found = (await session.execute(stmt)).scalar_one_or_none()
    try:
        name = json.loads(found).get("brand", "") if found else ""
    except (ValueError, AttributeError):
        name = ""
    return await resolve(session, tenant, str(name or ""))


async def follow_tenant(
    session: AsyncSession, tenant: Tenant, changes: dict[str, Any], actor: str
) -> None:
    """``sealmail tenant update --display-name/--brand-color/--hide-subject`` change the
    default brand too once it has been saved, so the older settings stay one truth."""
    fields = {
        "display_name": changes.get("display_name"),
        "color": changes.get("brand_color"),
        "show_subject": None if "hide_subject" not in changes else not changes["hide_subject"],
    }
    wanted = {k: v for k, v in fields.items() if v is not None}
    if not wanted:
        return
    for row in await brands_of(session, tenant.id):
        if row.is_default:
            for key, value in wanted.items():
                setattr(row, key, value)
            row.updated_at, row.updated_by = now(), actor
            await audit(session, tenant.id, actor, "brand.update", row.id, changed=list(wanted))
