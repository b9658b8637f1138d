"""Exchange envelope journal reports: recognise, unwrap, archive; never deliver onwards.

A report is a ``multipart/mixed`` whose first part (``text/plain``) lists the envelope:
``Sender:``, ``Subject:``, ``Message-Id:`` and one line per recipient (``To:``, ``Cc:``,
``Bcc:``, ``Recipient:``), a recipient reached through a group or a forward annotated
``To: member@x, Expanded: group@x`` / ``Forwarded: from@x``. The second part is the
original as ``message/rfc822``, possibly 8bit or binary, sometimes base64.

The original is sliced out of the raw report bytes (only a transfer encoding is undone),
never re-serialised by a parser, so what is archived is what was sent. A report we cannot
make sense of is archived whole, as it came, and flagged ``malformed``: refusing it would
make Microsoft disable the journal rule. A duplicate (same Message-Id and recipients, as
Exchange sends when a message crosses several journaled databases) is counted on the
entry already archived instead of being archived again; only a keyed hash of the pair is
in the row, never the Message-Id or the addresses.
"""

from __future__ import annotations

import asyncio
import binascii
import dataclasses
import json
import quopri
from collections.abc import Iterable
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from email.policy import default as default_policy

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from archive.models import JournalEntry
from core.hashing import hmac_sha256, sha256_hex
from core.ids import new_id
from core.models import Message, Tenant
from core.services import Services
from gateway.headers import parse_headers, split_header_block

JOURNAL_HEADER = "X-MS-Journal-Report"
DISPOSITION_JOURNAL = "journal"
DEDUPE_PURPOSE = "journal-dedupe"
RECIPIENT_KINDS = {"to": "to", "cc": "cc", "bcc": "bcc", "recipient": "recipient"}
ANNOTATIONS = {"expanded": "expanded", "forwarded": "forwarded"}


class MalformedReport(ValueError):
    """The report cannot be unwrapped; it is archived whole instead."""


@dataclasses.dataclass(frozen=True)
class JournalRecipient:
    address: str
    kind: str  # to | cc | bcc | recipient
    expanded: str = ""  # the group it was expanded from
    forwarded: str = ""  # the mailbox that forwarded to it


@dataclasses.dataclass(frozen=True)
class JournalReport:
    sender: str
    subject: str
    message_id: str
    recipients: tuple[JournalRecipient, ...]
    original: bytes  # the attached message, byte for byte
    other_fields: tuple[tuple[str, str], ...] = ()  # report lines we do not interpret


# --- recognising ------------------------------------------------------------------------


def _norm(address: str) -> str:
    return address.strip().strip("<>").strip().lower()


def is_journal_report(raw: bytes, tenant: Tenant, rcpts: Iterable[str]) -> str:
    """Why ``raw`` is a journal report ("header" or "address"), or ``""``."""
    try:
        if JOURNAL_HEADER in parse_headers(raw):  # any value, even an empty one
            return "header"
    except Exception:  # noqa: BLE001, S110 - an unparseable header block: try the address
        pass
    address = _norm(tenant.journal_address or "")
    if address and any(_norm(r) == address for r in rcpts):
        return "address"
    return ""


# --- parsing ----------------------------------------------------------------------------


def _body_of(part: bytes) -> tuple[bytes, bytes]:
    """``(header block, body)`` of one MIME part, the blank line between them dropped."""
    block, rest = split_header_block(part)
    if rest.startswith(b"\r\n"):
        rest = rest[2:]
    elif rest.startswith(b"\n"):
        rest = rest[1:]
    return block, rest


def _split_multipart(body: bytes, boundary: bytes) -> list[bytes]:
    """The parts of a multipart body, as the exact bytes between the delimiters (RFC 2046
    5.1.1: the line break before a delimiter belongs to the delimiter)."""
    delimiter = b"--" + boundary
    parts: list[bytes] = []
    start: int | None = None
    pos = 0
    data = b"\r\n" + body
    while True:
        i = data.find(b"\r\n" + delimiter, pos)
        if i < 0:
            raise MalformedReport("multipart body without its closing delimiter")
        after = i + 2 + len(delimiter)
        if data.startswith(b"--", after):  # the close delimiter
            if start is not None:
                parts.append(data[start:i])
            return parts
        eol = data.find(b"\r\n", after)
        if eol < 0 or data[after:eol].strip(b" \t"):  # a longer boundary: not ours
            pos = after
            continue
        if start is not None:
            parts.append(data[start:i])
        start = eol + 2
        pos = start - 2


