"""Email addresses typed by people or sent by other programs: the one validator.

Every door that takes an address from outside (the CLI, the portal's sign-in forms, the
support desk and its API, the billing system's events, tenant settings) checks it here, so
that an address accepted in one place is accepted in all of them. Envelope addresses in the
SMTP dialogue are aiosmtpd's to parse; this is for addresses we store or look up.
"""

from __future__ import annotations

MAX_LENGTH = 320  # RFC 3696 errata: 64 for the local part + "@" + 255 for the domain


class InvalidAddress(ValueError):
    """Not an email address; ``str()`` is a one-line reason naming what was given."""


def normalize(text: str) -> str:
    """How addresses are stored and compared: surrounding space removed, lower-cased."""
    return text.strip().lower()


def problem(address: str) -> str | None:
    """Why ``address`` (already normalized) is not an address, or None when it is one.

    One ``@``; a local part; a domain with a dot that neither starts nor ends with one; at
    most :data:`MAX_LENGTH` characters; no spaces and no control characters (PostgreSQL
    cannot even store a NUL, and a line break would let a value forge a mail header)."""
    if not address:
        return "empty"
    if len(address) > MAX_LENGTH:
        return f"longer than {MAX_LENGTH} characters"
    if any(c.isspace() or not c.isprintable() for c in address):
        return "contains a space or a control character"
    if address.count("@") != 1:
        return "needs exactly one @"
    local, _, domain = address.partition("@")
    if not local:
        return "nothing before the @"
    if "." not in domain or domain.startswith(".") or domain.endswith("."):
        return "the part after the @ is not a domain name"
    return None


def parse_address(text: str) -> str:
    """``text`` normalized, or :class:`InvalidAddress` saying why it is not an address."""
    address = normalize(text)
    why = problem(address)
    if why is not None:
        raise InvalidAddress(f"not an email address: {text!r} ({why})")
    return address


def valid_or_empty(text: str) -> str:
    """``text`` normalized when it is an address, else "" (for forms that answer with a page
    instead of an error)."""
    address = normalize(text)
    return address if problem(address) is None else ""


def domain_of(address: str) -> str:
    """The domain of an address as it is compared: lower-cased, without a trailing dot;
    the whole text when there is no ``@``."""
    return address.rpartition("@")[2].strip().lower().rstrip(".")
