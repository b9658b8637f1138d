"""The top-level header block of a raw message, handled as bytes so the body (and every
header we do not touch) keeps its exact original octets — DKIM signatures survive.

Only whole header fields are removed or prepended; nothing is re-serialised.
"""

from __future__ import annotations

from email.parser import BytesHeaderParser
from email.policy import default as default_policy

INTERNAL_PREFIX = b"x-sealmail-"


def split_header_block(raw: bytes) -> tuple[bytes, bytes]:
    """``(header block with its final line break, the rest)``; the rest starts with the
    blank line (or is empty when the message has no body)."""
    if raw.startswith((b"\r\n", b"\n")):
        return b"", raw
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = raw.find(sep)
        if i >= 0:
            cut = i + len(sep) // 2
            return raw[:cut], raw[cut:]
    return raw, b""


def header_fields(block: bytes) -> list[bytes]:
    """The header block as a list of fields, each with its continuation lines."""
    fields: list[bytes] = []
    for line in block.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    return fields


def field_name(field: bytes) -> bytes:
    return field.split(b":", 1)[0].strip().lower()


def strip_fields(raw: bytes, prefix: bytes = INTERNAL_PREFIX) -> bytes:
    """``raw`` without the top-level header fields whose name starts with ``prefix``."""
    block, rest = split_header_block(raw)
    fields = header_fields(block)
    kept = [f for f in fields if not field_name(f).startswith(prefix)]
    if len(kept) == len(fields):
        return raw
    return b"".join(kept) + rest


def prepend_field(raw: bytes, name: str, value: str) -> bytes:
    return f"{name}: {value}\r\n".encode("ascii") + raw


def parse_headers(raw: bytes):  # -> email.message.EmailMessage (headers only)
    """The top-level headers parsed with the modern policy; the body is not looked at."""
    block, _ = split_header_block(raw)
    return BytesHeaderParser(policy=default_policy).parsebytes(block + b"\r\n")


def header_value(raw: bytes, name: str) -> str:
    """The first value of header ``name`` (decoded, unfolded), or ``""``."""
    try:
        value = parse_headers(raw).get(name)
    except Exception:  # noqa: BLE001 - a header we cannot parse counts as absent
        return ""
    return str(value).strip() if value is not None else ""


def replace_field(raw: bytes, name: str, value: str) -> bytes:
    """``raw`` with every top-level ``name`` field replaced by one new field (RFC 2047
    encoded and folded as needed) where the first one stood; the rest is untouched."""
    from email.policy import SMTP

    line = SMTP.fold_binary(name, value)
    block, rest = split_header_block(raw)
    out: list[bytes] = []
    placed = False
    wanted = name.lower().encode()
    for f in header_fields(block):
        if field_name(f) == wanted:
            if not placed:
                out.append(line)
                placed = True
            continue
        out.append(f)
    if not placed:
        out.append(line)
    return b"".join(out) + rest
