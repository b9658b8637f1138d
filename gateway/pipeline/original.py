"""The original message for the pipeline: whole when small, a skeleton and a stream when large.

A message of up to :data:`LARGE` bytes is read and parsed whole, as it always was. A larger
one (up to ``smtp_max_message_size``, 150 MiB by default) is never held: its sealed raw
object is read chunk by chunk (:meth:`core.storage.vault.Vault.chunks`), once for its
:class:`~core.mime_stream.Skeleton` (headers, part tree, bounded prefixes) and once more
per part that is sealed for the portal (:func:`seal_parts_large`), each part decoded slice
by slice on the way. Memory is bounded by the chunk size and the skeleton's prefixes.
"""

from __future__ import annotations

import asyncio
import binascii
import codecs
import dataclasses
import hashlib
import quopri
import re
from collections.abc import Callable, Iterable, Iterator
from email.message import EmailMessage

from sqlalchemy.ext.asyncio import AsyncSession

from archive import index
from core.mime_stream import PartInfo, Skeleton, body_chunks, scan
from core.mime_text import b64_tolerant, header_addresses, header_text, shown_address
from core.portal_message import Part, PortalMessage
from core.storage.vault import Vault
from gateway.pipeline.portal_seal import sender_of

LARGE = 4 * 1024 * 1024  # a message above this many bytes takes the large path
PART_PREFIX = 2 * 1024 * 1024  # raw body bytes of each part the skeleton keeps

Reader = Callable[[], Iterator[bytes]]


@dataclasses.dataclass
class LargeOriginal:
    """A large message: how to read it again, its skeleton, its raw header block and its
    archive summary (SHA-256 and size computed on the same pass)."""

    read: Reader
    skeleton: Skeleton
    head: bytes
    summary: index.StreamSummary

    def archive_summary(self, envelope_from: str, envelope_rcpts: Iterable[str]) -> index.Summary:
        """The archive's summary: digest and size from the stream, attachment names from
        the skeleton's part tree (as :func:`archive.index.summarise` names them)."""
        summary = self.summary.summary(envelope_from, envelope_rcpts)
        names: list[str] = []
        root = self.skeleton.root
        for leaf in root.leaves() if root.multipart else ():
            try:
                filename = leaf.headers.get_filename()
            except Exception:  # noqa: BLE001 - a parameter the parser cannot read
                filename = None
            if filename or leaf.disposition == "attachment":
                names.append(str(filename or "(unnamed)"))
        summary.attachments = names
        return summary


async def open_large(
    vault: Vault, session: AsyncSession, tenant_id: str, object_id: str
) -> LargeOriginal:
    """Scan the sealed raw message (in a thread) into its skeleton, in one pass."""
    read = await vault.chunks(session, tenant_id, object_id)

    def work() -> LargeOriginal:
        summary = index.StreamSummary()

        def tee() -> Iterator[bytes]:
            for chunk in read():
                summary.feed(chunk)
                yield chunk

        skeleton = scan(tee(), prefix_limit=PART_PREFIX)
        end = min(skeleton.root.body_start, index.HEAD_LIMIT)
        head = b"".join(body_chunks(read(), 0, end))
        return LargeOriginal(read, skeleton, head, summary)

    return await asyncio.to_thread(work)


def _is_attachment(part: PartInfo) -> bool:
    return part.headers.get("Content-Disposition") is not None and part.disposition == "attachment"


def _find_body(part: PartInfo, prefs: tuple[str, ...]) -> Iterator[tuple[int, PartInfo]]:
    """The standard library's body search (``EmailMessage.get_body``) over a skeleton."""
    if _is_attachment(part):
        return
    maintype, _, subtype = part.content_type.partition("/")
    if maintype == "text":
        if subtype in prefs:
            yield prefs.index(subtype), part
        return
    if maintype != "multipart" or not part.multipart:
        return
    if subtype != "related":
        for sub in part.children:
            yield from _find_body(sub, prefs)
        return
    candidate = None
    start = part.headers.get_param("start")
    if start:
        candidate = next((s for s in part.children if s.headers["content-id"] == start), None)
    if candidate is None and part.children:
        candidate = part.children[0]
    if candidate is not None:
        yield from _find_body(candidate, prefs)


def get_body(skeleton: Skeleton, subtype: str) -> PartInfo | None:
    """The body part of that subtype (``plain`` or ``html``), or ``None``."""
    for _, part in _find_body(skeleton.root, (subtype,)):
        return part
    return None


