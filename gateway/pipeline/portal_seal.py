"""Seal a parsed message for the portal: the text body, the HTML body and every other
part each become their own sealed object; a :class:`PortalMessage` lists them.

Base64 attachments (nearly all of them) are decoded slice by slice while they are
sealed, so a large file is not held decoded in memory on top of the parsed message.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Iterable, Iterator
from email.message import EmailMessage

from sqlalchemy.ext.asyncio import AsyncSession

from core.addresses import valid_or_empty
from core.mime_text import (
    b64_tolerant,
    header_addresses,
    header_text,
    part_filename,
    part_text,
    parts_not_shown,
    shown_address,
)
from core.portal_message import Part, PortalMessage
from core.storage.vault import Vault

B64_SLICE = 1024 * 1024  # characters of base64 text decoded at a time


class _Digest:
    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.size = 0

    def over(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.sha.update(chunk)
            self.size += len(chunk)
            yield chunk


def _b64_chunks(text: str) -> Iterator[bytes]:
    """Decoded slice by slice; characters outside the alphabet are skipped, as readers do."""
    carry = b""
    for i in range(0, len(text), B64_SLICE):
        piece = carry + re.sub(
            rb"[^A-Za-z0-9+/]", b"", text[i : i + B64_SLICE].encode("ascii", "ignore")
        )
        cut = len(piece) - len(piece) % 4
        if cut:
            yield b64_tolerant(piece[:cut])
        carry = piece[cut:]
    if carry:
        yield b64_tolerant(carry)


def decoded_chunks(part: EmailMessage) -> Iterator[bytes]:
    """The part's decoded bytes, in slices where the encoding allows."""
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload(0)
        yield inner.as_bytes() if isinstance(inner, EmailMessage) else b""
        return
    payload = part.get_payload()
    if part.get("Content-Transfer-Encoding", "").strip().lower() == "base64" and isinstance(
        payload, str
    ):
        yield from _b64_chunks(payload)
        return
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 - a broken transfer encoding: keep the raw text
        payload = str(part.get_payload()).encode("utf-8", "surrogateescape")
    yield payload if isinstance(payload, bytes) else b""


def _leaves(part: EmailMessage) -> Iterator[EmailMessage]:
    if part.get_content_type() == "message/rfc822":
        yield part  # an attached message stays one attachment
    elif part.is_multipart():
        for sub in part.iter_parts():
            yield from _leaves(sub)  # type: ignore[arg-type]
    else:
        yield part


def _addresses(msg: EmailMessage, name: str) -> tuple[str, ...]:
    return tuple(shown_address(n, a) for n, a in header_addresses(msg, name))


def sender_of(msg: EmailMessage, fallback: str) -> tuple[str, str, str]:
    """``(as displayed, display name, address)`` of the (first) From header; the envelope
    sender stands in for an address that is missing or is not one."""
    found = header_addresses(msg, "From", first_only=True)
    name, addr = found[0] if found else ("", "")
    if not valid_or_empty(addr):
        return shown_address(name, fallback), name, fallback
    return shown_address(name, addr), name, addr


def _body_text(part: EmailMessage | None) -> bytes | None:
    if part is None:
        return None
    return part_text(part).encode("utf-8")


def _get_body(msg: EmailMessage, subtype: str) -> EmailMessage | None:
    """The body part of that subtype, or ``None``. The standard library's search fails on
    a multipart whose parts could not be parsed (e.g. a ``multipart/related`` with only a
    closing delimiter: its payload is a string); such a message then has no body of its own
    and its content is kept as an attachment."""
    try:
        return msg.get_body(preferencelist=(subtype,))  # type: ignore[return-value]
    except (AttributeError, TypeError, IndexError):
        return None


async def seal_parts(
    session: AsyncSession,
    vault: Vault,
    tenant_id: str,
    msg: EmailMessage,
    subject: str,
    envelope_sender: str,
) -> PortalMessage:
    """Seal bodies and attachments (kind ``part``); return what the portal will show."""
    text_part = _get_body(msg, "plain")
    html_part = _get_body(msg, "html")
    text_id = html_id = None
    text = await asyncio.to_thread(_body_text, text_part)  # type: ignore[arg-type]
    if text is not None:
        text_id = (await vault.seal(session, tenant_id, text, kind="part")).id
    html = await asyncio.to_thread(_body_text, html_part)  # type: ignore[arg-type]
    if html is not None:
        html_id = (await vault.seal(session, tenant_id, html, kind="part")).id
    bodies = {id(text_part), id(html_part)}
    attachments: list[Part] = []
    for n, leaf in enumerate(_leaves(msg), 1):
        if id(leaf) in bodies:
            continue
        digest = _Digest()
        obj = await vault.seal(session, tenant_id, digest.over(decoded_chunks(leaf)), kind="part")
        content_id = header_text(leaf, "Content-ID").strip("<>")
        inline = leaf.get_content_disposition() == "inline" or (
            bool(content_id) and leaf.get_content_disposition() != "attachment"
        )
        attachments.append(
            Part(
                object_id=obj.id,
                filename=part_filename(leaf) or f"attachment-{n}",
                content_type=leaf.get_content_type(),
                size=digest.size,
                sha256=digest.sha.hexdigest(),
                inline=inline,
                content_id=content_id,
            )
        )
    shown, name, _ = sender_of(msg, envelope_sender)
    return PortalMessage(
        subject=subject,
        sender=shown,
        sender_name=name,
        to=_addresses(msg, "To"),
        cc=_addresses(msg, "Cc"),
        date=header_text(msg, "Date"),
        message_id_header=header_text(msg, "Message-ID"),
        not_shown=parts_not_shown(msg),
        text_object_id=text_id,
        html_object_id=html_id,
        attachments=tuple(attachments),
    )
