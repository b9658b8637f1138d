"""Identifiers: random, never derived from message content."""

from __future__ import annotations

import base64
import secrets
import time


def new_id(prefix: str = "", nbytes: int = 10) -> str:
    """A random identifier: ``prefix`` + lowercase base32 (10 bytes → 16 characters)."""
    raw = base64.b32encode(secrets.token_bytes(nbytes)).decode().rstrip("=").lower()
    return f"{prefix}{raw}"


def queue_id() -> str:
    """A queue id that sorts by time: 8 hex digits of seconds + 12 random base32 characters."""
    return f"{int(time.time()):08X}" + new_id(nbytes=8).upper()[:12]


def new_token(nbytes: int = 32) -> str:
    """A URL-safe secret token (≥ 128 bits; default 256)."""
    return secrets.token_urlsafe(nbytes)
