"""Seal a parsed message for the portal: the text body, the HTML body and every other
part each become their own sealed object; a :class:`PortalMessage` lists them.

Base64 attachments (nearly all of them) are decoded slice by slice while they are
sealed, so a large file is not held decoded in memory on top of the parsed message.
"""

from __future__ import annotations

import asyncio
import binascii
import hashlib
import re
from collections.abc import Iterable, Iterator
from email.message import EmailMessage

from sqlalchemy.ext.asyncio import AsyncSession

from core.portal_message import Part, PortalMessage
from core.storage.vault import Vault
from gateway.pipeline.triggers import header_text

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


_NOT_B64 = re.compile(r"[^A-Za-z0-9+/]")


def _b64_chunks(text: str) -> Iterator[bytes]:
    """Decode leniently, as mail readers do: characters outside the alphabet (dots, stray
    punctuation, padding in the middle) are dropped before the quartets are counted;
    otherwise ``binascii`` skips them itself and a broken body fails the whole message."""
    carry = ""
    for i in range(0, len(text), B64_SLICE):
        piece = carry + _NOT_B64.sub("", text[i : i + B64_SLICE])
        cut = len(piece) - len(piece) % 4
        if cut:
            yield binascii.a2b_base64(piece[:cut])
        carry = piece[cut:]
    if len(carry) > 1:
        yield binascii.a2b_base64(carry + "=" * (-len(carry) % 4))


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
    yield part.get_payload(decode=True) or b""


def _leaves(part: EmailMessage) -> Iterator[EmailMessage]:
    if part.get_content_type() == "message/rfc822":
        yield part  # an attached message stays one attachment
    elif part.is_multipart():
        for sub in part.iter_parts():
            yield from _leaves(sub)  # type: ignore[arg-type]
    else:
        yield part


def _addresses(msg: EmailMessage, name: str) -> tuple[str, ...]:
    try:
        header = msg.get(name)
        if header is None:
            return ()
        return tuple(str(a) for a in header.addresses)
    except Exception:  # noqa: BLE001 - malformed address header: show it as text
        return (header_text(msg, name),)


def sender_of(msg: EmailMessage, fallback: str) -> tuple[str, str, str]:
    """``(as displayed, display name, address)`` of the From header."""
    try:
        header = msg.get("From")
        if header is not None and header.addresses:
            addr = header.addresses[0]
            return str(addr), addr.display_name, addr.addr_spec
    except Exception:  # noqa: BLE001, S110 - a malformed From: fall back to the envelope
        pass
    return fallback, "", fallback


def _body_text(part: EmailMessage | None) -> bytes | None:
    if part is None:
        return None
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # unknown charset: keep the bytes readable
        content = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    return content.encode("utf-8") if isinstance(content, str) else bytes(content)


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
        content_id = (leaf.get("Content-ID") or "").strip().strip("<>")
        inline = leaf.get_content_disposition() == "inline" or (
            bool(content_id) and leaf.get_content_disposition() != "attachment"
        )
        attachments.append(
            Part(
                object_id=obj.id,
                filename=leaf.get_filename() or f"attachment-{n}",
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
        text_object_id=text_id,
        html_object_id=html_id,
        attachments=tuple(attachments),
    )
