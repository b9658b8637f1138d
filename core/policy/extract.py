"""What the policy looks at in a message: decoded subject and headers, body text, and every
attachment (zip members included) with its detected type and its text.

Hostile input is expected: zip bombs, deep nesting, broken PDFs. Each has a limit; a limit
that was hit is written into the facts (``limits_hit``) and extraction goes on with what it
has. Nothing here raises on a bad message. It is blocking CPU work: run it in a thread.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import quopri
import re
import time
import warnings
import zipfile
from email.message import EmailMessage, Message

from core.mime_stream import PartInfo, Skeleton
from core.mime_text import b64_tolerant, header_text, parse_message, text_of
from core.policy.textutil import html_to_text, sniff_type

CHUNK = 64 * 1024


@dataclasses.dataclass(frozen=True)
class Limits:
    max_total_bytes: int = 64 * 1024 * 1024  # uncompressed bytes read from all archives
    max_member_bytes: int = 16 * 1024 * 1024  # read from any one archive member
    max_members: int = 1000  # archive members looked at, all archives together
    max_depth: int = 3  # archives inside archives
    max_ratio: int = 200  # uncompressed / compressed size of a member
    max_text_chars: int = 4 * 1024 * 1024  # text kept for detectors and patterns
    max_pdf_pages: int = 300
    max_parts: int = 500  # MIME parts
    max_seconds: float = 1.0  # wall-clock budget of the whole extraction


@dataclasses.dataclass(frozen=True)
class Attachment:
    name: str
    extension: str
    type: str  # detected from the content, not the declared type
    declared_type: str
    size: int
    container: str = ""  # the archive it was found in ("" for a MIME part)


@dataclasses.dataclass(frozen=True)
class MessageFacts:
    subject: str = ""
    headers: tuple[tuple[str, str], ...] = ()  # (lower-case name, decoded value)
    from_header: str = ""
    size: int = 0
    body: str = ""
    attachment_text: str = ""
    attachments: tuple[Attachment, ...] = ()
    limits_hit: tuple[str, ...] = ()
    truncated: bool = False

    @functools.cached_property
    def text(self) -> str:
        """What detectors and patterns scan: subject, body and attachment text (joined once:
        every detector and pattern of every rule reads it)."""
        return "\n".join(t for t in (self.subject, self.body, self.attachment_text) if t)

    def header_values(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n == name]


class _Budget:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.max_seconds
        self.total = 0
        self.members = 0
        self.text_chars = 0
        self.hits: list[str] = []

    def hit(self, what: str) -> None:
        if what not in self.hits and len(self.hits) < 50:
            self.hits.append(what)

    def out_of_time(self) -> bool:
        if time.monotonic() > self.deadline:
            self.hit("max_seconds")
            return True
        return False


def extract_facts(
    raw: bytes,
    limits: Limits = Limits(),  # noqa: B008
    parsed: EmailMessage | None = None,
) -> MessageFacts:
    """The facts the policy judges ``raw`` by; ``parsed`` is ``parse_message(raw)`` when
    the caller has it already (the pipeline parses each message once)."""
    budget = _Budget(limits)
    msg = parsed if parsed is not None else parse_message(raw)
    headers = []
    for name, value in msg.raw_items():
        headers.append((name.lower(), text_of(value)))
    subject = header_text(msg, "subject")
    body: list[str] = []
    texts: list[str] = []
    attachments: list[Attachment] = []
    for n, part in enumerate(msg.walk()):
        if n >= limits.max_parts:
            budget.hit("max_parts")
            break
        if part.is_multipart() or budget.out_of_time():
            continue
        try:
            payload = part.get_payload(decode=True)
        except Exception:  # noqa: BLE001 - a broken part is skipped, not fatal
            payload = None
        data = payload if isinstance(payload, bytes) else b""
        ctype = part.get_content_type()
        filename = _filename(part)
        if filename or part.get_content_disposition() == "attachment":
            _attachment(filename or "", ctype, data, "", 0, attachments, texts, budget)
        elif ctype == "text/plain":
            body.append(_keep(_decode(data, part.get_content_charset()), budget))
        elif ctype == "text/html":
            body.append(_keep(html_to_text(_decode(data, part.get_content_charset())), budget))
        elif not part.get_content_maintype() == "message":
            _attachment("", ctype, data, "", 0, attachments, texts, budget)
    return MessageFacts(
        subject=subject,
        headers=tuple(headers),
        from_header=header_text(msg, "from"),
        size=len(raw),
        body="\n".join(t for t in body if t),
        attachment_text="\n".join(t for t in texts if t),
        attachments=tuple(attachments),
        limits_hit=tuple(budget.hits),
        truncated="max_text_chars" in budget.hits,
    )


def _attachment(
    name: str,
    declared: str,
    data: bytes,
    container: str,
    depth: int,
    out: list[Attachment],
    texts: list[str],
    budget: _Budget,
) -> None:
    kind = sniff_type(data, name)
    out.append(Attachment(name, _ext(name), kind, declared, len(data), container))
    if budget.out_of_time():
        return
    if kind in ("text", "xml"):
        text = _decode(data, None)
        texts.append(_keep(_strip_tags(text) if kind == "xml" else text, budget))
    elif kind == "html":
        texts.append(_keep(html_to_text(_decode(data, None)), budget))
    elif kind == "pdf":
        texts.append(_keep(_pdf_text(data, name, budget), budget))
    elif kind in ("zip", "docx", "xlsx", "pptx"):
        _zip(name, data, depth + 1, out, texts, budget)


def _zip(
    name: str, data: bytes, depth: int, out: list[Attachment], texts: list[str], budget: _Budget
) -> None:
    limits = budget.limits
    if depth > limits.max_depth:
        budget.hit(f"max_depth ({name})")
        return
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        budget.hit(f"unreadable archive ({name})")
        return
    with archive:
        for info in infos:
            if info.is_dir():
                continue
            if budget.members >= limits.max_members:
                budget.hit("max_members")
                return
            if budget.out_of_time():
                return
            budget.members += 1
            member = _read_member(archive, info, name, budget)
            if member is None:
                out.append(Attachment(info.filename, _ext(info.filename), "binary", "", 0, name))
                continue
            _attachment(info.filename, "", member, name, depth, out, texts, budget)


def _read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, container: str, budget: _Budget
) -> bytes | None:
    """The member's bytes, read in chunks so a bomb is stopped by what it really inflates
    to, not by the size it declares."""
    limits = budget.limits
    compressed = max(info.compress_size, 1)
    if info.file_size > limits.max_ratio * compressed and info.file_size > CHUNK:
        budget.hit(f"max_ratio ({container}: {info.filename})")
        return None
    cap = min(limits.max_member_bytes, limits.max_total_bytes - budget.total)
    if cap <= 0:
        budget.hit("max_total_bytes")
        return None
    buf = bytearray()
    try:
        with archive.open(info) as f:
            while True:
                chunk = f.read(CHUNK)
                if not chunk:
                    break
                buf += chunk
                budget.total += len(chunk)
                if len(buf) > CHUNK and len(buf) > limits.max_ratio * compressed:
                    budget.hit(f"max_ratio ({container}: {info.filename})")
                    return None
                if len(buf) >= cap:
                    budget.hit(
                        "max_total_bytes" if cap < limits.max_member_bytes else "max_member_bytes"
                    )
                    break
                if budget.out_of_time():
                    break
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError):
        budget.hit(f"unreadable member ({container}: {info.filename})")
        return None
    return bytes(buf)


def _pdf_text(data: bytes, name: str, budget: _Budget) -> str:
    import logging

    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    out: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted:
                budget.hit(f"encrypted pdf ({name})")
                return ""
            for i, page in enumerate(reader.pages):
                if i >= budget.limits.max_pdf_pages:
                    budget.hit("max_pdf_pages")
                    break
                if budget.out_of_time():
                    break
                out.append(page.extract_text() or "")
    except Exception:  # noqa: BLE001 - pypdf raises many kinds on broken files
        budget.hit(f"unreadable pdf ({name})")
    return "\n".join(out)


def _keep(text: str, budget: _Budget) -> str:
    room = budget.limits.max_text_chars - budget.text_chars
    if len(text) > room:
        budget.hit("max_text_chars")
        text = text[: max(room, 0)]
    budget.text_chars += len(text)
    return text


def _decode(data: bytes, charset: str | None) -> str:
    try:
        return data.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


def _strip_tags(text: str) -> str:
    return re.sub(r"<[^>]{0,2000}>", " ", text)


def _ext(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[1].lower() if "." in base else ""


def _filename(part: Message) -> str | None:
    try:
        return part.get_filename()
    except Exception:  # noqa: BLE001 - a malformed parameter counts as no name
        return None


PART_WHOLE = 2 * 1024 * 1024  # raw bytes of a part read whole from a skeleton
PART_PREFIX_TEXT = 1024 * 1024  # decoded bytes of a larger part that are judged


def _decode_prefix(data: bytes, encoding: str, complete: bool) -> bytes:
    """A part's (possibly partial) body decoded by its transfer encoding."""
    try:
        if encoding == "base64":
            if not complete:  # a partial last group would decode to garbage: drop it
                cleaned = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
                data = cleaned[: len(cleaned) - len(cleaned) % 4]
            return b64_tolerant(data)
        if encoding == "quoted-printable":
            return quopri.decodestring(data)
    except Exception:  # noqa: BLE001 - a broken encoding: judge the raw text
        return data
    return data


