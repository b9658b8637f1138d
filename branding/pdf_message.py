"""A sealed message as an AES-256 encrypted PDF (issue 16, method ``pdf``): a page that says
who sent it, when and to whom, its text and its attachments' names and SHA-256, the link to
reply securely; the attachments themselves embedded as the PDF's file attachments.

The page is drawn with fpdf2 (the font of :mod:`core.pdf`); pypdf embeds the files and
encrypts the whole (``/V 5 /R 6``, AES-256; the owner password random and never kept). It is
built in steps so that a caller reading attachments from the vault hands over one file at a
time: :class:`EncryptedPdf` holds the page and the files already given, nothing twice. All
of its methods block: call them in a thread.
"""

from __future__ import annotations

import dataclasses
import io
import secrets

from pypdf import PdfReader, PdfWriter

from core.pdf import Document

MAX_BODY_CHARS = 400_000  # a longer text is cut, saying so (the portal shows it whole)


@dataclasses.dataclass(frozen=True)
class PdfPage:
    """What the PDF's page says, already in words."""

    subject: str
    sentence: str  # "Alice Smith sent this on ... to you."
    sender: str
    to: list[str]
    cc: list[str]
    date: str
    text: str  # the text body; an HTML-only message's HTML as text
    attachments: list[tuple[str, int, str]]  # (file name, size in bytes, SHA-256)
    reply_link: str
    tenant_name: str


def _page(page: PdfPage) -> bytes:
    doc = Document(page.subject or "Secure message")
    pdf, family, t, line, width = doc.pdf, doc.family, doc.t, doc.line, doc.width

    line(page.subject or "(no subject)", 16, "B", 8)
    pdf.ln(2)
    line(page.sentence, 11.5, "B", 6)
    line(f"From: {page.sender}", 9.5)
    if page.to:
        line(f"To: {', '.join(page.to)}", 9.5)
    if page.cc:
        line(f"Cc: {', '.join(page.cc)}", 9.5)
    if page.date:
        line(f"Date: {page.date}", 9.5)
    pdf.ln(3)
    body = page.text
    if len(body) > MAX_BODY_CHARS:
        body = body[:MAX_BODY_CHARS] + "\n[... the rest of the text is in the portal]"
    line(body if body.strip() else "This message has no text.", 10.5, "", 5.2)
    if page.attachments:
        pdf.ln(3)
        count = len(page.attachments)
        line(f"Attachments ({count})", 10.5, "B", 6)
        line(
            "The files are inside this PDF: open your PDF reader's attachments panel "
            "(the paper clip) to save them.",
            9.5,
        )
        for name, size, digest in page.attachments:
            line(f"{name} ({size:,} bytes)", 10)
            line(f"SHA-256 {digest}", 8)
    pdf.ln(5)
    line("Reply securely", 11.5, "B", 6)
    line(
        "Do not answer the email this PDF came with: your answer would not be encrypted. "
        "Open the message in the secure portal and press Reply:",
        10,
    )
    pdf.set_font(family, "U", 10)
    pdf.set_text_color(20, 70, 160)
    pdf.multi_cell(
        width, 5.5, t(page.reply_link), new_x="LMARGIN", new_y="NEXT", wrapmode="CHAR",
        link=page.reply_link,
    )  # fmt: skip
    pdf.set_text_color(0, 0, 0)
    pdf.ln(5)
    line(
        f"Sent through {page.tenant_name}'s secure mail. This PDF is encrypted with AES-256; "
        "its password was never sent by email.",
        8,
        "",
        4.5,
    )
    return bytes(pdf.output())


class EncryptedPdf:
    """The PDF being built: :meth:`attach` each file, then :meth:`finish` with the password."""

    def __init__(self, page: PdfPage) -> None:
        self._writer = PdfWriter(clone_from=PdfReader(io.BytesIO(_page(page))))
        self._names: set[str] = set()

    def attach(self, filename: str, data: bytes) -> None:
        """Embed one file (a name already used gets " (2)", " (3)", ... before its suffix)."""
        name = filename.replace("/", "_").replace("\\", "_").strip() or "attachment"
        stem, dot, suffix = name.rpartition(".")
        if not dot or not stem:
            stem, dot, suffix = name, "", ""
        n = 1
        while name.lower() in self._names:
            n += 1
            name = f"{stem} ({n}){dot}{suffix}"
        self._names.add(name.lower())
        self._writer.add_attachment(name, data)

    def finish(self, password: str) -> bytes:
        """The encrypted PDF's bytes; the builder is spent afterwards."""
        if not password:
            raise ValueError("an encrypted PDF needs a password")
        writer = self._writer
        writer.encrypt(
            user_password=password,
            owner_password=secrets.token_urlsafe(32),
            algorithm="AES-256",
        )
        out = io.BytesIO()
        writer.write(out)
        del self._writer
        return out.getvalue()
