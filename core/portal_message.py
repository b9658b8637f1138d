"""What the portal shows of a sealed message: its headers and the ids of its sealed parts.

The gateway's pipeline writes this as a sealed JSON object (``Message.meta_object_id``);
the portal reads it. It holds message content (subject, names), so it is never stored
in clear.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

FORMAT = 1


@dataclasses.dataclass(frozen=True)
class Part:
    """An attachment (or an inline image) stored as its own sealed object."""

    object_id: str
    filename: str
    content_type: str
    size: int
    sha256: str  # of the decoded bytes, shown to the recipient as evidence
    inline: bool = False
    content_id: str = ""


@dataclasses.dataclass(frozen=True)
class PortalMessage:
    subject: str
    sender: str  # the From header as displayed ("Name <addr>")
    sender_name: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    date: str  # RFC 5322 date header, or "" if none
    message_id_header: str
    text_object_id: str | None  # text/plain body, sealed
    html_object_id: str | None  # text/html body as received (sanitized when shown), sealed
    attachments: tuple[Part, ...] = ()
    version: int = FORMAT
    not_shown: int = 0  # parts nested too deep to be parsed (core.mime_text.MAX_DEPTH)

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> PortalMessage:
        raw: dict[str, Any] = json.loads(data)
        if raw.get("version") != FORMAT:
            raise ValueError(f"unknown portal message format {raw.get('version')!r}")
        raw["to"] = tuple(raw.get("to", ()))
        raw["cc"] = tuple(raw.get("cc", ()))
        raw["attachments"] = tuple(Part(**p) for p in raw.get("attachments", ()))
        return cls(**raw)
