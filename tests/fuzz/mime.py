"""Hypothesis strategies that build email messages as bytes, the way broken mailers send them.

Headers carry arbitrary bytes (8-bit, NUL, control characters; never a bare CR or LF, which
intake refuses before anything is stored), RFC 2047 encoded words with random or bogus
charsets and valid or broken payloads, and may be missing or repeated. Bodies are nested
multiparts with random boundaries (sometimes missing or wrong) whose leaves are base64 or
quoted-printable (valid or broken), 8-bit or binary. Every message that has a subject
starts it with a plain ASCII marker, so a test can tell that the subject reached the page.
"""

from __future__ import annotations

import base64
import dataclasses
import quopri

from hypothesis import strategies as st

CHARSETS = (
    "utf-8",
    "UTF-8",
    "us-ascii",
    "iso-8859-1",
    "iso-8859-15",
    "windows-1252",
    "koi8-r",
    "shift_jis",
    "euc-jp",
    "iso-2022-jp",
    "gb2312",
    "big5",
    "utf-16",
    "utf-7",
    "x-unknown",
    "bogus-charset-\xff",
    "",
    "utf-8*en",
)
HEADER_NAMES = (
    "From",
    "To",
    "Cc",
    "Subject",
    "Reply-To",
    "Sender",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-Disposition",
    "MIME-Version",
    "Sensitivity",
    "X-Sealmail-Encrypt",
    "Received",
    "Resent-From",
)
CONTENT_TYPES = (
    "text/plain",
    "text/html",
    "text/calendar",
    "application/octet-stream",
    "application/pdf",
    "application/ms-tnef",
    "application/pkcs7-mime",
    "image/png",
    "message/rfc822",
    "message/delivery-status",
    "text",
    "garbage",
    "/",
)
MULTIPART_SUBTYPES = ("mixed", "alternative", "related", "signed", "report", "digest", "x-weird")
ENCODINGS = ("base64", "quoted-printable", "8bit", "7bit", "binary", "x-uuencode", "bogus", "")
BOUNDARY_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'()+_,-./:=? "

# Text a reader can see: letters, digits and spaces (no markup, no control characters).
visible_text = st.text(
    st.characters(categories=("L", "N", "Zs"), exclude_characters="\x85\u2028\u2029"),
    min_size=1,
    max_size=40,
).filter(lambda s: s.strip() != "")

# One header line's value: anything but CR and LF.
line_bytes = st.binary(max_size=120).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))


@st.composite
def encoded_word(draw: st.DrawFn) -> bytes:
    """An RFC 2047 word: random charset, B or Q, a valid or broken payload."""
    charset = draw(st.sampled_from(CHARSETS)).encode("latin-1")
    kind = draw(st.sampled_from(("B", "Q", "b", "q", "X")))
    payload = draw(st.binary(max_size=40))
    if kind in "Bb":
        data = base64.b64encode(payload)
        if draw(st.booleans()):  # broken: truncated or with padding and junk
            junk = draw(st.sampled_from((b"", b"=", b"!")))
            data = data[: draw(st.integers(0, len(data)))] + junk
    else:
        data = quopri.encodestring(payload, header=True).replace(b"\n", b"").replace(b"\r", b"")
        if draw(st.booleans()):
            data += draw(st.sampled_from((b"=", b"=Z", b"=4", b"?", b" ")))
    ending = draw(st.sampled_from((b"?=", b"?=", b"", b"?")))
    return b"=?" + charset + b"?" + kind.encode() + b"?" + data + ending


@st.composite
def utf8_word(draw: st.DrawFn) -> tuple[bytes, str]:
    """A valid UTF-8 encoded word and the text it decodes to."""
    text = draw(visible_text)
    data = base64.b64encode(text.encode())
    return b"=?utf-8?b?" + data + b"?=", text


header_value = st.one_of(
    line_bytes,
    encoded_word(),
    st.lists(st.one_of(encoded_word(), line_bytes), min_size=1, max_size=4).map(b" ".join),
)


@dataclasses.dataclass
class Generated:
    """A message and what a reader should see of its subject (``None``: no subject)."""

    raw: bytes
    marker: str | None
    subject_text: str | None  # the decoded text of a valid encoded word in the subject

    def __repr__(self) -> str:  # shrunk examples print their bytes
        return f"Generated(raw={self.raw!r}, marker={self.marker!r})"


@st.composite
def headers(draw: st.DrawFn, marker: str | None) -> tuple[list[bytes], str | None]:
    """Header lines (no Content-* yet): random names and values, From and To usually there,
    the subject (marker first) unless this message has none; duplicates allowed."""
    lines: list[bytes] = []
    subject_text = None
    if draw(st.booleans()):
        lines.append(b"From: " + draw(st.sampled_from((b"Alice <alice@acme.example>", b""))))
    if marker is not None:
        value = marker.encode()
        tail = draw(st.sampled_from(("none", "text", "word", "garbage")))
        if tail == "text":
            value += b" " + draw(visible_text).encode()
        elif tail == "word":
            word, subject_text = draw(utf8_word())
            value += b" " + word
        elif tail == "garbage":
            value += b" " + draw(header_value)
        lines.append(b"Subject: " + value)
    for name, value in draw(
        st.lists(
            st.tuples(
                st.one_of(
                    st.sampled_from(HEADER_NAMES),
                    st.from_regex(r"\A[!-9;-~]{1,20}\Z"),  # any printable name without ':'
                ),
                header_value,
            ),
            max_size=8,
        )
    ):
        lines.append(name.encode("latin-1") + b": " + value)
    if draw(st.booleans()):
        lines.append(b"To: " + draw(st.sampled_from((b"bob@partner.example", b"", b"\xff\x00"))))
    return lines, subject_text


