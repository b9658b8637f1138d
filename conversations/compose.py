"""A message written in the portal (a reply, a forward, or ``/compose``) as RFC 5322 bytes,
produced piece by piece so that attachments up to ``smtp_max_message_size`` never sit in
memory whole.

The header block and the text part are built with :mod:`email.message` (structurally, as
everything we write); only the attachments' base64 bodies are streamed from their files
between MIME boundaries that the builder chose itself.
"""

from __future__ import annotations

import base64
import dataclasses
import secrets
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from typing import BinaryIO

from core.mime_text import clean

_B64_BLOCK = 57 * 1024  # bytes read at once: 1,024 base64 lines of 76 characters


@dataclasses.dataclass
class Upload:
    """An attached file: a seekable binary file (a spooled upload) with its name and type."""

    filename: str
    content_type: str
    file: BinaryIO
    size: int


@dataclasses.dataclass
class Draft:
    from_addr: str  # the author, as the From header shows it
    to: list[str]
    cc: list[str]
    subject: str
    text: str
    attachments: list[Upload] = dataclasses.field(default_factory=list)
    in_reply_to: str = ""  # "<id>" of the parent
    references: str = ""  # "<id> <id> ..." of the thread
    headers: dict[str, str] = dataclasses.field(default_factory=dict)  # X-Sealmail-* options
    msgid_domain: str = "sealmail.invalid"
    message_id: str = ""  # made by :func:`prepare` when empty
    date: float | None = None


def prepare(draft: Draft) -> Draft:
    """The draft with its Message-ID chosen (the caller keeps it to thread the reply)."""
    if not draft.message_id:
        draft.message_id = make_msgid(domain=draft.msgid_domain)
    return draft


def _headers(draft: Draft, content_type: str) -> EmailMessage:
    import datetime

    msg = EmailMessage(policy=SMTP)
    msg["From"] = draft.from_addr
    if draft.to:
        msg["To"] = ", ".join(draft.to)
    if draft.cc:
        msg["Cc"] = ", ".join(draft.cc)
    msg["Subject"] = clean(draft.subject)[:900]
    when = datetime.datetime.fromtimestamp(
        draft.date if draft.date is not None else datetime.datetime.now().timestamp(),
        datetime.UTC,
    )
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = prepare(draft).message_id
    if draft.in_reply_to:
        msg["In-Reply-To"] = draft.in_reply_to
    if draft.references:
        msg["References"] = draft.references
    for name, value in draft.headers.items():
        msg[name] = clean(value)  # one line: a value never starts a header of its own
    msg["MIME-Version"] = "1.0"
    msg["Content-Type"] = content_type
    return msg


def _header_bytes(msg: EmailMessage) -> bytes:
    """The header block alone (no blank line), folded for SMTP."""
    return b"".join(SMTP.fold_binary(name, value) for name, value in msg.items())


def _text_part(text: str) -> EmailMessage:
    part = EmailMessage(policy=SMTP)
    part.set_content(text.replace("\r\n", "\n"), charset="utf-8", cte="quoted-printable")
    del part["MIME-Version"]
    return part


def _attachment_head(upload: Upload) -> bytes:
    part = EmailMessage(policy=SMTP)
    part["Content-Type"] = upload.content_type or "application/octet-stream"
    part.add_header("Content-Disposition", "attachment", filename=upload.filename or "attachment")
    part["Content-Transfer-Encoding"] = "base64"
    return part.as_bytes()  # the header block and its blank line (no body)


def _base64_lines(file: BinaryIO) -> Iterator[bytes]:
    file.seek(0)
    while True:
        block = file.read(_B64_BLOCK)
        if not block:
            return
        encoded = base64.b64encode(block)
        yield b"".join(encoded[i : i + 76] + b"\r\n" for i in range(0, len(encoded), 76))


def chunks(draft: Draft) -> Iterator[bytes]:
    """The whole message, piece by piece (CRLF line ends)."""
    if not draft.attachments:
        msg = _headers(draft, "text/plain")
        del msg["Content-Type"]
        body = _text_part(draft.text)
        for name, value in body.items():
            msg[name] = value
        msg.set_payload(body.get_payload(), charset=None)
        yield msg.as_bytes()
        return
    boundary = "=_sealmail_" + secrets.token_hex(16)
    head = _headers(draft, f'multipart/mixed; boundary="{boundary}"')
    yield _header_bytes(head) + b"\r\n"
    yield b"This is a message in MIME format.\r\n"
    sep = f"\r\n--{boundary}\r\n".encode()
    yield sep + _text_part(draft.text).as_bytes()
    for upload in draft.attachments:
        yield sep + _attachment_head(upload)
        yield from _base64_lines(upload.file)
    yield f"\r\n--{boundary}--\r\n".encode()
