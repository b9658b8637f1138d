"""The configured root key: a ``file://`` or ``aws-kms://`` URI opened (no network calls; a
KMS key is reached on first use, its derivation secret read from the database).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import ConfigError
from core.rootkey import kms_derivation_secret
from core.rootkey.file_root import FileRootKey
from core.rootkey.kms_root import KmsRootKey, kms_key_of
from core.rootkey.protocol import RootKey

if TYPE_CHECKING:
    from core.config.settings import Settings


def load_root_key(
    uri: str, *, kms_endpoint_url: str = "", region: str = "", data_dir: str = ""
) -> RootKey:
    """The root key named by ``uri``. No network: a KMS key is reached on first use."""
    if uri.startswith("file://"):
        return FileRootKey.load(uri[len("file://") :])
    if uri.startswith("aws-kms://"):
        return KmsRootKey(
            kms_key_of(uri),
            endpoint_url=kms_endpoint_url,
            region=region,
            derive_path=kms_derive_path(data_dir) if data_dir else None,
        )
    raise ConfigError(f"root_key {uri!r}: expected file:// or aws-kms://")


def kms_derive_path(data_dir: str | os.PathLike[str]) -> Path:
    """Where a KMS root's wrapped derivation secret is kept."""
    return Path(data_dir) / "keys" / "kms-root.derive"


def open_root_key(settings: Settings) -> RootKey:
    """The configured root key (no network calls). A KMS root reads its derivation secret
    from the database on first use (``core.rootkey.kms_derivation_secret``), importing the older
    ``keys/kms-root.derive`` file if the database has none yet."""
    root = load_root_key(
        settings.root_key,
        kms_endpoint_url=settings.kms_endpoint_url,
        region="",
        data_dir=settings.data_dir,
    )
    if isinstance(root, KmsRootKey):
        url = settings.database_url
        legacy = kms_derive_path(settings.data_dir) if settings.data_dir else None
        kms = root
        root._secret_loader = lambda: kms_derivation_secret.load_blocking(url, kms, legacy)
    return root
