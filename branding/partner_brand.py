"""A partner's default brand: the look its new tenants start from (colours, logo, footer,
support contact, privacy statement, notice and portal words). It is a ``brands`` row with no
tenant and the partner's id; a new tenant of the partner gets a copy as its own default brand,
with the tenant's own name as the display name. Later changes to the partner's brand do not
reach existing tenants: each tenant's brand is its own from then on."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from branding.brands import DEFAULT_NAME, brands_of
from branding.models import Brand
from core.ids import new_id
from core.models import Partner, Tenant

COPIED = (
    "logo_png",
    "logo_sha256",
    "logo_width",
    "logo_height",
    "color",
    "text_color",
    "notification_text",
    "portal_intro",
    "footer_text",
    "read_button_text",
    "privacy_url",
    "support_contact",
    "show_sender",
    "show_subject",
)


async def find_partner_brand(session: AsyncSession, partner_id: str) -> Brand | None:
    stmt = select(Brand).where(Brand.partner_id == partner_id, Brand.tenant_id.is_(None))
    return (await session.execute(stmt)).scalars().first()


async def partner_brand(session: AsyncSession, partner: Partner, actor: str) -> Brand:
    """The partner's default brand, made the first time it is needed."""
    row = await find_partner_brand(session, partner.id)
    if row is None:
        row = Brand(
            id=new_id("b_"),
            tenant_id=None,
            partner_id=partner.id,
            name=DEFAULT_NAME,
            is_default=True,
            display_name=partner.name,
            color="#1f4e79",
            text_color="#ffffff",
            updated_by=actor,
        )
        session.add(row)
        await session.flush()
    return row


async def start_from_partner_brand(session: AsyncSession, tenant: Tenant, actor: str) -> bool:
    """Give a new tenant of a partner with a default brand that look; False when there is none
    (or the tenant already has brands of its own)."""
    if not tenant.partner_id:
        return False
    source = await find_partner_brand(session, tenant.partner_id)
    if source is None or await brands_of(session, tenant.id):
        return False
    row = Brand(
        id=new_id("b_"),
        tenant_id=tenant.id,
        name=DEFAULT_NAME,
        is_default=True,
        display_name=tenant.display_name or tenant.name,
        updated_by=actor,
    )
    for field in COPIED:
        setattr(row, field, getattr(source, field))
    tenant.brand_color = source.color
    tenant.hide_subject = not source.show_subject
    session.add(row)
    await session.flush()
    return True
