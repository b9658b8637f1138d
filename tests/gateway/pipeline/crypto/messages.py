"""Test messages and helpers to compare a decrypted entity with the original, part by part."""

from __future__ import annotations

import os
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import SMTP, default

ATTACHMENT = os.urandom(3000) + b"\x00\r\n\x1a" + bytes(range(256))


def sample_message(subject: str = "Quarterly figures, confidential") -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = "Alice Sender <alice@acme.example>"
    msg["To"] = "Bob Recipient <bob@recipient.test>"
    msg["Cc"] = "ed@recipient.test"
    msg["Subject"] = subject
    msg["Date"] = "Tue, 04 Mar 2025 10:15:00 +0000"
    msg["Message-ID"] = "<m1@acme.example>"
    msg["X-Sealmail-Tenant-Token"] = "secret-connector-token"
    msg.set_content("Hello Bob,\nthe figures are attached. Grüße, naïve café\n")
    msg.add_alternative("<p>Hello Bob, <b>the figures</b> are attached.</p>\n", subtype="html")
    msg.add_attachment(
        ATTACHMENT, maintype="application", subtype="octet-stream", filename="figures.bin"
    )
    msg.add_attachment(b"a,b\r\n1,2\r\n", maintype="text", subtype="csv", filename="t.csv")
    return bytes(msg)


def parse(data: bytes) -> EmailMessage:
    msg = BytesParser(policy=default).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    return msg


def leaves(msg: EmailMessage) -> list[tuple[str, str | None, bytes]]:
    """(content type, filename, decoded bytes) of every leaf part, in order."""
    return [
        (p.get_content_type(), p.get_filename(), p.get_payload(decode=True))
        for p in msg.walk()
        if not p.is_multipart()
    ]