def _b64(chunks: Iterable[bytes]) -> Iterator[bytes]:
    carry = b""
    for chunk in chunks:
        piece = carry + re.sub(rb"[^A-Za-z0-9+/]", b"", chunk)
        cut = len(piece) - len(piece) % 4
        if cut:
            yield binascii.a2b_base64(piece[:cut])
        carry = piece[cut:]
    if carry:
        yield b64_tolerant(carry)


def _qp(chunks: Iterable[bytes]) -> Iterator[bytes]:
    carry = b""
    for chunk in chunks:
        data = carry + chunk
        cut = data.rfind(b"\n") + 1  # whole lines only: a soft break may end a chunk
        if cut:
            yield quopri.decodestring(data[:cut])
        carry = data[cut:]
    if carry:
        yield quopri.decodestring(carry)


def decode(raw: Iterable[bytes], encoding: str) -> Iterator[bytes]:
    """Body bytes ``raw`` decoded by the transfer ``encoding``, slice by slice."""
    if encoding == "base64":
        return _b64(raw)
    if encoding == "quoted-printable":
        return _qp(raw)
    return iter(raw)


def decoded_body(read: Reader, part: PartInfo) -> Iterator[bytes]:
    """A part's body decoded by its transfer encoding, slice by slice."""
    return decode(body_chunks(read(), part.body_start, part.body_end), part.encoding)


def _as_utf8(chunks: Iterable[bytes], charset: str) -> Iterator[bytes]:
    name = charset.split("*", 1)[0].strip().lower()
    try:
        decoder = codecs.getincrementaldecoder(name)(errors="replace")
        decoder.decode(b"")
    except Exception:  # noqa: BLE001 - an unknown or non-text codec: read it as UTF-8
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    for chunk in chunks:
        yield decoder.decode(chunk).encode("utf-8", "replace")
    yield decoder.decode(b"", final=True).encode("utf-8", "replace")


def _addresses(msg: EmailMessage, name: str) -> tuple[str, ...]:
    return tuple(shown_address(n, a) for n, a in header_addresses(msg, name))


class _Digest:
    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.size = 0

    def over(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.sha.update(chunk)
            self.size += len(chunk)
            yield chunk


async def seal_parts_large(
    session: AsyncSession,
    vault: Vault,
    tenant_id: str,
    original: LargeOriginal,
    subject: str,
    envelope_sender: str,
) -> PortalMessage:
    """:func:`gateway.pipeline.portal_seal.seal_parts` for a large message: every part
    sealed from the stream, decoded on the way, never held whole."""
    skel, read = original.skeleton, original.read
    text_part, html_part = get_body(skel, "plain"), get_body(skel, "html")
    ids: list[str | None] = []
    for body in (text_part, html_part):
        if body is None:
            ids.append(None)
            continue
        charset = body.headers.get_content_charset() or "utf-8"
        stream = _as_utf8(decoded_body(read, body), charset)
        ids.append((await vault.seal(session, tenant_id, stream, kind="part")).id)
    bodies = {id(text_part), id(html_part)}
    attachments: list[Part] = []
    for n, leaf in enumerate(skel.root.leaves(), 1):
        if id(leaf) in bodies:
            continue
        digest = _Digest()
        obj = await vault.seal(
            session, tenant_id, digest.over(decoded_body(read, leaf)), kind="part"
        )
        content_id = header_text(leaf.headers, "Content-ID").strip("<>")
        inline = leaf.disposition == "inline" or (
            bool(content_id) and leaf.disposition != "attachment"
        )
        attachments.append(
            Part(
                object_id=obj.id,
                filename=leaf.filename or f"attachment-{n}",
                content_type=leaf.content_type,
                size=digest.size,
                sha256=digest.sha.hexdigest(),
                inline=inline,
                content_id=content_id,
            )
        )
    msg = skel.headers
    shown, name, _ = sender_of(msg, envelope_sender)
    return PortalMessage(
        subject=subject,
        sender=shown,
        sender_name=name,
        to=_addresses(msg, "To"),
        cc=_addresses(msg, "Cc"),
        date=header_text(msg, "Date"),
        message_id_header=header_text(msg, "Message-ID"),
        not_shown=0,
        text_object_id=ids[0],
        html_object_id=ids[1],
        attachments=tuple(attachments),
    )
