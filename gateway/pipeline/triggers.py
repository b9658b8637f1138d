"""The built-in encryption triggers (SPEC §3): a keyword in the subject, the
``X-Sealmail-Encrypt: yes`` header, and ``Sensitivity: Company-Confidential`` for tenants
that opt in. Each answers with its reason, so "why was this encrypted?" has an answer.

Policy rules (SPEC §4) come later in ``gateway/policy/``; they will sit next to these.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.message import EmailMessage

from core.mime_text import header_text
from core.models import Tenant

ENCRYPT_HEADER = "X-Sealmail-Encrypt"
_YES = ("yes", "true", "1", "on")


def subject_keyword(subject: str, keywords: Iterable[str]) -> str | None:
    lowered = subject.lower()
    for keyword in keywords:
        if keyword.lower() in lowered:
            return keyword
    return None


def strip_keywords(subject: str, keywords: Iterable[str]) -> str:
    """The subject the recipient sees: every trigger keyword removed, spaces tidied."""
    for keyword in keywords:
        subject = re.sub(re.escape(keyword), " ", subject, flags=re.IGNORECASE)
    return " ".join(subject.split())


def encrypt_reason(msg: EmailMessage, tenant: Tenant, keywords: Iterable[str]) -> str | None:
    """Why this message must be encrypted, or ``None`` when no trigger holds."""
    keyword = subject_keyword(header_text(msg, "Subject"), keywords)
    if keyword:
        return f"subject keyword {keyword}"
    if header_text(msg, ENCRYPT_HEADER).lower() in _YES:
        return f"header {ENCRYPT_HEADER}"
    if (
        tenant.sensitivity_trigger
        and header_text(msg, "Sensitivity").lower() == "company-confidential"
    ):
        return "header Sensitivity: Company-Confidential"
    return None
