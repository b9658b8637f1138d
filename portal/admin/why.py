""" "Why was this message handled this way?" in sentences, for people (issue 12, item 6).

The pipeline records one explanation per recipient (``policy_decisions.explanation``, JSON)
in one of these shapes, each read here:

- the policy (:mod:`core.policy.engine`): ``rules`` (the trail), ``matched``, ``default``
  (``pass`` | ``encrypt_external``), ``detectors`` (counts), ``retain_days``,
  ``regex_timeouts``, ``limits_hit``, ``size``, ``attachments``; the pipeline adds
  ``trigger`` and ``upgraded_from`` (a subject keyword or header), ``disposition``,
  ``wkd`` and ``released_from`` (:mod:`gateway.pipeline.decide`);
- ``reroute`` (verified TLS required, not offered), ``loop_stamp``, ``journal``
  (:mod:`gateway.pipeline.verdicts`);
- ``portal_origin`` (reply | forward | compose) with ``portal_route`` (internal |
  external; :mod:`gateway.pipeline.portal_origin`): a message written in the secure portal.

Never a raw field on the page: what is not understood is left out, not dumped.
"""

from __future__ import annotations

from typing import Any

DETECTORS = {
    "credit_card": ("credit card number", "credit card numbers"),
    "us_ssn": ("US social security number", "US social security numbers"),
    "iban": ("IBAN", "IBANs"),
    "uk_nino": ("UK National Insurance number", "UK National Insurance numbers"),
    "email_addresses": ("email address", "email addresses"),
}

CONDITIONS = {
    "subject_contains": "subject contains",
    "text_matches": "text matches",
    "detector": "detector",
    "min_count": "at least",
    "attachment_name": "attachment name",
    "attachment_extension": "attachment extension",
    "attachment_type": "attachment type",
    "sender": "sender",
    "sender_group": "sender group",
    "recipient": "recipient",
    "recipient_group": "recipient group",
    "recipient_domain": "recipient domain",
    "header": "header",
    "size_over": "size over",
    "size_under": "size under",
}

ACTIONS = {
    "encrypt": "Encrypted",
    "hold": "Held",
    "reject": "Rejected",
    "require_tls": "Sent only over verified TLS",
    "pass": "Sent in clear",
    "journal": "Archived",
}

DISPOSITIONS = {
    "portal": "It was sealed to the secure portal and the recipient was sent a link.",
    "pgp": "It was encrypted with the recipient's OpenPGP key.",
    "smime": "It was encrypted with the recipient's S/MIME certificate.",
    "pdf": "It was sealed to the secure portal and the recipient was sent it as a "
    "password-protected PDF (AES-256), with a link to reply securely.",
    "tls": "It was delivered only over a verified TLS connection.",
    "hold": "It waits in quarantine for a compliance officer.",
    "reject": "It was not sent; the sender was told.",
}

ORIGINS = {"reply": "a reply", "forward": "a forwarded message", "compose": "a new message"}


def _count(name: str, n: int) -> str:
    if name.startswith("dictionary:"):
        word = "word" if n == 1 else "words"
        return f"{n} {word} of the dictionary '{name.split(':', 1)[1]}'"
    if name not in DETECTORS:
        return f"{n} {'match' if n == 1 else 'matches'} of the detector '{name}'"
    one, many = DETECTORS[name]
    return f"{n} {one if n == 1 else many}"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def found(detectors: dict[str, Any]) -> str:
    """``2 credit card numbers and 1 IBAN`` of the detectors that found something."""
    hits = [
        _count(str(k), int(v))
        for k, v in sorted(detectors.items())
        if isinstance(v, int) and not isinstance(v, bool) and v > 0
    ]
    return _and(hits) if hits else ""


def trigger_words(trigger: str) -> str:
    """The pipeline's trigger reason as the end of "Encrypted because ..."."""
    if trigger.startswith("subject keyword "):
        return f"the subject contained {trigger[len('subject keyword ') :]}"
    if trigger.startswith("header "):
        header = trigger[len("header ") :]
        if ":" not in header:
            header = f"{header}: yes"
        return f"the header {header} was set"
    return trigger


