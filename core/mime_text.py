"""Reading real-world mail without ever failing: header values and addresses decoded
whatever bytes they hold, and a parser whose depth is bounded.

Mail arrives with raw UTF-8 (RFC 6532) or Latin-1 bytes in headers, RFC 2047 words that
encode NULs or name charsets nobody knows, headers missing or given twice, and multiparts
nested thousands deep. Every step that shows, indexes or decides on a header reads it
here: what can be decoded is shown, what cannot becomes U+FFFD, control characters become
spaces, and nothing raises.
"""

from __future__ import annotations

import binascii
import codecs
import functools
import re
from email.feedparser import BytesFeedParser
from email.message import EmailMessage, Message
from email.policy import EmailPolicy
from email.policy import default as default_policy
from email.utils import getaddresses
from typing import Any

MAX_DEPTH = 100  # levels of multipart / message nesting parsed; deeper parts stay one blob
NOT_SHOWN_TYPE = "application/octet-stream"

_WORD = re.compile(r"=\?([^?\s]+)\?([qQbB])\?([^?\s]*)\?=")
_QP_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")
_CONTROLS_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _unescape(value: str) -> str:
    """Undo the parser's surrogateescape: raw 8-bit bytes read as UTF-8, else U+FFFD."""
    try:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeError:
        return value.encode("utf-8", "replace").decode("utf-8", "replace")


def _charset_decode(data: bytes, charset: str) -> str:
    name = charset.split("*", 1)[0].strip().lower()  # RFC 2231 language suffix
    try:
        codecs.lookup(name)
        return data.decode(name, "replace")
    except Exception:  # noqa: BLE001 - an unknown or non-text codec: read it as UTF-8
        return data.decode("utf-8", "replace")


def _decode_word(charset: str, encoding: str, text: str) -> str | None:
    raw = text.encode("ascii", "replace")
    if encoding in "qQ":
        data = _QP_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), raw.replace(b"_", b" "))
    else:
        try:
            data = b64_tolerant(raw)
        except binascii.Error:
            return None
    return _charset_decode(data, charset)


def decode_words(value: str) -> str:
    """RFC 2047 encoded words decoded (space between adjacent words dropped); a word that
    cannot be decoded is kept as written."""
    out: list[str] = []
    pos = 0
    after_word = False
    for m in _WORD.finditer(value):
        between = value[pos : m.start()]
        if not (after_word and not between.strip()):
            out.append(between)
        decoded = _decode_word(*m.groups())
        out.append(m.group(0) if decoded is None else decoded)
        pos = m.end()
        after_word = decoded is not None
    out.append(value[pos:])
    return "".join(out)


def clean(text: str) -> str:
    """One line of displayable text: control characters (NUL included) become spaces,
    runs of white space one space, undecodable bytes U+FFFD."""
    return " ".join(_CONTROLS.sub(" ", _unescape(text)).split())


def clean_lines(text: str) -> str:
    """A body for display: lines and tabs kept, other control characters (NUL included)
    removed, undecodable bytes U+FFFD."""
    return _CONTROLS_BUT_LINES.sub("", _unescape(text))


def text_of(value: object) -> str:
    """A header value as a reader should see it, whatever it holds."""
    try:
        return clean(decode_words(_unescape(str(value))))
    except Exception:  # noqa: BLE001 - the last line of defence: never fail a step on a header
        return ""


def _raw_values(msg: Message, name: str) -> list[str]:
    wanted = name.lower()
    try:
        return [str(v) for n, v in msg.raw_items() if n.lower() == wanted]
    except Exception:  # noqa: BLE001
        return []


def header_text(msg: Message, name: str) -> str:
    """The first ``name`` header, decoded and on one line, or ``""`` when there is none."""
    values = _raw_values(msg, name)
    return text_of(values[0]) if values else ""


def header_addresses(msg: Message, name: str, first_only: bool = False) -> list[tuple[str, str]]:
    """``(display name, address)`` pairs of every ``name`` header (of the first one with
    ``first_only``), names decoded; an unparsable value comes back as its text with no
    address, so it can still be shown."""
    values = _raw_values(msg, name)[:1] if first_only else _raw_values(msg, name)
    out: list[tuple[str, str]] = []
    for value in values:
        line = " ".join(_CONTROLS.sub(" ", _unescape(value)).split())
        try:
            pairs = getaddresses([line])
        except Exception:  # noqa: BLE001
            pairs = []
        found = [(text_of(n), clean(a)) for n, a in pairs if a and "@" in a]
        out.extend(found or [(text_of(value), "")])
    return [(n, a) for n, a in out if n or a]


