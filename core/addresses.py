"""Email addresses typed by people or sent by other programs: the one validator.

Every door that takes an address from outside (the CLI, the portal's sign-in forms, the
support desk and its API, the billing system's events, tenant settings) checks it here, so
that an address accepted in one place is accepted in all of them. Envelope addresses in the
SMTP dialogue are aiosmtpd's to parse; the gateway refuses there what
:func:`routing_problem` and :func:`is_source_route` name (a relay-abuse vector, not a mailbox).
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
    return routing_problem(address)


def routing_problem(address: str) -> str | None:
    """Why ``address`` asks a host to route mail onwards instead of naming a mailbox, or None.

    ``user%other.example@our.example`` (the "%-hack") and ``host!user@our.example`` (a UUCP
    bang path) make a host that honours them relay to a third party. RFC 5321 (2.3.11) leaves
    the local part to the receiving host; we refuse ``%`` and ``!`` in it even when quoted
    (``"a%b"@our.example``): the SMTP library hands the address on unquoted, so relaying it
    would turn it into the hack at the next hop, and no mailbox we serve needs them."""
    local = address.rpartition("@")[0]
    if "%" in local:
        return "the %-hack (a % in the local part) is not accepted"
    if "!" in local:
        return "a bang path (a ! in the local part) is not accepted"
    return None


def is_source_route(path: str) -> bool:
    """Whether an SMTP path as the client sent it (``<@hop.example:user@our.example>``,
    ``<@a.example,@b.example:user@our.example>``) carries an RFC 5321 (4.1.2, C) source route.
    Receivers SHOULD ignore a route; we refuse the whole path instead, as a relay-abuse
    vector."""
    text = path.strip()
    if text.startswith("<"):
        text = text[1:].lstrip()
    return text.startswith("@")


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
