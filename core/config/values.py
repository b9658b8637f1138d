"""Parsers of configuration values: durations, retentions, sizes, host:port, next hops, URLs,
choices, networks. Each returns the value or raises ``ValueError`` saying what was expected.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from core.config.settings import Secret

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}
_SIZE = re.compile(r"^\s*(\d+)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    None: 1,
    "b": 1,
    "k": 1024,
    "kb": 1000,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1000**3,
    "gib": 1024**3,
}


def parse_duration(value: Any) -> float:
    """``"300s"``, ``"5d"``, ``"10m"``, ``90`` → seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 300s, 10m, 5d")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("must not be negative")
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError("expected a duration such as 300s, 10m, 5d")
    return float(m.group(1)) * _DURATION_UNITS[m.group(2)]


_RETENTION = re.compile(r"^\s*(\d+)\s*(d|w|y)\s*$")
_RETENTION_DAYS = {"d": 1.0, "w": 7.0, "y": 365.25}


def parse_retention_days(value: Any) -> int:
    """``"90d"``, ``"12w"``, ``"7y"`` → whole days (a year counts 365.25 days, rounded up,
    so ``7y`` is never shorter than seven calendar years)."""
    m = _RETENTION.match(str(value)) if not isinstance(value, bool) else None
    if not m or int(m.group(1)) == 0:
        raise ValueError("expected a retention such as 90d, 12w, 7y")
    days = -(-int(m.group(1)) * _RETENTION_DAYS[m.group(2)] // 1)
    if days > 100 * 366:
        raise ValueError("retention longer than 100 years")
    return int(days)


def parse_retention(value: Any) -> float:
    """A retention setting in seconds (whole days; see :func:`parse_retention_days`)."""
    return parse_retention_days(value) * 86400.0


def parse_size(value: Any) -> int:
    """``"150MiB"``, ``"10MB"``, ``1048576`` → bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 150MiB")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must not be negative")
        return value
    m = _SIZE.match(str(value))
    if not m:
        raise ValueError("expected a size such as 150MiB")
    unit = m.group(2).lower() if m.group(2) else None
    return int(m.group(1)) * _SIZE_UNITS[unit]


def parse_hostport(value: Any) -> tuple[str, int]:
    text = str(value).strip()
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
    else:
        host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("expected host:port")
    return host, int(port)


def parse_choice(*options: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return text

    return check


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def parse_str(value: Any) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError("expected a string")
    return str(value)


def parse_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a whole number")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValueError("expected a whole number") from None
    if number < 0:
        raise ValueError("must not be negative")
    return number


def parse_secret(value: Any) -> Secret:
    return Secret(parse_str(value))


TOKEN_MIN_LENGTH = 24


def parse_token(value: Any) -> Secret:
    """A bearer token we compare with (``""`` = none): at least :data:`TOKEN_MIN_LENGTH`
    printable characters without spaces, so it can be sent in an HTTP header as it is."""
    text = parse_str(value).strip()
    if text and len(text) < TOKEN_MIN_LENGTH:
        raise ValueError(f"must be at least {TOKEN_MIN_LENGTH} characters (or empty: none)")
    if any(not c.isprintable() or c.isspace() or not c.isascii() for c in text):
        raise ValueError("must be printable ASCII without spaces")
    return Secret(text)


def parse_keywords(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
    elif isinstance(value, list | tuple):
        items = [str(v).strip() for v in value]
    else:
        raise ValueError("expected a list of strings")
    items = [i for i in items if i]
    if not items:
        raise ValueError("needs at least one keyword")
    return tuple(items)


def parse_url(*schemes: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = parse_str(value).strip()
        scheme = text.split("://", 1)[0].lower() if "://" in text else ""
        if scheme not in schemes:
            raise ValueError(
                f"expected a URL starting with {' or '.join(s + '://' for s in schemes)}"
            )
        return text

    return check


def parse_database_url(value: Any) -> str:
    text = parse_str(value).strip()
    scheme = text.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme not in ("sqlite", "postgresql", "postgres"):
        raise ValueError("expected sqlite:///PATH or postgresql://user@host:5432/db")
    return text


def parse_relay_setting(value: Any) -> str:
    text = parse_str(value).strip()
    if text.lower() == "mx":
        return "mx"
    parse_hostport(text)
    return text


def parse_relay(value: Any) -> str:
    """A next hop: ``host:port`` (a DNS name or an IP address) or ``mx``; ValueError
    otherwise."""
    text = parse_relay_setting(value)
    if text != "mx":
        host, _ = parse_hostport(text)
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", host):
            try:
                ipaddress.ip_address(host)
            except ValueError:
                raise ValueError("expected host:port with a DNS name or IP address") from None
    return text


def parse_port(value: Any) -> int:
    number = parse_int(value)
    if not 0 < number <= 65535:
        raise ValueError("expected a port from 1 to 65535")
    return number


def parse_optional_hostport(value: Any) -> str:
    text = parse_str(value).strip()
    if text:
        parse_hostport(text)
    return text


def parse_listen(value: Any) -> str:
    text = parse_str(value).strip()
    parse_hostport(text)
    return text


def parse_optional_listen(value: Any) -> str:
    """``host:port`` or ``""`` (off)."""
    text = parse_str(value).strip()
    if text:
        parse_hostport(text)
    return text


def parse_base_url(value: Any) -> str:
    text = parse_str(value).strip().rstrip("/")
    if not re.match(r"^https?://[^/\s]+(/\S*)?$", text):
        raise ValueError("expected an http:// or https:// URL")
    return text


def parse_optional_base_url(value: Any) -> str:
    """An http(s) URL or ``""`` (off)."""
    text = parse_str(value).strip()
    return parse_base_url(text) if text else ""


def parse_timezone(value: Any) -> str:
    import zoneinfo

    text = parse_str(value).strip()
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError("expected an IANA time zone such as UTC or Europe/Berlin") from None
    return text


def parse_networks(value: Any) -> tuple[str, ...]:
    """A list of CIDRs (IPv4 or IPv6; a bare address is its own /32 or /128), as a TOML list
    or, from the environment, comma-separated; returned in canonical form."""
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
    elif isinstance(value, list | tuple):
        items = [v.strip() if isinstance(v, str) else v for v in value]
    else:
        raise ValueError('expected a list of CIDRs such as ["10.0.0.0/8", "::1/128"]')
    networks = []
    for item in items:
        if item == "":
            continue
        if not isinstance(item, str):
            raise ValueError("expected a list of CIDRs (strings)")
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ValueError(f"{item[:60]!r} is not a CIDR such as 10.0.0.0/8") from None
    return tuple(networks)