def part_filename(part: Message) -> str:
    """A part's file name (RFC 2231 or RFC 2047 encoded, or raw 8-bit) as text, or ``""``."""
    try:
        name = part.get_filename()
    except Exception:  # noqa: BLE001 - a malformed parameter counts as no name
        return ""
    return text_of(name) if name else ""


def shown_address(display_name: str, address: str) -> str:
    """``Name <address>``, or whichever of the two there is."""
    if display_name and address:
        return f"{display_name} <{address}>"
    return display_name or address


class _NotShown(EmailMessage):
    """A part deeper than :data:`MAX_DEPTH`: kept as one opaque blob, its raw text as it came."""

    def get_content_type(self) -> str:
        return NOT_SHOWN_TYPE

    def get_content_maintype(self) -> str:
        return NOT_SHOWN_TYPE.split("/")[0]

    def get_content_subtype(self) -> str:
        return NOT_SHOWN_TYPE.split("/")[1]


@functools.lru_cache(maxsize=1024)
def _parsed_header(name: str, value: str) -> Any:
    return default_policy.header_fetch_parse(name, value)


class _SharedHeaders(EmailPolicy):
    """The modern policy (the same settings as ``email.policy.default``), except that a
    header value is parsed once and its (immutable) header object handed out at every
    look-up: the stdlib parses ``Content-Type`` again each time a part's type, charset,
    boundary or file name is asked, five to nine times a part between the parser and its
    readers. Short values only (a long one is rarely asked twice)."""

    def header_fetch_parse(self, name: str, value: Any) -> Any:
        if hasattr(value, "name") or len(value) > 1024:
            return super().header_fetch_parse(name, value)
        return _parsed_header(name, value)


_POLICY = _SharedHeaders()


class _BoundedParser(BytesFeedParser):
    def _new_message(self) -> None:
        super()._new_message()  # type: ignore[misc]
        if len(self._msgstack) > MAX_DEPTH:  # type: ignore[attr-defined]
            self._cur.__class__ = _NotShown  # type: ignore[attr-defined]


def parse_message(raw: bytes) -> EmailMessage:
    """``raw`` parsed with the modern policy, nesting bounded at :data:`MAX_DEPTH` so that no
    step (parsing, walking, rendering) recurses without end. The bytes are not changed."""
    parser = _BoundedParser(policy=_POLICY)
    parser.feed(raw)
    return parser.close()  # type: ignore[return-value]


def parts_not_shown(msg: Message) -> int:
    """How many parts were too deep to be parsed (each holds everything below it)."""
    count = 0
    stack: list[Message] = [msg]
    while stack:
        part = stack.pop()
        if isinstance(part, _NotShown):
            count += 1
            continue
        payload = part.get_payload()
        if isinstance(payload, list):
            stack.extend(p for p in payload if isinstance(p, Message))
    return count


def b64_tolerant(data: bytes) -> bytes:
    """Base64 decoded the way readers do: characters outside the alphabet skipped, padding
    recomputed, a dangling last character dropped. Never raises."""
    cleaned = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
    cleaned = cleaned[: len(cleaned) - (len(cleaned) % 4 == 1)]
    return binascii.a2b_base64(cleaned + b"=" * (-len(cleaned) % 4))


def part_text(part: Message) -> str:
    """A text part's content decoded by its charset; an unknown charset or broken
    transfer encoding gives what can be read (UTF-8, U+FFFD for the rest), never an error."""
    try:
        payload = part.get_payload()
        cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
        if cte == "base64" and isinstance(payload, str):
            data = b64_tolerant(payload.encode("ascii", "ignore"))
        else:
            decoded = part.get_payload(decode=True)
            data = decoded if isinstance(decoded, bytes) else b""
        charset = part.get_content_charset() or "utf-8"
    except Exception:  # noqa: BLE001 - the last line of defence: show nothing, fail nothing
        return ""
    return _unescape(_charset_decode(data, charset))
