"""What the handlers of one pass over a message share: the :class:`Context`."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from conversations.options import Options
from core.mime_text import header_text
from core.models import Message, MessageRecipient, Tenant
from core.services import Services
from gateway.headers import replace_field, strip_fields
from gateway.pipeline.decide import Verdict
from gateway.pipeline.round_cache import RoundCache

if TYPE_CHECKING:
    from gateway.pipeline.original import LargeOriginal


@dataclasses.dataclass
class Context:
    services: Services
    session: AsyncSession
    message: Message
    tenant: Tenant
    raw: bytes
    msg: EmailMessage
    recipients: list[MessageRecipient]
    subject: str = ""  # as the recipient sees it (trigger keywords removed)
    portal_meta_id: str | None = None
    links: dict[str, tuple[str, float]] = dataclasses.field(default_factory=dict)
    new_recipients: set[str] = dataclasses.field(default_factory=set)
    verdicts: dict[str, Verdict] = dataclasses.field(default_factory=dict)
    holds: dict[tuple[str, str], list[str]] = dataclasses.field(default_factory=dict)
    # the conversation (issue 12): per-message options and threading, read before the
    # write transaction by gateway.pipeline.conversation
    options: Options = dataclasses.field(default_factory=Options)
    msgid_hash: str = ""
    thread_id: str = ""
    parent_id: str = ""
    # the tenant's policy, domains and brands, read once per round (shared by its messages)
    cache: RoundCache = dataclasses.field(default_factory=RoundCache)
    # a large message (gateway.pipeline.original): ``raw`` is then only its header block and
    # ``msg`` its headers until the runner reads it whole for a handler that needs it
    large: LargeOriginal | None = None
    # the original's SHA-256 and size (for the evidence log), computed once by the runner
    raw_sha256: str = ""
    raw_size: int = 0
    sealed_parts: int | None = None  # set when this pass sealed the portal copy

    def outbound_raw(self) -> bytes:
        """The original bytes for the next hop: internal headers removed and, when a
        trigger keyword was in the subject, the subject without it."""
        data = strip_fields(self.raw)
        original = header_text(self.msg, "Subject")
        if self.subject != original:
            data = replace_field(data, "Subject", self.subject)
        return data


Handler = Callable[[Context, list[MessageRecipient]], Awaitable[None]]
