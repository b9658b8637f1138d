"""The settings: every configuration key with its default, validated and frozen
(:class:`Settings`), and :class:`Secret`, the string type whose ``repr`` hides the value.
"""

from __future__ import annotations

import dataclasses


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
    # how long one SMTP step (AUTH, MAIL, RCPT, opening DATA) waits on our own work (the database)
    # before it answers with a 4xx instead of leaving the client in silence
    smtp_step_timeout: float = 30.0
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
    portal_tls_cert: str = ""  # with portal_tls_key: the portal serves HTTPS itself
    portal_tls_key: str = ""
    # reverse proxies whose X-Forwarded-For / Forwarded give the client address
    portal_trusted_proxies: tuple[str, ...] = ()
    metrics_listen: str = ""  # a listener of its own for /metrics, any role ("" = off)
    # bearer token for /metrics; "" = the portal answers 404 there (scrape metrics_listen)
    metrics_token: Secret = dataclasses.field(default_factory=lambda: Secret(""))
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
    # processes that run the pipeline and delivery (0 = one per CPU core): with role ``all``
    # or ``worker`` the main process is one of them and starts the others beside it
    worker_processes: int = 0
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
