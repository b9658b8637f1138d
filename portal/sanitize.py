"""Message HTML made safe to show: nh3 (ammonia) with an allow-list fit for email.

No scripts, no event handlers, no forms, no ``<style>`` blocks, no remote content.
URLs are allow-listed by scheme, after the value is read the way a browser reads it
(entities decoded by the parser, then tabs, newlines and control characters dropped, case
folded): links keep ``http``, ``https``, ``mailto`` and ``tel``; an image keeps its ``src``
only as ``cid:`` (a part of the message itself; remote images would tell the sender when
and where the message was read, and ``data:`` images are refused too); relative URLs go
(they would point at the portal). Links open in a new tab without a referrer.
Inline CSS is kept declaration by declaration: a property on the allow-list whose value is
plain words, numbers, colours and ``rgb()``/``hsl()``; anything else — ``url()``,
``expression()``, ``behavior``, ``-moz-binding``, escapes, comments — loses the declaration.
The body frame's CSP blocks scripts and every load as a second fence.
"""

from __future__ import annotations

import html as html_lib
import re

import nh3

LINK_SCHEMES = frozenset({"http", "https", "mailto", "tel"})
IMAGE_SCHEMES = frozenset({"cid"})
CITE_SCHEMES = frozenset({"http", "https"})

_TAGS = {
    "a", "abbr", "address", "b", "bdi", "bdo", "big", "blockquote", "br", "caption", "center",
    "cite", "code", "col", "colgroup", "dd", "del", "dfn", "div", "dl", "dt", "em", "font",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol",
    "p", "pre", "q", "s", "samp", "small", "span", "strike", "strong", "sub", "sup", "table",
    "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u", "ul", "var",
}  # fmt: skip
_GENERIC = {"align", "valign", "dir", "lang", "title", "style", "class", "width", "height"}
_ATTRIBUTES = {
    "*": _GENERIC,
    "a": {"href", "name"},
    "img": {"src", "alt", "border"},
    "table": {"border", "cellpadding", "cellspacing", "bgcolor", "summary"},
    "td": {"colspan", "rowspan", "bgcolor", "nowrap"},
    "th": {"colspan", "rowspan", "bgcolor", "nowrap", "scope"},
    "tr": {"bgcolor"},
    "col": {"span"},
    "colgroup": {"span"},
    "font": {"color", "face", "size"},
    "ol": {"start", "type"},
    "li": {"value"},
    "blockquote": {"cite"},
}
_STYLE_PROPERTIES = {
    "color", "background-color", "font", "font-family", "font-size", "font-style",
    "font-weight", "line-height", "letter-spacing", "text-align", "text-decoration",
    "text-transform", "text-indent", "vertical-align", "white-space", "word-break",
    "width", "height", "max-width", "min-width", "max-height", "min-height",
    "margin", "margin-top", "margin-right", "margin-bottom", "margin-left",
    "padding", "padding-top", "padding-right", "padding-bottom", "padding-left",
    "border", "border-top", "border-right", "border-bottom", "border-left", "border-color",
    "border-style", "border-width", "border-radius", "border-collapse", "border-spacing",
    "display", "float", "clear", "overflow", "table-layout", "list-style-type",
}  # fmt: skip


_SCHEME = re.compile(r"^([a-z][a-z0-9+.\-]*):")
_INVISIBLE = re.compile(r"[\x00-\x20\x7f-\x9f\u00ad\u200b-\u200f\u2028-\u202e\u2060\ufeff]")
_FUNCTIONS = re.compile(r"\b(?:rgba?|hsla?)\([0-9\s.,%/+\-]*\)", re.IGNORECASE)
_PLAIN_VALUE = re.compile(r"^[\w\s#%.,'\"!/+\-]*$")


def url_scheme(value: str) -> str | None:
    """The scheme a browser would see in ``value`` (lower case), or None for a relative or
    unreadable URL. Entities are decoded once more (the parser decoded them once) and every
    whitespace or control character is dropped, as browsers drop them from a scheme."""
    text = _INVISIBLE.sub("", html_lib.unescape(value)).lower()
    m = _SCHEME.match(text)
    return m.group(1) if m else None


def _url_allowed(tag: str, attribute: str, value: str) -> bool:
    if attribute == "href":
        return url_scheme(value) in LINK_SCHEMES
    if attribute == "src":
        return tag == "img" and url_scheme(value) in IMAGE_SCHEMES
    return url_scheme(value) in CITE_SCHEMES  # cite


def clean_style(value: str) -> str | None:
    """The declarations of a ``style`` attribute that can neither load nor run anything."""
    kept = []
    for declaration in value.split(";"):
        name, colon, val = declaration.partition(":")
        name, val = name.strip().lower(), val.strip()
        if not colon or not val or name not in _STYLE_PROPERTIES:
            continue
        if val.count('"') % 2 or val.count("'") % 2:
            continue
        if not _PLAIN_VALUE.match(_FUNCTIONS.sub("", val)):
            continue  # url(), expression(), image-set(), var(), \ escapes, /* comments */
        kept.append(f"{name}:{val}")
    return ";".join(kept) or None


def _filter(tag: str, attribute: str, value: str) -> str | None:
    if attribute in ("href", "src", "cite"):
        return value if _url_allowed(tag, attribute, value) else None
    if attribute == "style":
        return clean_style(value)
    if attribute == "class":
        return None  # our frame has no classes to borrow; theirs mean nothing here
    return value


def sanitize_html(html: str) -> str:
    return nh3.clean(
        html,
        tags=_TAGS,
        clean_content_tags={"script", "style", "title", "head", "noscript", "template"},
        attributes=_ATTRIBUTES,
        attribute_filter=_filter,
        url_schemes=set(LINK_SCHEMES | IMAGE_SCHEMES),
        url_relative="deny",
        link_rel="noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        filter_style_properties=_STYLE_PROPERTIES,
        strip_comments=True,
    )
