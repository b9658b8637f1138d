"""Downloads of what the recipient can read: one message or its whole conversation, as an
email file (``download.eml``, ``thread.eml``: a multipart/digest of message/rfc822 parts)
or as a PDF (``download.pdf``, ``thread.pdf``).

The email file is rebuilt from the sealed parts the portal shows (From, To, Cc, Date,
Subject, Message-ID, the bodies, the attachments byte for byte), never the raw original,
which carries the gateway's internal headers and anything the sender's side added. The first
download of an access is recorded (event ``downloaded``); every download is audited. An
attachment above 1 MiB is streamed from its sealed object into the email file, never held.
"""

from __future__ import annotations

import asyncio
import email.header
import email.policy
import re
import secrets
from collections.abc import AsyncIterator
from email.message import EmailMessage, Message
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from core.audit import audit
from core.mime_stream import Base64Lines
from core.mime_text import clean, clean_lines
from core.models import PortalAccess, PortalSession
from core.portal_message import PortalMessage
from portal.reader.access import load_with_access, recipient_session
from portal.reader.attachments import content_disposition
from portal.reader.people import full_name, sent_sentence
from portal.reader.receipts import mark_downloaded
from portal.reader.thread import Item, thread_items
from portal.security import DOWNLOAD_CSP
from portal.state import PortalState, portal

STREAM_ABOVE = 1024 * 1024  # an attachment above this is streamed into the email file
_CID = re.compile(r"[!#-;=?-~]{1,200}")  # printable ASCII without space, quotes or <>
_HEADERS = ("From", "To", "Cc", "Date", "Subject", "Message-ID")


def _set_header(msg: Message, name: str, value: str) -> None:
    """Set a header from displayed text. Some values the email package cannot parse as
    that header (a group in From) or parses but cannot fold again (an encoded word ending
    in a full-width comma); those are stored as one RFC 2047 encoded text instead, which
    every reader shows."""
    value = clean(value)
    if not value:
        return
    try:
        msg[name] = value
        email.policy.SMTP.fold_binary(name, msg[name])
        return
    except Exception:  # noqa: BLE001 - on hostile input the parser raises many kinds
        del msg[name]
    encoded = email.header.Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    msg.set_raw(name, encoded)


async def _text(st: PortalState, s: AsyncSession, tenant_id: str, object_id: str | None) -> str:
    if not object_id:
        return ""
    raw = await st.services.vault.read(s, tenant_id, object_id)
    return raw.decode("utf-8", "replace")


async def rebuild(
    st: PortalState,
    s: AsyncSession,
    tenant_id: str,
    pm: PortalMessage,
    streams: dict[bytes, AsyncIterator[bytes]] | None = None,
) -> EmailMessage:
    """The message as an RFC 5322 object, from its sealed parts. With ``streams``, an
    attachment above :data:`STREAM_ABOVE` bytes is not read: its body is a placeholder
    line, and ``streams`` maps that line to the attachment's sealed stream, which
    :func:`_streamed` writes in its place as base64."""
    msg = EmailMessage(policy=email.policy.SMTP)
    values = {
        "From": pm.sender,
        "To": ", ".join(pm.to),
        "Cc": ", ".join(pm.cc),
        "Date": pm.date,
        "Subject": pm.subject,
        "Message-ID": pm.message_id_header,
    }
    for name in _HEADERS:
        _set_header(msg, name, values[name])
    text = await _text(st, s, tenant_id, pm.text_object_id)
    html = await _text(st, s, tenant_id, pm.html_object_id)
    html_part: EmailMessage | None = None
    if pm.text_object_id:
        msg.set_content(clean_lines(text), charset="utf-8")
        if pm.html_object_id:
            msg.add_alternative(html, subtype="html", charset="utf-8")
            html_part = msg.get_payload()[-1]
    elif pm.html_object_id:
        msg.set_content(html, subtype="html", charset="utf-8")
        html_part = msg
    else:
        msg.set_content("", charset="utf-8")
    # images the HTML shows by cid: travel beside it (multipart/related), the rest attached
    related = [p for p in pm.attachments if p.inline and _CID.fullmatch(p.content_id)]
    related = related if html_part is not None else []
    for part in related:
        assert html_part is not None
        data = await st.services.vault.read(s, tenant_id, part.object_id)
        maintype, subtype = _type_of(part.content_type)
        html_part.add_related(data, maintype=maintype, subtype=subtype, cid=f"<{part.content_id}>")
    for part in pm.attachments:
        if part in related:
            continue
        big = streams is not None and part.size > STREAM_ABOVE
        data = b"" if big else await st.services.vault.read(s, tenant_id, part.object_id)
        maintype, subtype = _type_of(part.content_type)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=part.filename)
        attached = msg.get_payload()[-1]
        _foldable_name(attached, part.filename)
        if big and streams is not None:
            token = f"=_sealmail_part_{secrets.token_hex(8)}_="
            streams[token.encode() + b"\r\n"] = await st.services.vault.stream(
                s, tenant_id, part.object_id
            )
            attached.set_payload(token + "\n")
    return msg


