"""Response headers every portal response carries, and CSRF protection.

CSRF, two kinds:
- Signed in: each session has a random CSRF token (``PortalSession.csrf_token``); every
  form carries it and the server compares it in constant time.
- Before a session exists (``/m/{token}`` forms): a signed double-submit. ``GET /m/{token}``
  sets a random nonce in the cookie ``__Host-sealmail_pre`` (SameSite=Strict) and puts
  ``HMAC(key, nonce | token hash)`` in the form; a POST must bring both, matching.
In both cases a request whose ``Origin`` (or ``Sec-Fetch-Site``) says it came from another
site is refused before anything else.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.hashing import hmac_sha256

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
    "font-src 'self'; connect-src 'self'; frame-src 'self'; child-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# The message body frame: sanitized HTML, inline styles only, no network at all (no images:
# the sanitizer keeps only cid: ones, which no page serves yet).
BODY_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; font-src 'none'; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'self'; "
    "sandbox allow-popups allow-popups-to-escape-sandbox"
)
DOWNLOAD_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"
HSTS = "max-age=63072000; includeSubDomains"
STATIC_PREFIXES = ("/static/", "/brand/")
# Outlook frames the add-in's pages: their own CSP frame-ancestors names Outlook's origins,
# and X-Frame-Options (which cannot name them) is left off there.
FRAMED_PREFIX = "/addin/"

SESSION_COOKIE = "__Host-sealmail_session"
PRE_COOKIE = "__Host-sealmail_pre"

_DEFAULTS: tuple[tuple[str, str], ...] = (
    ("content-security-policy", PAGE_CSP),
    ("strict-transport-security", HSTS),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()"),
)


class SecurityHeadersMiddleware:
    """Adds the security headers to every response that does not set its own (the body
    frame and downloads set a stricter CSP and their own framing rule); a CSP a handler
    sets without ``frame-ancestors`` gets ``frame-ancestors 'none'`` added."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                add_security_headers(MutableHeaders(scope=message), path)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class SecuredStarlette(Starlette):
    """Starlette with :class:`SecurityHeadersMiddleware` outside everything, Starlette's own
    ``ServerErrorMiddleware`` included: one place covers pages, JSON, downloads, static
    files, redirects, 404s and 500s alike."""

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeadersMiddleware(super().build_middleware_stack())


def add_security_headers(headers: MutableHeaders, path: str) -> None:
    for name, value in _DEFAULTS:
        if name == "x-frame-options" and path.startswith(FRAMED_PREFIX):
            continue
        if name not in headers:
            headers[name] = value
    csp = headers["content-security-policy"]
    if "frame-ancestors" not in csp:
        headers["content-security-policy"] = f"{csp.rstrip('; ')}; frame-ancestors 'none'"
    if "frame-ancestors 'none'" in headers["content-security-policy"]:
        # an add-in path that is not one of its framed pages (a 404, a manifest): no framing
        headers.setdefault("x-frame-options", "DENY")
    if "cache-control" not in headers:
        static = path.startswith(STATIC_PREFIXES)
        headers["cache-control"] = "public, max-age=3600" if static else "no-store"


def same_origin_request(request: Request, allowed_origins: Iterable[str]) -> bool:
    """False when the browser tells us the request came from another site.

    ``Sec-Fetch-Site`` decides when present. Otherwise ``Origin`` must be ours, except that
    under ``Referrer-Policy: no-referrer`` browsers send ``Origin: null`` for our own forms;
    then, as for clients that send neither, the CSRF token alone decides.
    """
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site:
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    # our host under either scheme: behind a TLS-terminating proxy we see http, the browser
    # says https; a page on our own host is ours under both
    own = {f"https://{request.url.netloc}", f"http://{request.url.netloc}"}
    return origin in {*own, *allowed_origins}


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def pre_session_token(key: bytes, nonce: str, token_hash: str) -> str:
    return hmac_sha256(key, f"pre-session\x00{nonce}\x00{token_hash}".encode())


def check_pre_session(key: bytes, nonce: str | None, submitted: str, token_hash: str) -> bool:
    if not nonce or not submitted:
        return False
    return hmac.compare_digest(pre_session_token(key, nonce, token_hash), submitted)


def check_session_token(expected: str, submitted: str) -> bool:
    return bool(submitted) and hmac.compare_digest(expected.encode(), submitted.encode())
