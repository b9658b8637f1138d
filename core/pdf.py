"""What every PDF sealmail writes (fpdf2) shares: its font, and text made printable in it.

The text is set in DejaVu Sans when the system has it (any script it covers); without it,
in the PDF core font, where characters outside Latin-1 become "?".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))


def font(pdf: Any) -> tuple[str, bool]:  # noqa: ANN401 - an fpdf.FPDF, imported by the caller
    """Add the font to ``pdf``: ``(family, whether it covers Unicode)``."""
    for folder in FONT_DIRS:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            pdf.add_font("DejaVu", "", str(regular))
            pdf.add_font("DejaVu", "B", str(bold))
            return "DejaVu", True
    return "Helvetica", False


def printable(text: str, unicode_ok: bool) -> str:
    """``text`` as the font can set it: no control characters (tabs as spaces), nothing
    outside the BMP; Latin-1 only in the core font."""
    text = text.replace("\t", "    ")
    if unicode_ok:
        return "".join(c if c >= " " or c == "\n" else " " for c in text if ord(c) < 0x10000)
    return text.encode("latin-1", "replace").decode("latin-1")


class Document:
    """An A4 document set the way every sealmail PDF is (the message PDF, the receipt, the
    encrypted PDF): the font, 18 mm margins, page breaks, one page begun; :meth:`line`
    writes wrapped text in it. ``pdf`` is the fpdf2 ``FPDF`` for anything else."""

    def __init__(self, title: str) -> None:
        from fpdf import FPDF
        from fpdf.enums import WrapMode

        self._char_wrap = WrapMode.CHAR
        self.pdf = FPDF(format="A4")
        self.family, self.unicode_ok = font(self.pdf)
        self.pdf.set_title(self.t(title)[:200])
        self.pdf.set_creator("sealmail")
        self.pdf.set_margins(18, 18, 18)
        self.pdf.set_auto_page_break(auto=True, margin=18)
        self.pdf.add_page()
        self.width = self.pdf.epw

    def t(self, text: str) -> str:
        return printable(text, self.unicode_ok)

    def line(self, text: str, size: float, style: str = "", height: float = 5.5) -> None:
        """``text`` in the document's font, wrapped to the page (anywhere in a long word)."""
        self.pdf.set_font(self.family, style, size)
        self.pdf.multi_cell(
            self.width,
            height,
            self.t(text),
            new_x="LMARGIN",
            new_y="NEXT",
            wrapmode=self._char_wrap,
        )
