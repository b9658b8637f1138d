"""``sealmail init``: a working directory that runs on embedded defaults.

Idempotent: every step checks what is there first; keys and certificates are never
overwritten.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import ipaddress
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.accounts.tenants import TenantCredentials, create_tenant, find_tenant
from core.config.loading import DEFAULT_CONFIG_NAME, load_settings
from core.config.settings import Settings
from core.db import Database, migrate
from core.errors import ConfigError, NotFound
from core.rootkey.file_root import FileRootKey
from core.rootkey.kms_derivation_secret import ensure
from core.rootkey.kms_root import KmsRootKey
from core.rootkey.loader import kms_derive_path, open_root_key
from core.services import Services
from core.storage.local import LocalStore

DEMO_TENANT = "demo"
DEMO_DOMAIN = "demo.example"

CONFIG_TEMPLATE = """\
# sealmail configuration. Every key can be overridden by SEALMAIL_<KEY> in the environment.
# Relative paths are relative to this file. See README.md for all keys.
data_dir = "./var"
# database_url = "sqlite:///./var/sealmail.db"   # or postgresql://user@host:5432/db
# archive_url = "file://./var/archive"
# root_key = "file://./var/keys/root.key"
smtp_listen = "127.0.0.1:2525"
smtp_hostname = "localhost"
relay = "127.0.0.1:2526"
portal_listen = "127.0.0.1:8025"
portal_base_url = "http://127.0.0.1:8025"
# /metrics is not public: scrape it on a private listener of its own (any role) ...
# metrics_listen = "127.0.0.1:9025"
# ... and/or set a bearer token (24+ characters); without one the portal answers 404 there
# metrics_token = ""   # e.g. the output of: openssl rand -hex 32
# queue_min_backoff = "300s"
# queue_max_backoff = "4000s"
# queue_lifetime = "5d"
log_format = "text"
"""


@dataclasses.dataclass
class InitReport:
    config_path: Path
    created: list[str]
    demo: TenantCredentials | None


def write_tls_certificate(cert_path: Path, key_path: Path, hostname: str) -> bool:
    """A self-signed certificate for STARTTLS (P-256, 2 years). False if one exists."""
    if cert_path.exists() or key_path.exists():
        return False
    for p in (cert_path, key_path):
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    alt: list[x509.GeneralName] = [x509.DNSName(hostname)]
    if hostname != "localhost":
        alt.append(x509.DNSName("localhost"))
    alt.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=730))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return True


async def _ensure_demo(settings: Settings) -> TenantCredentials | None:
    services = Services.open(settings)
    try:
        async with services.db.session() as session:
            try:
                await find_tenant(session, DEMO_TENANT)
                return None
            except NotFound:
                pass
            creds = await create_tenant(
                session,
                services.keyring,
                DEMO_TENANT,
                [DEMO_DOMAIN],
                plan="trial",
                display_name="Demo Company",
            )
            await session.commit()
            return creds
    finally:
        await services.close()


def ensure_kms_derivation_secret(settings: Settings) -> str | None:
    """With a KMS root, make sure the database holds its derivation secret (created, or
    imported from an older ``keys/kms-root.derive``); a line saying what was done, if any."""
    root = open_root_key(settings)
    if not isinstance(root, KmsRootKey):
        return None

    async def run() -> str | None:
        db = Database(settings.database_url)
        try:
            return await ensure(db, root, kms_derive_path(settings.data_dir))
        finally:
            await db.dispose()

    outcome = asyncio.run(run())
    if outcome == "created":
        return f"derivation secret in the database (wrapped by {root.uri})"
    if outcome == "imported":
        return (
            f"derivation secret in the database (imported from "
            f"{kms_derive_path(settings.data_dir)}, wrapped by {root.uri})"
        )
    return None


def check_public_url(url: str) -> str:
    """The portal's public address for ``init --public-url``: ``https://host[:port]`` (or
    ``http://`` on loopback, where browsers keep secure cookies), without a path."""
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    loopback = host == "localhost" or host.startswith("127.") or host == "::1"
    if parts.scheme not in ("https", "http") or not host or parts.path not in ("", "/"):
        raise ConfigError(f"--public-url {url!r}: expected https://host (no path)")
    if parts.query or parts.fragment or parts.username:
        raise ConfigError(f"--public-url {url!r}: expected https://host (no path)")
    if parts.scheme == "http" and not loopback:
        raise ConfigError(
            f"--public-url {url!r}: the portal's cookies need HTTPS; use https:// "
            "(portal_tls_cert/portal_tls_key or a reverse proxy, docs/deploy/https.md)"
        )
    return f"{parts.scheme}://{parts.netloc}"


def _set_public_url(config_path: Path, url: str) -> bool:
    """Point ``portal_base_url`` at ``url`` in the config file; False if it already does."""
    text = config_path.read_text()
    line = f'portal_base_url = "{url}"'
    if re.search(rf"^{re.escape(line)}\s*$", text, re.M):
        return False
    new, n = re.subn(r"^portal_base_url\s*=.*$", line, text, count=1, flags=re.M)
    config_path.write_text(new if n else text.rstrip("\n") + "\n" + line + "\n")
    return True


def init_workdir(
    directory: str | os.PathLike[str] = ".", public_url: str | None = None
) -> InitReport:
    """Create (or complete) a working directory; return what was created. ``public_url``
    (``init --public-url``) is where the portal is reached: its links point there, and a new
    config names the SMTP host after it."""
    url = check_public_url(public_url) if public_url else None
    root = Path(directory).resolve()
    root.mkdir(parents=True, exist_ok=True)
    config_path = root / DEFAULT_CONFIG_NAME
    created: list[str] = []
    if not config_path.exists():
        text = CONFIG_TEMPLATE
        if url:
            host = urlsplit(url).hostname or "localhost"
            text = text.replace('smtp_hostname = "localhost"', f'smtp_hostname = "{host}"')
        config_path.write_text(text)
        created.append(f"config {config_path}")
    if url and _set_public_url(config_path, url):
        created.append(f"portal_base_url {url}")
    settings = load_settings(config_path)
    data = Path(settings.data_dir)
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(data, 0o700)
    if settings.root_key_path and FileRootKey.create(settings.root_key_path):
        created.append(f"root key {settings.root_key_path}")
    root = open_root_key(settings)
    if isinstance(root, KmsRootKey):
        # no key file: the root stays in KMS (checked before anything else is made)
        root.check_key()
    if write_tls_certificate(
        Path(settings.smtp_tls_cert), Path(settings.smtp_tls_key), settings.smtp_hostname
    ):
        created.append(f"TLS certificate {settings.smtp_tls_cert}")
    if settings.archive_path:
        store = LocalStore(settings.archive_path)
        if not store.root.exists():
            created.append(f"archive {store.root}")
        store.create()
    migrate(settings.database_url)
    secret = ensure_kms_derivation_secret(settings)
    if secret:
        created.append(secret)
    demo = asyncio.run(_ensure_demo(settings))
    if demo is not None:
        created.append(f"demo tenant {DEMO_TENANT!r} ({DEMO_DOMAIN})")
    return InitReport(config_path, created, demo)
