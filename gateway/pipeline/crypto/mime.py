"""Structural MIME for encrypted output: split a message into the headers that stay outside
and the body entity that is encrypted, and wrap ciphertext back into a complete message."""

from __future__ import annotations

import io
from collections.abc import Iterable
from email.generator import BytesGenerator
from email.message import EmailMessage, MIMEPart
from email.policy import SMTP

from core.mime_text import parse_message

# Headers a reader sees; copied into the encrypted part when the subject is protected
# (draft-autocrypt-lamps-protected-headers, "protected-headers=v1").
PROTECTED = ("from", "to", "cc", "reply-to", "subject", "date", "message-id")
PLACEHOLDER_SUBJECT = "..."
INTERNAL_PREFIX = "x-sealmail-"


def parse(raw: bytes) -> EmailMessage:
    return parse_message(raw)


def to_bytes(part: MIMEPart) -> bytes:
    buf = io.BytesIO()
    BytesGenerator(buf, mangle_from_=False, policy=SMTP).flatten(part)
    return buf.getvalue()


def _add(msg: EmailMessage, name: str, value: object) -> None:
    """Add a header, skipping a second copy of one that may appear once (From, Subject,
    Content-Type...): the first counts, as it does for the portal and the policy."""
    limit = msg.policy.header_max_count(name)
    if limit is not None and len(msg.get_all(name, ())) >= limit:
        return
    msg[name] = value


def _is_content(name: str) -> bool:
    return name.lower().startswith("content-")


def split(raw: bytes, *, protect: bool) -> tuple[list[tuple[str, object]], EmailMessage]:
    """(outer headers, inner entity). The inner entity is the original body with its
    ``Content-*`` headers (and, when ``protect``, the reader-visible headers, marked v1)."""
    msg = parse(raw)
    items = [(n, v) for n, v in msg.items() if not n.lower().startswith(INTERNAL_PREFIX)]
    outer = [(n, v) for n, v in items if not _is_content(n)]
    content = [(n, v) for n, v in items if _is_content(n)]
    for name in set(msg.keys()):
        del msg[name]
    if protect:
        for n, v in outer:
            if n.lower() in PROTECTED:
                _add(msg, n, v)
    for n, v in content:
        _add(msg, n, v)
    if protect:
        if msg.get("Content-Type") is None:
            msg["Content-Type"] = "text/plain; charset=us-ascii"
        msg.set_param("protected-headers", "v1")
        outer = [(n, v) for n, v in outer if n.lower() != "subject"]
        outer.append(("Subject", PLACEHOLDER_SUBJECT))
    return outer, msg


def start(outer: Iterable[tuple[str, object]]) -> EmailMessage:
    """A new message carrying the ``outer`` headers (and ``MIME-Version``), no body yet."""
    msg = EmailMessage(policy=SMTP)
    for n, v in outer:
        _add(msg, n, v)
    if msg.get("MIME-Version") is None:
        msg["MIME-Version"] = "1.0"
    return msg


def envelope(
    outer: Iterable[tuple[str, object]], content_type: str, parts: Iterable[MIMEPart]
) -> bytes:
    """A complete message: ``outer`` headers, then a multipart body of ``parts``."""
    msg = start(outer)
    msg["Content-Type"] = content_type
    for p in parts:
        msg.attach(p)
    return to_bytes(msg)