def _missed(missed: str) -> str:
    if missed == "disabled":
        return "is switched off"
    if missed == "unless":
        return "did not apply because of one of its exceptions"
    block, _, key = missed.partition(".")
    if block == "when" and key:
        words = CONDITIONS.get(key, key.replace("_", " "))
        return f"did not match: its “{words}” condition was not met"
    return "did not match"


def trail(rules: list[dict[str, Any]]) -> list[str]:
    """Each rule looked at, in order, as a sentence."""
    out = []
    for r in rules:
        name = str(r.get("rule", ""))
        if r.get("hit"):
            out.append(f"Rule '{name}' matched.")
        else:
            out.append(f"Rule '{name}' {_missed(str(r.get('missed', '')))}.")
    return out


def _policy_reason(action: str, rule: str, data: dict[str, Any]) -> str:
    verb = ACTIONS.get(action, action.capitalize() or "Handled")
    trigger = data.get("trigger")
    if isinstance(trigger, str) and trigger:
        return f"Encrypted because {trigger_words(trigger)}"
    if rule or data.get("matched"):
        name = rule or str(data.get("matched"))
        hits = found(data.get("detectors") or {})
        if hits:
            return f"{verb} because rule '{name}' found {hits}"
        return f"{verb} because rule '{name}' matched"
    if data.get("default") == "encrypt_external":
        return "Encrypted because no rule matched and the tenant encrypts all external mail"
    if action == "pass" or data.get("default") == "pass":
        return "Sent in clear: no rule matched and the tenant does not encrypt all external mail"
    return f"{verb} by the tenant's policy"


def _portal_origin(data: dict[str, Any], disposition: str) -> str:
    what = ORIGINS.get(str(data.get("portal_origin")), "a message")
    if data.get("portal_route") == "internal":
        return (
            f"Written in the secure portal as {what}: delivered by mail, because the "
            "recipient is in one of the organisation's own domains"
        )
    if disposition == "clear":
        return f"Written in the secure portal as {what}: delivered by mail as the policy allowed"
    return (
        f"Written in the secure portal as {what}: protected like any sealed message, because "
        "the recipient is outside the organisation"
    )


def sentences(action: str, rule: str, disposition: str, data: dict[str, Any]) -> list[str]:
    """The explanation as sentences; the first one says why, the rest add what matters."""
    out: list[str] = []
    if data.get("loop_stamp"):
        return ["Relayed as it was: this gateway had already processed it (a valid loop stamp)."]
    if "journal" in data:
        return ["Archived as an Exchange journal report; journal reports are never delivered."]
    if data.get("reroute") == "require_tls":
        out.append(
            "Sealed to the portal because verified TLS was required and the next server "
            "could not offer it."
        )
        return out
    if "portal_origin" in data:
        out.append(_portal_origin(data, disposition) + ".")
    else:
        released = data.get("released_from")
        if isinstance(released, str) and released:
            out.append(f"A compliance officer released it from the hold of rule '{released}'.")
        out.append(_policy_reason(action, rule, data) + ".")
        before = data.get("upgraded_from")
        if isinstance(before, str) and before and data.get("trigger"):
            policy = f"rule '{rule}'" if rule else "the policy"
            out.append(f"Without it, {policy} would have {_would(before)}.")
    if disposition in DISPOSITIONS:
        out.append(DISPOSITIONS[disposition])
    if data.get("wkd") == "found":
        out.append("The recipient's key was found in their domain's Web Key Directory.")
    days = data.get("retain_days")
    if isinstance(days, int) and not isinstance(days, bool):
        out.append(f"The archive keeps it for {days} days.")
    timeouts = data.get("regex_timeouts")
    if timeouts:
        n = len(timeouts) if isinstance(timeouts, list | dict) else 1
        out.append(f"{n} pattern{'s' if n != 1 else ''} ran out of time and counted as no match.")
    if data.get("limits_hit"):
        out.append("Only part of the message could be checked: it was too large or too deep.")
    return out


def _would(action: str) -> str:
    return {
        "pass": "sent it in clear",
        "require_tls": "sent it over verified TLS only",
        "encrypt": "encrypted it",
    }.get(action, f"chosen {action}")
