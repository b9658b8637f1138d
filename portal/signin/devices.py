"""Remembered devices: "Remember this device for N days" on the code forms.

The browser keeps a cookie (``__Host-sealmail-device``: Secure, HttpOnly, SameSite=Lax,
Max-Age N days) holding 256 random bits; the database keeps only their SHA-256, per
identity (one browser may be remembered for a recipient address and a work address), with
a hash of the User-Agent it was set for and a label made from it ("Chrome on Linux"). A
cookie that arrives with another User-Agent is refused. That is as close to the device as
a cookie gets; it is not hardware binding: a thief who copies the cookie and the
User-Agent string passes, until the person or an admin forgets the device or it expires.

A remembered device opens a session of factor ``device``: it replaces the code, never a
passkey, and never satisfies step-up. N is the tenant's ``remember_days`` (0: not offered).
"""

from __future__ import annotations

import re
from typing import Any, cast

from sqlalchemy import delete, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from conversations.protection import MAX_REMEMBER_DAYS, settings_of
from core.hashing import sha256_hex
from core.ids import new_id, new_token
from core.models import now
from portal.models import RememberedDevice

DEVICE_COOKIE = "__Host-sealmail-device"
DAY = 86400.0
_MAX_SECRET = 100

_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"))
_SYSTEMS = (
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def device_label(user_agent: str) -> str:
    """ "Chrome on Linux", "Safari on iPhone", or "A browser" when nothing is recognised."""
    browser = next((name for mark, name in _BROWSERS if mark in user_agent), "")
    if not browser and re.search(r"Version/[\d.]+.*Safari/", user_agent):
        browser = "Safari"
    system = next((name for mark, name in _SYSTEMS if mark in user_agent), "")
    if browser and system:
        return f"{browser} on {system}"
    return browser or (f"A browser on {system}" if system else "A browser")


def _ua_hash(request: Request) -> str:
    return sha256_hex(f"device-ua\x00{request.headers.get('user-agent', '')}".encode())


def _secret(request: Request) -> str:
    value = request.cookies.get(DEVICE_COOKIE) or ""
    return value if 0 < len(value) <= _MAX_SECRET else ""


async def remember_days(s: AsyncSession, tenant_id: str) -> int:
    """How many days the tenant lets a device be remembered (0: not offered)."""
    if not tenant_id:
        return 0
    days = (await settings_of(s, tenant_id)).remember_days
    return max(0, min(int(days or 0), MAX_REMEMBER_DAYS))


async def remember(
    s: AsyncSession, request: Request, response: Response, tenant_id: str, email: str
) -> bool:
    """Remember this browser for the identity for the tenant's ``remember_days`` (nothing
    when that is 0); sets the cookie on ``response``. The caller commits."""
    days = await remember_days(s, tenant_id)
    if days <= 0:
        return False
    email = email.strip().lower()
    secret = _secret(request) or new_token(32)
    secret_hash = sha256_hex(secret)
    await s.execute(
        delete(RememberedDevice).where(
            RememberedDevice.secret_hash == secret_hash,
            RememberedDevice.tenant_id == tenant_id,
            RememberedDevice.email == email,
        )
    )
    created = now()
    s.add(
        RememberedDevice(
            id=new_id("dv_"),
            secret_hash=secret_hash,
            tenant_id=tenant_id,
            email=email,
            ua_hash=_ua_hash(request),
            label=device_label(request.headers.get("user-agent", ""))[:80],
            created_at=created,
            expires_at=created + days * DAY,
        )
    )
    response.set_cookie(
        DEVICE_COOKIE,
        secret,
        max_age=int(days * DAY),
        path="/",
        secure=True,
        httponly=True,
        samesite="lax",
    )
    return True


async def remembered(s: AsyncSession, request: Request) -> list[RememberedDevice]:
    """The live identities this browser is remembered for: its cookie's rows, not expired,
    set for this same User-Agent."""
    secret = _secret(request)
    if not secret:
        return []
    stmt = select(RememberedDevice).where(
        RememberedDevice.secret_hash == sha256_hex(secret),
        RememberedDevice.expires_at > now(),
        RememberedDevice.ua_hash == _ua_hash(request),
    )
    return list((await s.execute(stmt.order_by(RememberedDevice.created_at))).scalars())


async def remembered_for(
    s: AsyncSession, request: Request, tenant_id: str, email: str
) -> RememberedDevice | None:
    """This browser's live remembering of the identity, if any."""
    email = email.strip().lower()
    for row in await remembered(s, request):
        if row.tenant_id == tenant_id and row.email == email:
            return row
    return None


async def used(s: AsyncSession, device: RememberedDevice) -> None:
    await s.execute(
        update(RememberedDevice).where(RememberedDevice.id == device.id).values(last_used_at=now())
    )


def is_this_browser(request: Request, device: RememberedDevice) -> bool:
    secret = _secret(request)
    return bool(secret) and sha256_hex(secret) == device.secret_hash


async def devices_of(s: AsyncSession, tenant_id: str, email: str) -> list[RememberedDevice]:
    """The identity's remembered devices that have not expired, newest first."""
    stmt = select(RememberedDevice).where(
        RememberedDevice.tenant_id == tenant_id,
        RememberedDevice.email == email.strip().lower(),
        RememberedDevice.expires_at > now(),
    )
    return list((await s.execute(stmt.order_by(RememberedDevice.created_at.desc()))).scalars())


async def forget(s: AsyncSession, tenant_id: str, email: str, device_id: str | None = None) -> int:
    """Forget one of the identity's devices, or all of them (``device_id`` None); how many
    went. The caller audits and commits."""
    stmt = delete(RememberedDevice).where(
        RememberedDevice.tenant_id == tenant_id, RememberedDevice.email == email.strip().lower()
    )
    if device_id is not None:
        stmt = stmt.where(RememberedDevice.id == device_id)
    result = cast(CursorResult[Any], await s.execute(stmt))
    return int(result.rowcount or 0)
