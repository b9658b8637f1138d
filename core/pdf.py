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
