"""The streaming skeleton scanner agrees with the standard library's parser on structure,
and holds only bounded prefixes of bodies."""

from __future__ import annotations

from email.message import Message

from hypothesis import given, settings
from hypothesis import strategies as st

from core.mime_stream import body_chunks, scan
from core.mime_text import parse_message


def _in_pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


def _stdlib_leaves(part: Message) -> list[tuple[str, str, bytes]]:
    if part.get_content_type() == "message/rfc822":
        return [(part.get_content_type(), "", b"")]
    if part.is_multipart():
        out: list[tuple[str, str, bytes]] = []
        for sub in part.get_payload():
            out += _stdlib_leaves(sub)
        return out
    payload = part.get_payload()
    body = payload.encode("ascii", "surrogateescape") if isinstance(payload, str) else b""
    return [(part.get_content_type(), part.get_filename() or "", body)]


def _skeleton_leaves(data: bytes, piece: int) -> list[tuple[str, str, bytes]]:
    skel = scan(_in_pieces(data, piece), prefix_limit=1 << 30)
    assert skel.size == len(data)
    out = []
    for leaf in skel.root.leaves():
        body = b"".join(body_chunks(_in_pieces(data, piece), leaf.body_start, leaf.body_end))
        assert body == leaf.prefix
        out.append((leaf.content_type, leaf.headers.get_filename() or "", body))
    return out


_TEXT = st.text(alphabet="abcdefXYZ 0123-=+/.", min_size=0, max_size=40)
_BODY = st.lists(_TEXT, min_size=0, max_size=5)
_TYPES = st.sampled_from(["text/plain", "text/html", "application/pdf", "image/png"])


@st.composite
def _part(draw: st.DrawFn, depth: int = 0) -> list[str]:
    if depth < 3 and draw(st.booleans()):
        boundary = f"b{depth}-{draw(st.integers(0, 99))}"
        lines = [f'Content-Type: multipart/mixed; boundary="{boundary}"', ""]
        lines += draw(_BODY)  # preamble
        for _ in range(draw(st.integers(0, 3))):
            lines.append(f"--{boundary}" + draw(st.sampled_from(["", " ", "\t"])))
            lines += draw(_part(depth + 1))
        if draw(st.booleans()):
            lines.append(f"--{boundary}--")
            lines += draw(_BODY)  # epilogue
        return lines
    ctype = draw(_TYPES)
    lines = [f"Content-Type: {ctype}"]
    if draw(st.booleans()):
        lines.append(f'Content-Disposition: attachment; filename="f{draw(st.integers(0, 9))}.bin"')
    lines.append("")
    return lines + draw(_BODY)


@st.composite
def _message(draw: st.DrawFn) -> bytes:
    lines = ["From: a@example.org", "Subject: test", "MIME-Version: 1.0"] + draw(_part())
    sep = draw(st.sampled_from(["\r\n", "\n"]))
    return sep.join(lines).encode() + (sep.encode() if draw(st.booleans()) else b"")


@settings(max_examples=300, deadline=None)
@given(_message(), st.integers(1, 64))
def test_structure_agrees_with_stdlib(data: bytes, piece: int) -> None:
    assert _skeleton_leaves(data, piece) == _stdlib_leaves(parse_message(data))


def test_large_part_keeps_only_a_prefix() -> None:
    body = b"QUFB" * 19 + b"\r\n"
    big = body * 40_000  # ~3 MiB of base64
    data = (
        b"From: a@example.org\r\nSubject: big\r\n"
        b'Content-Type: multipart/mixed; boundary="X"\r\n\r\n--X\r\n'
        b"Content-Type: text/plain\r\n\r\nhello\r\n--X\r\n"
        b'Content-Type: application/pdf\r\nContent-Disposition: attachment; filename="a.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + big + b"--X--\r\n"
    )
    skel = scan(_in_pieces(data, 65536), prefix_limit=4096)
    text, pdf = list(skel.root.leaves())
    assert skel.headers["Subject"] == "big"
    assert (text.content_type, text.prefix, text.truncated) == ("text/plain", b"hello", False)
    assert (pdf.content_type, pdf.filename, pdf.encoding) == ("application/pdf", "a.pdf", "base64")
    assert len(pdf.prefix) == 4096 and pdf.truncated
    assert pdf.body_size == len(big) - 2  # the CRLF before the boundary belongs to it
    assert b"".join(body_chunks(_in_pieces(data, 65536), pdf.body_start, pdf.body_end)) == big[:-2]


def test_long_lines_are_bounded() -> None:
    data = b"Subject: x\r\n\r\n" + b"a" * 300_000
    skel = scan(_in_pieces(data, 10_000), prefix_limit=100, line_limit=1000)
    assert skel.root.prefix == b"a" * 100
    assert skel.root.body_size == 300_000
