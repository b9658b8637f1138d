"""A message or a whole conversation as a readable PDF (fpdf2): per message who sent it,
when, to whom, the subject, the text body and the attachments with their SHA-256, so the
paper copy can be matched against the files.

The font and what it can print: :mod:`core.pdf`.
"""

from __future__ import annotations

import dataclasses

from core.pdf import Document

MAX_BODY_CHARS = 400_000  # per message: a longer body is cut, saying so


@dataclasses.dataclass(frozen=True)
class PaperMessage:
    sentence: str  # "Alice Smith sent this on ... to you and Carol."
    sender: str
    to: list[str]
    cc: list[str]
    date: str
    subject: str
    text: str  # the plain text body ("" when the message has only HTML)
    attachments: list[tuple[str, int, str]]  # (file name, size in bytes, SHA-256)
    html_only: bool = False


def render_pdf(title: str, messages: list[PaperMessage], footer: str) -> bytes:
    """The PDF bytes (blocking: run it in a thread for big bodies)."""
    doc = Document(title)
    pdf, line, width = doc.pdf, doc.line, doc.width

    line(title or "(no subject)", 16, "B", 8)
    pdf.ln(2)
    for n, m in enumerate(messages):
        if n:
            pdf.ln(4)
            pdf.set_draw_color(160, 160, 160)
            pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + width, pdf.get_y())
            pdf.ln(4)
        line(m.sentence, 11.5, "B", 6)
        line(f"From: {m.sender}", 9.5)
        if m.to:
            line(f"To: {', '.join(m.to)}", 9.5)
        if m.cc:
            line(f"Cc: {', '.join(m.cc)}", 9.5)
        if m.date:
            line(f"Date: {m.date}", 9.5)
        line(f"Subject: {m.subject or '(no subject)'}", 9.5)
        pdf.ln(3)
        body = m.text
        if len(body) > MAX_BODY_CHARS:
            body = body[:MAX_BODY_CHARS] + "\n[... the rest is in the .eml download]"
        if body.strip():
            line(body, 10.5, "", 5.2)
        elif m.html_only:
            line("This message has only a formatted (HTML) body: see it in the portal.", 10)
        else:
            line("This message has no text.", 10)
        if m.attachments:
            pdf.ln(3)
            line(f"Attachments ({len(m.attachments)})", 10.5, "B", 6)
            for name, size, digest in m.attachments:
                line(f"{name} ({size:,} bytes)", 10)
                line(f"SHA-256 {digest}", 8)
    pdf.ln(6)
    line(footer, 8, "", 4.5)
    return bytes(pdf.output())
