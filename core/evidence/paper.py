"""A receipt as a PDF a person reads, carrying the very same signed receipt as an attached
file (``receipt.json``): the pages say in sentences what the signed payload says, and
:func:`signed_of` takes the payload back out for :func:`core.evidence.receipt.verify`.
"""

from __future__ import annotations

import io
import json
import time
from typing import Any

from core.pdf import Document

ATTACHED = "receipt.json"

_SAID = {
    "decided": "decided: {disposition}",
    "sealed": "sealed for the secure portal",
    "notified": "notified ({reply})",
    "delivered": "delivered to the next hop ({reply})",
    "bounced": "could not be delivered ({reply})",
    "opened": "opened it in the secure portal",
    "downloaded": "downloaded it",
    "replied": "replied securely",
    "forwarded": "forwarded it securely",
    "revoked": "access revoked",
    "expired": "access expired",
    "expiry_changed": "expiry changed",
    "resent": "sent a new link",
    "copy_requested": "asked for a new copy",
    "receipt_sent": "read receipt sent to the sender",
    "pdf_sent": "sent as a password-protected PDF",
}


def _when(at: float) -> str:
    return time.strftime("%d %b %Y %H:%M:%S UTC", time.gmtime(at))


def event_words(event: dict[str, Any]) -> str:
    detail = event.get("detail") or {}
    template = _SAID.get(event.get("kind", ""), event.get("kind", "").replace("_", " "))
    try:
        return template.format(
            disposition=detail.get("disposition", "?"),
            reply=str(detail.get("reply", "no reply recorded"))[:120],
        )
    except (KeyError, IndexError, ValueError):
        return template


def render(signed: dict[str, Any], portal_url: str = "") -> bytes:
    """The PDF of a signed receipt (blocking)."""

    receipt = signed["receipt"]
    doc = Document(f"Receipt for message {receipt['message_id']}")
    pdf, line = doc.pdf, doc.line

    line("Signed receipt", 16, "B", 8)
    pdf.ln(2)
    line(
        f"{receipt['tenant']} certifies that the message {receipt['message_id']} from "
        f"{receipt['envelope_from'] or 'the null sender'} was accepted on "
        f"{_when(receipt['received_at'])} and was handled as this receipt shows.",
        11,
    )
    pdf.ln(1)
    line(f"SHA-256 of the message: {receipt['sha256']} ({receipt['size']:,} bytes)", 9)
    for r in receipt["recipients"]:
        pdf.ln(4)
        line(r["address"], 11.5, "B", 6)
        if not r["events"]:
            line("Nothing recorded for this recipient yet.", 10)
        for e in r["events"]:
            line(f"{_when(e['at'])}: {event_words(e)} (evidence entry {e['seq']})", 9.5)
    pdf.ln(6)
    cp = receipt.get("checkpoint")
    chained = f" The tenant's log was signed at entry {cp['seq']}." if cp else ""
    keys_at = (
        f"{portal_url.rstrip('/')}/.well-known/sealmail/receipt-keys"
        if portal_url
        else ("the portal's /.well-known/sealmail/receipt-keys")
    )
    line(
        f"Issued {_when(receipt['issued_at'])} and signed with {receipt['tenant']}'s Ed25519 "
        f"key {signed['key_id']}.{chained} This PDF carries the signed receipt as the attached "
        f"file {ATTACHED}; anyone can check it offline with the public key published at "
        f"{keys_at}: sealmail receipt verify this.pdf --public-key keys.json",
        8,
        "",
        4.5,
    )
    payload = json.dumps(signed, indent=2, sort_keys=True, ensure_ascii=False).encode()
    pdf.embed_file(bytes=payload, basename=ATTACHED, desc="The signed receipt")
    return bytes(pdf.output())


def signed_of(data: bytes) -> bytes:
    """The signed receipt a PDF carries (ValueError when it carries none)."""
    from pypdf import PdfReader

    try:
        attached = PdfReader(io.BytesIO(data)).attachments.get(ATTACHED)
    except Exception as exc:  # noqa: BLE001 - pypdf raises many kinds on a broken file
        raise ValueError(f"not a readable PDF ({type(exc).__name__})") from None
    if not attached:
        raise ValueError(f"the PDF carries no {ATTACHED}")
    return attached[0]
