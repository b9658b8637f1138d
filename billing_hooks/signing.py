"""``Sealmail-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`` (SPEC
§7), for webhooks in both directions. Verified on the raw bytes before anything parses the
body; several ``v1=`` values may be present while a secret is being rotated."""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "Sealmail-Signature"
TOLERANCE = 300.0  # seconds, either side of our clock
MAX_HEADER = 2048


class SignatureError(Exception):
    """The request is not signed by someone who knows the secret (or not recently)."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return mac.hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value for ``body``."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={signature(secret, t, body)}"


def verify(
    header: str | None,
    body: bytes,
    secret: str,
    now: float | None = None,
    tolerance: float = TOLERANCE,
) -> int:
    """Check ``header`` against ``body``; the timestamp is returned. Raises
    :class:`SignatureError` with a short reason otherwise."""
    if not header:
        raise SignatureError(f"missing {HEADER} header")
    if len(header) > MAX_HEADER:
        raise SignatureError(f"{HEADER} header too long")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            if not value.isdigit() or len(value) > 12:
                raise SignatureError("bad timestamp in signature")
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value.strip().lower())
    if timestamp is None or not candidates:
        raise SignatureError(f"malformed {HEADER} header (want t=...,v1=...)")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError(f"signature timestamp outside the {tolerance:.0f} s tolerance")
    expected = signature(secret, timestamp, body)
    ok = False
    for candidate in candidates:  # compare all of them: no early exit on a match
        ok |= hmac.compare_digest(candidate.encode(), expected.encode())
    if not ok:
        raise SignatureError("signature does not match")
    return timestamp
