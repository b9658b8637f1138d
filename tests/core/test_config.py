"""Configuration: defaults, TOML, environment overrides, validation, frozen settings."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from core.config.loading import load_settings
from core.config.settings import Secret, Settings
from core.config.values import parse_duration, parse_size
from core.errors import ConfigError


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory (so no ./sealmail.toml is picked up by accident)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_run_everything_locally(cwd: Path) -> None:
    s = load_settings(env={})
    var = cwd.resolve() / "var"
    assert s.data_dir == str(var)
    assert s.database_url == f"sqlite:///{var}/sealmail.db"
    assert s.archive_url == f"file://{var}/archive"
    assert s.root_key == f"file://{var}/keys/root.key"
    assert s.smtp_listen == "127.0.0.1:2525"
    assert s.relay == "127.0.0.1:2526"
    assert s.portal_listen == "127.0.0.1:8025"
    assert s.portal_base_url == "http://127.0.0.1:8025"
    assert s.smtp_max_message_size == 150 * 1024 * 1024
    assert s.smtp_max_recipients == 1000
    assert (s.queue_min_backoff, s.queue_max_backoff, s.queue_lifetime) == (300, 4000, 5 * 86400)
    assert s.relay_tls == "opportunistic"
    assert s.log_format == "text"
    assert s.s3_object_lock == "off"
    assert s.trigger_keywords == ("[secure]", "[encrypt]", "#secure")
    assert s.sender_address == "secure-mail@localhost"
    assert s.config_path == ""


def test_default_config_file_in_cwd_is_read(cwd: Path) -> None:
    write(cwd / "sealmail.toml", 'smtp_hostname = "mx.example.org"\n')
    s = load_settings(env={})
    assert s.smtp_hostname == "mx.example.org"
    assert s.sender_address == "secure-mail@mx.example.org"
    assert s.config_path == str((cwd / "sealmail.toml").resolve())


def test_toml_file_values(cwd: Path) -> None:
    conf = write(
        cwd / "etc" / "sm.toml",
        """
database_url = "postgresql://sm@db.internal:5432/sealmail"
smtp_max_message_size = "10MB"
smtp_max_recipients = 50
queue_lifetime = "2d"
relay = "mx"
relay_tls = "required"
log_format = "json"
trigger_keywords = ["[lock]", " #x "]
""",
    )
    s = load_settings(conf, env={})
    assert s.database_url == "postgresql://sm@db.internal:5432/sealmail"
    assert s.smtp_max_message_size == 10_000_000
    assert s.smtp_max_recipients == 50
    assert s.queue_lifetime == 2 * 86400
    assert (s.relay, s.relay_tls, s.log_format) == ("mx", "required", "json")
    assert s.trigger_keywords == ("[lock]", "#x")


def test_relative_paths_resolve_against_the_config_files_directory(cwd: Path) -> None:
    conf = write(
        cwd / "etc" / "sm" / "sealmail.toml",
        """