def _decode_transfer(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding == "base64":
        try:
            return binascii.a2b_base64(b"".join(body.split()))
        except binascii.Error as exc:
            raise MalformedReport(f"attached message: bad base64 ({exc})") from None
    if encoding == "quoted-printable":
        return quopri.decodestring(body)
    if encoding in ("", "7bit", "8bit", "binary"):
        return body
    raise MalformedReport(f"attached message: unknown transfer encoding {encoding!r}")


def report_text(part: bytes) -> str:
    msg: EmailMessage = BytesParser(policy=default_policy).parsebytes(part)  # type: ignore[assignment]
    try:
        content = msg.get_content()
    except (LookupError, ValueError):
        content = (msg.get_payload(decode=True) or b"").decode("utf-8", "replace")
    if not isinstance(content, str):
        raise MalformedReport("report part is not text")
    return content


def _address(token: str) -> str:
    return token.strip().strip("<>").strip()


def parse_report_text(text: str) -> tuple[dict[str, str], list[JournalRecipient], list]:
    """``(fields, recipients, other lines)`` of the report's envelope part."""
    fields: dict[str, str] = {}
    recipients: list[JournalRecipient] = []
    others: list[tuple[str, str]] = []
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            continue
        key = name.strip().lower()
        value = value.strip()
        if key in RECIPIENT_KINDS:
            current: dict[str, str] | None = None
            rows: list[dict[str, str]] = []
            for token in value.split(","):
                label, colon, rest = token.partition(":")
                note = label.strip().lower()
                if colon and note in ANNOTATIONS:
                    if current is not None:
                        current[ANNOTATIONS[note]] = _address(rest)
                    continue
                address = _address(token)
                if address:
                    current = {"address": address, "kind": RECIPIENT_KINDS[key]}
                    rows.append(current)
            recipients.extend(JournalRecipient(**row) for row in rows)
        elif key in ("sender", "subject", "message-id"):
            fields.setdefault(key, value)
        else:
            others.append((name.strip(), value))
    return fields, recipients, others


def parse_report(raw: bytes) -> JournalReport:
    """Unwrap an envelope journal report; raises :class:`MalformedReport`."""
    try:
        block, body = _body_of(raw)
        top = BytesHeaderParser(policy=default_policy).parsebytes(block + b"\r\n")
        if top.get_content_maintype() != "multipart":
            raise MalformedReport(f"not a multipart report ({top.get_content_type()})")
        boundary = top.get_param("boundary")
        if not isinstance(boundary, str) or not boundary:
            raise MalformedReport("multipart report without a boundary")
        parts = _split_multipart(body, boundary.encode("utf-8", "surrogateescape"))
    except MalformedReport:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser trouble means: malformed
        raise MalformedReport(f"unparseable report ({type(exc).__name__})") from None
    text: str | None = None
    original: bytes | None = None
    for part in parts:
        pblock, pbody = _body_of(part)
        headers = BytesHeaderParser(policy=default_policy).parsebytes(pblock + b"\r\n")
        ctype = headers.get_content_type() if pblock else "text/plain"
        if ctype == "message/rfc822" and original is None:
            cte = str(headers.get("Content-Transfer-Encoding", ""))
            original = _decode_transfer(pbody, cte)
        elif ctype == "text/plain" and text is None and original is None:
            text = report_text(part)
    if original is None:
        raise MalformedReport("no message/rfc822 part")
    return report_of(text, original)


def report_of(text: str | None, original: bytes) -> JournalReport:
    """The report from its envelope part's ``text`` (``None``: there was none before the
    attached message) and the attached ``original``; raises :class:`MalformedReport`."""
    if text is None:
        raise MalformedReport("no report part before the attached message")
    fields, recipients, others = parse_report_text(text)
    if not fields.get("message-id"):
        raise MalformedReport("report has no Message-Id")
    if not recipients:
        raise MalformedReport("report has no recipient lines")
    return JournalReport(
        sender=fields.get("sender", ""),
        subject=fields.get("subject", ""),
        message_id=fields["message-id"],
        recipients=tuple(recipients),
        original=original,
        other_fields=tuple(others),
    )


# --- archiving --------------------------------------------------------------------------


def dedupe_key(key: bytes, message_id: str, recipients: Iterable[JournalRecipient]) -> str:
    """HMAC-SHA256 over the Message-Id and the sorted, distinct recipient addresses."""
    addresses = sorted({_norm(r.address) for r in recipients})
    return hmac_sha256(key, "\x00".join([message_id.strip(), *addresses]).encode())


def _meta(report: JournalReport | None, message: Message, problem: str, original: bytes) -> bytes:
    return meta_of(report, message, problem, sha256_hex(original), len(original))


def meta_of(
    report: JournalReport | None, message: Message, problem: str, sha256: str, size: int
) -> bytes:
    """The entry's meta object: the report's fields and the archived object's digest."""
    data: dict[str, object] = {
        "version": 1,
        "queue_id": message.id,
        "envelope_from": message.mail_from,
        "malformed": report is None,
        "problem": problem,
        "sha256": sha256,
        "size": size,
    }
    if report is not None:
        data.update(
            sender=report.sender,
            subject=report.subject,
            message_id=report.message_id,
            recipients=[dataclasses.asdict(r) for r in report.recipients],
            other_fields=[list(f) for f in report.other_fields],
        )
    return json.dumps(data, sort_keys=True).encode()


async def archive_report(
    services: Services, session: AsyncSession, tenant: Tenant, message: Message, raw: bytes
) -> JournalEntry:
    """Archive one report (the caller commits): the original and its meta sealed and a
    new entry, or one more duplicate counted on the entry already there. Never raises
    for the report's shape; a malformed report is archived whole."""
    try:
        report: JournalReport | None = await asyncio.to_thread(parse_report, raw)
        problem = ""
    except MalformedReport as exc:
        report, problem = None, str(exc)
    except Exception as exc:  # noqa: BLE001 - a parser bug must not hold the report back
        report, problem = None, f"unparseable report ({type(exc).__name__})"
    dedupe, existing = await find_duplicate(services, session, tenant, message, report)
    if existing is not None:
        return existing
    original = report.original if report is not None else raw  # malformed: as it came
    vault = services.vault
    obj = await vault.seal(session, tenant.id, original, kind="journal")
    meta = await vault.seal(
        session, tenant.id, _meta(report, message, problem, original), kind="meta"
    )
    return new_entry(session, tenant, message, dedupe, obj.id, meta.id, report is None)


async def find_duplicate(
    services: Services,
    session: AsyncSession,
    tenant: Tenant,
    message: Message,
    report: JournalReport | None,
) -> tuple[str, JournalEntry | None]:
    """``(the report's dedupe key, the entry already archived for it)``; that entry gets
    one more duplicate counted when the pass commits."""
    key = services.root_key.derive(DEDUPE_PURPOSE)
    if report is None:
        return hmac_sha256(key, f"malformed\x00{message.id}".encode()), None
    dedupe = dedupe_key(key, report.message_id, report.recipients)
    existing = (
        await session.execute(
            select(JournalEntry).where(
                JournalEntry.tenant_id == tenant.id, JournalEntry.dedupe_key == dedupe
            )
        )
    ).scalar_one_or_none()
    if existing is not None:
        # an UPDATE ... SET duplicates = duplicates + 1 when the pass commits
        existing.duplicates = JournalEntry.duplicates + 1  # type: ignore[assignment]
    return dedupe, existing


def new_entry(
    session: AsyncSession,
    tenant: Tenant,
    message: Message,
    dedupe: str,
    object_id: str,
    meta_id: str,
    malformed: bool,
) -> JournalEntry:
    entry = JournalEntry(
        id=new_id("j_"),
        tenant_id=tenant.id,
        message_id=message.id,
        dedupe_key=dedupe,
        object_id=object_id,
        meta_object_id=meta_id,
        malformed=malformed,
        duplicates=0,
    )
    session.add(entry)
    return entry
