"""The archive index: one ``archive_entries`` row per archived message and its keyed blind
index tokens in ``archive_terms``.

What search results show (addresses, subject, date, attachment names, size and the SHA-256
of the plaintext original) is a sealed JSON object (``meta_object_id``); the clear columns
hold only dates, size, flags and the policy decision. Searchable values are stored as
``HMAC-SHA256(index key, field ":" value)`` truncated to 128 bits, the index key derived from
the root key per tenant (``archive-index/<tenant id>``), so the database answers equality
questions without ever holding a subject word, an address or a digest in clear.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import re
import unicodedata
from collections.abc import Iterable
from email.message import EmailMessage, Message
from email.utils import parsedate_to_datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from archive.models import ArchiveEntry, ArchiveTerm
from core.ids import new_id
from core.mime_text import header_addresses, header_text
from core.models import Tenant, now
from core.rootkey.protocol import RootKey
from core.services import Services

INDEX_PURPOSE = "archive-index/"
TOKEN_HEX = 32  # 128 bits of the HMAC, as hex
SOURCE_GATEWAY = "gateway"
SOURCE_JOURNAL = "journal"
MIN_WORD = 2
MAX_WORDS = 64  # distinct subject words indexed per message
STOP_WORDS = frozenset(
    "a an and are as at be by de der die das el en et for from fw fwd in is it la le of on "
    "or re aw sv the to und von with".split()
)
_WORD = re.compile(r"\w+")

# the field names of the tokens
F_FROM, F_FROM_DOMAIN = "from", "from-domain"
F_TO, F_TO_DOMAIN = "to", "to-domain"
F_SUBJECT, F_HAS, F_DECISION = "subject", "has", "decision"


def index_key(root: RootKey, tenant_id: str) -> bytes:
    return root.derive(INDEX_PURPOSE + tenant_id)


def token(key: bytes, field: str, value: str) -> str:
    """The blind index token of ``field:value``."""
    mac = hmac.new(key, f"{field}:{value}".encode(), hashlib.sha256).hexdigest()
    return mac[:TOKEN_HEX]


def words(text: str) -> list[str]:
    """Subject words as indexed and as searched: NFKC, casefolded, split on non-word
    characters, short words and stop words dropped, each once, in order."""
    seen: dict[str, None] = {}
    for w in _WORD.findall(unicodedata.normalize("NFKC", text).casefold()):
        w = w.strip("_")
        if len(w) >= MIN_WORD and w not in STOP_WORDS:
            seen.setdefault(w, None)
    return list(seen)


def normalise_address(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip().strip("<>").strip().casefold()


def domain_of(address: str) -> str:
    # not core.addresses.domain_of ("" without an @, no lower/rstrip): blind-index tokens made
    # from it must not change, or archives indexed before would stop being searchable
    return address.rpartition("@")[2] if "@" in address else ""


@dataclasses.dataclass
class Summary:
    """What an archive entry's sealed meta holds (and what its tokens are made from)."""

    sender: str = ""  # the From header's address
    envelope_from: str = ""
    to: list[str] = dataclasses.field(default_factory=list)
    cc: list[str] = dataclasses.field(default_factory=list)
    bcc: list[str] = dataclasses.field(default_factory=list)  # and other hidden recipients
    subject: str = ""
    date: str = ""  # the Date header as written
    message_id_header: str = ""
    attachments: list[str] = dataclasses.field(default_factory=list)
    size: int = 0
    sha256: str = ""  # of the plaintext original

    def to_json(self) -> bytes:
        return json.dumps({"version": 1, **dataclasses.asdict(self)}, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Summary:
        raw = json.loads(data)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})

    def recipients(self) -> list[str]:
        out: dict[str, None] = {}
        for a in (*self.to, *self.cc, *self.bcc):
            out.setdefault(a, None)
        return list(out)

    def terms(self, decisions: Iterable[str]) -> set[tuple[str, str]]:
        t: set[tuple[str, str]] = set()
        for a in {normalise_address(x) for x in (self.sender, self.envelope_from) if x}:
            t.add((F_FROM, a))
            if domain_of(a):
                t.add((F_FROM_DOMAIN, domain_of(a)))
        for a in {normalise_address(x) for x in self.recipients() if x}:
            t.add((F_TO, a))
            if domain_of(a):
                t.add((F_TO_DOMAIN, domain_of(a)))
        for w in words(self.subject)[:MAX_WORDS]:
            t.add((F_SUBJECT, w))
        if self.attachments:
            t.add((F_HAS, "attachment"))
        t.update((F_DECISION, d) for d in {d for d in decisions if d})
        return t


def _addresses(msg: Message, name: str) -> list[str]:
    out: list[str] = []
    for _name, addr in header_addresses(msg, name):
        a = normalise_address(addr)
        if a and "@" in a and a not in out:
            out.append(a)
    return out


def _attachments(msg: Message) -> list[str]:
    names: list[str] = []
    try:
        parts = list(msg.walk())
    except Exception:  # noqa: BLE001
        return names
    for part in parts[1:] if msg.is_multipart() else []:
        if part.is_multipart():
            continue
        try:
            filename = part.get_filename()
            disposition = part.get_content_disposition()
        except Exception:  # noqa: BLE001, S112 - a part the parser cannot read
            continue
        if filename or disposition == "attachment":
            names.append(str(filename or "(unnamed)"))
    return names


