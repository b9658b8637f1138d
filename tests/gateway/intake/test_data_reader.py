"""The bulk DATA decoder against a line-by-line reference, under any chunking."""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.intake.data_reader import MAX_LINE_OCTETS, DataDecoder, DataState

_LINE = re.compile(rb"([^\r\n]*)(\r\n|\r|\n)")


def reference(stream: bytes, max_size: int | None, max_content: int = 999):
    """Obviously-correct, whole-stream version: (message, nominal?, leftover) or None."""
    out: list[bytes] = []
    nominal, prev_crlf, size = True, True, 0
    for m in _LINE.finditer(stream):
        content, brk = m.group(1), m.group(2)
        if content == b".":
            if brk == b"\r\n" and prev_crlf:
                return b"".join(out), nominal, stream[m.end() :]
            nominal = False
        else:
            if len(content) > max_content:
                nominal = False
            line = (content[1:] if content.startswith(b".") else content) + b"\r\n"
            size += len(line)
            if max_size is not None and size > max_size:
                nominal = False
            out.append(line)
        prev_crlf = brk == b"\r\n"
    return None


def decode(stream: bytes, cuts: list[int], max_size: int | None):
    # the RFC's 1000-octet lines, so that the generated streams reach the bound
    d = DataDecoder(max_size, max_line=1001)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    for a, b in zip(points, points[1:], strict=False):
        rest = d.feed(stream[a:b])
        if rest is not None:
            return d.message, d.state is DataState.NOMINAL, rest + stream[b:]
    return None


TOKENS = [
    b"\r\n",
    b"\r",
    b"\n",
    b".",
    b"..",
    b"a",
    b"Subject: x",
    b"\r\n.\r\n",
    b"z" * 400,
    b"\xff\x00",
    b" ",
]
streams = st.lists(st.sampled_from(TOKENS), max_size=60).map(b"".join)


@settings(max_examples=600, deadline=None)
@given(
    streams, st.lists(st.integers(0, 5000), max_size=12), st.one_of(st.none(), st.integers(1, 3000))
)
@example(b"a\n.\r\nb\r\n.\r\n", [], None)
@example(b"a\r\n.\nb\r\n.\r\n", [3, 4], None)
@example(b"a\r.\rb\r\n.\r\n", [2], None)
@example(b".\r\nQUIT\r\n", [1, 2], None)
@example(b"a\r", [], None)
def test_matches_reference(stream, cuts, max_size):
    got = decode(stream, cuts, max_size)
    want = reference(stream, max_size)
    if want is None:
        assert got is None
        return
    assert got is not None
    assert got[1] == want[1] and got[2] == want[2]
    if want[1]:
        assert got[0] == want[0]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.binary(max_size=120).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
        max_size=40,
    ),
    st.lists(st.integers(0, 10000), max_size=8),
    st.binary(max_size=30),
)
def test_stuffed_lines_round_trip(lines, cuts, after):
    stuffed = b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n" for ln in lines)
    got = decode(stuffed + b".\r\n" + after, cuts, None)
    assert got == (b"".join(ln + b"\r\n" for ln in lines), True, after)


@settings(max_examples=300, deadline=None)
@given(streams, st.lists(st.integers(0, 5000), max_size=12))
def test_output_has_only_crlf_line_breaks(stream, cuts):
    got = decode(stream + b"\r\n.\r\n", cuts, None)
    assert got is not None
    if got[1]:
        msg = got[0]
        assert msg.count(b"\r") == msg.count(b"\n") == msg.count(b"\r\n")


def test_smuggling_variants_are_refused_and_do_not_end_data():
    for attack in (b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r", b"\r.\r\n"):
        d = DataDecoder()
        rest = d.feed(b"Subject: x\r\n\r\nhi" + attack + b"MAIL FROM:<evil@x>\r\n")
        assert rest is None, attack
        assert d.feed(b"\r\n.\r\n") == b""
        assert d.state is DataState.BARE_NEWLINE, attack


def test_bare_lf_elsewhere_is_normalised():
    d = DataDecoder()
    assert d.feed(b"a\nb\rc\r\n.\r\n") == b""
    assert d.state is DataState.NOMINAL and d.message == b"a\r\nb\r\nc\r\n"


def test_long_lines_and_size():
    d = DataDecoder()
    d.feed(b"x" * 20_000 + b"\r\n")
    assert d.state is DataState.NOMINAL
    d.feed(b"y" * 40_000)
    d.feed(b"y" * 40_000 + b"\r\n.\r\n")
    assert d.done and d.state is DataState.TOO_LONG and d.message == b""
    for line, state in (
        (b"." * MAX_LINE_OCTETS, DataState.NOMINAL),  # the longest line, as sent
        (b"a" * MAX_LINE_OCTETS, DataState.NOMINAL),
        (b"a" * (MAX_LINE_OCTETS + 1), DataState.TOO_LONG),
    ):
        d = DataDecoder()
        assert d.feed(b"x\r\n" + line + b"\r\n.\r\n") == b""
        assert d.state is state, len(line)
        if state is DataState.NOMINAL:
            assert d.message == b"x\r\n" + line.removeprefix(b".") + b"\r\n"
    d = DataDecoder(max_size=10)
    assert d.feed(b"0123456789abc\r\n.\r\n") == b""
    assert d.state is DataState.TOO_BIG
