"""The loop stamp ``X-Sealmail-Processed: <tenant id>;<HMAC>`` on everything we send.

The HMAC (SHA-256, key derived from the root key) covers the tenant id and the
Message-ID header, so a stamp cannot be moved to another tenant or another message.
A message without a Message-ID never counts as stamped.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator

from core.hashing import hmac_sha256
from gateway.headers import (
    HeadSplit,
    edit_header_lines,
    field_name,
    header_value,
    prepend_field,
    strip_fields,
)

# a message that arrived with our valid stamp for its tenant: relayed as it is, never processed
# again (intake marks it, the pipeline honours it)
DISPOSITION_LOOP = "loop"

STAMP_HEADER = "X-Sealmail-Processed"


def stamp_value(key: bytes, tenant_id: str, message_id: str) -> str:
    digest = hmac_sha256(key, f"{tenant_id}\x00{message_id.strip()}".encode())
    return f"{tenant_id};{digest}"


def has_valid_stamp(key: bytes, tenant_id: str, raw: bytes) -> bool:
    """True when ``raw`` carries our stamp for ``tenant_id`` and its own Message-ID."""
    value = header_value(raw, STAMP_HEADER)
    message_id = header_value(raw, "Message-ID")
    if not value or not message_id:
        return False
    expected = stamp_value(key, tenant_id, message_id)
    return hmac.compare_digest(value.replace(" ", ""), expected)


def stamp(key: bytes, tenant_id: str, raw: bytes) -> bytes:
    """``raw`` with every ``X-Sealmail-*`` header removed and a fresh stamp prepended."""
    clean = strip_fields(raw)
    value = stamp_value(key, tenant_id, header_value(clean, "Message-ID"))
    return prepend_field(clean, STAMP_HEADER, value)


HEAD_KEPT = 256 * 1024  # bytes of a streamed message's header block kept (for a DSN)


def stamp_stream(
    key: bytes, tenant_id: str, read: Callable[[], Iterator[bytes]]
) -> tuple[bytes, Callable[[], Iterator[bytes]]]:
    """:func:`stamp` for a message read chunk by chunk (blocking: call it in a thread):
    ``(its header block, up to HEAD_KEPT bytes; a function reading the stamped message
    afresh each time it is called)``. The header block is read once here for the
    Message-ID; nothing is held but one chunk and one header field."""
    head = bytearray()
    message_id: list[bytes] = []
    current = False
    for line in HeadSplit(read()).header_lines():
        if len(head) < HEAD_KEPT:
            head += line[: HEAD_KEPT - len(head)]
        if line[:1] in (b" ", b"\t"):
            if current and len(message_id) < 64:
                message_id.append(line)
            continue
        current = not message_id and field_name(line) == b"message-id"
        if current:
            message_id.append(line)
    found = header_value(b"".join(message_id) + b"\r\n", "Message-ID") if message_id else ""
    field = f"{STAMP_HEADER}: {stamp_value(key, tenant_id, found)}\r\n".encode("ascii")

    def stamped() -> Iterator[bytes]:
        split = HeadSplit(read())
        block = bytearray(field)
        for line in edit_header_lines(split.header_lines()):
            block += line
            if len(block) >= 64 * 1024:
                yield bytes(block)
                block.clear()
        yield bytes(block)
        yield from split.rest()

    return bytes(head), stamped