def summarise(
    msg: EmailMessage | Message,
    size: int,
    sha256: str,
    envelope_from: str = "",
    envelope_rcpts: Iterable[str] = (),
) -> Summary:
    """A :class:`Summary` of a parsed original; envelope recipients absent from To and Cc
    are its Bcc."""
    to, cc = _addresses(msg, "To"), _addresses(msg, "Cc")
    shown = set(to) | set(cc)
    bcc = [a for a in dict.fromkeys(normalise_address(r) for r in envelope_rcpts) if a not in shown]
    senders = _addresses(msg, "From")
    return Summary(
        sender=senders[0] if senders else normalise_address(envelope_from),
        envelope_from=normalise_address(envelope_from),
        to=to,
        cc=cc,
        bcc=[a for a in bcc if a],
        subject=header_text(msg, "Subject"),
        date=header_text(msg, "Date"),
        message_id_header=header_text(msg, "Message-ID"),
        attachments=_attachments(msg),
        size=size,
        sha256=sha256,
    )


HEAD_LIMIT = 256 * 1024  # header block kept for parsing
PART_HEADER_LIMIT = 16 * 1024  # one MIME part's header block, at most
_FILENAME = re.compile(rb"(?im)^content-disposition:\s*attachment|(?:file)?name\*?=")


class StreamSummary:
    """Summarise an original read chunk by chunk (any size, bounded memory): the SHA-256
    and size of everything, the top header block, and the header block of every MIME part
    (a line after a ``--`` boundary line up to the blank line) to find attachment names."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.size = 0
        self._head = bytearray()
        self._head_done = False
        self._carry = b""
        self._part: bytearray | None = None
        self.part_headers: list[bytes] = []

    def feed(self, data: bytes) -> None:
        self.sha.update(data)
        self.size += len(data)
        if not self._head_done:
            self._head += data[: HEAD_LIMIT - len(self._head)]
            if b"\r\n\r\n" in self._head or b"\n\n" in self._head or len(self._head) >= HEAD_LIMIT:
                self._head_done = True
        lines = (self._carry + data).split(b"\n")
        tail = lines.pop()
        self._carry = tail if len(tail) <= PART_HEADER_LIMIT else b"\x00"  # a long line
        for line in lines:
            self._line(line)

    def _line(self, line: bytes) -> None:
        if self._part is not None:
            if not line.strip(b"\r"):
                if _FILENAME.search(self._part):
                    self.part_headers.append(bytes(self._part))
                self._part = None
            elif len(self._part) < PART_HEADER_LIMIT:
                self._part += line + b"\n"
            return
        if line.startswith(b"--") and len(line) < 200:
            self._part = bytearray()

    def summary(self, envelope_from: str = "", envelope_rcpts: Iterable[str] = ()) -> Summary:
        if self._carry:
            self._line(self._carry)
            self._carry = b""
        from email.parser import BytesParser
        from email.policy import default as default_policy

        head = bytes(self._head)
        for sep in (b"\r\n\r\n", b"\n\n"):
            if sep in head:
                head = head.split(sep, 1)[0] + sep
                break
        parser = BytesParser(policy=default_policy)
        msg = parser.parsebytes(head, headersonly=True)
        summary = summarise(msg, self.size, self.sha.hexdigest(), envelope_from, envelope_rcpts)
        names: list[str] = []
        for block in self.part_headers:
            part = parser.parsebytes(block + b"\n", headersonly=True)
            try:
                filename = part.get_filename()
            except Exception:  # noqa: BLE001
                filename = None
            if filename or part.get_content_disposition() == "attachment":
                names.append(str(filename or "(unnamed)"))
        summary.attachments = names
        return summary


def date_of(summary: Summary) -> float | None:
    try:
        return parsedate_to_datetime(summary.date).timestamp() if summary.date else None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


async def _retain_until(
    services: Services, session: AsyncSession, tenant_id: str, received_at: float
) -> float:
    """The tenant's archive retention (its own, else ``archive_retention``); the pipeline's
    retention step may extend it for a policy rule's ``retain``."""
    from archive import retention  # here: it brings the account module (Argon2) along

    tenant = await session.get(Tenant, tenant_id)
    return retention.retain_until(services.settings, tenant, received_at)


async def entry_for(session: AsyncSession, source: str, object_id: str) -> ArchiveEntry | None:
    return (
        await session.execute(
            select(ArchiveEntry).where(
                ArchiveEntry.object_id == object_id, ArchiveEntry.source == source
            )
        )
    ).scalar_one_or_none()


async def record(
    services: Services,
    session: AsyncSession,
    *,
    tenant_id: str,
    source: str,
    message_id: str | None,
    object_id: str,
    summary: Summary,
    decisions: Iterable[str],
    received_at: float | None = None,
) -> ArchiveEntry:
    """Seal the summary and add the entry and its tokens to ``session`` (the caller
    commits, with whatever else it writes in the same transaction)."""
    decisions = sorted({d for d in decisions if d})
    meta = await services.vault.seal(session, tenant_id, summary.to_json(), kind="meta")
    at = received_at if received_at is not None else now()
    entry = ArchiveEntry(
        id=new_id("a_"),
        tenant_id=tenant_id,
        source=source,
        message_id=message_id,
        object_id=object_id,
        meta_object_id=meta.id,
        received_at=at,
        size=summary.size,
        has_attachment=bool(summary.attachments),
        decision=(decisions[0] if len(decisions) == 1 else "mixed" if decisions else "")[:16],
        retain_until=await _retain_until(services, session, tenant_id, at),
        legal_hold=False,
    )
    session.add(entry)
    key = index_key(services.root_key, tenant_id)
    for field, value in sorted(summary.terms(decisions)):
        session.add(
            ArchiveTerm(
                tenant_id=tenant_id,
                entry_id=entry.id,
                token=token(key, field, value),
                received_at=at,
            )
        )
    return entry
