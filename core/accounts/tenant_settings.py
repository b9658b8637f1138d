"""A tenant's settings (branding, notifications, OpenPGP, next hop, journal address, the
defaults of secure conversations), changed after validation and audited.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts.domains import tenant_domains
from core.addresses import domain_of, normalize, problem
from core.audit import audit
from core.config.values import parse_relay
from core.errors import PermanentError
from core.models import Tenant

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
REPLY_DEFAULTS = ("none", "sender", "all")
FORWARD_DEFAULTS = ("no", "internal", "yes")
SENT_USERS = ("domain", "listed")


_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalize_portal_host(text: str) -> str | None:
    """A tenant's own portal host name (``secure.acme.example``), lower case, or None for ''.
    A name only: no scheme, port, path or IP address (certificates and links are by name)."""
    host = text.strip().lower().rstrip(".")
    if not host:
        return None
    labels = host.split(".")
    if (
        len(host) > 253
        or len(labels) < 2
        or not all(_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise PermanentError(
            f"portal host {text.strip()!r} must be a host name such as secure.example.com"
        )
    return host


async def update_tenant(
    session: AsyncSession,
    tenant: Tenant,
    actor: str,
    *,
    display_name: str | None = None,
    logo_url: str | None = None,
    brand_color: str | None = None,
    hide_subject: bool | None = None,
    sensitivity_trigger: bool | None = None,
    notification_from: str | None = None,
    wkd_lookup: bool | None = None,
    pgp_protect_subject: bool | None = None,
    relay: str | None = None,
    journal_address: str | None = None,
    receipt_default: bool | None = None,
    reply_default: str | None = None,
    forward_default: str | None = None,
    sent_users: str | None = None,
    portal_host: str | None = None,
) -> dict[str, Any]:
    """Change a tenant's settings; returns what changed (audited)."""
    changes: dict[str, Any] = {}
    if display_name is not None:
        if not display_name.strip() or len(display_name) > 200:
            raise PermanentError("display name must be 1 to 200 characters")
        changes["display_name"] = display_name.strip()
    if logo_url is not None:
        if logo_url and (not logo_url.startswith("https://") or any(c.isspace() for c in logo_url)):
            raise PermanentError("logo URL must start with https:// (or be empty)")
        changes["logo_url"] = logo_url
    if brand_color is not None:
        if not _COLOR.match(brand_color):
            raise PermanentError("brand color must look like #1f4e79")
        changes["brand_color"] = brand_color.lower()
    if hide_subject is not None:
        changes["hide_subject"] = hide_subject
    if sensitivity_trigger is not None:
        changes["sensitivity_trigger"] = sensitivity_trigger
    if wkd_lookup is not None:
        changes["wkd_lookup"] = wkd_lookup
    if pgp_protect_subject is not None:
        changes["pgp_protect_subject"] = pgp_protect_subject
    if notification_from is not None:
        address = normalize(notification_from)
        if address and domain_of(address) not in await tenant_domains(session, tenant.id):
            raise PermanentError(
                f"notification address {address!r} is not in one of the tenant's domains"
            )
        if address and problem(address) is not None:
            raise PermanentError(f"notification address {address!r} is not an email address")
        changes["notification_from"] = address
    if journal_address is not None:
        # Exchange Online journals only to an address outside the organisation, so this
        # is usually one in the MSP's domain; it names the tenant, so it is unique.
        address = normalize(journal_address)
        if address and problem(address) is not None:
            raise PermanentError(f"journal address {address!r} is not an email address")
        if address:
            other = (
                await session.execute(
                    select(Tenant.name).where(
                        Tenant.journal_address == address, Tenant.id != tenant.id
                    )
                )
            ).scalar_one_or_none()
            if other is not None:
                raise PermanentError(f"journal address {address!r} belongs to another tenant")
        changes["journal_address"] = address
    if relay is not None:
        hop = relay.strip()
        if hop:
            try:
                hop = parse_relay(hop)
            except ValueError:
                raise PermanentError(
                    f"next hop {relay!r}: expected host:port, mx, or '' for the global relay"
                ) from None
        changes["relay"] = hop
    # secure conversations (issue 12): what a message's X-Sealmail-* options default to
    if receipt_default is not None:
        changes["receipt_default"] = receipt_default
    for key, value, allowed in (
        ("reply_default", reply_default, REPLY_DEFAULTS),
        ("forward_default", forward_default, FORWARD_DEFAULTS),
        ("sent_users", sent_users, SENT_USERS),
    ):
        if value is None:
            continue
        word = value.strip().lower()
        if word not in allowed:
            raise PermanentError(f"{key.replace('_', ' ')} must be one of {', '.join(allowed)}")
        changes[key] = word
    if portal_host is not None:
        host = normalize_portal_host(portal_host)
        if host is not None:
            other = (
                await session.execute(
                    select(Tenant.name).where(Tenant.portal_host == host, Tenant.id != tenant.id)
                )
            ).scalar_one_or_none()
            if other is not None:
                raise PermanentError(f"portal host {host!r} belongs to another tenant")
        changes["portal_host"] = host
    changes = {k: v for k, v in changes.items() if getattr(tenant, k) != v}
    for key, value in changes.items():
        setattr(tenant, key, value)
    if changes:
        await audit(session, tenant.id, actor, "tenant.update", tenant.id, **changes)
    return changes
