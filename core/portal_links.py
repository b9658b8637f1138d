"""Where a tenant's links point: the operator's ``portal_base_url``, or the tenant's own
portal host (``tenant update --portal-host``) under the same scheme. Every link sealmail
writes for a tenant (notices, codes, receipts, copies asked for) is built from this."""

from __future__ import annotations

from urllib.parse import urlsplit


def portal_url_for(portal_base_url: str, portal_host: str | None) -> str:
    """The portal's base URL for a tenant, without a trailing slash."""
    base = portal_base_url.rstrip("/")
    if not portal_host:
        return base
    scheme = urlsplit(base).scheme or "https"
    return f"{scheme}://{portal_host}"