def extract_facts_skeleton(skeleton: Skeleton, limits: Limits = Limits()) -> MessageFacts:  # noqa: B008
    """The facts of a large message from its streaming skeleton (:mod:`core.mime_stream`).

    Headers, subject and every leaf's type and filename are read as for a whole message.
    A part whose body was kept whole (up to :data:`PART_WHOLE` raw bytes) is judged as
    :func:`extract_facts` judges it; a larger one by its type, filename, real size and the
    first :data:`PART_PREFIX_TEXT` bytes of its decoded content, which ``limits_hit`` says
    (``part_prefix``): an archive or PDF cut there may be unreadable, and is then said so
    too. Never holds the message."""
    budget = _Budget(limits)
    msg = skeleton.headers
    headers = [(name.lower(), text_of(value)) for name, value in msg.raw_items()]
    body: list[str] = []
    texts: list[str] = []
    attachments: list[Attachment] = []
    for n, leaf in enumerate(skeleton.root.leaves()):
        if n >= limits.max_parts:
            budget.hit("max_parts")
            break
        if budget.out_of_time():
            continue
        part = leaf.headers
        complete = not leaf.truncated
        data = _decode_prefix(leaf.prefix, leaf.encoding, complete)
        if not complete:
            data = data[:PART_PREFIX_TEXT]
        ctype = leaf.content_type
        filename = _filename(part)
        if not complete:
            budget.hit(f"part_prefix ({filename or ctype})")
        if filename or part.get_content_disposition() == "attachment":
            _attachment(filename or "", ctype, data, "", 0, attachments, texts, budget)
        elif ctype == "text/plain":
            body.append(_keep(_decode(data, part.get_content_charset()), budget))
        elif ctype == "text/html":
            body.append(_keep(html_to_text(_decode(data, part.get_content_charset())), budget))
        elif not part.get_content_maintype() == "message":
            _attachment("", ctype, data, "", 0, attachments, texts, budget)
        if not complete and attachments and attachments[-1].size == len(data):
            last = attachments[-1]  # the real size, not the prefix's
            attachments[-1] = dataclasses.replace(last, size=_decoded_size(leaf))
    return MessageFacts(
        subject=header_text(msg, "subject"),
        headers=tuple(headers),
        from_header=header_text(msg, "from"),
        size=skeleton.size,
        body="\n".join(t for t in body if t),
        attachment_text="\n".join(t for t in texts if t),
        attachments=tuple(attachments),
        limits_hit=tuple(budget.hits),
        truncated="max_text_chars" in budget.hits,
    )


def _decoded_size(leaf: PartInfo) -> int:
    """About the decoded size of a part known only by its raw size (base64: 3/4 of its
    characters less line breaks; other encodings: the raw size)."""
    if leaf.encoding == "base64":
        return leaf.body_size * 3 // 4 * 76 // 78
    return leaf.body_size
