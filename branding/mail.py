"""Mail that sealmail writes itself: headers through :mod:`email`'s policy (encoded words,
folding, address syntax), bodies encoded by the C codecs of :mod:`binascii`.

Building the whole tree with :class:`email.message.EmailMessage` cost about 4 ms a
notification (its pure-Python quoted-printable encoder and a boundary regex compiled per
part), the largest single cost of sealing a message for the portal (docs/PERFORMANCE.md).
The structure is the same: multipart/alternative, text then HTML, the HTML inside
multipart/related when it shows inline images.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import email.policy
import email.utils
import functools
import secrets
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage

from sqlalchemy.ext.asyncio import AsyncSession

from core import outbox
from core.storage.vault import Vault

_FORBIDDEN_IN_HEADERS = ("\r", "\n", "\x00")
_ADDRESS_HEADERS = frozenset({"from", "to", "cc", "reply-to", "sender"})
# The email package decodes anything that looks like an RFC 2047 word in a value it is
# given, even where our own reader kept it as literal text (a subject such as
# "=?utf-8?Q?=00=80 ?="): its bytes could then be anything, NULs included. A zero-width
# space after "=" keeps such text literal, and the reader sees the same characters.
_WORD_START = "=?"
_WORD_START_KEPT = "=\u200b?"


@dataclasses.dataclass(frozen=True)
class Rendered:
    """A rendered email: its subject and both bodies."""

    subject: str
    text: str
    html: str


class _Registry(HeaderRegistry):
    """The stdlib's header registry, but each header's class made once: the stdlib builds
    a new class (``type(...)``) for every header it sets, 30 us each."""

    @functools.lru_cache(maxsize=256)  # noqa: B019 - two module-level instances, never freed
    def __getitem__(self, name: str) -> type[BaseHeader]:
        return super().__getitem__(name)


_SMTP = email.policy.SMTP.clone(header_factory=_Registry())
_SMTPUTF8 = email.policy.SMTPUTF8.clone(header_factory=_Registry())


def _domain(address: str) -> str:
    # not core.addresses.domain_of: a From with a display name, case kept, for a Message-ID
    domain = email.utils.parseaddr(address)[1].rpartition("@")[2].strip().rstrip(".")
    return domain or "localhost"


def _check_header(name: str, value: str) -> None:
    for bad in _FORBIDDEN_IN_HEADERS:
        if bad in name or bad in value:
            raise ValueError(f"header {name!r} contains a line break or NUL")


def compose(
    *,
    from_addr: str,
    to_addr: str,
    rendered: Rendered,
    reply_to: str | None = None,
    headers: dict[str, str] | None = None,
    inline_images: list[tuple[str, bytes]] | None = None,
    attachments: list[tuple[str, str, bytes]] | None = None,
) -> bytes:
    """A complete RFC 5322 message: multipart/alternative (text, then HTML), UTF-8 safe.

    ``inline_images`` are ``(content id, PNG)`` pairs the HTML shows as ``cid:``;
    ``attachments`` are ``(ASCII file name, content type, bytes)``: the message is then
    multipart/mixed, the alternative first (an encrypted PDF notice, issue 16).
    Non-ASCII addresses switch to the SMTPUTF8 policy; everything else is 7-bit clean
    (RFC 2047 subjects, quoted-printable or base64 bodies). Line breaks in any header value
    raise :class:`ValueError` rather than letting a value inject headers.
    """
    addresses = [from_addr, to_addr, reply_to or ""]
    policy = _SMTP
    if any(not a.isascii() for a in addresses):
        policy = _SMTPUTF8
    msg = EmailMessage(policy=policy)
    fields: dict[str, tuple[str, str]] = {}  # lower-case name -> (name, value)
    standard = [
        ("From", from_addr),
        ("To", to_addr),
        ("Subject", rendered.subject),
        ("Date", email.utils.formatdate(usegmt=True)),
        ("Message-ID", email.utils.make_msgid(domain=_domain(from_addr))),
    ]
    if reply_to:
        standard.append(("Reply-To", reply_to))
    for name, value in standard + list((headers or {}).items()):
        _check_header(name, value)
        if name.lower() in _STRUCTURE:
            raise ValueError(f"header {name!r} is the message's structure, set by compose")
        fields[name.lower()] = (name, value)  # a caller's header replaces a standard one
    for name, value in fields.values():
        if name.lower() not in _ADDRESS_HEADERS:
            value = value.replace(_WORD_START, _WORD_START_KEPT)
        msg[name] = value
    # the header block as the email package's generator writes it (encoded words, folding)
    head = b"".join(policy.fold_binary(name, value) for name, value in msg.raw_items())
    # quoted-printable keeps the bodies 7-bit, so no relay needs 8BITMIME for our own mail
    html = _leaf(b'text/html; charset="utf-8"', b"quoted-printable", _qp(rendered.html))
    if inline_images:
        # the HTML part becomes multipart/related with each image by its Content-ID, so a
        # logo shows without loading anything from the internet
        images = []
        for cid, png in inline_images:
            _check_header("Content-ID", cid)
            if not cid.isascii() or "<" in cid or ">" in cid:
                raise ValueError(f"content id {cid!r} is not a plain ASCII id")
            extra = b"Content-ID: <%s>\r\nContent-Disposition: inline\r\n" % cid.encode()
            images.append(_leaf(b"image/png", b"base64", _base64(png), extra))
        html = _multipart(b"related", [html, *images])
    text = _leaf(b'text/plain; charset="utf-8"', b"quoted-printable", _qp(rendered.text))
    body = _multipart(b"alternative", [text, html])
    if attachments:
        files = []
        for filename, ctype, data in attachments:
            _check_header("filename", filename)
            if not filename.isascii() or '"' in filename or "\\" in filename:
                raise ValueError(f"file name {filename!r} is not a plain ASCII name")
            extra = b'Content-Disposition: attachment; filename="%s"\r\n' % filename.encode()
            files.append(_leaf(ctype.encode(), b"base64", _base64(data), extra))
        body = _multipart(b"mixed", [body, *files])
    return head + b"MIME-Version: 1.0\r\n" + body


# Set by compose itself; a caller's header of these names would contradict the body.
_STRUCTURE = frozenset({"mime-version", "content-type", "content-transfer-encoding"})


def _qp(text: str) -> bytes:
    """UTF-8 text as quoted-printable with CRLF line ends, ending with a line break (as the
    email package's ``set_content`` writes it)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    encoded = binascii.b2a_qp(text.encode("utf-8"), quotetabs=False, istext=True, header=False)
    return encoded.replace(b"\n", b"\r\n")


def _base64(data: bytes) -> bytes:
    """``data`` in base64 lines of 76 characters, CRLF line ends."""
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def _leaf(ctype: bytes, cte: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return b"Content-Type: %s\r\nContent-Transfer-Encoding: %s\r\n%s\r\n%s" % (
        ctype,
        cte,
        extra,
        body,
    )


def _multipart(subtype: bytes, parts: list[bytes]) -> bytes:
    """A multipart entity (its Content-Type header, then the parts). The boundary starts
    with ``=_``, which neither quoted-printable nor base64 can contain, so no part's body
    can end it early."""
    boundary = b"=_sm_" + secrets.token_hex(12).encode()
    delimiter = b"\r\n--" + boundary + b"\r\n"
    return (
        b"Content-Type: multipart/%s;\r\n boundary=\"%s\"\r\n\r\n" % (subtype, boundary)
        + b"--" + boundary + b"\r\n"
        + delimiter.join(parts)
        + b"\r\n--" + boundary + b"--\r\n"
    )  # fmt: skip


async def queue_rendered(
    session: AsyncSession,
    vault: Vault,
    *,
    tenant_id: str,
    mail_from: str,
    recipients: list[str],
    rendered: Rendered,
    kind: str,
    lifetime: float,
) -> None:
    """One automatic mail per recipient (``Auto-Submitted``), each sealed under
    ``tenant_id``'s keys and queued (:func:`core.outbox.post`); the caller commits."""
    for rcpt in recipients:
        raw = compose(
            from_addr=mail_from,
            to_addr=rcpt,
            rendered=rendered,
            headers={"Auto-Submitted": "auto-generated"},
        )
        await outbox.post(
            session,
            vault,
            kind=kind,
            tenant_id=tenant_id,
            mail_from=mail_from,
            recipients=[rcpt],
            raw=raw,
            lifetime=lifetime,
        )
