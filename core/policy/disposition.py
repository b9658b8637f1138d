"""From a policy decision to what happens to a recipient's copy (STYLE.md: rule → chain →
disposition). Shared by the gateway's pipeline and the portal's dry run."""

from __future__ import annotations

from collections.abc import Set

DISPOSITIONS = ("clear", "tls", "portal", "pgp", "smime", "pdf", "hold", "reject")
_FORCED = {"portal": "portal", "pgp": "pgp", "smime": "smime", "pdf": "pdf"}


def disposition_for(
    action: str, method: str, methods_available: Set[str], *, pdf_when_no_key: bool = False
) -> str:
    """``encrypt``/``auto`` picks OpenPGP, then S/MIME, then the portal by the keys known
    for the recipient (an encrypted PDF instead of the portal notice when the tenant's
    ``pdf_when_no_key`` is set); a forced method stands even without a key (the pipeline
    then fails closed and defers). ``pdf`` is sealed to the portal like ``portal``: the
    notice carries the message as an AES-256 encrypted PDF."""
    if action == "encrypt":
        if method in _FORCED:
            return _FORCED[method]
        if "pgp" in methods_available:
            return "pgp"
        if "smime" in methods_available:
            return "smime"
        return "pdf" if pdf_when_no_key else "portal"
    return {"require_tls": "tls", "hold": "hold", "reject": "reject", "pass": "clear"}[action]


def upgraded_by_trigger(action: str) -> bool:
    """A subject keyword or ``X-Sealmail-Encrypt`` turns these into ``encrypt``/``auto``;
    ``hold``, ``reject`` and an ``encrypt`` rule stand."""
    return action in ("pass", "require_tls")
