"""Configuration: one TOML file, ``SEALMAIL_*`` environment overrides, validated and frozen.

Read once at start (never at import time). Unknown keys and bad values raise
:class:`ConfigError` with a one-line message naming the key.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from core.errors import ConfigError

DEFAULT_CONFIG_NAME = "sealmail.toml"
ENV_PREFIX = "SEALMAIL_"
# Environment names under the prefix that are not settings: the config file's path, and the
# test suite's own variables (SEALMAIL_TEST_PG, ...) which reach the programs the tests start.
_ENV_CONFIG = "SEALMAIL_CONFIG"
_ENV_TEST_PREFIX = "SEALMAIL_TEST_"


class Secret:
    """A string whose ``repr`` and ``str`` never show the value (Starlette's ``Secret``)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


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


def _choice(*options: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return text

    return check


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _str(value: Any) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError("expected a string")
    return str(value)


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a whole number")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValueError("expected a whole number") from None
    if number < 0:
        raise ValueError("must not be negative")
    return number


def _secret(value: Any) -> Secret:
    return Secret(_str(value))


def _keywords(value: Any) -> tuple[str, ...]:
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


def _url(*schemes: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = _str(value).strip()
        scheme = text.split("://", 1)[0].lower() if "://" in text else ""
        if scheme not in schemes:
            raise ValueError(
                f"expected a URL starting with {' or '.join(s + '://' for s in schemes)}"
            )
        return text

    return check


def _database_url(value: Any) -> str:
    text = _str(value).strip()
    scheme = text.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme not in ("sqlite", "postgresql", "postgres"):
        raise ValueError("expected sqlite:///PATH or postgresql://user@host:5432/db")
    return text


def _relay(value: Any) -> str:
    text = _str(value).strip()
    if text.lower() == "mx":
        return "mx"
    parse_hostport(text)
    return text


def parse_relay(value: Any) -> str:
    """A next hop: ``host:port`` (a DNS name or an IP address) or ``mx``; ValueError
    otherwise."""
    text = _relay(value)
    if text != "mx":
        host, _ = parse_hostport(text)
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", host):
            try:
                ipaddress.ip_address(host)
            except ValueError:
                raise ValueError("expected host:port with a DNS name or IP address") from None
    return text


def _port(value: Any) -> int:
    number = _int(value)
    if not 0 < number <= 65535:
        raise ValueError("expected a port from 1 to 65535")
    return number


def _optional_hostport(value: Any) -> str:
    text = _str(value).strip()
    if text:
        parse_hostport(text)
    return text


def _listen(value: Any) -> str:
    text = _str(value).strip()
    parse_hostport(text)
    return text


def _optional_listen(value: Any) -> str:
    """``host:port`` or ``""`` (off)."""
    text = _str(value).strip()
    if text:
        parse_hostport(text)
    return text


def _base_url(value: Any) -> str:
    text = _str(value).strip().rstrip("/")
    if not re.match(r"^https?://[^/\s]+(/\S*)?$", text):
        raise ValueError("expected an http:// or https:// URL")
    return text


def _optional_base_url(value: Any) -> str:
    """An http(s) URL or ``""`` (off)."""
    text = _str(value).strip()
    return _base_url(text) if text else ""


def _timezone(value: Any) -> str:
    import zoneinfo

    text = _str(value).strip()
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError("expected an IANA time zone such as UTC or Europe/Berlin") from None
    return text


@dataclasses.dataclass(frozen=True)
class Settings:
    """Validated, frozen configuration. Paths are absolute once loaded."""

    data_dir: str = "./var"
    database_url: str = "sqlite:///./var/sealmail.db"
    archive_url: str = "file://./var/archive"
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    s3_object_lock: str = "off"
    root_key: str = "file://./var/keys/root.key"
    kms_endpoint_url: str = ""
    smtp_listen: str = "127.0.0.1:2525"
    smtp_hostname: str = "localhost"
    smtp_tls_cert: str = "./var/tls/smtp.crt"
    smtp_tls_key: str = "./var/tls/smtp.key"
    smtp_max_message_size: int = 150 * 1024 * 1024
    smtp_max_recipients: int = 1000
    smtp_auth_require_tls: bool = True
    smtp_timeout: float = 300.0
    smtp_max_commands: int = 10000
    smtp_max_sessions: int = 200
    trigger_keywords: tuple[str, ...] = ("[secure]", "[encrypt]", "#secure")
    relay: str = "127.0.0.1:2526"
    relay_tls: str = "opportunistic"
    relay_username: str = ""
    relay_password: Secret = dataclasses.field(default_factory=lambda: Secret(""))
    relay_timeout: float = 60.0
    relay_tls_ca_file: str = ""  # extra CA bundle to verify the next hop ("" = system CAs)
    relay_tls_client_cert: str = ""  # certificate we show the next hop (M365 connectors)
    relay_tls_client_key: str = ""
    mx_port: int = 25  # port of MX hosts when relay = "mx" (tests point it at a sink)
    dns_resolver: str = ""  # "host:port" of the DNS resolver to ask ("" = the system's)
    portal_listen: str = "127.0.0.1:8025"
    portal_base_url: str = "http://127.0.0.1:8025"
    metrics_listen: str = ""  # /metrics for the smtp and worker roles ("" = off)
    portal_link_lifetime: float = 30 * 86400.0
    portal_retention: float = 90 * 86400.0  # how long the portal copy of a message is kept
    archive_retention: float = 2557 * 86400.0  # "7y": the archive copy; S3 Object Lock date
    notification_from: str = ""
    queue_min_backoff: float = 300.0
    queue_max_backoff: float = 4000.0
    queue_lifetime: float = 5 * 86400.0
    queue_delay_warning: float = 4 * 3600.0  # 0 = never warn the sender of a delay
    # how long a worker's claim on a delivery lasts (at least 2 x relay_timeout); a message
    # being processed is claimed for twice this. A worker on another host that dies holding
    # claims leaves them to run out: this is how long its work waits.
    queue_lease: float = 300.0
    queue_poll_interval: float = 1.0
    delivery_concurrency: int = 10
    log_format: str = "text"
    log_level: str = "info"
    # billing hooks (issue 6): inbound webhook secret, where signed actions go, the calendar
    billing_webhook_secret: Secret = dataclasses.field(default_factory=lambda: Secret(""))
    billing_outbound_url: str = ""  # "" = actions are queued but not sent
    billing_outbound_secret: Secret = dataclasses.field(default_factory=lambda: Secret(""))
    billing_timezone: str = "UTC"  # the calendar day the dunning schedule is evaluated in
    billing_pay_url: str = ""  # where a customer pays (banner, emails)
    billing_schedule_file: str = ""  # TOML file overriding the dunning schedule ("" = built in)
    config_path: str = ""

    def __repr__(self) -> str:  # secrets are Secret objects, so the default repr is safe
        fields = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self))
        return f"Settings({fields})"

    @property
    def sender_address(self) -> str:
        """The envelope and From address of mail sealmail writes itself."""
        return self.notification_from or f"secure-mail@{self.smtp_hostname}"

    @property
    def database_path(self) -> str | None:
        """The SQLite file, or ``None`` for a server database."""
        if self.database_url.startswith("sqlite"):
            return self.database_url.split(":///", 1)[1] if ":///" in self.database_url else None
        return None

    @property
    def archive_path(self) -> str | None:
        if self.archive_url.startswith("file://"):
            return self.archive_url[len("file://") :]
        return None

    @property
    def root_key_path(self) -> str | None:
        if self.root_key.startswith("file://"):
            return self.root_key[len("file://") :]
        return None


_PARSERS: dict[str, Any] = {
    "data_dir": _str,
    "database_url": _database_url,
    "archive_url": _url("file", "s3"),
    "s3_endpoint_url": _str,
    "s3_region": _str,
    "s3_object_lock": _choice("off", "governance", "compliance"),
    "root_key": _url("file", "aws-kms"),
    "kms_endpoint_url": _str,
    "smtp_listen": _listen,
    "smtp_hostname": _str,
    "smtp_tls_cert": _str,
    "smtp_tls_key": _str,
    "smtp_max_message_size": parse_size,
    "smtp_max_recipients": _int,
    "smtp_auth_require_tls": _bool,
    "smtp_timeout": parse_duration,
    "smtp_max_commands": _int,
    "smtp_max_sessions": _int,
    "trigger_keywords": _keywords,
    "relay": _relay,
    "relay_tls": _choice("opportunistic", "required", "none"),
    "relay_username": _str,
    "relay_password": _secret,
    "relay_timeout": parse_duration,
    "relay_tls_ca_file": _str,
    "relay_tls_client_cert": _str,
    "relay_tls_client_key": _str,
    "mx_port": _port,
    "dns_resolver": _optional_hostport,
    "portal_listen": _listen,
    "portal_base_url": _base_url,
    "metrics_listen": _optional_listen,
    "portal_link_lifetime": parse_duration,
    "portal_retention": parse_retention,
    "archive_retention": parse_retention,
    "notification_from": _str,
    "queue_min_backoff": parse_duration,
    "queue_max_backoff": parse_duration,
    "queue_lifetime": parse_duration,
    "queue_delay_warning": parse_duration,
    "queue_lease": parse_duration,
    "queue_poll_interval": parse_duration,
    "delivery_concurrency": _int,
    "log_format": _choice("text", "json"),
    "log_level": _choice("debug", "info", "warning", "error"),
    "billing_webhook_secret": _secret,
    "billing_outbound_url": _optional_base_url,
    "billing_outbound_secret": _secret,
    "billing_timezone": _timezone,
    "billing_pay_url": _optional_base_url,
    "billing_schedule_file": _str,
}
_PATH_KEYS = (
    "data_dir",
    "smtp_tls_cert",
    "smtp_tls_key",
    "relay_tls_ca_file",
    "relay_tls_client_cert",
    "relay_tls_client_key",
    "billing_schedule_file",
)


def _absolute(base: Path, path: str) -> str:
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def _resolve_paths(values: dict[str, Any], base: Path) -> None:
    for key in _PATH_KEYS:
        if values.get(key):
            values[key] = _absolute(base, values[key])
    url = values["database_url"]
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        rest = url[len("sqlite:///") :]
        if rest and rest != ":memory:":
            values["database_url"] = "sqlite:///" + _absolute(base, rest)
    for key, scheme in (("archive_url", "file://"), ("root_key", "file://")):
        if values[key].startswith(scheme):
            values[key] = scheme + _absolute(base, values[key][len(scheme) :])


def _defaults_for(data_dir: str) -> dict[str, str]:
    """Defaults that follow ``data_dir`` when only it is set."""
    return {
        "database_url": f"sqlite:///{data_dir}/sealmail.db",
        "archive_url": f"file://{data_dir}/archive",
        "root_key": f"file://{data_dir}/keys/root.key",
        "smtp_tls_cert": f"{data_dir}/tls/smtp.crt",
        "smtp_tls_key": f"{data_dir}/tls/smtp.key",
    }


def load_settings(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read the TOML file (``./sealmail.toml`` if present and none named), apply
    ``SEALMAIL_*`` overrides, validate, and return frozen :class:`Settings`."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    base = Path.cwd()
    config_path = ""
    if path is None and env.get("SEALMAIL_CONFIG"):
        path = env["SEALMAIL_CONFIG"]
    if path is None and Path(DEFAULT_CONFIG_NAME).is_file():
        path = DEFAULT_CONFIG_NAME
    if path is not None:
        p = Path(path)
        try:
            with p.open("rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file {p} not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {p}: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"config file {p}: {exc.strerror}") from None
        base = p.resolve().parent
        config_path = str(p.resolve())
    for name, value in raw.items():
        if isinstance(value, dict):
            raise ConfigError(f"config key {name!r}: tables are not used; write flat keys")
        if name not in _PARSERS:
            raise ConfigError(f"unknown config key {name!r}")
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == _ENV_CONFIG:
            continue
        if name.startswith(_ENV_TEST_PREFIX):
            continue
        key = name[len(ENV_PREFIX) :].lower().replace("__", ".")
        if key not in _PARSERS:
            raise ConfigError(f"unknown setting {name} in the environment")
        raw[key] = value
    for name, value in (overrides or {}).items():
        if name not in _PARSERS:
            raise ConfigError(f"unknown config key {name!r}")
        raw[name] = value

    values: dict[str, Any] = {}
    for name, value in raw.items():
        try:
            values[name] = _PARSERS[name](value)
        except ValueError as exc:
            raise ConfigError(f"config key {name!r}: {exc} (got {value!r})") from None
    data_dir = values.get("data_dir", Settings.data_dir)
    for name, default in _defaults_for(data_dir).items():
        values.setdefault(name, default)
    defaults = {f.name: f.default for f in dataclasses.fields(Settings)}
    merged = {k: v for k, v in defaults.items() if v is not dataclasses.MISSING}
    merged["relay_password"] = Secret("")
    merged["billing_webhook_secret"] = Secret("")
    merged["billing_outbound_secret"] = Secret("")
    merged.update(values)
    _resolve_paths(merged, base)
    merged["config_path"] = config_path
    if merged["queue_min_backoff"] > merged["queue_max_backoff"]:
        raise ConfigError("config key 'queue_min_backoff' must not exceed 'queue_max_backoff'")
    host, _ = parse_hostport(merged["smtp_listen"])
    if not merged["smtp_auth_require_tls"] and not _is_loopback(host):
        raise ConfigError(
            "config key 'smtp_auth_require_tls': may be false only on a loopback listener"
        )
    return Settings(**merged)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
