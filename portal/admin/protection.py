"""The tenant's step-up setting on ``/admin/settings`` (issue 16): when opening a sealed
message in the portal needs a passkey or the sender's passphrase on top of the emailed code
— never, when chosen detectors found something, for chosen policy rules, or always. Admins
change it; the change is audited with the old and new value."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from conversations.protection import STEP_UP_MODES, editable, names, settings_of
from core.audit import audit
from core.policy.model import BUILTIN_DETECTORS
from core.policy.store import get_policy
from portal.admin.context import admin_post

DETECTOR_WORDS = {
    "credit_card": "payment card numbers",
    "us_ssn": "US social security numbers",
    "iban": "bank account numbers (IBAN)",
    "uk_nino": "UK national insurance numbers",
    "email_addresses": "lists of email addresses",
}
PROBLEMS = {  # /admin/settings?problem=...
    "detectors": "Step-up was not saved: choose at least one detector, or another choice.",
    "rules": "Step-up was not saved: choose at least one rule, or another choice.",
}
MODE_WORDS = {
    "off": "Never: the emailed code (or a passkey) is enough.",
    "detectors": "When the message contains what the detectors chosen below find.",
    "rules": "When one of the policy rules chosen below decided it.",
    "always": "For every message read in the portal.",
}


async def context(s: AsyncSession, tenant_id: str) -> dict[str, Any]:
    """What the section shows: the setting, in words, and the choices."""
    row = await settings_of(s, tenant_id)
    policy = await get_policy(s, tenant_id)
    chosen_detectors = names(row.step_up_detectors)
    chosen_rules = names(row.step_up_rules)
    rules = [r.name for r in policy.rules if r.action == "encrypt"]
    return {
        "step_up": row.step_up,
        "step_up_words": _sentence(row.step_up, chosen_detectors, chosen_rules),
        "mode_words": list(MODE_WORDS.items()),
        "detector_choices": [
            (d, DETECTOR_WORDS.get(d, d), d in chosen_detectors) for d in BUILTIN_DETECTORS
        ],
        "rule_choices": [(r, r in chosen_rules) for r in rules]
        + [(r, True) for r in chosen_rules if r not in rules],
    }


def _sentence(mode: str, detectors: list[str], rules: list[str]) -> str:
    if mode == "always":
        return "Recipients confirm with a passkey or the sender's passphrase for every message."
    if mode == "detectors" and detectors:
        found = ", ".join(DETECTOR_WORDS.get(d, d) for d in detectors)
        return (
            "Recipients confirm with a passkey or the sender's passphrase when a message "
            f"contains {found}."
        )
    if mode == "rules" and rules:
        return (
            "Recipients confirm with a passkey or the sender's passphrase for messages the rules "
            + ", ".join(f"“{r}”" for r in rules)
            + " decided."
        )
    return "The emailed code is enough to open a message, unless its sender set a passphrase."


async def save(request: Request) -> Response:
    """``POST /admin/settings/protection``."""
    async with admin_post(request) as (st, s, admin, form):
        mode = str(form.get("step_up") or "")
        if mode not in STEP_UP_MODES:
            return st.pages.error(400)
        detectors = [d for d in form.getlist("step_up_detector") if d in BUILTIN_DETECTORS]
        policy = await get_policy(s, admin.tenant.id)
        known = {r.name for r in policy.rules}
        rules = [str(r) for r in form.getlist("step_up_rule") if str(r) in known]
        if mode == "detectors" and not detectors:
            return RedirectResponse("/admin/settings?problem=detectors", status_code=303)
        if mode == "rules" and not rules:
            return RedirectResponse("/admin/settings?problem=rules", status_code=303)
        row = await editable(s, admin.tenant.id)
        before = (row.step_up, row.step_up_detectors, row.step_up_rules)
        after = (mode, ",".join(sorted(set(detectors))), ",".join(dict.fromkeys(rules)))
        if before == after:
            return RedirectResponse("/admin/settings?done=same", status_code=303)
        row.step_up, row.step_up_detectors, row.step_up_rules = after
        await audit(
            s,
            admin.tenant.id,
            admin.actor,
            "tenant.step_up",
            admin.tenant.id,
            before=list(before),
            after=list(after),
        )
        await s.commit()
    return RedirectResponse("/admin/settings?done=saved", status_code=303)
