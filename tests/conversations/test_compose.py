"""A message written in the portal as bytes: headers built structurally, threading headers
as given, attachments streamed byte for byte, options carried as headers."""

from __future__ import annotations

import hashlib
import io
import os
from email import message_from_bytes
from email.policy import default as default_policy

from conversations.compose import Draft, Upload, chunks, prepare


def _draft(**kw) -> Draft:  # noqa: ANN003
    base = dict(
        from_addr="Bob <bob@partner.example>",
        to=["alice@acme.example"],
        cc=["carol@other.example"],
        subject="Re: Loan\r\nBcc: evil@x",
        text="Thanks.\r\nSee attached.\n",
        in_reply_to="<m1@acme.example>",
        references="<m0@acme.example> <m1@acme.example>",
        msgid_domain="portal.test",
    )
    base.update(kw)
    return Draft(**base)  # type: ignore[arg-type]


def test_text_only_message() -> None:
    draft = prepare(_draft(headers={"X-Sealmail-Reply": "sender"}))
    raw = b"".join(chunks(draft))
    msg = message_from_bytes(raw, policy=default_policy)
    assert msg["From"] == "Bob <bob@partner.example>"
    assert msg["To"] == "alice@acme.example" and msg["Cc"] == "carol@other.example"
    assert msg["Bcc"] is None and "\n" not in str(msg["Subject"])
    assert msg["In-Reply-To"] == "<m1@acme.example>"
    assert msg["References"] == "<m0@acme.example> <m1@acme.example>"
    assert msg["Message-ID"] == draft.message_id and draft.message_id.endswith("@portal.test>")
    assert msg["X-Sealmail-Reply"] == "sender"
    assert (
        msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == "Thanks.\nSee attached.\n"
    )
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))


def test_attachments_stream_byte_for_byte() -> None:
    blob = os.urandom(300_000)
    uploads = [
        Upload("data.bin", "application/octet-stream", io.BytesIO(blob), len(blob)),
        Upload("note.txt", "text/plain", io.BytesIO(b"hello"), 5),
    ]
    pieces = list(chunks(prepare(_draft(attachments=uploads))))
    assert len(pieces) > 4  # produced piece by piece, not as one string
    msg = message_from_bytes(b"".join(pieces), policy=default_policy)
    files = {p.get_filename(): p.get_content() for p in msg.iter_attachments()}
    assert hashlib.sha256(files["data.bin"]).digest() == hashlib.sha256(blob).digest()
    assert files["note.txt"] in ("hello", b"hello")
    assert "See attached." in msg.get_body(("plain",)).get_content()


def test_no_value_can_start_a_header_of_its_own() -> None:
    draft = Draft(
        from_addr="bob@x.example",
        to=["a@b.example"],
        cc=[],
        subject="hi\r\nBcc: evil@x.example",
        text="t",
        headers={"X-Sealmail-Expires": "2h\r\nBcc: evil@x.example"},
    )
    raw = b"".join(chunks(draft))
    block = raw.split(b"\r\n\r\n", 1)[0]
    names = [line.split(b":", 1)[0].lower() for line in block.split(b"\r\n")]
    assert b"bcc" not in names
    assert b"evil@x.example" in block  # kept as text inside the one-line values
