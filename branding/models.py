"""Branding's tables (issue 13): a tenant's brands (how its notices and portal pages look,
several per tenant, chosen by a policy rule's ``brand:``) and the reference codes its notices
carry so that a recipient can check at ``/verify`` that a notice is genuine."""

from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Base, now


class Brand(Base):
    """One look of a tenant's mail and pages. Texts are the tenant's own words (not message
    content); the logo is stored re-encoded (PNG), never as uploaded."""

    __tablename__ = "brands"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # a tenant's brand, or (tenant_id NULL) a partner's default brand its new tenants start from
    tenant_id: Mapped[str | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True, nullable=True
    )
    partner_id: Mapped[str | None] = mapped_column(
        ForeignKey("partners.id", ondelete="CASCADE"), index=True, nullable=True
    )
    name: Mapped[str] = mapped_column(String(100))  # what a policy rule's brand: names
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    logo_png: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    logo_sha256: Mapped[str] = mapped_column(String(64), default="")
    logo_width: Mapped[int] = mapped_column(default=0)
    logo_height: Mapped[int] = mapped_column(default=0)
    color: Mapped[str] = mapped_column(String(16), default="#1f4e79")  # header and button
    text_color: Mapped[str] = mapped_column(String(16), default="#ffffff")  # text on color
    notification_text: Mapped[str] = mapped_column(Text, default="")
    portal_intro: Mapped[str] = mapped_column(Text, default="")
    footer_text: Mapped[str] = mapped_column(Text, default="")
    read_button_text: Mapped[str] = mapped_column(String(100), default="")
    privacy_url: Mapped[str] = mapped_column(String(500), default="")
    support_contact: Mapped[str] = mapped_column(String(320), default="")
    show_sender: Mapped[bool] = mapped_column(Boolean, default=True)
    show_subject: Mapped[bool] = mapped_column(Boolean, default=True)
    template_html: Mapped[str] = mapped_column(Text, default="")  # a custom notice, sandboxed
    template_text: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[float] = mapped_column(Float, default=now)
    updated_by: Mapped[str] = mapped_column(String(320), default="")


class NoticeReference(Base):
    """The short reference code a notice carries, stored hashed; ``/verify`` answers who sent
    it, for which tenant and when, never what."""

    __tablename__ = "notice_references"
    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(32), index=True)
    message_id: Mapped[str] = mapped_column(String(32), index=True)
    recipient: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[float] = mapped_column(Float, default=now)
