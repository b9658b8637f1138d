"""The loop stamp ``X-Sealmail-Processed: <tenant id>;<HMAC>`` on everything we send.

The HMAC (SHA-256, key derived from the root key) covers the tenant id and the
Message-ID header, so a stamp cannot be moved to another tenant or another message.
A message without a Message-ID never counts as stamped.
"""

from __future__ import annotations

import hmac

from core.hashing import hmac_sha256
from gateway.headers import header_value, prepend_field, strip_fields

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