data_dir = "data"
database_url = "sqlite:///db/s.db"
archive_url = "file://arch"
root_key = "file://keys/root.key"
smtp_tls_cert = "tls/c.pem"
""",
    )
    base = (cwd / "etc" / "sm").resolve()
    s = load_settings(conf, env={})
    assert s.data_dir == str(base / "data")
    assert s.database_url == f"sqlite:///{base}/db/s.db"
    assert s.archive_url == f"file://{base}/arch"
    assert s.root_key == f"file://{base}/keys/root.key"
    assert s.root_key_path == f"{base}/keys/root.key"
    assert s.smtp_tls_cert == f"{base}/tls/c.pem"


def test_derived_paths_follow_data_dir(cwd: Path) -> None:
    s = load_settings(env={"SEALMAIL_DATA_DIR": "/srv/sm"})
    assert s.database_url == "sqlite:////srv/sm/sealmail.db"
    assert s.database_path == "/srv/sm/sealmail.db"
    assert s.archive_path == "/srv/sm/archive"
    assert s.root_key_path == "/srv/sm/keys/root.key"
    assert s.smtp_tls_key == "/srv/sm/tls/smtp.key"


def test_environment_overrides_file_and_overrides_win(cwd: Path) -> None:
    conf = write(cwd / "s.toml", 'smtp_max_recipients = 10\nrelay = "a.example:25"\n')
    env = {
        "SEALMAIL_SMTP_MAX_RECIPIENTS": "20",
        "SEALMAIL_RELAY_TLS": "NONE",
        "SEALMAIL_SMTP_AUTH_REQUIRE_TLS": "false",
        "PATH": "/usr/bin",
    }
    s = load_settings(conf, env=env)
    assert s.smtp_max_recipients == 20
    assert s.relay == "a.example:25"
    assert s.relay_tls == "none"
    assert s.smtp_auth_require_tls is False
    s = load_settings(conf, env=env, overrides={"smtp_max_recipients": 30})
    assert s.smtp_max_recipients == 30


def test_config_file_named_by_environment(cwd: Path) -> None:
    conf = write(cwd / "x" / "other.toml", 'smtp_hostname = "h.example"\n')
    s = load_settings(env={"SEALMAIL_CONFIG": str(conf)})
    assert s.smtp_hostname == "h.example"


def test_test_suite_variables_are_not_settings(cwd: Path) -> None:
    s = load_settings(env={"SEALMAIL_TEST_PG": "postgresql://x@y/z"})
    assert isinstance(s, Settings)


@pytest.mark.parametrize(
    ("source", "key"),
    [
        ("file", "smpt_listen"),
        ("env", "SEALMAIL_SMTP_LISTN"),
        ("override", "nonsense"),
    ],
)
def test_unknown_key_is_a_one_line_error(cwd: Path, source: str, key: str) -> None:
    kwargs: dict[str, object] = {"env": {}}
    if source == "file":
        kwargs["path"] = write(cwd / "s.toml", f'{key} = "127.0.0.1:25"\n')
    elif source == "env":
        kwargs["env"] = {key: "1"}
    else:
        kwargs["overrides"] = {key: 1}
    with pytest.raises(ConfigError) as err:
        load_settings(**kwargs)  # type: ignore[arg-type]
    message = str(err.value)
    assert key in message and "unknown" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("smtp_listen", "nope"),
        ("smtp_listen", "127.0.0.1:99999"),
        ("relay", "smarthost"),
        ("relay_tls", "sometimes"),
        ("s3_object_lock", "forever"),
        ("database_url", "mysql://u@h/db"),
        ("archive_url", "ftp://x/y"),
        ("root_key", "/plain/path"),
        ("portal_base_url", "ftp://portal"),
        ("smtp_max_message_size", "lots"),
        ("smtp_max_message_size", -1),
        ("smtp_max_recipients", "ten"),
        ("smtp_max_recipients", True),
        ("queue_lifetime", "5 fortnights"),
        ("queue_min_backoff", -5),
        ("smtp_auth_require_tls", "maybe"),
        ("log_format", "xml"),
        ("trigger_keywords", []),
        ("smtp_hostname", ["a", "b"]),
        ("portal_trusted_proxies", ["10.0.0.0/33"]),
        ("portal_trusted_proxies", ["proxy.example"]),
        ("portal_trusted_proxies", "10.0.0.0/8, nonsense"),
        ("portal_trusted_proxies", [10]),
        ("portal_trusted_proxies", 10),
    ],
)
def test_bad_values_are_refused_naming_the_key(cwd: Path, key: str, value: object) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(env={}, overrides={key: value})
    assert repr(key) in str(err.value)
    assert "\n" not in str(err.value)


def test_trusted_proxies_are_cidrs_from_file_or_environment(cwd: Path) -> None:
    assert load_settings(env={}).portal_trusted_proxies == ()
    (cwd / "sealmail.toml").write_text('portal_trusted_proxies = ["10.0.0.1/8", "::1"]\n')
    assert load_settings(env={}).portal_trusted_proxies == ("10.0.0.0/8", "::1/128")
    env = {"SEALMAIL_PORTAL_TRUSTED_PROXIES": "192.0.2.0/24, 2001:db8::/32"}
    assert load_settings(env=env).portal_trusted_proxies == ("192.0.2.0/24", "2001:db8::/32")


def test_bad_values_in_the_environment_are_refused(cwd: Path) -> None:
    with pytest.raises(ConfigError, match="smtp_max_recipients"):
        load_settings(env={"SEALMAIL_SMTP_MAX_RECIPIENTS": "many"})


def test_cross_field_checks(cwd: Path) -> None:
    with pytest.raises(ConfigError, match="queue_min_backoff"):
        load_settings(env={}, overrides={"queue_min_backoff": "2h", "queue_max_backoff": "1h"})
    with pytest.raises(ConfigError, match="loopback"):
        load_settings(
            env={}, overrides={"smtp_listen": "0.0.0.0:25", "smtp_auth_require_tls": False}
        )
    s = load_settings(env={}, overrides={"smtp_listen": "[::1]:2525", "smtp_auth_require_tls": 0})
    assert s.smtp_auth_require_tls is False


def test_tables_and_broken_toml_are_one_line_errors(cwd: Path) -> None:
    with pytest.raises(ConfigError, match="tables"):
        load_settings(write(cwd / "a.toml", "[smtp]\nlisten = 1\n"), env={})
    with pytest.raises(ConfigError) as err:
        load_settings(write(cwd / "b.toml", "smtp_listen = \n"), env={})
    assert "b.toml" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="not found"):
        load_settings(cwd / "missing.toml", env={})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("300s", 300),
        ("10m", 600),
        ("5d", 432000),
        ("1.5h", 5400),
        ("250ms", 0.25),
        (90, 90),
        ("2w", 1209600),
        (" 7 ", 7),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "-1s", "1y", "ten minutes", True, -3])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("150MiB", 150 * 2**20),
        ("10MB", 10**7),
        ("1k", 1024),
        ("2kb", 2000),
        ("3 GiB", 3 * 2**30),
        (4096, 4096),
        ("512", 512),
        ("1g", 2**30),
    ],
)
def test_sizes(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "MB", "1.5MB", "-1", "1 TB", False, -1])
def test_bad_sizes(text: object) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_secret_never_shows_its_value(cwd: Path) -> None:
    s = load_settings(env={"SEALMAIL_RELAY_PASSWORD": "hunter2-very-secret"})
    assert isinstance(s.relay_password, Secret)
    assert s.relay_password.reveal() == "hunter2-very-secret"
    for text in (repr(s), str(s), repr(s.relay_password), str(s.relay_password), f"{s!r}"):
        assert "hunter2" not in text
    assert bool(s.relay_password) and not bool(Secret(""))
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b")
    assert load_settings(env={}).relay_password.reveal() == ""


def test_metrics_token_is_a_long_secret_never_echoed(cwd: Path) -> None:
    assert not load_settings(env={}).metrics_token  # none by default: /metrics is not public
    token = "Zq7" * 10
    s = load_settings(env={"SEALMAIL_METRICS_TOKEN": token})
    assert isinstance(s.metrics_token, Secret) and s.metrics_token.reveal() == token
    assert token not in repr(s)
    for bad in ("short-but-secret", "a long token with spaces in it", "ÄÖÜ" * 10):
        with pytest.raises(ConfigError, match="metrics_token") as e:
            load_settings(env={}, overrides={"metrics_token": bad})
        assert bad not in str(e.value) and "\n" not in str(e.value)


def test_settings_are_frozen(cwd: Path) -> None:
    s = load_settings(env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.relay = "evil.example:25"  # type: ignore[misc]
    assert s.relay == "127.0.0.1:2526"
