"""From a policy decision to what happens to a recipient's copy (STYLE.md: rule → chain →
disposition). Shared by the gateway's pipeline and the portal's dry run."""

from __future__ import annotations

from collections.abc import Set

DISPOSITIONS = ("clear", "tls", "portal", "pgp", "smime", "hold", "reject")
_FORCED = {"portal": "portal", "pgp": "pgp", "smime": "smime"}


def disposition_for(action: str, method: str, methods_available: Set[str]) -> str:
    """``encrypt``/``auto`` picks OpenPGP, then S/MIME, then the portal by the keys known
    for the recipient; a forced method stands even without a key (the pipeline then fails
    closed and defers)."""
    if action == "encrypt":
        if method in _FORCED:
            return _FORCED[method]
        if "pgp" in methods_available:
            return "pgp"
        if "smime" in methods_available:
            return "smime"
        return "portal"
    return {"require_tls": "tls", "hold": "hold", "reject": "reject", "pass": "clear"}[action]


def upgraded_by_trigger(action: str) -> bool:
    """A subject keyword or ``X-Sealmail-Encrypt`` turns these into ``encrypt``/``auto``;
    ``hold``, ``reject`` and an ``encrypt`` rule stand."""
    return action in ("pass", "require_tls")