@st.composite
def body_bytes(draw: st.DrawFn, encoding: str) -> bytes:
    """A leaf body in ``encoding``: valid or broken, lines joined with CRLF."""
    data = draw(st.binary(max_size=300))
    broken = draw(st.booleans())
    if encoding == "base64":
        out = base64.encodebytes(data)
        if broken:  # truncated, or junk (outside the alphabet, or padding) inside
            cut = draw(st.integers(0, len(out)))
            junk = draw(st.sampled_from((b"", b"=", b"!!", b"\x00", b"====", b"...", b" x ")))
            out = out[:cut] + junk + (out[cut:] if draw(st.booleans()) else b"")
    elif encoding == "quoted-printable":
        out = quopri.encodestring(data)
        if broken:
            out += draw(st.sampled_from((b"=", b"=G1", b"=\xff", b"= \n")))
    else:
        out = data
    lines = out.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    return b"\r\n".join(lines)


@st.composite
def leaf(draw: st.DrawFn) -> bytes:
    """A part that is not a multipart: its Content-* headers and body."""
    ctype = draw(st.sampled_from(CONTENT_TYPES))
    params = b""
    if draw(st.booleans()):
        params += b"; charset=" + draw(st.sampled_from(CHARSETS)).encode("latin-1")
    if draw(st.booleans()):
        name = draw(st.one_of(line_bytes, encoded_word())).replace(b'"', b"")
        params += b'; name="' + name + b'"'
    encoding = draw(st.sampled_from(ENCODINGS))
    head = b"Content-Type: " + ctype.encode() + params + b"\r\n"
    if encoding:
        head += b"Content-Transfer-Encoding: " + encoding.encode() + b"\r\n"
    if draw(st.booleans()):
        head += b"Content-Disposition: " + draw(
            st.sampled_from((b"attachment", b"inline", b"attachment; filename=", b"\xff"))
        )
        if draw(st.booleans()):
            head += b'; filename="' + draw(line_bytes).replace(b'"', b"") + b'"'
        head += b"\r\n"
    return head + b"\r\n" + draw(body_bytes(encoding))


boundary = st.text(st.sampled_from(BOUNDARY_CHARS), min_size=1, max_size=70).map(
    lambda s: s.rstrip() or "b"
)


def multipart(children: list[bytes], subtype: str, bound: str, style: str) -> bytes:
    """A multipart from its children; ``style`` breaks it on purpose: a missing boundary
    parameter, a missing closing delimiter, or delimiters that do not match the parameter."""
    b = bound.encode()
    param = b"" if style == "no-param" else b'; boundary="' + b + b'"'
    head = b"Content-Type: multipart/" + subtype.encode() + param + b"\r\n"
    used = b + b"x" if style == "mismatch" else b
    out = head + b"\r\npreamble\r\n"
    for child in children:
        out += b"--" + used + b"\r\n" + child + b"\r\n"
    if style != "unclosed":
        out += b"--" + used + b"--\r\n"
    return out


@st.composite
def nest(draw: st.DrawFn, children: list[bytes]) -> bytes:
    return multipart(
        children,
        draw(st.sampled_from(MULTIPART_SUBTYPES)),
        draw(boundary),
        draw(st.sampled_from(("ok", "ok", "ok", "no-param", "unclosed", "mismatch"))),
    )


tree = st.recursive(leaf(), lambda kids: st.lists(kids, max_size=4).flatmap(nest), max_leaves=8)


@st.composite
def deep_chain(draw: st.DrawFn, max_depth: int = 300) -> bytes:
    """Multiparts nested ``depth`` deep, one leaf at the bottom (random depth, up to a few
    hundred)."""
    depth = draw(st.integers(1, max_depth))
    part = draw(leaf())
    for i in range(depth):
        part = multipart([part], "mixed", f"d{i}", "ok")
    return part


def deep_message(depth: int, marker: str) -> bytes:
    """The explicit deep case: ``depth`` nested multiparts around a short text part."""
    part = b"Content-Type: text/plain\r\n\r\ndeep inside\r\n"
    for i in range(depth):
        part = multipart([part], "mixed", f"deep{i}", "ok")
    head = f"From: Alice <alice@acme.example>\r\nTo: bob@partner.example\r\nSubject: {marker}\r\n"
    return head.encode() + b"MIME-Version: 1.0\r\n" + part


@st.composite
def messages(draw: st.DrawFn, marker: str = "Zqmark") -> Generated:
    """A whole message: headers, then a body (a tree, a deep chain, or a bare body that is
    not MIME at all); ``marker`` starts its subject unless it has none."""
    has_subject = draw(st.integers(0, 9)) > 0
    head, subject_text = draw(headers(marker if has_subject else None))
    body = draw(
        st.one_of(
            tree,
            tree,
            tree,
            deep_chain(),
            body_bytes("8bit").map(lambda b: b"\r\n" + b),
        )
    )
    if draw(st.booleans()):
        head.append(b"MIME-Version: 1.0")
    raw = b"\r\n".join(head) + b"\r\n" + body
    return Generated(raw, marker if has_subject else None, subject_text)