async def _base64(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    lines = Base64Lines()
    async for chunk in chunks:
        yield lines.feed(chunk)
    yield lines.end()


async def _streamed(
    data: bytes, streams: dict[bytes, AsyncIterator[bytes]]
) -> AsyncIterator[bytes]:
    """``data`` with each placeholder line replaced by its stream as base64 lines."""
    pattern = re.compile(b"|".join(re.escape(token) for token in streams))
    at = 0
    for found in pattern.finditer(data):
        yield data[at : found.start()]
        async for piece in _base64(streams.pop(found.group())):
            yield piece
        at = found.end()
    yield data[at:]


def _type_of(content_type: str) -> tuple[str, str]:
    """(maintype, subtype) to attach bytes as they are (base64); containers and anything
    malformed become application/octet-stream."""
    base = (content_type or "").split(";")[0].strip().lower()
    maintype, _, subtype = base.partition("/")
    if not maintype or not subtype or maintype in ("multipart", "message"):
        return "application", "octet-stream"
    return maintype, subtype


def _foldable_name(part: EmailMessage, filename: str) -> None:
    """Keep a file name the email package cannot fold as an ASCII stand-in (the bytes are
    what matter; the portal's own page shows the real name)."""
    try:
        email.policy.SMTP.fold_binary("Content-Disposition", part["Content-Disposition"])
    except Exception:  # noqa: BLE001 - see _set_header
        del part["Content-Disposition"]
        plain = re.sub(r"[^A-Za-z0-9._ -]", "_", clean(filename)).strip() or "attachment"
        part.add_header("Content-Disposition", "attachment", filename=plain[:120])


def as_bytes(msg: EmailMessage | MIMEMultipart) -> bytes:
    try:
        return msg.as_bytes(policy=email.policy.SMTP)
    except (UnicodeError, ValueError):  # a non-ASCII address: only SMTPUTF8 can carry it
        return msg.as_bytes(policy=email.policy.SMTPUTF8)


def _file_name(subject: str, suffix: str) -> str:
    base = clean(subject)[:80].strip() or "secure message"
    return content_disposition(f"{base}.{suffix}")


def _download(data: bytes | AsyncIterator[bytes], media_type: str, disposition: str) -> Response:
    headers = {
        "Content-Disposition": disposition,
        "Content-Security-Policy": DOWNLOAD_CSP,
        "X-Content-Type-Options": "nosniff",
    }
    if isinstance(data, bytes):
        return Response(data, media_type=media_type, headers=headers)
    return StreamingResponse(data, media_type=media_type, headers=headers)


async def _items(
    request: Request, s: AsyncSession, whole: bool
) -> tuple[PortalState, PortalSession, list[Item], str]:
    st = portal(request)
    current = await recipient_session(s, request)
    msg, pm, access = await load_with_access(st, s, current, request.path_params["message_id"])
    if not whole:
        return st, current, [Item(msg, access, pm)], msg.id
    items, _plain = await thread_items(st, s, current, msg)
    return st, current, items, msg.id


async def _recorded(
    s: AsyncSession, current: PortalSession, accesses: list[PortalAccess], msg_id: str, fmt: str
) -> None:
    for access in accesses:
        await mark_downloaded(s, access, fmt)
    await audit(s, current.tenant_id, current.email, "portal.message.downloaded", msg_id, as_=fmt)
    await s.commit()


async def _eml(request: Request, whole: bool) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        st, current, items, msg_id = await _items(request, s, whole)
        streams: dict[bytes, AsyncIterator[bytes]] = {}
        built = [await rebuild(st, s, current.tenant_id, it.pm, streams) for it in items]
        await _recorded(s, current, [it.access for it in items], msg_id, "eml")
    subject = items[0].pm.subject if items else ""
    if whole:
        digest = MIMEMultipart("digest", policy=email.policy.SMTP)
        _set_header(digest, "Subject", subject)
        for one in built:
            digest.attach(MIMEMessage(one, policy=email.policy.SMTP))
        data = as_bytes(digest)
    else:
        data = as_bytes(built[0])
    name = _file_name(subject, "eml")
    if not streams:
        return _download(data, "message/rfc822", name)
    return _download(_streamed(data, streams), "message/rfc822", name)


async def _pdf(request: Request, whole: bool) -> Response:
    from portal.reader.paper import PaperMessage, render_pdf

    st = portal(request)
    async with st.services.db.session() as s:
        st, current, items, msg_id = await _items(request, s, whole)
        papers = []
        for it in items:
            pm = it.pm
            text = await _text(st, s, current.tenant_id, pm.text_object_id)
            mine = it.access.kind == "author"
            papers.append(
                PaperMessage(
                    sentence=sent_sentence(
                        pm.sender, pm.date, pm.to, pm.cc, me=current.email, mine=mine
                    ),
                    sender=full_name(pm.sender) or clean(it.msg.mail_from),
                    to=[full_name(a) for a in pm.to],
                    cc=[full_name(a) for a in pm.cc],
                    date=clean(pm.date),
                    subject=clean(pm.subject),
                    text=clean_lines(text),
                    attachments=[
                        (p.filename or f"attachment-{i + 1}", p.size, p.sha256)
                        for i, p in enumerate(pm.attachments)
                    ],
                    html_only=bool(pm.html_object_id) and not pm.text_object_id,
                )
            )
        await _recorded(s, current, [it.access for it in items], msg_id, "pdf")
    subject = clean(items[0].pm.subject) if items else ""
    footer = (
        f"Downloaded by {current.email} from the secure-message portal "
        f"{st.settings.portal_base_url.rstrip('/')}."
    )
    data = await asyncio.to_thread(render_pdf, subject, papers, footer)
    return _download(data, "application/pdf", _file_name(subject, "pdf"))


async def message_eml(request: Request) -> Response:
    return await _eml(request, whole=False)


async def thread_eml(request: Request) -> Response:
    return await _eml(request, whole=True)


async def message_pdf(request: Request) -> Response:
    return await _pdf(request, whole=False)


async def thread_pdf(request: Request) -> Response:
    return await _pdf(request, whole=True)
