"""Mail we send onwards never has a line over 998 octets (RFC 5321 4.5.3.1.6).

Intake accepts longer lines (up to 64 KiB), as Postfix does; before such a message goes
to the next hop, every part whose body has a longer line is re-encoded structurally with
the email package: a text part as quoted-printable (lines of at most 76 octets, the
decoded text unchanged), any other part as base64. Parts without long lines and the
header block are written back as they came. The original bytes stay as they were in the
sealed store and the archive; only the copy sent onwards changes.

Re-encoding changes the body the sender signed: a DKIM body hash, or an S/MIME or
PGP/MIME signature over a re-encoded part, no longer verifies (Postfix's 8BITMIME-to-7bit
conversion and its splitting of long lines break them the same way). Mail without a
line over the limit is never touched, so well-formed signed mail is never affected.
"""

from __future__ import annotations

import binascii
import email
import email.policy
from email.generator import BytesGenerator
from email.message import Message
from io import BytesIO

MAX_LINE = 998  # octets, without CRLF (RFC 5321 4.5.3.1.6)

# compat32 keeps header values as they came (no refolding) and bodies as raw text
_POLICY = email.policy.compat32.clone(linesep="\r\n", max_line_length=None)


def longest_line(data: bytes) -> int:
    """The length in octets of the longest line of ``data``, without its line break."""
    return max((len(line) - line.endswith(b"\r") for line in data.split(b"\n")), default=0)


def _longest(body: str) -> int:
    # parsed from bytes, a body is ASCII plus one surrogate per 8-bit octet
    return longest_line(body.encode("ascii", "surrogateescape"))


def fit_line_length(raw: bytes, limit: int = MAX_LINE) -> bytes:
    """``raw`` itself when no line is longer than ``limit``; else the message with every
    body part that has a longer line re-encoded (text as quoted-printable, anything else
    as base64), and every header line of the message's own header block over it folded
    (:func:`fold_header_lines`)."""
    if max(map(len, raw.split(b"\n"))) <= limit + 1 or longest_line(raw) <= limit:
        return raw
    msg = email.message_from_bytes(raw, policy=_POLICY)
    changed = False
    for part in msg.walk():
        if part.is_multipart():
            continue
        # the body as it came (get_payload() would decode a charset)
        body = getattr(part, "_payload", None)
        if not isinstance(body, str) or _longest(body) <= limit:
            continue
        _reencode(part)
        changed = True
    if changed:
        if "MIME-Version" not in msg:
            msg["MIME-Version"] = "1.0"
        out = BytesIO()
        BytesGenerator(out, mangle_from_=False, policy=_POLICY).flatten(msg)
        raw = out.getvalue()
    head, sep, body = raw.partition(b"\r\n\r\n")
    return fold_header_lines(head, limit) + sep + body if sep else raw


def fold_header_lines(head: bytes, limit: int = MAX_LINE) -> bytes:
    """The header block ``head`` (CRLF line ends) with each line over ``limit`` octets
    folded before white space (RFC 5322 2.2.3: unfolding gives the same field back). A
    line with no white space to fold at stays as it is."""
    out: list[bytes] = []
    for line in head.split(b"\r\n"):
        while len(line) > limit:
            # not right after the colon: a value wholly on the next line is no shorter
            start = 1 if line[:1] in (b" ", b"\t") else line.find(b":") + 2
            cut = max(line.rfind(b" ", start, limit), line.rfind(b"\t", start, limit))
            if cut < start or not line[:cut].strip():
                break
            out.append(line[:cut])
            line = line[cut:]
        out.append(line)
    return b"\r\n".join(out)


def _reencode(part: Message) -> None:
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    if part.get_content_maintype() == "text":
        text = data.replace(b"\r\n", b"\n")
        encoded = binascii.b2a_qp(text, quotetabs=False, istext=True, header=False)
        cte = "quoted-printable"
    else:
        encoded = binascii.b2a_base64(data, newline=False)
        encoded = b"\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76)) + b"\n"
        cte = "base64"
    del part["Content-Transfer-Encoding"]
    part["Content-Transfer-Encoding"] = cte
    part.set_payload(encoded.decode("ascii"))
