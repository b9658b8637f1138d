"""Loading the configuration: one TOML file, ``SEALMAIL_*`` environment overrides, validated
and frozen into :class:`~core.config.settings.Settings`.

Read once at start (never at import time). Unknown keys and bad values raise
:class:`ConfigError` with a one-line message naming the key.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.config.settings import Secret, Settings
from core.config.values import (
    parse_base_url,
    parse_bool,
    parse_choice,
    parse_database_url,
    parse_duration,
    parse_hostport,
    parse_int,
    parse_keywords,
    parse_listen,
    parse_networks,
    parse_optional_base_url,
    parse_optional_hostport,
    parse_optional_listen,
    parse_port,
    parse_relay_setting,
    parse_retention,
    parse_secret,
    parse_size,
    parse_str,
    parse_timezone,
    parse_token,
    parse_url,
)
from core.errors import ConfigError


def parse_positive_duration(value: Any) -> float:
    """A duration that must be more than zero (a deadline of 0 s would refuse everything)."""
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("must be more than 0s")
    return seconds


DEFAULT_CONFIG_NAME = "sealmail.toml"
ENV_PREFIX = "SEALMAIL_"
# Environment names under the prefix that are not settings: the config file's path, and the
# test suite's own variables (SEALMAIL_TEST_PG, ...) which reach the programs the tests start.
_ENV_CONFIG = "SEALMAIL_CONFIG"
_ENV_TEST_PREFIX = "SEALMAIL_TEST_"


_PARSERS: dict[str, Any] = {
    "data_dir": parse_str,
    "database_url": parse_database_url,
    "archive_url": parse_url("file", "s3"),
    "s3_endpoint_url": parse_str,
    "s3_region": parse_str,
    "s3_object_lock": parse_choice("off", "governance", "compliance"),
    "root_key": parse_url("file", "aws-kms"),
    "kms_endpoint_url": parse_str,
    "smtp_listen": parse_listen,
    "smtp_hostname": parse_str,
    "smtp_tls_cert": parse_str,
    "smtp_tls_key": parse_str,
    "smtp_max_message_size": parse_size,
    "smtp_max_recipients": parse_int,
    "smtp_auth_require_tls": parse_bool,
    "smtp_timeout": parse_duration,
    "smtp_step_timeout": parse_positive_duration,
    "smtp_max_commands": parse_int,
    "smtp_max_sessions": parse_int,
    "trigger_keywords": parse_keywords,
    "relay": parse_relay_setting,
    "relay_tls": parse_choice("opportunistic", "required", "none"),
    "relay_username": parse_str,
    "relay_password": parse_secret,
    "relay_timeout": parse_duration,
    "relay_tls_ca_file": parse_str,
    "relay_tls_client_cert": parse_str,
    "relay_tls_client_key": parse_str,
    "mx_port": parse_port,
    "dns_resolver": parse_optional_hostport,
    "portal_listen": parse_listen,
    "portal_base_url": parse_base_url,
    "portal_tls_cert": parse_str,
    "portal_tls_key": parse_str,
    "portal_trusted_proxies": parse_networks,
    "metrics_listen": parse_optional_listen,
    "metrics_token": parse_token,
    "portal_link_lifetime": parse_duration,
    "portal_retention": parse_retention,
    "archive_retention": parse_retention,
    "notification_from": parse_str,
    "queue_min_backoff": parse_duration,
    "queue_max_backoff": parse_duration,
    "queue_lifetime": parse_duration,
    "queue_delay_warning": parse_duration,
    "queue_lease": parse_duration,
    "queue_poll_interval": parse_duration,
    "delivery_concurrency": parse_int,
    "worker_processes": parse_int,
    "log_format": parse_choice("text", "json"),
    "log_level": parse_choice("debug", "info", "warning", "error"),
    "billing_webhook_secret": parse_secret,
    "billing_outbound_url": parse_optional_base_url,
    "billing_outbound_secret": parse_secret,
    "billing_timezone": parse_timezone,
    "billing_pay_url": parse_optional_base_url,
    "billing_schedule_file": parse_str,
}
_PATH_KEYS = (
    "data_dir",
    "smtp_tls_cert",
    "smtp_tls_key",
    "portal_tls_cert",
    "portal_tls_key",
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
            # a secret's value is never echoed, not even a wrong one
            got = "" if _PARSERS[name] in (parse_secret, parse_token) else f" (got {value!r})"
            raise ConfigError(f"config key {name!r}: {exc}{got}") from None
    data_dir = values.get("data_dir", Settings.data_dir)
    for name, default in _defaults_for(data_dir).items():
        values.setdefault(name, default)
    defaults = {f.name: f.default for f in dataclasses.fields(Settings)}
    merged = {k: v for k, v in defaults.items() if v is not dataclasses.MISSING}
    merged["relay_password"] = Secret("")
    merged["metrics_token"] = Secret("")
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
    if bool(merged["portal_tls_cert"]) != bool(merged["portal_tls_key"]):
        raise ConfigError("config keys 'portal_tls_cert' and 'portal_tls_key' go together")
    return Settings(**merged)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
