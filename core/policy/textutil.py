"""Small text helpers for extraction: HTML to text, and a file's type from its first bytes
(what a sender declares is not trusted)."""

from __future__ import annotations

import html
import io
import zipfile
from html.parser import HTMLParser

_BLOCK = {"p", "div", "br", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "table"}
_SKIP = {"script", "style", "head", "title"}

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "pdf"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"\x1f\x8b", "gzip"),
    (b"Rar!\x1a\x07", "rar"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"MZ", "exe"),
    (b"\x7fELF", "elf"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "msoffice"),
)
_OOXML = {"word/": "docx", "xl/": "xlsx", "ppt/": "pptx"}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip += 1
        elif tag in _BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP and self.skip:
            self.skip -= 1
        elif tag in _BLOCK:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.out.append(data)


def html_to_text(markup: str) -> str:
    parser = _Text()
    try:
        parser.feed(markup)
        parser.close()
    except Exception:  # noqa: BLE001, S110 - malformed markup: keep what was read
        pass
    return html.unescape("".join(parser.out))


def sniff_type(data: bytes, name: str = "") -> str:
    head = data[:16]
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return _ooxml(data) if kind == "zip" else kind
    sample = data[:4096]
    if b"\x00" in sample:
        return "binary"
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 4:  # not just a character cut at the sample's end
            try:
                text = sample.decode("cp1252")
            except UnicodeDecodeError:
                return "binary"
        else:
            text = sample[: exc.start].decode("utf-8")
    lowered = text.lstrip().lower()
    if lowered.startswith("<?xml"):
        return "xml"
    if lowered.startswith(("<!doctype html", "<html")) or "<body" in lowered[:1024]:
        return "html"
    return "text"


def _ooxml(data: bytes) -> str:
    if b"[Content_Types].xml" not in data[:65536] and b"[Content_Types].xml" not in data[-65536:]:
        return "zip"
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return "zip"
    for prefix, kind in _OOXML.items():
        if any(n.startswith(prefix) for n in names[:200]):
            return kind
    return "zip"
