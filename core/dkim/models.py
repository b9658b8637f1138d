"""A tenant's DKIM signing keys (issue 13). The private key is wrapped by the tenant's
key-encryption key (:mod:`core.aead`), never stored in clear; the public half is what the
tenant publishes as ``<selector>._domainkey.<domain>``."""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Base, now


class DkimKey(Base):
    __tablename__ = "dkim_keys"
    __table_args__ = (Index("ix_dkim_keys_tenant_domain", "tenant_id", "domain"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    domain: Mapped[str] = mapped_column(String(253))
    selector: Mapped[str] = mapped_column(String(63))
    algorithm: Mapped[str] = mapped_column(String(16), default="rsa-sha256")
    wrapped_private_key: Mapped[bytes] = mapped_column(LargeBinary)
    kek_version: Mapped[int] = mapped_column(Integer)
    public_key: Mapped[str] = mapped_column(Text)  # base64 DER, the p= of the TXT record
    state: Mapped[str] = mapped_column(String(16), default="active")  # pending|active|retired
    created_at: Mapped[float] = mapped_column(Float, default=now)
    activated_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    retired_at: Mapped[float | None] = mapped_column(Float, nullable=True)
