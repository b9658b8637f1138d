"""The sentence a person reads for a decision about a message written in the secure portal
(the pipeline records ``portal_origin`` and ``portal_route`` in the decision's
explanation); the sender's ``/sent`` pages, the admin pages and the API share it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_WHAT = {
    "reply": "Reply written in the secure portal",
    "forward": "Message forwarded from the secure portal",
    "compose": "Message written in the secure portal",
}


def portal_origin_words(explanation: Mapping[str, Any], tenant_name: str) -> str | None:
    """``"Reply written in the secure portal: delivered by mail to an address of Acme"`` or
    ``"...: sealed for an external recipient"``; None for a decision that is not about a
    message written in the portal (or one a rule held or rejected: the rule says why)."""
    what = _WHAT.get(str(explanation.get("portal_origin", "")))
    route = explanation.get("portal_route")
    if what is None or route not in ("internal", "external"):
        return None
    if route == "internal":
        return f"{what}: delivered by mail to an address of {tenant_name}"
    return f"{what}: sealed for an external recipient"
